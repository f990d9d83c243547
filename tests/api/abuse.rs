//! Attacks on the edges of the tenant boundary, from outside over HTTP and websockets: each
//! is refused with a clear error, and the server keeps serving everyone afterwards.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::helpers::{Backend, Client, GqlResponse, Org, TestApp, ws_to};
use crate::jobs::{echo_agent, start_job};
use crate::persisted::{persisted, sha256};
use crate::{backend_tests, configured_backend_tests};

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

const PROGRESS: &str = "subscription($job: ID!) { agentJobProgress(jobId: $job) { seq status } }";
const CREATE_KEY: &str =
    "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { id role } } }";
const KEYS: &str = "{ apiKeys { id role revokedAt } }";

/// A key made by `client`, and its id.
async fn key_made_by(
    app: &TestApp,
    client: &Client,
    role: &str,
    expires_at: Option<String>,
) -> (Client, String) {
    let created = client
        .gql(
            CREATE_KEY,
            json!({ "input": { "name": "bot", "role": role, "expiresAt": expires_at } }),
        )
        .await;
    let created = created.data("createApiKey");
    (
        app.anonymous()
            .header("x-api-key", created["key"].as_str().unwrap()),
        created["apiKey"]["id"].as_str().unwrap().to_owned(),
    )
}

/// A long echo job of a new project, to follow live.
async fn long_job(acme: &Org) -> String {
    let project = acme.project("Launch").await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 200, "delayMs": 100 })).await;
    start_job(&acme.owner, &agent, &project, json!({})).await
}

async fn key_row(acme: &Org, id: &str) -> Value {
    let keys = acme.owner.gql(KEYS, json!({})).await;
    keys.data("apiKeys")
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["id"] == id)
        .cloned()
        .unwrap()
}

async fn last_audit_after(acme: &Org, action: &str) -> Value {
    let log = acme
        .owner
        .gql(
            "query($f: AuditLogFilter) { auditLog(first: 1, filter: $f) { edges { node { action after } } } }",
            json!({ "f": { "action": action } }),
        )
        .await;
    log.data("auditLog")["edges"][0]["node"]["after"].clone()
}

async fn removing_a_member_revokes_their_keys_and_ends_their_streams(app: TestApp) {
    let acme = app.org("Acme").await;
    let job = long_job(&acme).await;
    let admin = acme.member(&app, "ADMIN").await;
    let (bot, key_id) = key_made_by(&app, &admin.client, "MEMBER", None).await;
    assert_eq!(
        bot.gql("{ organization { id } }", json!({}))
            .await
            .data("organization")["id"],
        acme.id
    );
    let mut stream = app.ws(&bot).await;
    stream.subscribe("p", PROGRESS, json!({ "job": job })).await;
    let first = stream.next_message(Duration::from_secs(10)).await.unwrap();
    assert_eq!(first["type"], "next", "{first}");

    acme.owner
        .gql(
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({ "u": admin.user_id }),
        )
        .await
        .data("removeMember");
    assert_eq!(
        bot.gql("{ organization { id } }", json!({})).await.error_code(),
        "UNAUTHENTICATED"
    );
    assert!(key_row(&acme, &key_id).await["revokedAt"].is_string());
    let (_, end) = stream.collect("p", Duration::from_secs(10)).await;
    assert_eq!(end["type"], "error", "{end}");
    assert_eq!(
        end["payload"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{end}"
    );
    // The removal's one audit row names the keys revoked with it.
    assert_eq!(
        last_audit_after(&acme, "removeMember").await["revokedApiKeys"],
        json!([key_id])
    );
}

async fn demoting_a_member_caps_their_keys_at_the_new_role(app: TestApp) {
    let acme = app.org("Acme").await;
    let admin = acme.member(&app, "ADMIN").await;
    let (admin_bot, admin_key) = key_made_by(&app, &admin.client, "ADMIN", None).await;
    let (viewer_bot, viewer_key) = key_made_by(&app, &admin.client, "VIEWER", None).await;
    let create_project = "mutation { createProject(input: { name: \"By bot\" }) { id } }";
    admin_bot
        .gql(create_project, json!({}))
        .await
        .data("createProject");

    acme.owner
        .gql(
            "mutation($u: ID!) { updateMemberRole(userId: $u, role: VIEWER) { role } }",
            json!({ "u": admin.user_id }),
        )
        .await
        .data("updateMemberRole");
    assert_eq!(key_row(&acme, &admin_key).await["role"], "VIEWER");
    assert_eq!(key_row(&acme, &viewer_key).await["role"], "VIEWER");
    assert_eq!(
        admin_bot.gql(create_project, json!({})).await.error_code(),
        "FORBIDDEN"
    );
    // Still a key of the organization, reading as a viewer may.
    assert_eq!(
        admin_bot
            .gql("{ organization { id } }", json!({}))
            .await
            .data("organization")["id"],
        acme.id
    );
    assert_eq!(
        viewer_bot
            .gql("{ organization { id } }", json!({}))
            .await
            .data("organization")["id"],
        acme.id
    );
    assert_eq!(
        last_audit_after(&acme, "updateMemberRole").await["cappedApiKeys"],
        json!([admin_key])
    );
}

async fn a_key_of_someone_who_left_without_the_rule_works_no_more(app: TestApp) {
    // A membership deleted behind the server's back, as before keys followed membership.
    let acme = app.org("Acme").await;
    let admin = acme.member(&app, "ADMIN").await;
    let (bot, _) = key_made_by(&app, &admin.client, "MEMBER", None).await;
    let conn = app.owner_connection().await;
    use sea_orm::{ConnectionTrait, Statement};
    let backend = conn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "DELETE FROM organization_members WHERE user_id = $1::uuid",
        _ => "DELETE FROM organization_members WHERE user_id = ?",
    };
    let user = uuid::Uuid::parse_str(&admin.user_id).unwrap();
    conn.execute_raw(Statement::from_sql_and_values(backend, sql, [user.into()]))
        .await
        .unwrap();
    assert_eq!(
        bot.gql("{ organization { id } }", json!({})).await.error_code(),
        "UNAUTHENTICATED"
    );
}

async fn api_keys_cannot_create_api_keys(app: TestApp) {
    let acme = app.org("Acme").await;
    let bot = acme.api_key(&app, "ADMIN", None).await;
    let refused = bot
        .gql(
            CREATE_KEY,
            json!({ "input": { "name": "child", "role": "VIEWER" } }),
        )
        .await;
    assert_eq!(refused.error_code(), "FORBIDDEN");
    let keys = acme.owner.gql(KEYS, json!({})).await;
    assert_eq!(keys.data("apiKeys").as_array().unwrap().len(), 1);
}

async fn a_key_s_stream_ends_at_the_key_s_expiry(app: TestApp) {
    let acme = app.org("Acme").await;
    let job = long_job(&acme).await;
    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(4)).to_rfc3339();
    let (bot, _) = key_made_by(&app, &acme.owner, "VIEWER", Some(expires_at)).await;
    let mut stream = app.ws(&bot).await;
    stream.subscribe("p", PROGRESS, json!({ "job": job })).await;
    let first = stream.next_message(Duration::from_secs(10)).await.unwrap();
    assert_eq!(first["type"], "next", "{first}");
    // The job has some 20 s to run; the key ends first, and its stream with it.
    let (_, end) = stream.collect("p", Duration::from_secs(15)).await;
    assert_eq!(end["type"], "error", "{end}");
    assert_eq!(
        end["payload"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{end}"
    );
}

/// A replica that has the key in its cache still ends the key's stream at once when the key
/// is revoked elsewhere: the re-check reads the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_replica_ends_the_key_s_stream_on_another_at_once() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let acme = app.org("Acme").await;
    let job = long_job(&acme).await;
    let (bot, key_id) = key_made_by(&app, &acme.owner, "VIEWER", None).await;
    let replica = app.spawn_replica(0).await;
    let on_replica = replica.client_like(&bot);
    on_replica
        .gql("{ organization { id } }", json!({}))
        .await
        .data("organization");
    let mut stream = ws_to(&replica.graphql_url(), &on_replica).await;
    stream.subscribe("p", PROGRESS, json!({ "job": job })).await;
    let first = stream.next_message(Duration::from_secs(10)).await.unwrap();
    assert_eq!(first["type"], "next", "{first}");
    acme.owner
        .gql(
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({ "id": key_id }),
        )
        .await
        .data("revokeApiKey");
    let (_, end) = stream.collect("p", Duration::from_secs(10)).await;
    assert_eq!(
        end["payload"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{end}"
    );
}

backend_tests!(
    removing_a_member_revokes_their_keys_and_ends_their_streams,
    demoting_a_member_caps_their_keys_at_the_new_role,
    a_key_of_someone_who_left_without_the_rule_works_no_more,
    api_keys_cannot_create_api_keys,
    a_key_s_stream_ends_at_the_key_s_expiry,
);

backend_tests!(
    apq_registration_is_only_for_callers_with_a_tenant_and_valid_bounded_documents,
    apq_registrations_expire,
    deeply_nested_documents_are_refused_on_every_path_and_the_server_lives,
    repeated_directives_are_refused_and_errors_per_response_are_capped,
    generated_hostile_documents_never_take_the_server_down,
);

configured_backend_tests!(
    anonymous_operations_are_limited_per_address => |config| {
        config.rate_limits.anonymous_requests_per_minute = 60;
    },
    plan_bursts_are_a_slice_of_the_minute => |config| {
        config.rate_limits = config
            .rate_limits
            .clone()
            .with_plan_overrides("FREE=120/100000/100")
            .unwrap();
    },
    sign_in_is_limited_per_account_across_addresses => |config| {
        config.rate_limits.auth_attempts_per_minute = 5;
        config.rate_limits.account_signins_per_minute = 8;
    },
    refreshing_is_limited_per_sign_in_not_per_address => |config| {
        config.rate_limits.auth_attempts_per_minute = 3;
    },
    password_hashing_beyond_its_pool_is_refused => |config| {
        config.password_hashing_concurrency = 1;
    },
    websockets_are_capped_per_address_caller_and_connection => |config| {
        config.websocket_limits = tenantql::http::websocket_limits::WebsocketLimits {
            connections_per_address: 3,
            connections_per_caller: 2,
            operations_per_connection: 2,
        };
    },
);

/// Sends `count` requests one after another; returns how many were refused with 429.
async fn refusals(client: &Client, query: &str, count: usize) -> usize {
    let mut refused = 0;
    for _ in 0..count {
        let answer = client.gql(query, json!({})).await;
        if answer.status == 429 {
            assert_eq!(answer.error_code(), "RATE_LIMITED");
            refused += 1;
        } else {
            assert_eq!(answer.status, 200, "{:#}", answer.body);
        }
    }
    refused
}

async fn anonymous_operations_are_limited_per_address(app: TestApp) {
    // Sixty a minute, ten at once: of forty in a row, most are refused.
    let from = |ip: &str| app.anonymous().header("x-forwarded-for", ip);
    assert!(refusals(&from("2001:db8:5:6::1"), "{ __typename }", 40).await >= 10);
    // The same /64 shares the allowance; another address has its own.
    assert_eq!(
        from("2001:db8:5:6::99")
            .gql("{ __typename }", json!({}))
            .await
            .status,
        429
    );
    assert_eq!(refusals(&from("2001:db8:5:7::1"), "{ __typename }", 5).await, 0);
    // A member acting in their organization is charged to it, not to the address.
    let acme = app.org("Acme").await;
    let member = acme.owner.header("x-forwarded-for", "2001:db8:5:6::1");
    assert_eq!(refusals(&member, "{ organization { id } }", 5).await, 0);
}

async fn plan_bursts_are_a_slice_of_the_minute(app: TestApp) {
    // 120 requests a minute hold a burst of ten seconds' worth: twenty.
    let acme = app.org("Acme").await;
    let first = acme.owner.gql("{ organization { id } }", json!({})).await;
    assert_eq!(first.headers["ratelimit-limit"], "20");
    let refused = refusals(&acme.owner, "{ organization { id } }", 60).await;
    assert!(refused >= 20, "only {refused} of 60 refused");
}

const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { accessToken refreshToken } }";

async fn sign_in_is_limited_per_account_across_addresses(app: TestApp) {
    app.signup("target@example.com", "Target Co").await;
    let guess = json!({ "input": { "email": "Target@Example.com ", "password": "Wrong-horse-1" } });
    // Each address is allowed five tries; the account eight, wherever they come from.
    for attempt in 0..8 {
        let from = app
            .anonymous()
            .header("x-forwarded-for", &format!("198.51.100.{attempt}"));
        assert_eq!(
            from.gql(LOGIN, guess.clone()).await.error_code(),
            "UNAUTHENTICATED"
        );
    }
    let fresh_address = app.anonymous().header("x-forwarded-for", "203.0.113.50");
    let refused = fresh_address.gql(LOGIN, guess).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.error_code(), "RATE_LIMITED");
    // Other accounts are not held back.
    app.signup("bystander@example.com", "Bystander Co").await;
    let other =
        json!({ "input": { "email": "bystander@example.com", "password": crate::helpers::PASSWORD } });
    let from = app.anonymous().header("x-forwarded-for", "203.0.113.51");
    assert!(from.gql(LOGIN, other).await.data("login")["accessToken"].is_string());
}

async fn refreshing_is_limited_per_sign_in_not_per_address(app: TestApp) {
    const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { refreshToken } }";
    // Each person signs up from their own address (three attempts a minute each).
    let signup = async |person: usize| {
        let input = json!({ "input": { "email": format!("person{person}@example.com"),
            "password": crate::helpers::PASSWORD, "displayName": "P", "organizationName": "Co" } });
        let signed_up = app
            .anonymous()
            .header("x-forwarded-for", &format!("203.0.113.{person}"))
            .gql(
                "mutation($input: SignupInput!) { signup(input: $input) { refreshToken } }",
                input,
            )
            .await;
        signed_up.data("signup")["refreshToken"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // One web server refreshes for five people: more than the address's three attempts.
    let server = app.anonymous().header("x-forwarded-for", "192.0.2.80");
    for person in 0..5 {
        let token = signup(person).await;
        let renewed = server.gql(REFRESH, json!({ "t": token })).await;
        assert!(renewed.data("refreshSession")["refreshToken"].is_string());
    }
    // One sign-in refreshing over and over meets its own limit.
    let mut token = signup(5).await;
    for _ in 0..3 {
        let renewed = server.gql(REFRESH, json!({ "t": token })).await;
        token = renewed.data("refreshSession")["refreshToken"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let refused = server.gql(REFRESH, json!({ "t": token })).await;
    assert_eq!(refused.error_code(), "RATE_LIMITED");
    // Made-up tokens count against the address.
    let guesser = app.anonymous().header("x-forwarded-for", "192.0.2.81");
    for _ in 0..3 {
        let wrong = guesser.gql(REFRESH, json!({ "t": "not-a-token" })).await;
        assert_eq!(wrong.error_code(), "UNAUTHENTICATED");
    }
    assert_eq!(
        guesser
            .gql(REFRESH, json!({ "t": "not-a-token" }))
            .await
            .error_code(),
        "RATE_LIMITED"
    );
}

async fn password_hashing_beyond_its_pool_is_refused(app: TestApp) {
    // One hash at a time and eight waiting: a hundred sign-ins at once cannot all queue.
    let attempts: Vec<_> = (0..100)
        .map(|n| {
            let client = app.anonymous();
            tokio::spawn(async move {
                let input = json!({ "input": { "email": format!("nobody{n}@example.com"), "password": "Wrong-horse-1" } });
                client.gql(LOGIN, input).await
            })
        })
        .collect();
    let mut refused = 0;
    for attempt in attempts {
        let answer = attempt.await.unwrap();
        match answer.error_code() {
            "RATE_LIMITED" => refused += 1,
            "UNAUTHENTICATED" => {}
            other => panic!("unexpected {other}: {:#}", answer.body),
        }
    }
    assert!(refused > 0, "none refused");
    assert_healthy(&app).await;
}

async fn websockets_are_capped_per_address_caller_and_connection(app: TestApp) {
    use crate::helpers::WsEnd;
    let acme = app.org("Acme").await;
    let project = acme.project("Launch").await;
    let feed = "subscription($p: ID!) { projectJobEvents(projectId: $p) { seq } }";
    // Two operations per connection; the third is refused, the connection lives on.
    let mut first = app.ws(&acme.owner).await;
    for id in ["a", "b"] {
        first.subscribe(id, feed, json!({ "p": project })).await;
    }
    first.subscribe("c", feed, json!({ "p": project })).await;
    let refused = first.next_message(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (refused["type"].as_str(), refused["id"].as_str()),
        (Some("error"), Some("c"))
    );
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    // Two connections per caller: the third is closed at its init.
    let _second = app.ws(&acme.owner).await;
    let mut third = app.ws_raw("graphql-transport-ws").await;
    third
        .send(json!({ "type": "connection_init", "payload": acme.owner.init_payload() }))
        .await;
    assert_eq!(
        third.next_message(Duration::from_secs(10)).await,
        Err(WsEnd::Closed(Some(1008)))
    );
    // Three per address: that closed one's place is free again, and then the address is full.
    let _fourth = app.ws_raw("graphql-transport-ws").await;
    let upgrade = app
        .http
        .get(app.graphql_url())
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "graphql-transport-ws")
        .send()
        .await
        .unwrap();
    assert_eq!(upgrade.status(), 429);
    drop(first);
    assert_healthy(&app).await;
}
