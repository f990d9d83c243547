//! What one request may cost, from an attacker's side: deep, wide and aliased documents,
//! batches, cross-site posts, introspection in production, and the security headers.

use serde_json::{Value, json};

use crate::helpers::{Backend, GqlResponse, TestApp};

async fn sqlite_app() -> TestApp {
    TestApp::spawn(Backend::Sqlite).await.unwrap()
}

async fn post_raw(app: &TestApp, body: &Value) -> GqlResponse {
    app.anonymous()
        .header("accept", "application/graphql-response+json")
        .post_json(body)
        .await
}

fn refused_as_too_complex(response: &GqlResponse, mentioning: &str) {
    assert_eq!(response.status, 400, "{:#}", response.body);
    assert!(response.body.get("data").is_none(), "{:#}", response.body);
    assert_eq!(response.error_code(), "QUERY_TOO_COMPLEX");
    let message = response.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(mentioning), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_wide_and_aliased_documents_are_refused_before_they_run() {
    let app = sqlite_app().await;
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType \
                { ofType { ofType { ofType { name } } } } } } } } } } } } }";
    refused_as_too_complex(
        &post_raw(&app, &json!({ "query": deep })).await,
        "nested too deep",
    );

    let aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
    refused_as_too_complex(
        &post_raw(&app, &json!({ "query": format!("{{ {aliases} }}") })).await,
        "aliases",
    );
    let thirty: String = (0..30).map(|i| format!("a{i}: name ")).collect();
    let ok = post_raw(
        &app,
        &json!({ "query": format!("{{ __type(name: \"QueryRoot\") {{ {thirty} }} }}") }),
    )
    .await;
    assert_eq!(ok.status, 200, "{:#}", ok.body);

    let roots = "{ ...F } fragment F on QueryRoot { __typename __typename __typename __typename \
                 __typename __typename __typename __typename __typename __typename __typename }";
    refused_as_too_complex(&post_raw(&app, &json!({ "query": roots })).await, "root fields");

    // Each page multiplies what it selects: 100 projects × 100 members each is far too much.
    let nested_pages = "{ projects(first: 100) { edges { node { members(first: 100) { edges { node { userId role } } } } } } }";
    refused_as_too_complex(
        &post_raw(&app, &json!({ "query": nested_pages })).await,
        "too complex",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_refused_unless_enabled_and_then_bounded_and_charged_each() {
    let app = sqlite_app().await;
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    let refused = post_raw(&app, &batch).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.get("data").is_none());

    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.query_limits.max_batch_size = 2;
        config.rate_limits = config
            .rate_limits
            .clone()
            .with_plan_overrides("FREE=3/1000/10")
            .unwrap();
    })
    .await
    .unwrap();
    let acme = app.org("Acme").await;
    let send = |body: Value| {
        let client = acme.owner.clone();
        async move { client.post_json(&body).await }
    };
    let too_long = send(json!([
        { "query": "{ __typename }" }, { "query": "{ __typename }" }, { "query": "{ __typename }" }
    ]))
    .await;
    assert_eq!(too_long.status, 400);

    // Three requests a minute: a batch of two uses two, and the next batch gets one through.
    let first = send(json!([{ "query": "{ me { id } }" }, { "query": "{ me { id } }" }])).await;
    let answers = first.body.as_array().unwrap();
    assert!(
        answers
            .iter()
            .all(|answer| answer["data"]["me"]["id"].is_string())
    );
    let second = send(json!([{ "query": "{ me { id } }" }, { "query": "{ me { id } }" }])).await;
    let answers = second.body.as_array().unwrap();
    assert!(answers[0]["data"]["me"]["id"].is_string());
    assert_eq!(answers[1]["errors"][0]["extensions"]["code"], "RATE_LIMITED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_form_post_runs_nothing() {
    let app = sqlite_app().await;
    let acme = app.org("Acme").await;
    // A form on another site can send text/plain with the browser's cookies, never JSON.
    let mutation = json!({ "query": "mutation { createProject(input: { name: \"Forged\" }) { id } }" });
    let forged = app
        .http
        .post(app.graphql_url())
        .header("content-type", "text/plain")
        .header("cookie", format!("organization_id={}", acme.id))
        .headers(acme.owner.headers.clone())
        .body(mutation.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 415);
    let projects = acme
        .owner
        .gql("{ projects { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(projects.data("projects")["edges"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_hides_the_schema_unless_told_otherwise() {
    let hidden = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.query_limits.introspection = false;
    })
    .await
    .unwrap();
    let introspection = hidden
        .anonymous()
        .gql("{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(
        introspection.body["data"]["__schema"],
        Value::Null,
        "{:#}",
        introspection.body
    );
    let typo = hidden
        .anonymous()
        .gql("{ projcts { edges { cursor } } }", json!({}))
        .await;
    let message = typo.body["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains("Did you mean"), "{message}");

    let shown = sqlite_app().await;
    let introspection = shown
        .anonymous()
        .gql("{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(introspection.data("__schema")["queryType"]["name"], "QueryRoot");
    let typo = shown
        .anonymous()
        .gql("{ projcts { edges { cursor } } }", json!({}))
        .await;
    let message = typo.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("Did you mean"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let app = sqlite_app().await;
    for path in ["/", "/graphql?query=%7B__typename%7D", "/healthz"] {
        let response = app
            .http
            .get(format!("{}{path}", app.base_url))
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    }
}
