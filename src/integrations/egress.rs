//! The egress gate: every outbound HTTP call (runners, OAuth token requests) goes through
//! [`Gate`], which refuses addresses inside the operator's network unless allow-listed,
//! checks the address it connects to (no DNS rebinding), follows no redirects, caps answers
//! in size and time, and fails with reasons that carry no remote text.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

/// What an address is, as far as leaving the server goes: only `Public` is reachable
/// without the operator's allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Public,
    Unspecified,
    Loopback,
    Private,
    /// Carrier-grade NAT, 100.64.0.0/10.
    SharedNat,
    LinkLocal,
    UniqueLocal,
    Multicast,
    Broadcast,
    Documentation,
    Benchmarking,
    /// Reserved by the IETF, deprecated, or a tunnel whose far end cannot be vetted.
    Reserved,
    /// A cloud provider's instance metadata service.
    Metadata,
}

/// Instance metadata services: AWS/GCP/Azure/OpenStack's link-local one and Azure's
/// wireserver, which sits on a public address.
const METADATA_V4: [Ipv4Addr; 2] = [Ipv4Addr::new(169, 254, 169, 254), Ipv4Addr::new(168, 63, 129, 16)];
/// AWS's IPv6 instance metadata service.
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

/// IPv4 ranges that are not the public internet (IANA special-purpose registry), first
/// match wins: the broadcast address before the reserved 240/4 that holds it.
const V4_RANGES: &[([u8; 4], u32, Class)] = &[
    ([255, 255, 255, 255], 32, Class::Broadcast),
    ([0, 0, 0, 0], 8, Class::Unspecified),
    ([10, 0, 0, 0], 8, Class::Private),
    ([100, 64, 0, 0], 10, Class::SharedNat),
    ([127, 0, 0, 0], 8, Class::Loopback),
    ([169, 254, 0, 0], 16, Class::LinkLocal),
    ([172, 16, 0, 0], 12, Class::Private),
    ([192, 0, 0, 0], 24, Class::Reserved),
    ([192, 0, 2, 0], 24, Class::Documentation),
    ([192, 88, 99, 0], 24, Class::Reserved),
    ([192, 168, 0, 0], 16, Class::Private),
    ([198, 18, 0, 0], 15, Class::Benchmarking),
    ([198, 51, 100, 0], 24, Class::Documentation),
    ([203, 0, 113, 0], 24, Class::Documentation),
    ([224, 0, 0, 0], 4, Class::Multicast),
    ([240, 0, 0, 0], 4, Class::Reserved),
];

/// Classifies an address; IPv6 forms that embed an IPv4 address (mapped, compatible,
/// NAT64, 6to4) are classified by the address they embed.
pub fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    if METADATA_V4.contains(&ip) {
        return Class::Metadata;
    }
    V4_RANGES
        .iter()
        .find(|(net, bits, _)| in_v4(ip, Ipv4Addr::from(*net), *bits))
        .map_or(Class::Public, |(_, _, class)| *class)
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    if METADATA_V6.contains(&ip) {
        return Class::Metadata;
    }
    let s = ip.segments();
    let low_v4 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => Class::Unspecified,
        [0, 0, 0, 0, 0, 0, 0, 1] => Class::Loopback,
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (deprecated).
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => classify_v4(low_v4()),
        // IPv4-translated ::ffff:0:a.b.c.d (SIIT).
        [0, 0, 0, 0, 0xffff, 0, _, _] => classify_v4(low_v4()),
        // NAT64, the well-known prefix 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => classify_v4(low_v4()),
        // Local-use NAT64 (64:ff9b:1::/48): where the IPv4 address sits depends on the
        // operator's prefix length, so it cannot be vetted.
        [0x64, 0xff9b, 1, ..] => Class::Reserved,
        // 6to4: 2002:a.b.c.d::/48.
        [0x2002, hi, lo, ..] => classify_v4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        // Teredo (2001::/32) tunnels to an obfuscated IPv4 address.
        [0x2001, 0, ..] => Class::Reserved,
        [0x2001, 2, 0, ..] => Class::Benchmarking,
        [0x2001, 0x0db8, ..] => Class::Documentation,
        [0x3fff, second, ..] if second < 0x1000 => Class::Documentation,
        // The rest of the IETF protocol assignments, 2001::/23.
        [0x2001, second, ..] if second < 0x200 => Class::Reserved,
        // Discard-only, 100::/64.
        [0x100, 0, 0, 0, ..] => Class::Reserved,
        [first, ..] if first & 0xfe00 == 0xfc00 => Class::UniqueLocal,
        [first, ..] if first & 0xffc0 == 0xfe80 => Class::LinkLocal,
        [first, ..] if first & 0xff00 == 0xff00 => Class::Multicast,
        // Only global unicast, 2000::/3, is routed on the internet (site-local fec0::/10
        // and everything unassigned fall here).
        [first, ..] if first & 0xe000 != 0x2000 => Class::Reserved,
        _ => Class::Public,
    }
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, bits: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, bits: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is, so `127.0.0.1/32` also
/// matches `::ffff:127.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// One entry of `EGRESS_ALLOW`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `10.0.0.0/8`, `::1/128`, or a bare address: any port.
    Net { net: IpAddr, bits: u32 },
    /// `127.0.0.1:11434`, `[::1]:11434`: that address and port, in URLs that name the address.
    Socket(SocketAddr),
    /// `ollama.internal` or `ollama.internal:11434`: that name, wherever it resolves.
    Host { name: String, port: Option<u16> },
}

/// The operator's exceptions to the gate's refusals (`EGRESS_ALLOW`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Entry>);

impl AllowList {
    /// Comma-separated CIDRs, addresses, `address:port`, `host` and `host:port`.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        spec.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| parse_entry(entry).with_context(|| format!("EGRESS_ALLOW: {entry:?}")))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An address the URL names literally, on `port`.
    fn admits_literal(&self, ip: IpAddr, port: u16) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|entry| match entry {
            Entry::Socket(socket) => canonical(socket.ip()) == ip && socket.port() == port,
            _ => net_admits(entry, ip),
        })
    }

    /// An address a name resolved to. `address:port` entries do not apply: the resolver
    /// is not told the port (list the name instead).
    fn admits_resolved(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|entry| net_admits(entry, ip))
    }

    /// Whether the name is listed at all, and whether on this port.
    fn host(&self, name: &str) -> (bool, Vec<Option<u16>>) {
        let name = name.trim_end_matches('.');
        let ports: Vec<Option<u16>> = self
            .0
            .iter()
            .filter_map(|entry| match entry {
                Entry::Host { name: listed, port } if listed == name => Some(*port),
                _ => None,
            })
            .collect();
        (!ports.is_empty(), ports)
    }
}

fn net_admits(entry: &Entry, ip: IpAddr) -> bool {
    let Entry::Net { net, bits } = entry else {
        return false;
    };
    let inside = match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => in_v4(ip, *net, *bits),
        (IpAddr::V6(ip), IpAddr::V6(net)) => in_v6(ip, *net, *bits),
        _ => false,
    };
    // A metadata service is opened only by naming its address, never by a range that
    // happens to hold it.
    let single = *bits == if net.is_ipv4() { 32 } else { 128 };
    inside && (single || classify(ip) != Class::Metadata)
}

fn parse_entry(entry: &str) -> anyhow::Result<Entry> {
    if let Some((address, bits)) = entry.split_once('/') {
        let net: IpAddr = address.parse().context("not an address before the /")?;
        let mut bits: u32 = bits.parse().context("not a prefix length after the /")?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        if bits > max {
            bail!("a prefix length is at most {max}");
        }
        let canonical = canonical(net);
        // `::ffff:10.0.0.0/104` is 10.0.0.0/8.
        if canonical != net {
            bits = bits
                .checked_sub(96)
                .context("an IPv4-mapped range needs a prefix length of at least 96")?;
        }
        return Ok(Entry::Net { net: canonical, bits });
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        let net = canonical(ip);
        let bits = if net.is_ipv4() { 32 } else { 128 };
        return Ok(Entry::Net { net, bits });
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Ok(Entry::Socket(socket));
    }
    let (name, port) = match entry.rsplit_once(':') {
        Some((name, port)) => (name, Some(port.parse::<u16>().context("not a port after the :")?)),
        None => (entry, None),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !valid {
        bail!("not a CIDR, an address, or a host name");
    }
    Ok(Entry::Host { name, port })
}

/// Why an outbound call did not happen or did not finish. Every message is the server's
/// own words: nothing the remote side sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("the URL is not valid")]
    BadUrl,
    #[error("only http and https URLs may be called")]
    Scheme,
    #[error("https is required")]
    HttpsRequired,
    #[error("the address of {host} is not allowed")]
    Refused { host: String },
    #[error("{host} could not be reached")]
    Unreachable { host: String },
    #[error("no answer within the time limit")]
    Timeout,
    #[error("the answer exceeded {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the connection broke")]
    Broken,
    #[error("the answer is not valid JSON")]
    Malformed,
}

impl EgressError {
    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EgressError::Unreachable { .. } | EgressError::Timeout | EgressError::Broken
        )
    }
}

/// The gate's rules, without the client: what a URL and a resolved address may be.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allow: AllowList,
    /// `ENVIRONMENT=production`: plain http only to allow-listed destinations.
    pub require_https: bool,
}

impl Policy {
    /// What can be decided before resolving: the scheme, an address written in the URL,
    /// and a listed name's port. Names are checked again as they resolve.
    pub fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(EgressError::Scheme),
        };
        let port = url.port_or_known_default().ok_or(EgressError::BadUrl)?;
        let host = url.host_str().ok_or(EgressError::BadUrl)?.to_owned();
        // The URL parser has already turned every IPv4 spelling (`2130706433`, `0x7f.1`)
        // into dotted decimal, and brackets IPv6 addresses.
        let literal = match host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            Some(v6) => Some(IpAddr::V6(v6.parse().map_err(|_| EgressError::BadUrl)?)),
            None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        };
        let listed = match literal {
            Some(ip) => self.check_literal(ip, port, &host)?,
            None => {
                let (named, ports) = self.allow.host(&host);
                // A listed name is an internal one: it is reached on its listed ports only,
                // which also keeps the resolver's by-name answer sound for every port.
                if named
                    && !ports
                        .iter()
                        .any(|listed| listed.is_none_or(|listed| listed == port))
                {
                    return Err(EgressError::Refused { host });
                }
                named
            }
        };
        if self.require_https && !https && !listed {
            return Err(EgressError::HttpsRequired);
        }
        Ok(())
    }

    /// Refuses a literal address outside the public internet unless listed; tells whether
    /// an entry listed it.
    fn check_literal(&self, ip: IpAddr, port: u16, host: &str) -> Result<bool, EgressError> {
        if self.allow.admits_literal(ip, port) {
            return Ok(true);
        }
        if classify(ip) == Class::Public {
            return Ok(false);
        }
        Err(EgressError::Refused {
            host: host.to_owned(),
        })
    }

    /// Whether `name` may be reached at `ip`, one of the addresses it resolved to.
    pub fn admits_resolved(&self, name: &str, ip: IpAddr) -> bool {
        classify(ip) == Class::Public || self.allow.admits_resolved(ip) || self.allow.host(name).0
    }
}

/// Resolves names for the gate's client and hands it only the addresses the policy admits,
/// so the address connected to is the address checked.
struct GateResolver {
    policy: Arc<Policy>,
}

impl Resolve for GateResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Boxed as itself, so that `sanitize` finds it in the error's chain.
            let boxed = |error: EgressError| -> Box<dyn std::error::Error + Send + Sync> { Box::new(error) };
            let found = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| boxed(EgressError::Unreachable { host: host.clone() }))?;
            let admitted: Vec<SocketAddr> = found
                .filter(|address| policy.admits_resolved(&host, address.ip()))
                .collect();
            if admitted.is_empty() {
                return Err(boxed(EgressError::Refused { host }));
            }
            Ok(Box::new(admitted.into_iter()) as Addrs)
        })
    }
}

/// The gate's settings (`EGRESS_*`, and `ENVIRONMENT` for https).
#[derive(Debug, Clone)]
pub struct EgressConfig {
    pub policy: Policy,
    /// The most any answer may hold, in bytes.
    pub max_response_bytes: usize,
    /// The longest any call may take, answer included.
    pub timeout: Duration,
}

impl EgressConfig {
    pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
    pub const DEFAULT_TIMEOUT_SECONDS: u64 = 600;
}

/// The longest an OAuth token call may take, whatever the gate allows others.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);

/// The only way out: one client whose resolver applies the policy, no proxy, no redirects.
pub struct Gate {
    client: reqwest::Client,
    policy: Arc<Policy>,
    max_response_bytes: usize,
    timeout: Duration,
}

impl Gate {
    pub fn new(config: &EgressConfig) -> anyhow::Result<Self> {
        let policy = Arc::new(config.policy.clone());
        #[expect(
            clippy::disallowed_methods,
            reason = "the gate's client is the one outbound HTTP client"
        )]
        let builder = reqwest::Client::builder();
        let client = builder
            .dns_resolver(Arc::new(GateResolver {
                policy: policy.clone(),
            }))
            // A proxy from the environment would resolve and connect on our behalf.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(config.timeout)
            .user_agent(concat!("tenantql/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            client,
            policy,
            max_response_bytes: config.max_response_bytes,
            timeout: config.timeout,
        })
    }

    pub fn post(&self, url: &str) -> Call<'_> {
        self.request(Method::POST, url)
    }

    pub fn request(&self, method: Method, url: &str) -> Call<'_> {
        let checked = Url::parse(url)
            .map_err(|_| EgressError::BadUrl)
            .and_then(|parsed| self.policy.check_url(&parsed).map(|()| parsed));
        let builder = match &checked {
            Ok(url) => self.client.request(method, url.clone()),
            Err(_) => self.client.request(method, "http://invalid.invalid/"),
        };
        Call {
            gate: self,
            host: checked
                .as_ref()
                .ok()
                .and_then(|url| url.host_str())
                .unwrap_or_default()
                .to_owned(),
            checked: checked.map(|_| ()),
            builder,
            timeout: self.timeout,
        }
    }

    /// oauth2's HTTP client: `request_async(&|request| gate.exchange(request))`. Token
    /// answers are small; they are read whole, within the gate's limits.
    pub async fn exchange(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, EgressError> {
        let (parts, body) = request.into_parts();
        // A token call runs while a job or a callback waits on it, inside a transaction.
        let mut call = self
            .request(parts.method, &parts.uri.to_string())
            .timeout(TOKEN_TIMEOUT);
        call.builder = call.builder.headers(parts.headers).body(body);
        let reply = call.send().await?;
        let (status, headers) = (reply.status, reply.headers.clone());
        let body = reply.bytes().await?;
        let mut response = oauth2::HttpResponse::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// One outbound request being built; nothing leaves until [`Call::send`].
pub struct Call<'g> {
    gate: &'g Gate,
    host: String,
    checked: Result<(), EgressError>,
    builder: reqwest::RequestBuilder,
    timeout: Duration,
}

impl Call<'_> {
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.builder = self.builder.headers(headers);
        self
    }

    pub fn bearer_auth(mut self, token: &str) -> Self {
        self.builder = self.builder.bearer_auth(token);
        self
    }

    pub fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.builder = self.builder.json(body);
        self
    }

    /// Within the gate's own limit, which always applies.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(self.gate.timeout);
        self
    }

    pub async fn send(self) -> Result<Reply, EgressError> {
        self.checked?;
        let host = self.host;
        let response = self
            .builder
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|error| sanitize(&error, &host))?;
        Ok(Reply {
            status: response.status(),
            headers: response.headers().clone(),
            response,
            left: self.gate.max_response_bytes,
            limit: self.gate.max_response_bytes,
        })
    }
}

/// The gate's own refusal if the resolver gave one, else what kind of failure it was.
fn sanitize(error: &reqwest::Error, host: &str) -> EgressError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(ours) = current.downcast_ref::<EgressError>() {
            return ours.clone();
        }
        source = current.source();
    }
    if error.is_timeout() {
        EgressError::Timeout
    } else if error.is_body() || error.is_decode() {
        EgressError::Broken
    } else {
        EgressError::Unreachable {
            host: host.to_owned(),
        }
    }
}

/// An answer whose body is read within the gate's size limit.
pub struct Reply {
    status: reqwest::StatusCode,
    headers: HeaderMap,
    response: reqwest::Response,
    left: usize,
    limit: usize,
}

impl Reply {
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, EgressError> {
        let chunk = self.response.chunk().await.map_err(|error| {
            if error.is_timeout() {
                EgressError::Timeout
            } else {
                EgressError::Broken
            }
        })?;
        let Some(chunk) = chunk else { return Ok(None) };
        self.left = self
            .left
            .checked_sub(chunk.len())
            .ok_or(EgressError::TooLarge { limit: self.limit })?;
        Ok(Some(chunk.to_vec()))
    }

    pub async fn bytes(mut self) -> Result<Vec<u8>, EgressError> {
        // An announced length over the limit is refused before reading any of it.
        if self
            .response
            .content_length()
            .is_some_and(|length| length > self.left as u64)
        {
            return Err(EgressError::TooLarge { limit: self.limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    pub async fn json<T: DeserializeOwned>(self) -> Result<T, EgressError> {
        let body = self.bytes().await?;
        serde_json::from_slice(&body).map_err(|_| EgressError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(address: &str) -> Class {
        classify(address.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "2001:4860:4860::8888",
            "2001:200::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(class(address), Class::Public, "{address}");
        }
    }

    #[test]
    fn every_ipv4_special_range_is_refused() {
        let cases = [
            ("0.0.0.0", Class::Unspecified),
            ("0.255.255.255", Class::Unspecified),
            ("10.0.0.0", Class::Private),
            ("10.255.255.255", Class::Private),
            ("100.64.0.0", Class::SharedNat),
            ("100.127.255.255", Class::SharedNat),
            ("127.0.0.1", Class::Loopback),
            ("127.255.255.254", Class::Loopback),
            ("169.254.0.1", Class::LinkLocal),
            ("169.254.255.255", Class::LinkLocal),
            ("169.254.169.254", Class::Metadata),
            ("168.63.129.16", Class::Metadata),
            ("172.16.0.0", Class::Private),
            ("172.31.255.255", Class::Private),
            ("192.0.0.8", Class::Reserved),
            ("192.0.2.1", Class::Documentation),
            ("192.88.99.1", Class::Reserved),
            ("192.168.0.1", Class::Private),
            ("192.168.255.255", Class::Private),
            ("198.18.0.0", Class::Benchmarking),
            ("198.19.255.255", Class::Benchmarking),
            ("198.51.100.7", Class::Documentation),
            ("203.0.113.9", Class::Documentation),
            ("224.0.0.1", Class::Multicast),
            ("239.255.255.255", Class::Multicast),
            ("240.0.0.1", Class::Reserved),
            ("254.255.255.255", Class::Reserved),
            ("255.255.255.255", Class::Broadcast),
        ];
        assert_classes(&cases);
    }

    fn assert_classes(cases: &[(&str, Class)]) {
        for (address, expected) in cases {
            assert_eq!(class(address), *expected, "{address}");
        }
    }

    #[test]
    fn every_ipv6_special_range_is_refused() {
        let cases = [
            ("::", Class::Unspecified),
            ("::1", Class::Loopback),
            ("fe80::1", Class::LinkLocal),
            ("febf:ffff::1", Class::LinkLocal),
            ("fc00::1", Class::UniqueLocal),
            ("fdff:ffff::1", Class::UniqueLocal),
            ("fd00:ec2::254", Class::Metadata),
            ("ff02::1", Class::Multicast),
            ("ff0e::101", Class::Multicast),
            ("2001:db8::1", Class::Documentation),
            ("3fff::1", Class::Documentation),
            ("3fff:fff::1", Class::Documentation),
            ("2001:2::1", Class::Benchmarking),
            ("2001::1", Class::Reserved),
            ("2001:10::1", Class::Reserved),
            ("100::1", Class::Reserved),
            ("64:ff9b:1::a00:1", Class::Reserved),
            ("fec0::1", Class::Reserved),
            ("4000::1", Class::Reserved),
            ("1000::1", Class::Reserved),
            ("0:0:0:ffff:1:2:3:4", Class::Reserved),
        ];
        assert_classes(&cases);
    }

    #[test]
    fn ipv6_forms_are_judged_by_the_ipv4_address_they_embed() {
        let cases = [
            ("::ffff:10.0.0.1", Class::Private),
            ("::ffff:127.0.0.1", Class::Loopback),
            ("::ffff:169.254.169.254", Class::Metadata),
            ("::127.0.0.1", Class::Loopback),
            ("::10.1.2.3", Class::Private),
            ("::ffff:0:192.168.1.1", Class::Private),
            ("64:ff9b::7f00:1", Class::Loopback),
            ("64:ff9b::a9fe:a9fe", Class::Metadata),
            ("64:ff9b::c0a8:101", Class::Private),
            ("2002:7f00:1::1", Class::Loopback),
            ("2002:a00:1::", Class::Private),
            ("2002:a9fe:a9fe::1", Class::Metadata),
            ("2002:6440:1::", Class::SharedNat),
        ];
        assert_classes(&cases);
    }

    fn policy(allow: &str) -> Policy {
        Policy {
            allow: AllowList::parse(allow).unwrap(),
            require_https: false,
        }
    }

    fn check(policy: &Policy, url: &str) -> Result<(), EgressError> {
        policy.check_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn allow_list_entries_parse_and_bad_ones_are_refused() {
        assert!(AllowList::parse("").unwrap().is_empty());
        let list = AllowList::parse(
            " 127.0.0.1/32, 10.0.0.0/8,::1/128 ,192.168.1.7,127.0.0.1:11434,[::1]:8080,Ollama.Internal:11434,models.lan",
        )
        .unwrap();
        assert_eq!(list.0.len(), 8);
        assert_eq!(
            list.0[6],
            Entry::Host {
                name: "ollama.internal".into(),
                port: Some(11434)
            }
        );
        assert_eq!(
            list.0[7],
            Entry::Host {
                name: "models.lan".into(),
                port: None
            }
        );
        assert_eq!(
            AllowList::parse("::ffff:10.0.0.0/104").unwrap().0[0],
            Entry::Net {
                net: "10.0.0.0".parse().unwrap(),
                bits: 8
            }
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "nonsense/8",
            "host:port",
            "host:70000",
            "*.example.com",
            "http://example.com",
            "a..b",
        ] {
            assert!(AllowList::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literal_addresses_are_refused_unless_listed() {
        let none = policy("");
        for url in [
            "http://127.0.0.1:11434/v1",
            "http://[::1]/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00:ec2::254]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0/",
        ] {
            assert!(
                matches!(check(&none, url), Err(EgressError::Refused { .. })),
                "{url}"
            );
        }
        assert_eq!(check(&none, "https://93.184.215.14/"), Ok(()));
        assert_eq!(check(&none, "ftp://example.com/"), Err(EgressError::Scheme));
        assert_eq!(check(&none, "https://example.com/"), Ok(()));

        let loopback = policy("127.0.0.0/8");
        assert_eq!(check(&loopback, "http://127.0.0.1:11434/v1"), Ok(()));
        assert_eq!(check(&loopback, "http://[::ffff:127.0.0.1]:80/"), Ok(()));
        assert!(check(&loopback, "http://[::1]/").is_err());
        assert!(check(&loopback, "http://10.0.0.1/").is_err());

        let one_port = policy("127.0.0.1:11434");
        assert_eq!(check(&one_port, "http://127.0.0.1:11434/"), Ok(()));
        assert!(check(&one_port, "http://127.0.0.1:11435/").is_err());
        assert!(check(&one_port, "http://127.0.0.2:11434/").is_err());
    }

    #[test]
    fn metadata_addresses_open_only_when_named() {
        let range = policy("169.254.0.0/16,fd00::/8");
        assert!(check(&range, "http://169.254.169.254/").is_err());
        assert!(check(&range, "http://[fd00:ec2::254]/").is_err());
        assert_eq!(check(&range, "http://169.254.1.1/"), Ok(()));
        assert!(!range.admits_resolved("metadata.internal", "169.254.169.254".parse().unwrap()));
        let named = policy("169.254.169.254");
        assert_eq!(check(&named, "http://169.254.169.254/"), Ok(()));
    }

    #[test]
    fn resolved_addresses_are_checked_by_range_and_listed_names() {
        let none = policy("");
        for address in [
            "127.0.0.1",
            "::1",
            "10.1.1.1",
            "::ffff:192.168.0.1",
            "169.254.169.254",
        ] {
            assert!(
                !none.admits_resolved("evil.example.com", address.parse().unwrap()),
                "{address}"
            );
        }
        assert!(none.admits_resolved("example.com", "93.184.215.14".parse().unwrap()));
        let listed = policy("10.0.0.0/8,ollama.internal:11434");
        assert!(listed.admits_resolved("anything.example.com", "10.2.3.4".parse().unwrap()));
        assert!(listed.admits_resolved("ollama.internal", "192.168.5.5".parse().unwrap()));
        assert!(listed.admits_resolved("ollama.internal.", "127.0.0.1".parse().unwrap()));
        assert!(!listed.admits_resolved("other.internal", "192.168.5.5".parse().unwrap()));
        // A listed name is reached on its listed port only.
        assert_eq!(check(&listed, "http://ollama.internal:11434/v1"), Ok(()));
        assert!(matches!(
            check(&listed, "http://ollama.internal:80/"),
            Err(EgressError::Refused { .. })
        ));
        // address:port entries apply to URLs that name the address, not to names.
        let socket = policy("127.0.0.1:11434");
        assert!(!socket.admits_resolved("localhost", "127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn production_requires_https_except_to_listed_destinations() {
        let production = Policy {
            allow: AllowList::parse("127.0.0.1:11434,models.lan").unwrap(),
            require_https: true,
        };
        assert_eq!(
            check(&production, "http://api.example.com/v1"),
            Err(EgressError::HttpsRequired)
        );
        assert_eq!(check(&production, "https://api.example.com/v1"), Ok(()));
        assert_eq!(check(&production, "http://127.0.0.1:11434/v1"), Ok(()));
        assert_eq!(check(&production, "http://models.lan/v1"), Ok(()));
        assert!(check(&policy(""), "http://api.example.com/v1").is_ok());
    }
}
