//! OAuth2 connections against a fake provider on loopback: `startOAuth` returns the
//! provider's authorize URL with state and a PKCE S256 challenge and sets a cookie in the
//! calling browser; the callback, in that browser only, exchanges the code over real HTTP,
//! once.

use std::sync::{Arc, Mutex};

use base64::Engine;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Form, Json};
use poem::{EndpointExt, IntoResponse, Request, Response, Route, Server, handler, post};
use sea_orm::{ConnectionTrait, Statement};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};
use tenantql::integrations::crypto::Keyring;
use tenantql::integrations::keys;
use tenantql::integrations::oauth::ProviderConfig;
use tenantql::tenancy::sealed::ACCESS_TOKEN;
use uuid::Uuid;

use crate::helpers::{Backend, ENCRYPTION_KEYS, TestApp};

/// The code and PKCE challenge the fake provider will accept next.
#[derive(Default)]
pub(crate) struct FakeProvider {
    pub(crate) expected: Mutex<Option<(String, String)>>,
    /// Requests its API (`/publish`) received, whatever their token.
    pub(crate) api_calls: std::sync::atomic::AtomicUsize,
}

#[handler]
async fn token(
    req: &Request,
    Form(form): Form<Vec<(String, String)>>,
    Data(fake): Data<&Arc<FakeProvider>>,
) -> Response {
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("client-1:shh")
    );
    let client_ok = req.headers().get("authorization").and_then(|v| v.to_str().ok()) == Some(basic.as_str());
    if field("grant_type").as_deref() == Some("refresh_token") {
        if !(client_ok && field("refresh_token").as_deref() == Some("rt-secret-1")) {
            return poem::http::StatusCode::BAD_REQUEST
                .with_body(r#"{"error":"invalid_grant"}"#)
                .with_content_type("application/json")
                .into_response();
        }
        return Json(json!({
            "access_token": "at-secret-2",
            "token_type": "bearer",
            "expires_in": 3600,
            "refresh_token": "rt-secret-2"
        }))
        .into_response();
    }
    let expected = fake.expected.lock().unwrap().take();
    let verifier_ok = match (&expected, field("code_verifier")) {
        (Some((_, challenge)), Some(verifier)) => {
            let digest = Sha256::digest(verifier.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == *challenge
        }
        _ => false,
    };
    let code_ok = expected.as_ref().map(|(code, _)| code.clone()) == field("code");
    let redirect_ok =
        field("redirect_uri").as_deref() == Some("http://tenantql.test/oauth/fakebook/callback");
    if !(client_ok
        && verifier_ok
        && code_ok
        && redirect_ok
        && field("grant_type").as_deref() == Some("authorization_code"))
    {
        return poem::http::StatusCode::BAD_REQUEST
            .with_body(r#"{"error":"invalid_grant"}"#)
            .with_content_type("application/json")
            .into_response();
    }
    Json(json!({
        "access_token": "at-secret-1",
        "token_type": "bearer",
        "expires_in": 3600,
        "refresh_token": "rt-secret-1",
        "scope": "posts.write"
    }))
    .into_response()
}

/// The provider's own API: accepts posts with the refreshed token only.
#[handler]
async fn publish(
    req: &Request,
    Json(body): Json<serde_json::Value>,
    Data(fake): Data<&Arc<FakeProvider>>,
) -> Response {
    fake.api_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if req.headers().get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer at-secret-2") {
        return poem::http::StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({ "id": "p-1", "text": body["text"] })).into_response()
}

pub(crate) async fn fake_provider() -> (ProviderConfig, Arc<FakeProvider>) {
    let fake = Arc::new(FakeProvider::default());
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    let app = Route::new()
        .at("/token", post(token))
        .at("/publish", post(publish))
        .data(fake.clone());
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    let config = ProviderConfig {
        name: "fakebook".into(),
        authorize_url: format!("http://{addr}/authorize"),
        token_url: format!("http://{addr}/token"),
        api_url: Some(format!("http://{addr}")),
        client_id: "client-1".into(),
        client_secret: Some("shh".into()),
        scopes: vec!["posts.write".into()],
    };
    (config, fake)
}

const START: &str = "mutation { startOAuth(provider: \"fakebook\") { authorizeUrl expiresAt } }";
const INTEGRATIONS: &str = "{ integrations { id provider scopes expiresAt } }";

/// A connection as the browser that started it holds it: the provider's authorize URL's
/// query parameters, and the cookie the `startOAuth` response set.
pub(crate) struct Flow {
    pub(crate) params: Vec<(String, String)>,
    /// `name=value`, as a browser sends it back.
    pub(crate) cookie: String,
}

/// Starts a connection as `client`'s browser would: over HTTP, keeping the cookie.
pub(crate) async fn start(client: &crate::helpers::Client) -> Flow {
    let started = client.gql(START, json!({})).await;
    let flows = flows_from(&started, &["startOAuth"]);
    flows.into_iter().next().unwrap()
}

/// The flows a `startOAuth` response started, one per field in `fields`, each with its
/// cookie, after checking what the response and the cookies are.
fn flows_from(response: &crate::helpers::GqlResponse, fields: &[&str]) -> Vec<Flow> {
    assert_eq!(
        response
            .headers
            .get("cache-control")
            .map(|value| value.to_str().unwrap()),
        Some("no-store")
    );
    let cookies: Vec<String> = response
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), fields.len(), "{cookies:?}");
    fields
        .iter()
        .map(|field| {
            let url = reqwest::Url::parse(response.data(field)["authorizeUrl"].as_str().unwrap()).unwrap();
            // The provider's own page: nothing of this server's sits between.
            assert!(url.as_str().starts_with("http://127.0.0.1:"), "{url}");
            assert_eq!(url.path(), "/authorize");
            let params: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let state = &params.iter().find(|(key, _)| key == "state").unwrap().1;
            let name = format!(
                "tql_oauth_{}",
                &hex::encode(Sha256::digest(state.as_bytes()))[..8]
            );
            let cookie = cookies
                .iter()
                .find(|cookie| cookie.starts_with(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no cookie {name} in {cookies:?}"));
            let attributes: Vec<&str> = cookie.split("; ").skip(1).collect();
            assert_eq!(
                attributes,
                ["Path=/oauth/fakebook/", "Max-Age=600", "HttpOnly", "SameSite=Lax"],
                "{cookie}"
            );
            let pair = cookie.split(';').next().unwrap().to_owned();
            assert!(pair.len() > name.len() + 40, "{pair}");
            Flow { params, cookie: pair }
        })
        .collect()
}

/// Connects `owner`'s organization to the fake provider, as the person would in a browser.
pub(crate) async fn connect(app: &TestApp, fake: &FakeProvider, owner: &crate::helpers::Client) {
    let flow = start(owner).await;
    *fake.expected.lock().unwrap() = Some(("c0de".into(), param(&flow, "code_challenge")));
    let (status, page) = callback(
        app,
        Some(&flow),
        &[("code", "c0de"), ("state", &param(&flow, "state"))],
    )
    .await;
    assert_eq!(status, 200, "{page}");
}

pub(crate) fn param(flow: &Flow, name: &str) -> String {
    flow.params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
        .unwrap()
}

/// What a browser does when the provider redirects it back: with the cookie of `flow`, or
/// none (another browser).
pub(crate) async fn callback(app: &TestApp, flow: Option<&Flow>, query: &[(&str, &str)]) -> (u16, String) {
    let (status, _, page) = callback_with(app, flow.map(|flow| flow.cookie.as_str()), query).await;
    (status, page)
}

/// The callback with a `Cookie` header as given: its status, `Set-Cookie`s and page.
async fn callback_with(
    app: &TestApp,
    cookies: Option<&str>,
    query: &[(&str, &str)],
) -> (u16, Vec<String>, String) {
    let mut request = app
        .http
        .get(format!("{}/oauth/fakebook/callback", app.base_url))
        .query(query);
    if let Some(cookies) = cookies {
        request = request.header("cookie", cookies);
    }
    let response = request.send().await.unwrap();
    let set_cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    (
        response.status().as_u16(),
        set_cookies,
        response.text().await.unwrap(),
    )
}

/// The stored access tokens: (organization, ciphertext, row id).
async fn stored_tokens(app: &TestApp) -> Vec<(Uuid, String, Uuid)> {
    let db = app.owner_connection().await;
    db.query_all_raw(Statement::from_string(
        app.db.backend(),
        "SELECT organization_id, access_token, id FROM integrations",
    ))
    .await
    .unwrap()
    .into_iter()
    .map(|row| {
        (
            row.try_get_by_index(0).unwrap(),
            row.try_get_by_index(1).unwrap(),
            row.try_get_by_index(2).unwrap(),
        )
    })
    .collect()
}

async fn an_account_connects_once_with_state_and_pkce(app: TestApp, fake: Arc<FakeProvider>) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let params = start(&acme.owner).await;
    assert_eq!(param(&params, "response_type"), "code");
    assert_eq!(param(&params, "client_id"), "client-1");
    assert_eq!(param(&params, "code_challenge_method"), "S256");
    assert_eq!(param(&params, "scope"), "posts.write");
    assert_eq!(
        param(&params, "redirect_uri"),
        "http://tenantql.test/oauth/fakebook/callback"
    );
    let state = param(&params, "state");
    *fake.expected.lock().unwrap() = Some(("c0de".into(), param(&params, "code_challenge")));

    let (status, page) = callback(&app, Some(&params), &[("code", "c0de"), ("state", &state)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("connected"));
    let listed = acme.owner.gql(INTEGRATIONS, json!({})).await;
    let integrations = listed.data("integrations").as_array().unwrap().clone();
    assert_eq!(integrations.len(), 1);
    assert_eq!(integrations[0]["provider"], "fakebook");
    assert_eq!(integrations[0]["scopes"], "posts.write");
    assert!(integrations[0]["expiresAt"].is_string());
    assert!(!listed.body.to_string().contains("at-secret"));

    // Stored encrypted, bound to Acme.
    let rows = stored_tokens(&app).await;
    assert_eq!(rows.len(), 1);
    let acme_id = Uuid::parse_str(&acme.id).unwrap();
    let binding = keys::binding(ACCESS_TOKEN, acme_id, rows[0].2);
    let keyring = Keyring::parse(ENCRYPTION_KEYS).unwrap();
    assert_eq!(
        keyring.decrypt(&rows[0].1, binding).unwrap().expose_secret(),
        "at-secret-1"
    );

    // The same callback again, an unknown state: refused, nothing more stored.
    let (status, page) = callback(&app, Some(&params), &[("code", "c0de"), ("state", &state)]).await;
    assert_eq!(status, 400);
    assert!(page.contains("already used"), "{page}");
    let (status, _) = callback(&app, Some(&params), &[("code", "c0de"), ("state", "made-up")]).await;
    assert_eq!(status, 400);

    // Another tenant sees none of it and cannot remove it; only admins, and only people, start.
    assert_eq!(
        globex
            .owner
            .gql(INTEGRATIONS, json!({}))
            .await
            .data("integrations"),
        &json!([])
    );
    let id = integrations[0]["id"].as_str().unwrap();
    let disconnect = "mutation($id: ID!) { disconnectIntegration(id: $id) }";
    assert_eq!(
        globex
            .owner
            .gql(disconnect, json!({ "id": id }))
            .await
            .error_code(),
        "NOT_FOUND"
    );
    let member = acme.member(&app, "MEMBER").await;
    assert_eq!(
        member.client.gql(START, json!({})).await.error_code(),
        "FORBIDDEN"
    );
    let bot = acme.api_key(&app, "ADMIN", None).await;
    assert_eq!(bot.gql(START, json!({})).await.error_code(), "FORBIDDEN");

    let trail = acme
        .owner
        .gql(
            "{ auditLog(filter: { action: \"connectIntegration\" }) { edges { node { actorId after } } } }",
            json!({}),
        )
        .await;
    let entry = &trail.data("auditLog")["edges"][0]["node"];
    assert_eq!(entry["actorId"], acme.owner_user_id.as_str());
    assert_eq!(entry["after"]["access_token"], "[REDACTED]");

    assert_eq!(
        acme.owner
            .gql(disconnect, json!({ "id": id }))
            .await
            .data("disconnectIntegration"),
        id
    );
    assert_eq!(
        acme.owner.gql(INTEGRATIONS, json!({})).await.data("integrations"),
        &json!([])
    );
    let actions = acme
        .owner
        .gql(
            "{ auditLog(filter: { resourceType: \"Integration\" }) { edges { node { action } } } }",
            json!({}),
        )
        .await;
    let actions: Vec<&str> = actions.data("auditLog")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["disconnectIntegration", "connectIntegration"]);
    let starts = acme
        .owner
        .gql(
            "{ auditLog(filter: { action: \"startOAuth\" }) { edges { node { resourceType } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        starts.data("auditLog")["edges"][0]["node"]["resourceType"],
        "OAuthState"
    );
}

async fn failed_authorizations_store_nothing(app: TestApp, fake: Arc<FakeProvider>) {
    let acme = app.org("Acme").await;
    // The person declined at the provider.
    let flow = start(&acme.owner).await;
    let state = param(&flow, "state");
    let (status, page) = callback(
        &app,
        Some(&flow),
        &[("error", "access_denied"), ("state", &state)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("did not authorize"), "{page}");
    // The provider refuses the code (a wrong verifier or code).
    let params = start(&acme.owner).await;
    *fake.expected.lock().unwrap() = Some(("other".into(), param(&params, "code_challenge")));
    let (status, page) = callback(
        &app,
        Some(&params),
        &[("code", "c0de"), ("state", &param(&params, "state"))],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("did not accept"), "{page}");
    // Ten minutes passed.
    let params = start(&acme.owner).await;
    *fake.expected.lock().unwrap() = Some(("c0de".into(), param(&params, "code_challenge")));
    app.owner_connection()
        .await
        .execute_unprepared("UPDATE oauth_states SET expires_at = created_at")
        .await
        .unwrap();
    let (status, _) = callback(
        &app,
        Some(&params),
        &[("code", "c0de"), ("state", &param(&params, "state"))],
    )
    .await;
    assert_eq!(status, 400);
    assert!(stored_tokens(&app).await.is_empty());
}

async fn expiring_tokens_are_refreshed_before_a_job_uses_them(
    app: TestApp,
    fake: Arc<FakeProvider>,
    token_url: String,
) {
    let acme = app.org("Acme").await;
    let params = start(&acme.owner).await;
    *fake.expected.lock().unwrap() = Some(("c0de".into(), param(&params, "code_challenge")));
    let (status, _) = callback(
        &app,
        Some(&params),
        &[("code", "c0de"), ("state", &param(&params, "state"))],
    )
    .await;
    assert_eq!(status, 200);
    // The access token is about to expire.
    app.owner_connection()
        .await
        .execute_unprepared("UPDATE integrations SET expires_at = created_at")
        .await
        .unwrap();
    let project = acme.project("Social").await;
    // An agent names a path under the provider's apiUrl, not an address.
    let create = "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }";
    let publish_url = token_url.replace("/token", "/publish");
    let by_url = acme
        .owner
        .gql(
            create,
            json!({ "input": { "name": "Poster", "kind": "publish", "config": { "provider": "fakebook", "url": publish_url } } }),
        )
        .await;
    assert_eq!(by_url.error_code(), "BAD_USER_INPUT");
    assert!(by_url.body.to_string().contains("apiUrl"), "{}", by_url.body);
    let created = acme
        .owner
        .gql(
            create,
            json!({ "input": { "name": "Poster", "kind": "publish", "config": { "provider": "fakebook", "path": "/publish" } } }),
        )
        .await;
    let agent = created.data("createAgent")["id"].as_str().unwrap().to_owned();
    let job = crate::jobs::start_job(&acme.owner, &agent, &project, json!({ "text": "Hello" })).await;
    let done = crate::jobs::wait_for(&acme.owner, &job, crate::jobs::terminal).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    // The status and the answer's id; not the rest of what the provider sent.
    assert_eq!(done["output"]["published"], json!({ "status": 200, "id": "p-1" }));
    // The renewed tokens are stored, encrypted.
    let rows = stored_tokens(&app).await;
    let binding = keys::binding(ACCESS_TOKEN, Uuid::parse_str(&acme.id).unwrap(), rows[0].2);
    let keyring = Keyring::parse(ENCRYPTION_KEYS).unwrap();
    assert_eq!(
        keyring.decrypt(&rows[0].1, binding).unwrap().expose_secret(),
        "at-secret-2"
    );
    let listed = acme.owner.gql(INTEGRATIONS, json!({})).await;
    let expires: chrono::DateTime<chrono::Utc> = listed.data("integrations")[0]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expires > chrono::Utc::now() + chrono::Duration::minutes(30));
}

/// An admin starts a connection in their organization and sends the provider's URL to
/// someone else: that person's consent comes back to a browser without the cookie the
/// `startOAuth` response set (or with a cookie of their own flow, or a made-up one) and lands
/// nowhere, and the state is spent. The browser that started a flow connects; one browser
/// may have several flows under way.
async fn a_consent_lands_only_in_the_browser_that_started_it(app: TestApp, fake: Arc<FakeProvider>) {
    let mallory = app.org("Mallory").await;
    let acme = app.org("Acme").await;
    let mallory_id = Uuid::parse_str(&mallory.id).unwrap();
    let acme_id = Uuid::parse_str(&acme.id).unwrap();
    let forwarded = start(&mallory.owner).await;
    let state = param(&forwarded, "state");

    // The victim consents; the provider sends their browser back, without the cookie.
    *fake.expected.lock().unwrap() = Some(("c0de".into(), param(&forwarded, "code_challenge")));
    let (status, set_cookies, page) = callback_with(&app, None, &[("code", "c0de"), ("state", &state)]).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("started in another browser"), "{page}");
    assert!(page.contains("nothing was connected"), "{page}");
    assert!(stored_tokens(&app).await.is_empty());
    // The flow's cookie is cleared whatever the outcome.
    let name = forwarded.cookie.split('=').next().unwrap();
    assert_eq!(set_cookies.len(), 1, "{set_cookies:?}");
    assert!(
        set_cookies[0].starts_with(&format!("{name}=; Path=/oauth/fakebook/; Max-Age=0;")),
        "{set_cookies:?}"
    );
    // The code was never exchanged, and the state is spent: the cookie comes too late.
    assert!(fake.expected.lock().unwrap().is_some());
    let (status, page) = callback(&app, Some(&forwarded), &[("code", "c0de"), ("state", &state)]).await;
    assert_eq!(status, 400);
    assert!(page.contains("already used"), "{page}");
    assert!(stored_tokens(&app).await.is_empty());

    // The victim's browser holds a cookie of a flow of its own: it does not open another's.
    let own = start(&acme.owner).await;
    let forwarded = start(&mallory.owner).await;
    *fake.expected.lock().unwrap() = Some(("c0de".into(), param(&forwarded, "code_challenge")));
    let (status, page) = callback(
        &app,
        Some(&own),
        &[("code", "c0de"), ("state", &param(&forwarded, "state"))],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("started in another browser"), "{page}");
    assert!(stored_tokens(&app).await.is_empty());
    // A made-up secret under the right name is no better.
    let forwarded = start(&mallory.owner).await;
    let forged = Flow {
        params: forwarded.params.clone(),
        cookie: format!("{}=guessed", forwarded.cookie.split('=').next().unwrap()),
    };
    *fake.expected.lock().unwrap() = Some(("c0de".into(), param(&forwarded, "code_challenge")));
    let (status, page) = callback(
        &app,
        Some(&forged),
        &[("code", "c0de"), ("state", &param(&forwarded, "state"))],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("started in another browser"), "{page}");
    assert!(stored_tokens(&app).await.is_empty());

    // The victim's own flow, in their own browser, is untouched by all this: it connects.
    *fake.expected.lock().unwrap() = Some(("c0de".into(), param(&own, "code_challenge")));
    let (status, page) = callback(
        &app,
        Some(&own),
        &[("code", "c0de"), ("state", &param(&own, "state"))],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("connected"), "{page}");
    let rows = stored_tokens(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, acme_id);

    // Two flows started at once in one browser (one response, two cookies): each completes
    // with its own cookie among the browser's, the later one first.
    let started = mallory
        .owner
        .gql(
            "mutation { a: startOAuth(provider: \"fakebook\") { authorizeUrl } b: startOAuth(provider: \"fakebook\") { authorizeUrl } }",
            json!({}),
        )
        .await;
    let flows = flows_from(&started, &["a", "b"]);
    assert_ne!(flows[0].cookie, flows[1].cookie);
    let jar = format!("{}; {}", flows[0].cookie, flows[1].cookie);
    for flow in [&flows[1], &flows[0]] {
        *fake.expected.lock().unwrap() = Some(("c0de".into(), param(flow, "code_challenge")));
        let (status, _, page) = callback_with(
            &app,
            Some(&jar),
            &[("code", "c0de"), ("state", &param(flow, "state"))],
        )
        .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("connected"), "{page}");
    }
    let mut orgs: Vec<Uuid> = stored_tokens(&app).await.into_iter().map(|row| row.0).collect();
    orgs.sort();
    let mut expected = vec![acme_id, mallory_id];
    expected.sort();
    assert_eq!(orgs, expected);
}

/// With `PUBLIC_URL` on https the cookie is `Secure`.
async fn the_cookie_is_secure_over_https(app: TestApp) {
    let acme = app.org("Acme").await;
    let started = acme.owner.gql(START, json!({})).await;
    assert!(
        started.data("startOAuth")["authorizeUrl"]
            .as_str()
            .unwrap()
            .contains("redirect_uri=https%3A%2F%2Ftenantql.test%2Foauth%2Ffakebook%2Fcallback")
    );
    let cookie = started.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("tql_oauth_") && cookie.ends_with("; HttpOnly; SameSite=Lax; Secure"),
        "{cookie}"
    );
}

mod browser_binding {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let (app, fake, _) = app_with_provider(Backend::Sqlite).await.unwrap();
        a_consent_lands_only_in_the_browser_that_started_it(app, fake).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some((app, fake, _)) = app_with_provider(Backend::Postgres).await {
            a_consent_lands_only_in_the_browser_that_started_it(app, fake).await;
        }
    }
}

mod secure_cookie {
    use super::*;

    async fn app(backend: Backend) -> Option<TestApp> {
        let (provider, _) = fake_provider().await;
        TestApp::spawn_with(backend, |config| {
            config.oauth_providers = vec![provider];
            config.public_url = "https://tenantql.test".into();
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        the_cookie_is_secure_over_https(app(Backend::Sqlite).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = app(Backend::Postgres).await {
            the_cookie_is_secure_over_https(app).await;
        }
    }
}

/// The server with the fake provider configured; `None` when PostgreSQL is skipped.
async fn app_with_provider(backend: Backend) -> Option<(TestApp, Arc<FakeProvider>, String)> {
    let (provider, fake) = fake_provider().await;
    let token_url = provider.token_url.clone();
    let app = TestApp::spawn_with(backend, |config| config.oauth_providers = vec![provider]).await?;
    Some((app, fake, token_url))
}

mod connects {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let (app, fake, _) = app_with_provider(Backend::Sqlite).await.unwrap();
        an_account_connects_once_with_state_and_pkce(app, fake).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some((app, fake, _)) = app_with_provider(Backend::Postgres).await {
            an_account_connects_once_with_state_and_pkce(app, fake).await;
        }
    }
}

mod failures {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let (app, fake, _) = app_with_provider(Backend::Sqlite).await.unwrap();
        failed_authorizations_store_nothing(app, fake).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some((app, fake, _)) = app_with_provider(Backend::Postgres).await {
            failed_authorizations_store_nothing(app, fake).await;
        }
    }
}

mod refresh {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let (app, fake, token_url) = app_with_provider(Backend::Sqlite).await.unwrap();
        expiring_tokens_are_refreshed_before_a_job_uses_them(app, fake, token_url).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some((app, fake, token_url)) = app_with_provider(Backend::Postgres).await {
            expiring_tokens_are_refreshed_before_a_job_uses_them(app, fake, token_url).await;
        }
    }
}
