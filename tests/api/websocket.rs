//! The websocket endpoint: both subprotocols, credentials in `connection_init`.

use std::time::Duration;

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{TestApp, WsEnd};

backend_tests!(
    graphql_transport_ws_runs_operations_with_credentials_from_connection_init,
    legacy_graphql_ws_runs_operations_too,
    bad_credentials_in_connection_init_close_the_socket,
    protocol_violations_close_with_their_codes,
    shutdown_closes_websockets_with_1012,
    an_open_connection_loses_access_with_its_caller,
);

const WAIT: Duration = Duration::from_secs(5);

async fn graphql_transport_ws_runs_operations_with_credentials_from_connection_init(app: TestApp) {
    let acme = app.org("Acme").await;
    let mut socket = app.ws(&acme.owner).await;
    socket
        .subscribe("1", "{ organization { slug } }", json!({}))
        .await;
    let next = socket.receive().await.unwrap();
    assert_eq!(next["type"], "next");
    assert_eq!(
        next["payload"]["data"]["organization"]["slug"],
        acme.slug.as_str()
    );
    assert_eq!(socket.receive().await.unwrap()["type"], "complete");

    // Without credentials the connection works but identity-bound fields refuse.
    let mut anonymous = app.ws(&app.anonymous()).await;
    anonymous
        .subscribe("1", "{ organization { slug } }", json!({}))
        .await;
    let error = anonymous.receive().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["payload"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

async fn legacy_graphql_ws_runs_operations_too(app: TestApp) {
    let acme = app.org("Acme").await;
    let key = acme.api_key(&app, "VIEWER", None).await;
    let mut socket = app.ws_raw("graphql-ws").await;
    let api_key = key.headers["x-api-key"].to_str().unwrap();
    socket
        .send(json!({ "type": "connection_init", "payload": { "authToken": api_key } }))
        .await;
    assert_eq!(socket.receive().await.unwrap()["type"], "connection_ack");
    socket
        .send(json!({ "id": "7", "type": "start", "payload": { "query": "{ organization { id } }" } }))
        .await;
    let data = socket.receive().await.unwrap();
    assert_eq!(data["type"], "data");
    assert_eq!(data["payload"]["data"]["organization"]["id"], acme.id.as_str());
}

async fn bad_credentials_in_connection_init_close_the_socket(app: TestApp) {
    let mut socket = app.ws_raw("graphql-transport-ws").await;
    socket
        .send(json!({ "type": "connection_init", "payload": { "Authorization": "Bearer forged" } }))
        .await;
    assert_eq!(socket.next_message(WAIT).await, Err(WsEnd::Closed(Some(4403))));

    // The legacy protocol says so in a message first.
    let mut legacy = app.ws_raw("graphql-ws").await;
    legacy
        .send(json!({ "type": "connection_init", "payload": { "authToken": "tql_forged" } }))
        .await;
    assert_eq!(legacy.receive().await.unwrap()["type"], "connection_error");
}

async fn protocol_violations_close_with_their_codes(app: TestApp) {
    let acme = app.org("Acme").await;
    // Subscribing before the connection is acknowledged.
    let mut early = app.ws_raw("graphql-transport-ws").await;
    early.subscribe("1", "{ __typename }", json!({})).await;
    assert_eq!(early.next_message(WAIT).await, Err(WsEnd::Closed(Some(4401))));

    // No connection_init at all within the timeout (1 s in tests).
    let mut silent = app.ws_raw("graphql-transport-ws").await;
    assert_eq!(silent.next_message(WAIT).await, Err(WsEnd::Closed(Some(4408))));

    // A second connection_init.
    let mut twice = app.ws(&acme.owner).await;
    twice
        .send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(twice.next_message(WAIT).await, Err(WsEnd::Closed(Some(4429))));

    // Two running operations with one id.
    let project = acme.project("P").await;
    let mut duplicate = app.ws(&acme.owner).await;
    let follow = "subscription($p: ID!) { projectJobEvents(projectId: $p) { seq } }";
    duplicate.subscribe("same", follow, json!({ "p": project })).await;
    duplicate.subscribe("same", follow, json!({ "p": project })).await;
    assert_eq!(duplicate.next_message(WAIT).await, Err(WsEnd::Closed(Some(4409))));

    // Garbage.
    let mut garbage = app.ws(&acme.owner).await;
    garbage.send(json!({ "no": "type" })).await;
    assert_eq!(garbage.next_message(WAIT).await, Err(WsEnd::Closed(Some(4400))));
}

async fn shutdown_closes_websockets_with_1012(mut app: TestApp) {
    let acme = app.org("Acme").await;
    let project = acme.project("P").await;
    let mut socket = app.ws(&acme.owner).await;
    socket
        .subscribe(
            "1",
            "subscription($p: ID!) { projectJobEvents(projectId: $p) { seq } }",
            json!({ "p": project }),
        )
        .await;
    // Give the subscription a moment to start, then stop the server.
    assert_eq!(
        socket.next_message(Duration::from_millis(300)).await,
        Err(WsEnd::TimedOut)
    );
    app.stop();
    assert_eq!(socket.next_message(WAIT).await, Err(WsEnd::Closed(Some(1012))));
}

async fn an_open_connection_loses_access_with_its_caller(app: TestApp) {
    let acme = app.org("Acme").await;
    let member = acme.member(&app, "ADMIN").await;
    let mut socket = app.ws(&member.client).await;
    socket
        .subscribe("1", "{ organization { slug } }", json!({}))
        .await;
    assert_eq!(socket.receive().await.unwrap()["type"], "next");
    assert_eq!(socket.receive().await.unwrap()["type"], "complete");
    acme.owner
        .gql(
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({ "u": member.user_id }),
        )
        .await
        .data("removeMember");
    // The same connection, a new operation: the caller is resolved again and refused.
    socket
        .subscribe(
            "2",
            "mutation { createApiKey(input: { name: \"late\", role: ADMIN }) { key } }",
            json!({}),
        )
        .await;
    let refused = socket.receive().await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN");
}
