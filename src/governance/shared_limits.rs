//! The shared tier of the rate limits: the same GCRA buckets kept in Redis, so every
//! replica draws on one allowance per key. Redis's own clock decides, so replicas' clocks
//! need not agree. When Redis cannot answer quickly, callers fall back to their local tier.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::allowance::Allowance;
use crate::error::AppError;

/// How long a request waits for Redis before the local tier decides alone.
const ANSWER_WITHIN: Duration = Duration::from_millis(100);
const RECONNECT_EVERY: Duration = Duration::from_secs(5);
const KEY_PREFIX: &str = "tenantql:rate";

/// GCRA over a stored "theoretical arrival time" (ms). ARGV: ms per unit, the burst (units
/// spendable at once), cost. Returns {admitted, retry after ms, remaining units}.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - limit * interval
if allow_at > now then
  return {0, allow_at - now, 0}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return {1, 0, math.floor((now + limit * interval - new_tat) / interval)}
";

/// The client for `REDIS_URL`: `redis://`, `rediss://` (TLS, the server's certificate
/// checked against the bundled web roots like every other outbound connection) or
/// `unix://`. Opening it connects to nothing.
fn client(url: &str) -> anyhow::Result<redis::Client> {
    let client =
        redis::Client::open(url).map_err(|error| anyhow::anyhow!("REDIS_URL is not a Redis URL: {error}"))?;
    // Without this check the URL would be accepted and every connection refused later,
    // leaving the replicas to limit alone with only a warning.
    if let redis::ConnectionAddr::TcpTls { insecure: true, .. } = client.get_connection_info().addr() {
        anyhow::bail!("REDIS_URL: #insecure is not supported; the server's certificate is always checked");
    }
    Ok(client)
}

pub struct SharedLimits {
    /// Set once the first connection succeeds; the manager reconnects by itself after.
    connection: Arc<OnceLock<ConnectionManager>>,
    script: redis::Script,
}

impl SharedLimits {
    /// Connects, waiting briefly; a Redis that is down at start is retried in the
    /// background while each replica limits alone.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = client(url)?;
        let connection = Arc::new(OnceLock::new());
        let slot = connection.clone();
        let first = tokio::time::timeout(RECONNECT_EVERY, ConnectionManager::new(client.clone())).await;
        if let Ok(Ok(manager)) = first {
            let _ = slot.set(manager);
        } else {
            tokio::spawn(async move {
                loop {
                    tracing::warn!("Redis is unreachable; rate limits are per replica until it answers");
                    tokio::time::sleep(RECONNECT_EVERY).await;
                    if let Ok(manager) = ConnectionManager::new(client.clone()).await {
                        let _ = slot.set(manager);
                        tracing::info!("rate limits are shared through Redis");
                        return;
                    }
                }
            });
        }
        Ok(Self {
            connection,
            script: redis::Script::new(GCRA),
        })
    }

    /// Takes `cost` units of the shared bucket `rule`/`key`; `None` when Redis did not
    /// answer in time, leaving the decision to the local tier.
    pub async fn take(
        &self,
        rule: &str,
        key: &str,
        per_minute: u32,
        burst: u32,
        cost: u32,
    ) -> Option<Result<Allowance, AppError>> {
        let mut connection = self.connection.get()?.clone();
        let interval_ms = 60_000.0 / f64::from(per_minute.max(1));
        let mut invocation = self.script.key(format!("{KEY_PREFIX}:{rule}:{key}"));
        invocation.arg(interval_ms).arg(burst).arg(cost);
        let answer = tokio::time::timeout(
            ANSWER_WITHIN,
            invocation.invoke_async::<(i64, i64, i64)>(&mut connection),
        )
        .await;
        let (admitted, retry_after_ms, remaining) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                tracing::warn!(%error, "shared rate limit failed; the local tier decides");
                return None;
            }
            Err(_) => {
                tracing::warn!("Redis was too slow; the local tier decides");
                return None;
            }
        };
        if admitted == 0 {
            return Some(Err(AppError::RateLimited {
                retry_after_seconds: u64::try_from(retry_after_ms.max(1)).unwrap_or(1).div_ceil(1000),
            }));
        }
        let remaining = u32::try_from(remaining.max(0)).unwrap_or(0);
        Some(Ok(Allowance::of_bucket(burst, remaining, interval_ms / 1000.0)))
    }
}

#[cfg(test)]
mod tests {
    use redis::ConnectionAddr;

    use super::*;

    fn address(url: &str) -> ConnectionAddr {
        client(url).unwrap().get_connection_info().addr().clone()
    }

    #[test]
    fn plain_and_tls_urls_are_accepted() {
        assert!(matches!(
            address("redis://127.0.0.1:6379"),
            ConnectionAddr::Tcp(host, 6379) if host == "127.0.0.1"
        ));
        assert!(matches!(
            address("rediss://:secret@redis.example.com:6380/0"),
            ConnectionAddr::TcpTls { host, port: 6380, insecure: false, .. } if host == "redis.example.com"
        ));
    }

    #[test]
    fn unchecked_tls_and_other_schemes_are_refused() {
        let insecure = client("rediss://redis.example.com:6380/#insecure").unwrap_err();
        assert!(insecure.to_string().contains("#insecure"), "{insecure}");
        let http = client("http://redis.example.com").unwrap_err();
        assert!(
            http.to_string().starts_with("REDIS_URL is not a Redis URL"),
            "{http}"
        );
    }
}
