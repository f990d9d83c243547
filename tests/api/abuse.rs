//! Attacks on the edges of the tenant boundary, from outside over HTTP and websockets: each
//! is refused with a clear error, and the server keeps serving everyone afterwards.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Client, GqlResponse, TestApp};
use crate::persisted::{persisted, sha256};

async fn assert_healthy(app: &TestApp) {
    let health = app
        .http
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .expect("the server still answers");
    assert_eq!(health.status(), 200);
    let typename = app.anonymous().gql("{ __typename }", json!({})).await;
    assert_eq!(typename.data("__typename"), "QueryRoot");
}

#[track_caller]
fn refused_before_parsing(response: &GqlResponse, limit: &str) {
    assert_eq!(response.status, 400, "{:#}", response.body);
    assert!(response.body.get("data").is_none(), "{:#}", response.body);
    assert_eq!(response.error_code(), "QUERY_TOO_COMPLEX");
    let message = response.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(limit), "{message}");
}

async fn get(client: &Client, params: &[(&str, String)]) -> GqlResponse {
    let response = client
        .http
        .get(&client.url)
        .headers(client.headers.clone())
        .header("accept", "application/graphql-response+json")
        .query(params)
        .send()
        .await
        .unwrap();
    GqlResponse::read(response).await
}

fn nested_list(depth: usize) -> String {
    format!("{{ __typename(a: {}1{}) }}", "[".repeat(depth), "]".repeat(depth))
}

async fn deeply_nested_documents_are_refused_on_every_path_and_the_server_lives(app: TestApp) {
    let acme = app.org("Acme").await;
    let modern = acme.owner.header("accept", "application/graphql-response+json");
    let deep_selection = format!("{}{}", "{ me ".repeat(5_000), "}".repeat(5_000));
    for document in [nested_list(5_000), deep_selection] {
        // POST, anonymous and signed in.
        let anonymous = app
            .anonymous()
            .header("accept", "application/graphql-response+json");
        refused_before_parsing(&anonymous.gql(&document, json!({})).await, "64 levels of nesting");
        refused_before_parsing(&modern.gql(&document, json!({})).await, "64 levels of nesting");
        // GET.
        refused_before_parsing(
            &get(&modern, &[("query", document.clone())]).await,
            "64 levels of nesting",
        );
        // An APQ registration stores nothing: the hash stays unknown.
        let hash = sha256(&document);
        let registered = modern
            .post_json(&json!({ "query": document, "extensions": persisted(&hash) }))
            .await;
        refused_before_parsing(&registered, "64 levels of nesting");
        let lookup = modern.post_json(&json!({ "extensions": persisted(&hash) })).await;
        assert_eq!(lookup.error_code(), "PERSISTED_QUERY_NOT_FOUND");
        // A trusted document is refused as the mutation's error.
        let trusted = acme
            .owner
            .gql(
                "mutation($q: String!) { registerTrustedDocument(input: { name: \"deep\", query: $q }) { id } }",
                json!({ "q": document }),
            )
            .await;
        assert_eq!(trusted.error_code(), "QUERY_TOO_COMPLEX");
        // A websocket subscription.
        let mut ws = app.ws(&acme.owner).await;
        ws.subscribe("deep", &document, json!({})).await;
        let (items, end) = ws.collect("deep", Duration::from_secs(10)).await;
        assert!(items.is_empty());
        assert_eq!(end["type"], "error");
        assert_eq!(end["payload"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX");
        assert_healthy(&app).await;
    }
}

async fn repeated_directives_are_refused_and_errors_per_response_are_capped(app: TestApp) {
    let client = app
        .anonymous()
        .header("accept", "application/graphql-response+json");
    let directives = format!("{{ __typename {} }}", "@skip(if: false) ".repeat(500));
    let refused = client.gql(&directives, json!({})).await;
    refused_before_parsing(&refused, "50 directives");
    assert_eq!(refused.body["errors"].as_array().unwrap().len(), 1);

    // Forty unknown fields make forty validation errors; twenty are shown, and one more
    // says how many were left out.
    let unknown: String = (0..40).map(|n| format!("unknown{n} ")).collect();
    let answer = client
        .gql(
            &format!("{{ __type(name: \"QueryRoot\") {{ {unknown} }} }}"),
            json!({}),
        )
        .await;
    let errors = answer.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 21, "{:#}", answer.body);
    assert!(errors[0]["message"].as_str().unwrap().contains("unknown0"));
    assert_eq!(errors[20]["message"], "20 more errors were left out");
    assert!(
        errors
            .iter()
            .all(|error| error["extensions"]["code"] == "BAD_USER_INPUT")
    );
    assert_healthy(&app).await;
}

/// One generated document (or body) meant to break the intake: deep nesting of every kind,
/// fragment chains, truncation, stray bytes, and deep variables.
fn hostile_body(rng: &mut StdRng) -> Value {
    let depth = match rng.random_range(0..4) {
        0 => rng.random_range(1..64),
        1 => rng.random_range(60..70),
        2 => rng.random_range(100..1_000),
        _ => rng.random_range(1_000..50_000),
    };
    let mut document = match rng.random_range(0..8) {
        0 => nested_list(depth),
        1 => format!(
            "{{ __typename(a: {}1{}) }}",
            "{b: ".repeat(depth),
            "}".repeat(depth)
        ),
        2 => format!("{}{}", "{ me ".repeat(depth), "}".repeat(depth)),
        3 => format!(
            "{{ ...F0 }} {}",
            (0..depth.min(3_000))
                .map(|n| format!("fragment F{n} on QueryRoot {{ ...F{} }} ", n + 1))
                .collect::<String>()
        ),
        4 => format!(
            "{{ {} __typename {} }}",
            "... on QueryRoot { ".repeat(depth),
            "}".repeat(depth)
        ),
        5 => format!(
            "query Q($v: [[Int]] = {}1{}) {{ __typename }}",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        6 => format!(
            "{{ f(a: \"{}\" b: \"\"\"{}",
            "\\\"".repeat(depth),
            "{[(".repeat(depth)
        ),
        _ => (0..depth.min(5_000))
            .map(|_| char::from(rng.random_range(0x20u8..0x7f)))
            .collect(),
    };
    if rng.random_bool(0.3) {
        let cut = rng.random_range(0..=document.len());
        document.truncate(cut);
    }
    let mut body = json!({ "query": document });
    if rng.random_bool(0.3) {
        let depth = rng.random_range(1..300);
        let variables: Value = serde_json::from_str(&format!("{}1{}", "[".repeat(depth), "]".repeat(depth)))
            .unwrap_or(Value::Null);
        body["variables"] = json!({ "v": variables });
    }
    body
}

async fn generated_hostile_documents_never_take_the_server_down(app: TestApp) {
    let seed = rand::random::<u64>();
    let mut rng = StdRng::seed_from_u64(seed);
    let client = app.anonymous();
    for case in 0..150 {
        let body = hostile_body(&mut rng);
        let media = if rng.random_bool(0.5) {
            "application/json"
        } else {
            "application/graphql-response+json"
        };
        let answer = client.header("accept", media).post_json(&body).await;
        assert!(
            answer.status == 200 || answer.status == 400,
            "seed {seed}, case {case}: {} {:#}",
            answer.status,
            answer.body
        );
        assert!(
            answer.body["errors"]
                .as_array()
                .is_none_or(|errors| errors.len() <= 21),
            "seed {seed}, case {case}: {:#}",
            answer.body
        );
    }
    // The longest chain of fragments that fits within the token limit, valid to the end.
    let chain = 1_850;
    let fragments: String = (0..chain)
        .map(|n| format!("fragment F{n} on QueryRoot {{ ...F{} }} ", n + 1))
        .collect();
    let document = format!("{{ ...F0 }} {fragments} fragment F{chain} on QueryRoot {{ __typename }}");
    let answer = client.gql(&document, json!({})).await;
    assert!(answer.status == 200, "{:#}", answer.body);
    // Variables nested past what JSON parsing allows are refused as a bad body.
    let deep_variables = format!(
        r#"{{"query":"{{ __typename }}","variables":{{"v":{}1{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let refused = app
        .http
        .post(app.graphql_url())
        .header("content-type", "application/json")
        .body(deep_variables)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_healthy(&app).await;
}

async fn lookup(client: &Client, hash: &str) -> GqlResponse {
    client.post_json(&json!({ "extensions": persisted(hash) })).await
}

async fn apq_registration_is_only_for_callers_with_a_tenant_and_valid_bounded_documents(app: TestApp) {
    let acme = app.org("Acme").await;
    // Anyone may run a query sent with its hash, but an anonymous one is not stored.
    let anonymous_query = "query Anonymous { __typename }";
    let hash = sha256(anonymous_query);
    let ran = app
        .anonymous()
        .post_json(&json!({ "query": anonymous_query, "extensions": persisted(&hash) }))
        .await;
    assert_eq!(ran.data("__typename"), "QueryRoot");
    assert_eq!(
        lookup(&app.anonymous(), &hash).await.error_code(),
        "PERSISTED_QUERY_NOT_FOUND"
    );
    assert_eq!(
        lookup(&acme.owner, &hash).await.error_code(),
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // A document that does not validate is not stored, even for a member.
    let invalid = "query Invalid { noSuchField }";
    let hash = sha256(invalid);
    let refused = acme
        .owner
        .post_json(&json!({ "query": invalid, "extensions": persisted(&hash) }))
        .await;
    assert_eq!(refused.error_code(), "BAD_USER_INPUT");
    assert_eq!(
        lookup(&acme.owner, &hash).await.error_code(),
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // One over the size cap runs, but is not stored.
    let padding = "#".repeat(17 * 1024);
    let oversize = format!("query Big {{ __typename }}\n{padding}");
    let hash = sha256(&oversize);
    let ran = acme
        .owner
        .post_json(&json!({ "query": oversize, "extensions": persisted(&hash) }))
        .await;
    assert_eq!(ran.data("__typename"), "QueryRoot");
    assert_eq!(
        lookup(&acme.owner, &hash).await.error_code(),
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // A member's valid document is stored, and then served to anyone who has its hash.
    let valid = "query Valid { __typename }";
    let hash = sha256(valid);
    acme.owner
        .post_json(&json!({ "query": valid, "extensions": persisted(&hash) }))
        .await
        .data("__typename");
    assert_eq!(
        lookup(&app.anonymous(), &hash).await.data("__typename"),
        "QueryRoot"
    );
    assert_eq!(count_persisted(&app, &hash).await, 1);
}

async fn count_persisted(app: &TestApp, hash: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let conn = app.owner_connection().await;
    let backend = conn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "SELECT COUNT(*) AS n FROM persisted_queries WHERE sha256 = $1",
        _ => "SELECT COUNT(*) AS n FROM persisted_queries WHERE sha256 = ?",
    };
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [hash.into()]))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn apq_registrations_expire(app: TestApp) {
    let acme = app.org("Acme").await;
    let query = "query Expiring { __typename }";
    let hash = sha256(query);
    acme.owner
        .post_json(&json!({ "query": query, "extensions": persisted(&hash) }))
        .await
        .data("__typename");
    assert_eq!(count_persisted(&app, &hash).await, 1);
    // A replica whose registrations last no time at all finds it expired...
    let replica = app.spawn_replica_with(0, &[("APQ_TTL_HOURS", "0")]).await;
    let client = replica.client_like(&acme.owner);
    assert_eq!(
        lookup(&client, &hash).await.error_code(),
        "PERSISTED_QUERY_NOT_FOUND"
    );
    // ...and deletes it with every other expired one when it next registers.
    let other = "query Other { __typename }";
    client
        .post_json(&json!({ "query": other, "extensions": persisted(&sha256(other)) }))
        .await
        .data("__typename");
    assert_eq!(count_persisted(&app, &hash).await, 0);
}

backend_tests!(
    apq_registration_is_only_for_callers_with_a_tenant_and_valid_bounded_documents,
    apq_registrations_expire,
    deeply_nested_documents_are_refused_on_every_path_and_the_server_lives,
    repeated_directives_are_refused_and_errors_per_response_are_capped,
    generated_hostile_documents_never_take_the_server_down,
);
