//! The tests' websocket client, speaking `graphql-transport-ws` or the legacy `graphql-ws`.

use std::time::Duration;

use serde_json::{Value, json};

use super::Client;

/// A `graphql-transport-ws` (or legacy `graphql-ws`) client over a real websocket.
pub struct Ws {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

/// How a websocket conversation ended, when it did.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEnd {
    Closed(Option<u16>),
    TimedOut,
}

/// Opens a websocket with `protocol` to the server whose GraphQL endpoint is `graphql_url`
/// (`http://…/graphql`: this test's server or a replica), without `connection_init`.
pub async fn ws_raw_to(graphql_url: &str, protocol: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = graphql_url
        .replace("http://", "ws://")
        .into_client_request()
        .expect("ws request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().expect("protocol"));
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    Ws { socket }
}

/// A `graphql-transport-ws` connection to `graphql_url`, acknowledged for `client`'s
/// credentials (whatever server `client` itself talks to).
pub async fn ws_to(graphql_url: &str, client: &Client) -> Ws {
    let mut ws = ws_raw_to(graphql_url, "graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": client.init_payload() }))
        .await;
    let ack = ws.receive().await.expect("connection_ack");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

impl Ws {
    pub async fn send(&mut self, message: Value) {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("ws send");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(
            json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }),
        )
        .await;
    }

    /// The next protocol message other than keep-alives, or how the conversation ended.
    pub async fn next_message(&mut self, within: Duration) -> Result<Value, WsEnd> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = match tokio::time::timeout(within, self.socket.next()).await {
                Err(_) => return Err(WsEnd::TimedOut),
                Ok(None) | Ok(Some(Err(_))) => return Err(WsEnd::Closed(None)),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("json message");
                    if matches!(value["type"].as_str(), Some("ping" | "pong" | "ka")) {
                        continue;
                    }
                    return Ok(value);
                }
                Message::Close(frame) => return Err(WsEnd::Closed(frame.map(|frame| u16::from(frame.code)))),
                _ => continue,
            }
        }
    }

    pub async fn receive(&mut self) -> Option<Value> {
        self.next_message(Duration::from_secs(10)).await.ok()
    }

    /// Payloads of `next` messages for `id` until its `complete` or `error`, which is returned too.
    pub async fn collect(&mut self, id: &str, within: Duration) -> (Vec<Value>, Value) {
        let mut items = Vec::new();
        loop {
            let message = self
                .next_message(within)
                .await
                .unwrap_or_else(|end| panic!("stream {id} ended: {end:?}"));
            if message["id"] != id {
                continue;
            }
            match message["type"].as_str() {
                Some("next") => items.push(message["payload"].clone()),
                _ => return (items, message),
            }
        }
    }
}
