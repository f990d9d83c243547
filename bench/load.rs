//! The benchmarks' load client: `connections` workers sending requests back to back until
//! the time is up, each request chosen by a per-worker pseudo-random number, with every
//! request's latency and whether its answer was right.

use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Run {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Sorted.
    latencies_us: Vec<u64>,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at `p` (0 to 1), in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us[((self.latencies_us.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
    }
}

/// Sends `request(client, random)` from `connections` workers for `duration`; `answered`
/// says whether a successful response's body is the right answer.
pub async fn drive(
    connections: usize,
    duration: Duration,
    request: impl Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
    answered: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> Run {
    #[expect(
        clippy::disallowed_methods,
        reason = "the benchmarks' load generator, a client of the server under test"
    )]
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    let (request, answered) = (Arc::new(request), Arc::new(answered));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|worker| {
            let (http, request, answered) = (http.clone(), request.clone(), answered.clone());
            tokio::spawn(async move {
                let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ (worker as u64 + 1);
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let sent = Instant::now();
                    let ok = match request(&http, state).send().await {
                        Ok(response) if response.status().is_success() => {
                            response.text().await.is_ok_and(|text| answered(&text))
                        }
                        _ => false,
                    };
                    latencies.push(sent.elapsed().as_micros() as u64);
                    errors += usize::from(!ok);
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut latencies_us, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, failed) = task.await.unwrap();
        latencies_us.extend(latencies);
        errors += failed;
    }
    let elapsed = started.elapsed();
    latencies_us.sort_unstable();
    Run {
        requests: latencies_us.len(),
        errors,
        elapsed,
        latencies_us,
    }
}
