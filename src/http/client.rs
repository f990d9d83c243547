//! Who is on the other end of a request, as far as the server can tell: for the audit trail
//! and per-client limits.

use poem::Request;
use poem::http::header;

use super::observe::RequestId;
use crate::tenancy::audit::ClientInfo;

pub fn client_info(req: &Request, trust_forwarded_for: bool) -> ClientInfo {
    let forwarded = trust_forwarded_for
        .then(|| {
            req.headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .next_back()
                .map(|ip| ip.trim().to_owned())
        })
        .flatten()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|addr| addr.ip().to_string());
    ClientInfo {
        ip: forwarded.or(peer),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
    }
}

/// The value of the cookie named `name` the request carries, if any and not empty.
pub(super) fn cookie(headers: &poem::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}
