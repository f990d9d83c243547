//! GraphQL over HTTP as the GraphQL-over-HTTP spec has it, and over websockets.
//!
//! async-graphql's own poem integration parses any body as JSON and runs mutations sent
//! by GET; this endpoint decides instead: media types are negotiated, a request that cannot
//! run is a 4xx with no `data` key, and GET never mutates (405, `Allow: POST`).

use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use poem::http::{HeaderMap, StatusCode, header};
use poem::web::websocket::{WebSocket, WebSocketConfig};
use poem::web::{Data, Query};
use poem::{Body, IntoResponse, Request, Response, handler};
use serde_json::{Value, json};

use super::client::{client_info, cookie};
use super::operation::{Params, refused_response, resolve_document};
use super::{HttpState, websocket};
use crate::auth::tenant::OrganizationHints;
use crate::error::AppError;
use crate::governance::rate_limits::ClientKey;
use crate::graphql::RequestContext;
use crate::graphql::documents::DocumentCache;
use crate::graphql::errors::present_all;
use crate::tenancy::SharedRead;

/// Requests larger than this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaType {
    /// The spec's own type: request errors get 4xx statuses.
    GraphQLResponse,
    /// The legacy type: a request the server could read is answered 200.
    Json,
}

impl MediaType {
    fn as_str(self) -> &'static str {
        match self {
            MediaType::GraphQLResponse => GRAPHQL_RESPONSE_JSON,
            MediaType::Json => JSON,
        }
    }

    /// Picks the client's most preferred type we can produce; no `Accept` means JSON.
    fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()) else {
            return Some(MediaType::Json);
        };
        let mut best: Option<(f32, MediaType)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let quality = parts
                .filter_map(|param| param.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let candidate = match media.as_str() {
                GRAPHQL_RESPONSE_JSON => MediaType::GraphQLResponse,
                JSON | "application/*" | "*/*" => MediaType::Json,
                _ => continue,
            };
            if quality > 0.0 && best.is_none_or(|(best_q, _)| quality > best_q) {
                best = Some((quality, candidate));
            }
        }
        best.map(|(_, media)| media)
    }
}

/// A request refused before execution, as a `{"errors": […]}` body with no `data`.
fn refuse(status: StatusCode, media: MediaType, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }] });
    Response::builder()
        .status(status)
        .content_type(media.as_str())
        .body(body.to_string())
}

/// The type of the operation `document` would run, if it parses and names one.
fn operation_type(
    documents: &DocumentCache,
    document: &str,
    operation_name: Option<&str>,
) -> Option<OperationType> {
    let document = documents.parsed(document)?;
    let mut operations = document.operations.iter();
    let (_, operation) = match operation_name {
        Some(name) => operations.find(|(op_name, _)| op_name.is_some_and(|n| n.as_str() == name))?,
        None if document.operations.iter().count() == 1 => operations.next()?,
        None => return None,
    };
    Some(operation.node.ty)
}

#[handler]
pub async fn post(req: &Request, body: Body, Data(state): Data<&Arc<HttpState>>) -> Response {
    let Some(media) = MediaType::negotiate(req.headers()) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != JSON {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "send the request as application/json",
        );
    }
    let bytes = match body.into_bytes_limit(MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(poem::error::ReadBodyError::PayloadTooLarge) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                media,
                "the request body is larger than 1 MiB",
            );
        }
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                media,
                "the request body could not be read",
            );
        }
    };
    let json = match serde_json::from_slice::<Value>(&bytes) {
        Ok(json) => json,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, media, "the body is not valid JSON"),
    };
    let max_batch = state.max_batch_size;
    match json {
        Value::Array(_) if max_batch == 0 => refuse(
            StatusCode::BAD_REQUEST,
            media,
            "batched requests are not enabled on this server",
        ),
        Value::Array(batch) if batch.is_empty() || batch.len() > max_batch => refuse(
            StatusCode::BAD_REQUEST,
            media,
            &format!("a batch holds 1 to {max_batch} operations"),
        ),
        Value::Array(batch) => match batch.into_iter().map(Params::from_json).collect() {
            Ok(batch) => execute_batch(req, state, media, batch).await,
            Err(message) => refuse(StatusCode::BAD_REQUEST, media, message),
        },
        json => match Params::from_json(json) {
            Ok(params) => execute(req, state, media, params, Method::Post).await,
            Err(message) => refuse(StatusCode::BAD_REQUEST, media, message),
        },
    }
}

/// GET serves queries (and the websocket upgrade); it never runs a mutation.
#[handler]
pub async fn get(
    req: &Request,
    websocket: Option<WebSocket>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    Data(state): Data<&Arc<HttpState>>,
) -> Response {
    if let Some(websocket) = websocket {
        return upgrade(req, websocket, state.clone());
    }
    let Some(media) = MediaType::negotiate(req.headers()) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    };
    let params = match Params::from_query_string(&query) {
        Ok(params) => params,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, media, message),
    };
    execute(req, state, media, params, Method::Get).await
}

/// The bearer credential: `Authorization: Bearer …` or `X-Api-Key`.
fn credential(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        });
    let api_key = headers.get("x-api-key").and_then(|value| value.to_str().ok());
    bearer.or(api_key).map(|token| token.trim().to_owned())
}

fn organization_hints(headers: &HeaderMap, base_domain: Option<&str>) -> OrganizationHints {
    let header = headers
        .get("x-organization-id")
        .and_then(|value| value.to_str().ok())
        .map(str::trim);
    let subdomain = base_domain.and_then(|base| {
        let host = headers.get(header::HOST)?.to_str().ok()?;
        let host = host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        });
        let label = host
            .to_ascii_lowercase()
            .strip_suffix(base)?
            .strip_suffix('.')?
            .to_owned();
        (!label.is_empty() && !label.contains('.')).then_some(label)
    });
    OrganizationHints {
        header: header.filter(|value| !value.is_empty()).map(str::to_owned),
        subdomain,
        cookie: cookie(headers, "organization_id"),
    }
}

/// A response in field order (a `serde_json::Value` would sort the keys).
#[derive(serde::Serialize)]
struct ResponseBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [async_graphql::ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
}

impl<'a> ResponseBody<'a> {
    /// A request that never ran has no `data` at all, not `"data": null`.
    fn of(response: &'a async_graphql::Response, never_ran: bool) -> Self {
        Self {
            data: (!never_ran).then_some(&response.data),
            errors: &response.errors,
            extensions: &response.extensions,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    /// Never runs a mutation (a cross-site link or image could send one).
    Get,
    Post,
}

async fn execute(
    req: &Request,
    state: &Arc<HttpState>,
    media: MediaType,
    params: Params,
    method: Method,
) -> Response {
    let response = match run(req, state, params, method).await {
        Ok(response) => response,
        Err(refused) => return refused,
    };
    let request_error = never_ran(&response);
    let retry_after = refused_for_rate(&response);
    let status = if retry_after.is_some() {
        StatusCode::TOO_MANY_REQUESTS
    } else if request_error && media == MediaType::GraphQLResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = serde_json::to_string(&ResponseBody::of(&response, request_error))
        .unwrap_or_else(|_| r#"{"errors":[{"message":"internal error"}]}"#.into());
    let mut http = Response::builder()
        .status(status)
        .content_type(media.as_str())
        .body(body);
    add_rate_limit_headers(&mut http, &response, retry_after);
    add_cookies(&mut http, &response);
    http
}

/// A batch runs as that many operations, each charged and limited on its own.
async fn execute_batch(
    req: &Request,
    state: &Arc<HttpState>,
    media: MediaType,
    batch: Vec<Params>,
) -> Response {
    let mut responses = Vec::with_capacity(batch.len());
    for params in batch {
        match run(req, state, params, Method::Post).await {
            Ok(response) => responses.push(response),
            Err(refused) => return refused,
        }
    }
    let bodies: Vec<_> = responses
        .iter()
        .map(|response| ResponseBody::of(response, never_ran(response)))
        .collect();
    let body = serde_json::to_string(&bodies)
        .unwrap_or_else(|_| r#"{"errors":[{"message":"internal error"}]}"#.into());
    let mut http = Response::builder()
        .status(StatusCode::OK)
        .content_type(media.as_str())
        .body(body);
    if let Some(last) = responses.last() {
        add_rate_limit_headers(&mut http, last, None);
    }
    for response in &responses {
        add_cookies(&mut http, response);
    }
    http
}

/// The cookies resolvers set (`startOAuth`'s browser binding), and only those: no other
/// header a resolver might add reaches the client. A response that sets one is not for
/// caches to keep.
fn add_cookies(http: &mut Response, response: &async_graphql::Response) {
    let cookies = response.http_headers.get_all(header::SET_COOKIE);
    if cookies.iter().next().is_none() {
        return;
    }
    let headers = http.headers_mut();
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie.clone());
    }
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
}

/// Resolves the caller and the document, then runs the operation. A GET naming a mutation
/// is refused with 405 before anything runs.
async fn run(
    req: &Request,
    state: &Arc<HttpState>,
    params: Params,
    method: Method,
) -> Result<async_graphql::Response, Response> {
    let hints = organization_hints(req.headers(), state.base_domain.as_deref());
    let services = state.services();
    let context = RequestContext::resolve(
        services,
        credential(req.headers()).as_deref(),
        &hints,
        client_info(req, state.trust_forwarded_for),
    )
    .await;
    let span = tracing::Span::current();
    if let Ok(tenant) = context.tenant_context() {
        span.record("org.id", tracing::field::display(tenant.org));
    }
    if let Some(name) = &params.operation_name {
        span.record("graphql.operation", name.as_str());
    }
    let (document, params) = match resolve_document(services, &context, params).await {
        Ok(resolved) => resolved,
        Err(error) => return Ok(refused_response(error)),
    };
    if method == Method::Get
        && operation_type(
            &services.documents,
            &document.text,
            params.operation_name.as_deref(),
        ) == Some(OperationType::Mutation)
    {
        return Err(mutation_by_get(
            MediaType::negotiate(req.headers()).unwrap_or(MediaType::Json),
        ));
    }
    // Every field of the operation reads in one transaction, ended once it has run.
    let shared = Arc::new(SharedRead::default());
    let mut request = params.into_request(document).data(shared.clone());
    if let Some(relations) = context.relations(services, Some(&shared)) {
        request = request.data(relations);
    }
    let request = request.data(context);
    let mut response = state.schema.execute(request).await;
    if let Err(error) = shared.finish().await {
        tracing::warn!(error = format!("{error:#}"), "ending a read transaction failed");
    }
    present_all(&mut response);
    Ok(response)
}

fn mutation_by_get(media: MediaType) -> Response {
    let mut response = refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        media,
        "mutations must be sent with POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    response
}

/// Parse, validation and limit failures leave no data and no error path: the request
/// never ran.
fn never_ran(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// Seconds to wait, when the whole request was refused by a rate limit.
fn refused_for_rate(response: &async_graphql::Response) -> Option<u64> {
    if response.data != async_graphql::Value::Null {
        return None;
    }
    response
        .errors
        .iter()
        .find_map(|error| match error.source.as_ref()?.downcast_ref::<AppError>()? {
            AppError::RateLimited { retry_after_seconds } => Some(*retry_after_seconds),
            _ => None,
        })
}

/// `RateLimit-*` from what the operation was charged (see `graphql::limits`), and
/// `Retry-After` when it was refused.
fn add_rate_limit_headers(http: &mut Response, response: &async_graphql::Response, retry_after: Option<u64>) {
    let headers = http.headers_mut();
    if let Some(async_graphql::Value::Object(cost)) = response.extensions.get("cost") {
        for (header, field) in [
            ("ratelimit-limit", "limit"),
            ("ratelimit-remaining", "remaining"),
            ("ratelimit-reset", "resetSeconds"),
        ] {
            if let Some(Ok(value)) = cost.get(field).map(|value| value.to_string().parse()) {
                headers.insert(header, value);
            }
        }
    }
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        headers.insert("ratelimit-remaining", header::HeaderValue::from(0));
        headers.insert("ratelimit-reset", header::HeaderValue::from(seconds));
    }
}

/// Upgrades to a websocket speaking the subprotocol the client asked for.
fn upgrade(req: &Request, websocket: WebSocket, state: Arc<HttpState>) -> Response {
    let Some(protocol) = req
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(websocket::Protocol::from_header)
    else {
        return StatusCode::BAD_REQUEST
            .with_body("use the graphql-transport-ws or graphql-ws subprotocol")
            .into_response();
    };
    if !origin_allowed(req.headers(), &state.cors_origins) {
        return StatusCode::FORBIDDEN
            .with_body("origin not allowed")
            .into_response();
    }
    let client = client_info(req, state.trust_forwarded_for);
    let address_admission = match ClientKey::parse(client.ip.as_deref()) {
        Some(address) => match state.websockets.admit_address(address) {
            Some(admission) => Some(admission),
            None => {
                return StatusCode::TOO_MANY_REQUESTS
                    .with_body("too many websockets from this address")
                    .into_response();
            }
        },
        None => None,
    };
    let upgrade = websocket::Upgrade {
        protocol,
        hints: organization_hints(req.headers(), state.base_domain.as_deref()),
        credential: credential(req.headers()),
        client,
        admissions: address_admission.into_iter().collect(),
    };
    let stopping = state.stopping.clone();
    // Small buffers: an idle subscription should cost kilobytes, not the 2 × 128 KiB default.
    // Frames gather up to 1 KiB before a write; the connection flushes after each batch.
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(1024)
        .max_message_size(Some(MAX_BODY_BYTES))
        .max_frame_size(Some(MAX_BODY_BYTES));
    websocket
        .config(config)
        .protocols([protocol.name()])
        .on_upgrade(move |socket| websocket::serve(socket, state, upgrade, stopping))
        .into_response()
}

/// Browsers do not apply CORS to websockets: a page from a foreign origin could open one
/// with the user's cookies. Same-origin pages and the configured origins may connect;
/// clients that send no `Origin` (bots, servers) are not browsers and are let through.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()) else {
        return true;
    };
    let same_origin = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|host| origin.split_once("://").is_some_and(|(_, rest)| rest == host));
    same_origin || allowed.iter().any(|allowed| allowed == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_cookies_resolvers_set_reach_the_response() {
        let mut response = async_graphql::Response::new(async_graphql::Value::Null);
        for (name, value) in [
            ("set-cookie", "a=1; HttpOnly"),
            ("set-cookie", "b=2; HttpOnly"),
            ("x-other", "leak"),
            ("location", "https://elsewhere.example"),
        ] {
            response
                .http_headers
                .append(name, header::HeaderValue::from_static(value));
        }
        let mut http = Response::builder().body("");
        add_cookies(&mut http, &response);
        let cookies: Vec<_> = http.headers().get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; HttpOnly", "b=2; HttpOnly"]);
        assert_eq!(http.headers()[header::CACHE_CONTROL], "no-store");
        assert!(http.headers().get("x-other").is_none());
        assert!(http.headers().get(header::LOCATION).is_none());

        // No cookie, no change: ordinary answers stay cacheable as before.
        let mut http = Response::builder().body("");
        add_cookies(
            &mut http,
            &async_graphql::Response::new(async_graphql::Value::Null),
        );
        assert!(http.headers().is_empty());
    }
}
