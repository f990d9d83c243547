//! What every request gets on its way through: an id, a span, and a place in the metrics.
//! The response carries `X-Request-Id` (the client's, when it sent a sane one, else a new
//! one); the span continues the caller's W3C trace, so every log line of the request carries
//! both ids; the duration is recorded by route and status.

use std::time::Instant;

use opentelemetry_http::HeaderExtractor;
use poem::{Endpoint, IntoResponse, Request, Response, Result};
use tracing::Instrument;

use crate::telemetry::{self, metrics};

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// The route a path belongs to: a bounded label, never the raw path.
fn route(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/" => "/",
        _ if path.starts_with("/graphiql/") => "/graphiql",
        _ if path.starts_with("/oauth/") && path.ends_with("/callback") => "/oauth/:provider/callback",
        _ => "other",
    }
}

pub async fn observe<E: Endpoint>(next: E, mut req: Request) -> Result<Response> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| acceptable(id))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let route = route(req.uri().path());
    let span = tracing::info_span!(
        "request",
        otel.name = format!("{} {route}", req.method()),
        request_id = %id,
        trace_id = tracing::field::Empty,
        http.method = %req.method(),
        http.route = route,
        http.path = %req.uri().path(),
        http.status = tracing::field::Empty,
        org.id = tracing::field::Empty,
        graphql.operation = tracing::field::Empty,
    );
    if let Some(trace_id) = telemetry::continue_trace(&span, &HeaderExtractor(req.headers())) {
        span.record("trace_id", trace_id);
    }
    let started = Instant::now();
    async move {
        let mut response = match next.call(req).await {
            Ok(response) => response.into_response(),
            Err(error) => error.into_response(),
        };
        if let Ok(value) = id.parse() {
            response.headers_mut().insert(HEADER, value);
        }
        let (status, elapsed) = (response.status().as_u16(), started.elapsed());
        metrics::http_request(route, status, elapsed);
        tracing::Span::current().record("http.status", status);
        tracing::info!(
            http.status = status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request finished"
        );
        Ok(response)
    }
    .instrument(span)
    .await
}
