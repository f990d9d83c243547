//! GraphQL over websockets: `graphql-transport-ws` and the legacy `graphql-ws` (Apollo's
//! subscriptions-transport-ws). Written here rather than taken from async-graphql so the
//! close codes follow the protocol: 4400 bad message, 4401 subscribe before ack, 4403 bad
//! credentials, 4408 no `connection_init` in time, 4409 duplicate id, 4429 second init,
//! 1012 when the server shuts down. Each connection sends one message at a time, so a slow
//! client only ever slows its own subscriptions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Data, Response};
use futures_util::stream::{AbortHandle, Abortable, BoxStream, SelectAll};
use futures_util::{FutureExt, SinkExt, StreamExt};
use poem::web::websocket::{CloseCode, Message, WebSocketStream};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::HttpState;
use super::operation::{Params, refused_response, resolve_document};
use super::websocket_limits::Admission;
use crate::auth::Principal;
use crate::auth::tenant::OrganizationHints;
use crate::error::AppError;
use crate::graphql::RequestContext;
use crate::graphql::errors::present_all;
use crate::telemetry::metrics;
use crate::tenancy::audit::ClientInfo;

/// The most messages gathered into one write when several are ready.
const MAX_MESSAGES_PER_WRITE: usize = 64;

/// How often an idle connection is pinged, so proxies keep it open.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`: subscribe / next / error / complete.
    TransportWs,
    /// `graphql-ws`: start / data / error / complete / stop, `ka` keep-alives.
    LegacyWs,
}

impl Protocol {
    pub fn from_header(value: &str) -> Option<Self> {
        value.split(',').map(str::trim).find_map(|name| match name {
            "graphql-transport-ws" => Some(Protocol::TransportWs),
            "graphql-ws" => Some(Protocol::LegacyWs),
            _ => None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::LegacyWs => "graphql-ws",
        }
    }
}

/// What the upgrade request already said about the caller.
pub struct Upgrade {
    pub protocol: Protocol,
    pub hints: OrganizationHints,
    pub credential: Option<String>,
    pub client: ClientInfo,
    /// The connection's places under the caps, held while it is open.
    pub admissions: Vec<Admission>,
}

enum Outcome {
    Continue,
    Close(u16, &'static str),
}

/// One operation's output, tagged with its id; `None` marks its end.
type Tagged = (String, Option<Response>);

struct Connection {
    protocol: Protocol,
    state: Arc<HttpState>,
    upgrade: Upgrade,
    /// Set once `connection_init` is accepted: who the caller said they are. Each operation
    /// resolves it again, so a revoked key, a removed membership or an expired token stops
    /// working on an open connection as it would over HTTP.
    identity: Option<(Option<String>, OrganizationHints)>,
    operations: HashMap<String, AbortHandle>,
    streams: SelectAll<BoxStream<'static, Tagged>>,
}

pub async fn serve(
    socket: WebSocketStream,
    state: Arc<HttpState>,
    upgrade: Upgrade,
    mut shutdown: watch::Receiver<bool>,
) {
    let _open = metrics::Open::websocket();
    let (mut sink, mut incoming) = socket.split();
    let mut connection = Connection {
        protocol: upgrade.protocol,
        state,
        upgrade,
        identity: None,
        operations: HashMap::new(),
        streams: SelectAll::new(),
    };
    let init_deadline = tokio::time::sleep(connection.state.ws_init_timeout);
    tokio::pin!(init_deadline);
    let mut keepalive = tokio::time::interval_at(
        tokio::time::Instant::now() + KEEPALIVE_INTERVAL,
        KEEPALIVE_INTERVAL,
    );
    // Made once, not per message: every connection waits on the same channel. A closed
    // channel means the server is gone too; either way, close.
    let stopping = async move {
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    tokio::pin!(stopping);
    let close = loop {
        let outgoing = tokio::select! {
            message = incoming.next() => match message {
                // Boxed: handling a message resolves the caller and the document, a future
                // many times the size of this loop's state, which every idle connection
                // would otherwise carry.
                Some(Ok(Message::Text(text))) => match Box::pin(connection.handle(&text)).await {
                    Ok(replies) => replies,
                    Err((code, reason)) => break Some((code, reason)),
                },
                Some(Ok(Message::Binary(_))) => break Some((4400, "send text messages")),
                Some(Ok(Message::Ping(payload))) => vec![Message::Pong(payload)],
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => break None,
            },
            Some((id, response)) = connection.streams.next(), if !connection.streams.is_empty() => {
                let mut outgoing = connection.output(id, response);
                // Whatever else is ready goes out in the same write: a backlog of events
                // costs one system call, not one each.
                while outgoing.len() < MAX_MESSAGES_PER_WRITE
                    && let Some(Some((id, response))) = connection.streams.next().now_or_never()
                {
                    outgoing.extend(connection.output(id, response));
                }
                outgoing
            }
            () = &mut init_deadline, if connection.identity.is_none() => {
                break Some((4408, "connection initialisation timeout"));
            }
            _ = keepalive.tick() => vec![connection.keepalive()],
            () = &mut stopping => break Some((1012, "server restarting")),
        };
        let mut closing = false;
        for message in outgoing {
            closing = matches!(message, Message::Close(_));
            if sink.feed(message).await.is_err() {
                return;
            }
            if closing {
                break;
            }
        }
        if sink.flush().await.is_err() || closing {
            return;
        }
    };
    for handle in connection.operations.values() {
        handle.abort();
    }
    if let Some((code, reason)) = close {
        let _ = sink.send(close_frame(code, reason)).await;
    }
    let _ = sink.close().await;
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string())
}

fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some((CloseCode::from(code), reason.to_owned())))
}

impl Connection {
    async fn handle(&mut self, raw: &str) -> Result<Vec<Message>, (u16, &'static str)> {
        let message: Value = serde_json::from_str(raw).map_err(|_| (4400, "invalid message"))?;
        let kind = message
            .get("type")
            .and_then(Value::as_str)
            .ok_or((4400, "message without a type"))?;
        let id = message.get("id").and_then(Value::as_str).map(str::to_owned);
        match (self.protocol, kind) {
            (_, "connection_init") => {
                if self.identity.is_some() {
                    return Err((4429, "too many initialisation requests"));
                }
                let payload = message.get("payload").cloned().unwrap_or(Value::Null);
                match (self.init(&payload).await, self.protocol) {
                    (Outcome::Continue, _) => Ok(vec![text(json!({ "type": "connection_ack" }))]),
                    // The legacy protocol reports a refused init as a message before closing.
                    (Outcome::Close(code, reason), Protocol::LegacyWs) => Ok(vec![
                        text(json!({ "type": "connection_error", "payload": { "message": reason } })),
                        close_frame(code, reason),
                    ]),
                    (Outcome::Close(code, reason), Protocol::TransportWs) => Err((code, reason)),
                }
            }
            (Protocol::TransportWs, "ping") => Ok(vec![text(json!({ "type": "pong" }))]),
            (Protocol::TransportWs, "pong") => Ok(vec![]),
            (Protocol::TransportWs, "subscribe") | (Protocol::LegacyWs, "start") => {
                let id = id.ok_or((4400, "an operation needs an id"))?;
                let (credential, hints) = self.identity.clone().ok_or((4401, "unauthorized"))?;
                if self.operations.contains_key(&id) {
                    return match self.protocol {
                        Protocol::TransportWs => Err((4409, "subscriber for this id already exists")),
                        Protocol::LegacyWs => Ok(vec![text(json!({ "type": "error", "id": id,
                            "payload": { "message": "an operation with this id is running" } }))]),
                    };
                }
                let payload = message.get("payload").cloned().unwrap_or(Value::Null);
                let params = Params::from_json(payload).map_err(|_| (4400, "invalid operation payload"))?;
                if self.operations.len() >= self.state.websockets.limits.operations_per_connection {
                    let mut refused = refused_response(AppError::RateLimited {
                        retry_after_seconds: 1,
                    });
                    refused.errors[0].message = "too many operations on this connection".into();
                    return Ok(vec![self.error_message(id, &refused.errors)]);
                }
                self.start(id, params, credential, hints).await;
                Ok(vec![])
            }
            (Protocol::TransportWs, "complete") | (Protocol::LegacyWs, "stop") => {
                let id = id.ok_or((4400, "an operation needs an id"))?;
                if let Some(handle) = self.operations.remove(&id) {
                    handle.abort();
                    if self.protocol == Protocol::LegacyWs {
                        return Ok(vec![text(json!({ "type": "complete", "id": id }))]);
                    }
                }
                Ok(vec![])
            }
            (Protocol::LegacyWs, "connection_terminate") => Err((1000, "terminated")),
            _ => Err((4400, "unknown message type")),
        }
    }

    /// Resolves the caller once for the whole connection. A credential that was given but
    /// is not valid closes the connection; none at all leaves it anonymous.
    async fn init(&mut self, payload: &Value) -> Outcome {
        let mut hints = self.upgrade.hints.clone();
        if let Some(named) = payload_str(
            payload,
            &["X-Organization-Id", "x-organization-id", "organizationId"],
        ) {
            hints.header = Some(named);
        }
        let credential = payload_str(payload, &["Authorization", "authorization"])
            .map(|value| {
                value
                    .trim_start_matches("Bearer ")
                    .trim_start_matches("bearer ")
                    .to_owned()
            })
            .or_else(|| payload_str(payload, &["authToken", "X-Api-Key", "x-api-key"]))
            .or_else(|| self.upgrade.credential.clone());
        let context = resolve_caller(&self.state, &self.upgrade.client, credential.as_deref(), &hints).await;
        if credential.is_some() && context.principal().is_err() {
            return Outcome::Close(4403, "forbidden");
        }
        let caller = match context.principal() {
            Ok(Principal::User(user)) => Some(user.id.0),
            Ok(Principal::ApiKey(key)) => Some(key.id.0),
            Err(_) => None,
        };
        if let Some(caller) = caller {
            match self.state.websockets.admit_caller(caller) {
                Some(admission) => self.upgrade.admissions.push(admission),
                None => return Outcome::Close(1008, "too many connections for this caller"),
            }
        }
        self.identity = Some((credential, hints));
        Outcome::Continue
    }

    /// The `error` message ending operation `id`: every error under graphql-ws, the first
    /// under the legacy protocol.
    fn error_message(&self, id: String, errors: &[async_graphql::ServerError]) -> Message {
        let errors = serde_json::to_value(errors).unwrap_or(Value::Null);
        let payload = match self.protocol {
            Protocol::TransportWs => errors,
            Protocol::LegacyWs => errors.get(0).cloned().unwrap_or(Value::Null),
        };
        text(json!({ "type": "error", "id": id, "payload": payload }))
    }

    async fn start(
        &mut self,
        id: String,
        params: Params,
        credential: Option<String>,
        hints: OrganizationHints,
    ) {
        let context = resolve_caller(&self.state, &self.upgrade.client, credential.as_deref(), &hints).await;
        let services = self.state.services();
        let responses = match resolve_document(services, &context, params).await {
            Ok((document, params)) => {
                let mut data = Data::default();
                if let Some(relations) = context.relations(services, None) {
                    data.insert(relations);
                }
                data.insert(context);
                let request = params.into_request(document);
                self.state
                    .schema
                    .execute_stream_with_session_data(request, Arc::new(data))
                    .map(|mut response| {
                        present_all(&mut response);
                        response
                    })
                    .boxed()
            }
            Err(error) => futures_util::stream::once(async move { refused_response(error) }).boxed(),
        };
        let (handle, registration) = AbortHandle::new_pair();
        let tag = id.clone();
        let end = id.clone();
        // Counted while the stream lives: until it completes, fails or is stopped.
        let active = metrics::Open::subscription();
        let stream = Abortable::new(responses, registration)
            .map(move |response| {
                let _ = &active;
                (tag.clone(), Some(response))
            })
            .chain(futures_util::stream::once(async move { (end, None) }));
        self.operations.insert(id, handle);
        self.streams.push(stream.boxed());
    }

    fn output(&mut self, id: String, response: Option<Response>) -> Vec<Message> {
        if !self.operations.contains_key(&id) {
            return vec![];
        }
        let Some(response) = response else {
            self.operations.remove(&id);
            return vec![text(json!({ "type": "complete", "id": id }))];
        };
        // Nothing but errors (the request could not run, the subscription was refused, or
        // its stream ended in an error) ends the operation with an `error` message.
        let failed = response.data == async_graphql::Value::Null && !response.errors.is_empty();
        if failed {
            if let Some(handle) = self.operations.remove(&id) {
                handle.abort();
            }
            return vec![self.error_message(id, &response.errors)];
        }
        let kind = match self.protocol {
            Protocol::TransportWs => "next",
            Protocol::LegacyWs => "data",
        };
        // Serialized directly: a `serde_json::Value` would reorder the response's fields.
        let payload = serde_json::to_string(&response).unwrap_or_else(|_| "null".into());
        let id = Value::String(id);
        vec![Message::Text(format!(
            r#"{{"type":"{kind}","id":{id},"payload":{payload}}}"#
        ))]
    }

    fn keepalive(&self) -> Message {
        match self.protocol {
            Protocol::TransportWs => text(json!({ "type": "ping" })),
            Protocol::LegacyWs => text(json!({ "type": "ka" })),
        }
    }
}

/// Who the caller is, as this connection's client.
async fn resolve_caller(
    state: &HttpState,
    client: &ClientInfo,
    credential: Option<&str>,
    hints: &OrganizationHints,
) -> RequestContext {
    RequestContext::resolve(state.services(), credential, hints, client.clone()).await
}

fn payload_str(payload: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|key| payload.get(*key)?.as_str().map(str::to_owned))
}
