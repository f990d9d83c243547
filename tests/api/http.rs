//! GraphQL over HTTP: media types, status codes, GET without mutations, limits, request ids, probes.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{GqlResponse, TestApp};

backend_tests!(
    get_serves_queries_and_refuses_mutations_without_running_them,
    unreadable_requests_are_4xx_without_data,
    responses_negotiate_the_graphql_response_media_type,
    every_response_carries_a_request_id,
    health_probes_and_graphiql_are_served,
);

async fn get_serves_queries_and_refuses_mutations_without_running_them(app: TestApp) {
    let acme = app.org("Acme").await;
    let get = |query: &str| {
        app.http
            .get(app.graphql_url())
            .headers(acme.owner.headers.clone())
            .query(&[("query", query)])
            .send()
    };
    let query = GqlResponse::read(get("{ organization { slug } }").await.unwrap()).await;
    assert_eq!(query.status, 200);
    assert_eq!(query.data("organization")["slug"], acme.slug.as_str());

    let response = get("mutation { createProject(input: { name: \"Via GET\" }) { id } }")
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let projects = acme
        .owner
        .gql("{ projects { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(
        projects.data("projects")["edges"],
        json!([]),
        "the mutation must not have run"
    );
}

async fn unreadable_requests_are_4xx_without_data(app: TestApp) {
    let post = |content_type: &'static str, body: Vec<u8>| {
        app.http
            .post(app.graphql_url())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: [(&str, Vec<u8>, u16); 7] = [
        ("application/json", b"{not json".to_vec(), 400),
        (
            "application/json",
            b"[{\"query\":\"{ __typename }\"}]".to_vec(),
            400,
        ),
        ("application/json", br#"{"query": 42}"#.to_vec(), 400),
        (
            "application/json",
            br#"{"query": "{ __typename }", "variables": "nope"}"#.to_vec(),
            400,
        ),
        ("application/json", vec![b'{', 0xff, 0xfe, b'}'], 400),
        ("text/plain", br#"{"query": "{ __typename }"}"#.to_vec(), 415),
        (
            "application/json",
            format!(
                r#"{{"query": "{{ __typename }}", "pad": "{}"}}"#,
                "x".repeat(1_100_000)
            )
            .into_bytes(),
            413,
        ),
    ];
    for (content_type, body, status) in cases {
        let response = GqlResponse::read(post(content_type, body).await.unwrap()).await;
        assert_eq!(response.status, status, "{:#}", response.body);
        assert!(response.body.get("data").is_none());
        assert!(response.body["errors"].is_array());
    }
    let ok = GqlResponse::read(
        post(
            "application/json; charset=utf-8",
            br#"{"query": "{ __typename }"}"#.to_vec(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(ok.data("__typename"), "QueryRoot");
}

async fn responses_negotiate_the_graphql_response_media_type(app: TestApp) {
    let send = |accept: &'static str, query: &'static str| {
        app.http
            .post(app.graphql_url())
            .header("accept", accept)
            .json(&json!({ "query": query }))
            .send()
    };
    let modern = send("application/graphql-response+json", "{ __typename }")
        .await
        .unwrap();
    assert_eq!(
        modern.headers()["content-type"],
        "application/graphql-response+json"
    );
    let invalid = GqlResponse::read(
        send("application/graphql-response+json", "{ noSuchField }")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(invalid.status, 400);
    assert!(invalid.body.get("data").is_none());
    let parse_error = GqlResponse::read(
        send("application/graphql-response+json", "{ unclosed")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(parse_error.status, 400);

    // The legacy media type answers 200 for a request it could read, still without data.
    let legacy = send("application/json", "{ noSuchField }").await.unwrap();
    assert_eq!(legacy.headers()["content-type"], "application/json");
    let legacy = GqlResponse::read(legacy).await;
    assert_eq!(legacy.status, 200);
    assert!(legacy.body.get("data").is_none());
    assert_eq!(legacy.error_code(), "BAD_USER_INPUT");

    let unacceptable = send("text/html", "{ __typename }").await.unwrap();
    assert_eq!(unacceptable.status(), 406);
    // An execution error keeps data and a path.
    let unauthenticated = GqlResponse::read(
        send("application/graphql-response+json", "{ me { id } }")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(unauthenticated.status, 200);
    assert!(unauthenticated.body.get("data").is_some());
    assert_eq!(unauthenticated.error_code(), "UNAUTHENTICATED");
}

async fn every_response_carries_a_request_id(app: TestApp) {
    let echoed = app
        .http
        .get(format!("{}/healthz", app.base_url))
        .header("x-request-id", "client-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "client-abc.123");
    let generated = app
        .http
        .post(app.graphql_url())
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    // A hostile value is replaced, not echoed.
    let replaced = app
        .http
        .get(format!("{}/healthz", app.base_url))
        .header("x-request-id", "bad id <script>")
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "bad id <script>");
    let not_found = app
        .http
        .get(format!("{}/nowhere", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(not_found.status(), 404);
    assert!(not_found.headers().contains_key("x-request-id"));
}

async fn health_probes_and_graphiql_are_served(app: TestApp) {
    let healthz = app
        .http
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    let readyz = app
        .http
        .get(format!("{}/readyz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);
    assert_eq!(readyz.json::<Value>().await.unwrap()["checks"]["database"], "ok");

    let page = app.http.get(format!("{}/", app.base_url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("unpkg") && !html.contains("cdn"),
        "GraphiQL must be self-hosted"
    );
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
        "start.js",
    ] {
        assert!(
            html.contains(&format!("/graphiql/{asset}")),
            "{asset} not referenced"
        );
        let response = app
            .http
            .get(format!("{}/graphiql/{asset}", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 100);
    }

    // With the database gone, readiness fails and names the check; liveness stays up.
    app.db.clone().close().await;
    let readyz = app
        .http
        .get(format!("{}/readyz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
    assert_eq!(readyz.json::<Value>().await.unwrap()["failed"], "database");
    assert_eq!(
        app.http
            .get(format!("{}/healthz", app.base_url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
