//! The websocket endpoint: both subprotocols, credentials in `connection_init`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::backend_tests;
use crate::helpers::TestApp;

backend_tests!(
    graphql_transport_ws_runs_operations_with_credentials_from_connection_init,
    legacy_graphql_ws_runs_operations_too,
    bad_credentials_in_connection_init_close_the_socket,
);

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, protocol: &str) -> Socket {
    let url = app.graphql_url().replace("http://", "ws://");
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next text message, skipping pings; `None` when the server closes.
async fn receive(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("timely reply")?;
        match message.ok()? {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" || value["type"] == "ka" {
                    continue;
                }
                return Some(value);
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

async fn graphql_transport_ws_runs_operations_with_credentials_from_connection_init(app: TestApp) {
    let acme = app.org("Acme").await;
    let token = acme.owner.headers["authorization"].to_str().unwrap().to_owned();
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": token } }),
    )
    .await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ organization { slug } }" } }),
    )
    .await;
    let next = receive(&mut socket).await.unwrap();
    assert_eq!(next["type"], "next");
    assert_eq!(
        next["payload"]["data"]["organization"]["slug"],
        acme.slug.as_str()
    );
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "complete");

    // Without credentials the connection works but identity-bound fields refuse.
    let mut anonymous = connect(&app, "graphql-transport-ws").await;
    send(
        &mut anonymous,
        json!({ "type": "connection_init", "payload": {} }),
    )
    .await;
    assert_eq!(receive(&mut anonymous).await.unwrap()["type"], "connection_ack");
    send(
        &mut anonymous,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ organization { slug } }" } }),
    )
    .await;
    let next = receive(&mut anonymous).await.unwrap();
    assert_eq!(
        next["payload"]["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}

async fn legacy_graphql_ws_runs_operations_too(app: TestApp) {
    let acme = app.org("Acme").await;
    let key = acme.api_key(&app, "VIEWER", None).await;
    let mut socket = connect(&app, "graphql-ws").await;
    let api_key = key.headers["x-api-key"].to_str().unwrap();
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "authToken": api_key } }),
    )
    .await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "7", "type": "start", "payload": { "query": "{ organization { id } }" } }),
    )
    .await;
    let data = receive(&mut socket).await.unwrap();
    assert_eq!(data["type"], "data");
    assert_eq!(data["payload"]["data"]["organization"]["id"], acme.id.as_str());
}

async fn bad_credentials_in_connection_init_close_the_socket(app: TestApp) {
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer forged" } }),
    )
    .await;
    let reply = receive(&mut socket).await;
    assert!(
        reply.is_none() || reply.as_ref().is_some_and(|r| r["type"] != "connection_ack"),
        "{reply:?}"
    );
}
