//! poem endpoints and middleware: GraphQL over HTTP and both websocket protocols, GraphiQL,
//! OAuth callbacks, probes and metrics, request ids and traces.

pub mod client;
pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod listener;
pub mod oauth;
pub mod observe;
mod operation;
pub mod websocket;
pub mod websocket_limits;

use std::sync::Arc;

use poem::http::header;
use poem::middleware::{Cors, SetHeader};
use poem::{Endpoint, EndpointExt, Route, get};
use tokio::sync::watch;

use crate::graphql::{AppSchema, Services};

/// What the HTTP layer needs besides the schema.
pub struct HttpState {
    pub schema: AppSchema,
    /// Turns true as soon as the server is told to stop: `/readyz` answers 503.
    pub draining: watch::Receiver<bool>,
    /// Turns true when the drain is over; websockets then close with 1012.
    pub stopping: watch::Receiver<bool>,
    pub ws_init_timeout: std::time::Duration,
    pub base_domain: Option<String>,
    pub cors_origins: Vec<String>,
    pub trust_forwarded_for: bool,
    /// Operations in one batched POST; 0 refuses batches.
    pub max_batch_size: usize,
    pub oauth_return_url: Option<String>,
    pub websockets: websocket_limits::OpenWebsockets,
}

impl HttpState {
    pub fn services(&self) -> &Arc<Services> {
        self.schema
            .data::<Arc<Services>>()
            .expect("the schema is built with its services")
    }
}

pub fn routes(state: HttpState) -> impl Endpoint + 'static {
    let cors = cors(&state.cors_origins);
    let state = Arc::new(state);
    Route::new()
        .at("/", get(graphiql::page))
        .nest("/graphiql", graphiql::assets())
        .at("/graphql", get(graphql::get).post(graphql::post))
        .at("/oauth/:provider/callback", get(oauth::callback))
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .at("/metrics", get(health::metrics))
        .data(state)
        .with(security_headers())
        .with_if(cors.is_some(), cors.unwrap_or_default())
        .around(observe::observe)
}

/// The page (GraphiQL) loads only its own scripts and styles, may not be framed, and
/// talks only to this server; no response is sniffed into another type.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn security_headers() -> SetHeader {
    SetHeader::new()
        .overriding(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .overriding(header::X_FRAME_OPTIONS, "DENY")
        .overriding(header::REFERRER_POLICY, "no-referrer")
        .overriding(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
}

fn cors(origins: &[String]) -> Option<Cors> {
    if origins.is_empty() {
        return None;
    }
    Some(
        Cors::new()
            .allow_origins(origins.iter().map(String::as_str))
            .allow_methods(["GET", "POST", "OPTIONS"])
            .allow_headers([
                "authorization",
                "content-type",
                "x-api-key",
                "x-organization-id",
                "x-project-id",
                "x-request-id",
                "apollo-require-preflight",
                "apollographql-client-name",
                "apollographql-client-version",
            ])
            .expose_headers([
                "x-request-id",
                "retry-after",
                "ratelimit-limit",
                "ratelimit-remaining",
                "ratelimit-reset",
            ])
            .allow_credentials(true)
            .max_age(600),
    )
}
