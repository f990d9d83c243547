//! Persisted queries: Apollo APQ over POST and GET, shared by replicas; trusted documents
//! and the API keys that may run nothing else, over HTTP and websockets alike.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::backend_tests;
use crate::helpers::{Backend, Client, GqlResponse, TestApp};

pub fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

pub fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(client: &Client, body: Value) -> GqlResponse {
    client.post_json(&body).await
}

async fn get(client: &Client, params: &[(&str, String)]) -> GqlResponse {
    let response = client
        .http
        .get(&client.url)
        .headers(client.headers.clone())
        .query(params)
        .send()
        .await
        .unwrap();
    GqlResponse::read(response).await
}

const MY_PROJECTS: &str = "query MyProjects { projects { edges { node { name } } } }";

async fn apq_registers_on_first_miss_and_serves_by_hash_over_post_and_get(app: TestApp) {
    let acme = app.org("Acme").await;
    acme.project("Launch").await;
    let hash = sha256(MY_PROJECTS);
    let client = &acme.owner;

    let miss = post(client, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(miss.error_code(), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(miss.body["errors"][0]["message"], "PersistedQueryNotFound");

    let registered = post(
        client,
        json!({ "query": MY_PROJECTS, "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(registered.data("projects")["edges"][0]["node"]["name"], "Launch");

    let by_post = post(client, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(by_post.data("projects")["edges"][0]["node"]["name"], "Launch");
    let by_get = get(client, &[("extensions", persisted(&hash).to_string())]).await;
    assert_eq!(by_get.status, 200);
    assert_eq!(by_get.data("projects")["edges"][0]["node"]["name"], "Launch");

    // Another replica, with nothing in its memory, finds the registration in the database.
    let replica = app.spawn_replica(0).await;
    let elsewhere = post(
        &replica.client_like(client),
        json!({ "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(elsewhere.data("projects")["edges"][0]["node"]["name"], "Launch");
}

async fn a_hash_that_is_not_the_text_s_is_refused_and_registers_nothing(app: TestApp) {
    let acme = app.org("Acme").await;
    let wrong = sha256("{ __typename }");
    let mismatch = post(
        &acme.owner,
        json!({ "query": MY_PROJECTS, "extensions": persisted(&wrong) }),
    )
    .await;
    assert_eq!(mismatch.error_code(), "BAD_USER_INPUT");
    assert!(mismatch.body.get("data").is_none() || mismatch.body["data"].is_null());
    let after = post(&acme.owner, json!({ "extensions": persisted(&wrong) })).await;
    assert_eq!(after.error_code(), "PERSISTED_QUERY_NOT_FOUND");
    let garbage = post(
        &acme.owner,
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "zz" } } }),
    )
    .await;
    assert_eq!(garbage.error_code(), "BAD_USER_INPUT");
}

async fn a_persisted_mutation_is_never_run_by_get(app: TestApp) {
    let acme = app.org("Acme").await;
    let mutation = "mutation { createProject(input: { name: \"By GET\" }) { id } }";
    let hash = sha256(mutation);
    // Registered (and run) once by POST, as APQ does.
    post(
        &acme.owner,
        json!({ "query": mutation, "extensions": persisted(&hash) }),
    )
    .await
    .data("createProject");
    let by_get = get(&acme.owner, &[("extensions", persisted(&hash).to_string())]).await;
    assert_eq!(by_get.status, 405);
    let projects = acme
        .owner
        .gql("{ projects { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(projects.data("projects")["edges"].as_array().unwrap().len(), 1);
}

const REGISTER: &str = "mutation($input: RegisterTrustedDocumentInput!) {
    registerTrustedDocument(input: $input) { id sha256 } }";

async fn persisted_only_keys_run_trusted_documents_and_nothing_else(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    acme.project("Launch").await;
    let created = acme
        .owner
        .gql(
            "mutation { createApiKey(input: { name: \"bot\", role: MEMBER, persistedOnly: true }) { key apiKey { persistedOnly } } }",
            json!({}),
        )
        .await;
    assert_eq!(created.data("createApiKey")["apiKey"]["persistedOnly"], true);
    let bot = app
        .anonymous()
        .header("x-api-key", created.data("createApiKey")["key"].as_str().unwrap());
    let hash = sha256(MY_PROJECTS);

    // Full text, an APQ registration, or a hash nobody trusted: all refused, with the code
    // that tells the client not to retry with the text.
    let text = post(&bot, json!({ "query": MY_PROJECTS })).await;
    assert_eq!(text.error_code(), "PERSISTED_QUERY_REQUIRED");
    let register = post(
        &bot,
        json!({ "query": MY_PROJECTS, "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(register.error_code(), "PERSISTED_QUERY_REQUIRED");
    post(
        &acme.owner,
        json!({ "query": MY_PROJECTS, "extensions": persisted(&hash) }),
    )
    .await;
    let apq_only = post(&bot, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(apq_only.error_code(), "PERSISTED_QUERY_REQUIRED");

    // Another organization trusting it does not make it trusted here.
    let theirs = globex
        .owner
        .gql(
            REGISTER,
            json!({ "input": { "name": "projects", "query": MY_PROJECTS } }),
        )
        .await;
    assert_eq!(theirs.data("registerTrustedDocument")["sha256"], hash.as_str());
    let still = post(&bot, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(still.error_code(), "PERSISTED_QUERY_REQUIRED");

    let ours = acme
        .owner
        .gql(
            REGISTER,
            json!({ "input": { "name": "projects", "query": MY_PROJECTS } }),
        )
        .await;
    assert_eq!(ours.data("registerTrustedDocument")["sha256"], hash.as_str());
    let by_hash = post(&bot, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(by_hash.data("projects")["edges"][0]["node"]["name"], "Launch");
    let by_get = get(&bot, &[("extensions", persisted(&hash).to_string())]).await;
    assert_eq!(by_get.data("projects")["edges"][0]["node"]["name"], "Launch");
    let by_text = post(&bot, json!({ "query": MY_PROJECTS })).await;
    assert_eq!(by_text.data("projects")["edges"][0]["node"]["name"], "Launch");

    // The same rule holds over a websocket.
    let mut ws = app.ws(&bot).await;
    ws.send(json!({ "type": "subscribe", "id": "text", "payload": { "query": "{ __typename }" } }))
        .await;
    let refused = ws.receive().await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "PERSISTED_QUERY_REQUIRED"
    );
    ws.send(json!({ "type": "subscribe", "id": "hash", "payload": { "extensions": persisted(&hash) } }))
        .await;
    let answered = ws.receive().await.unwrap();
    assert_eq!(answered["type"], "next", "{answered}");
    assert_eq!(
        answered["payload"]["data"]["projects"]["edges"][0]["node"]["name"],
        "Launch"
    );
}

async fn trusted_documents_belong_to_their_organization_and_its_admins(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let member = acme.member(&app, "MEMBER").await;
    let registered = acme
        .owner
        .gql(
            REGISTER,
            json!({ "input": { "name": "projects", "query": MY_PROJECTS } }),
        )
        .await;
    let id = registered.data("registerTrustedDocument")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let again = acme
        .owner
        .gql(
            REGISTER,
            json!({ "input": { "name": "again", "query": MY_PROJECTS } }),
        )
        .await;
    assert_eq!(again.error_code(), "BAD_USER_INPUT");
    let broken = acme
        .owner
        .gql(
            REGISTER,
            json!({ "input": { "name": "broken", "query": "{ nope" } }),
        )
        .await;
    assert_eq!(broken.error_code(), "BAD_USER_INPUT");
    let by_member = member
        .client
        .gql(
            REGISTER,
            json!({ "input": { "name": "x", "query": "{ __typename }" } }),
        )
        .await;
    assert_eq!(by_member.error_code(), "FORBIDDEN");

    const LIST: &str = "{ trustedDocuments { edges { node { id name } } } }";
    assert_eq!(
        acme.owner.gql(LIST, json!({})).await.data("trustedDocuments")["edges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        globex.owner.gql(LIST, json!({})).await.data("trustedDocuments")["edges"],
        json!([])
    );
    assert_eq!(member.client.gql(LIST, json!({})).await.error_code(), "FORBIDDEN");

    const DELETE: &str = "mutation($id: ID!) { deleteTrustedDocument(id: $id) }";
    let foreign = globex.owner.gql(DELETE, json!({ "id": id })).await;
    assert_eq!(foreign.error_code(), "NOT_FOUND");
    assert_eq!(
        acme.owner
            .gql(DELETE, json!({ "id": id }))
            .await
            .data("deleteTrustedDocument"),
        id.as_str()
    );
    assert_eq!(
        acme.owner.gql(LIST, json!({})).await.data("trustedDocuments")["edges"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_s_operations_are_trusted_for_every_organization() {
    let dir = std::env::temp_dir().join(format!("tenantql-manifest-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("manifest.json");
    let manifest = json!({
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{ "id": sha256(MY_PROJECTS), "name": "MyProjects", "type": "query", "body": MY_PROJECTS }]
    });
    std::fs::write(&path, manifest.to_string()).unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.persisted_query_manifest = Some(path.clone());
    })
    .await
    .unwrap();
    let acme = app.org("Acme").await;
    acme.project("Launch").await;
    let bot = acme.api_key(&app, "MEMBER", None).await;
    let created = acme
        .owner
        .gql(
            "mutation { createApiKey(input: { name: \"pq\", role: MEMBER, persistedOnly: true }) { key } }",
            json!({}),
        )
        .await;
    let persisted_bot = app
        .anonymous()
        .header("x-api-key", created.data("createApiKey")["key"].as_str().unwrap());
    for client in [&bot, &persisted_bot, &acme.owner] {
        let answer = post(client, json!({ "extensions": persisted(&sha256(MY_PROJECTS)) })).await;
        assert_eq!(answer.data("projects")["edges"][0]["node"]["name"], "Launch");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

backend_tests!(
    apq_registers_on_first_miss_and_serves_by_hash_over_post_and_get,
    a_hash_that_is_not_the_text_s_is_refused_and_registers_nothing,
    a_persisted_mutation_is_never_run_by_get,
    persisted_only_keys_run_trusted_documents_and_nothing_else,
    trusted_documents_belong_to_their_organization_and_its_admins,
);
