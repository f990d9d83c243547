//! Every secret at rest: `rotate-keys` and the start-up check cover every encrypted column
//! (provider credentials, OAuth tokens, PKCE verifiers), so a server runs on the new key
//! alone after a rotation, and refuses to start when any stored secret cannot be read.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, Statement};
use secrecy::ExposeSecret;
use serde_json::json;
use tenantql::integrations::crypto::Keyring;
use tenantql::integrations::keys::{
    ACCESS_TOKEN, PKCE_VERIFIER, REFRESH_TOKEN, SEALED_COLUMNS, SealedColumn,
};
use tenantql::integrations::oauth::ProviderConfig;
use uuid::Uuid;

use crate::helpers::{Backend, ENCRYPTION_KEYS, LOOPBACK, TestApp};
use crate::integrations::run_with_keys;
use crate::oauth::{FakeProvider, connect, fake_provider, start};

/// One stored ciphertext: its row's id and organization, and the value.
struct Stored {
    id: Uuid,
    organization: Uuid,
    value: String,
}

/// Every non-null value of one encrypted column, straight from the table.
async fn stored(app: &TestApp, column: SealedColumn) -> Vec<Stored> {
    let db = app.owner_connection().await;
    let sql = format!(
        "SELECT id, organization_id, {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY id",
        c = column.column,
        t = column.table
    );
    db.query_all_raw(Statement::from_string(app.db.backend(), sql))
        .await
        .unwrap()
        .into_iter()
        .map(|row| Stored {
            id: row.try_get_by_index(0).unwrap(),
            organization: row.try_get_by_index(1).unwrap(),
            value: row.try_get_by_index(2).unwrap(),
        })
        .collect()
}

/// `OAUTH_PROVIDERS` for a replica, naming the same fake provider.
fn providers_env(provider: &ProviderConfig) -> String {
    json!([{
        "name": provider.name,
        "authorizeUrl": provider.authorize_url,
        "tokenUrl": provider.token_url,
        "apiUrl": provider.api_url,
        "clientId": provider.client_id,
        "clientSecret": provider.client_secret,
        "scopes": provider.scopes,
    }])
    .to_string()
}

const SET: &str = "mutation($provider: String!, $secret: String!) {
    setProviderCredential(input: { provider: $provider, secret: $secret }) { id } }";

async fn every_encrypted_column_rotates_and_the_new_key_alone_serves(
    app: TestApp,
    fake: Arc<FakeProvider>,
    provider: ProviderConfig,
) {
    let acme = app.org("Acme").await;
    acme.owner
        .gql(
            SET,
            json!({ "provider": "openai", "secret": "sk-rotate-me-4242" }),
        )
        .await
        .data("setProviderCredential");
    // A connected account (access and refresh token) and its spent state; then a state
    // that expired and one still pending.
    connect(&app, &fake, &acme.owner).await;
    start(&acme.owner).await;
    app.owner_connection()
        .await
        .execute_unprepared("UPDATE oauth_states SET expires_at = created_at WHERE used_at IS NULL")
        .await
        .unwrap();
    let pending = start(&acme.owner).await;
    for column in SEALED_COLUMNS {
        assert!(!stored(&app, column).await.is_empty(), "{column:?}");
    }

    let new_key = Keyring::generate_entry("k2");
    let newer = format!("{new_key},{ENCRYPTION_KEYS}");
    let (ok, output) = run_with_keys(&app, "rotate-keys", &newer);
    assert!(ok, "{output}");
    // The credential, both tokens and the pending verifier; the two spent states deleted.
    assert!(output.contains("\"rotated\":4"), "{output}");
    assert!(output.contains("\"spent_oauth_states_deleted\":2"), "{output}");
    let keyring = Keyring::parse(&new_key).unwrap();
    for column in SEALED_COLUMNS {
        for row in stored(&app, column).await {
            assert!(row.value.starts_with("v1:k2:"), "{column:?}: {}", row.value);
            keyring
                .decrypt(&row.value, column.binding(row.organization))
                .unwrap_or_else(|_| panic!("{column:?} of {} decrypts under k2 alone", row.id));
        }
    }
    assert_eq!(stored(&app, PKCE_VERIFIER).await.len(), 1);
    let access = stored(&app, ACCESS_TOKEN).await;
    assert_eq!(
        keyring
            .decrypt(&access[0].value, ACCESS_TOKEN.binding(access[0].organization))
            .unwrap()
            .expose_secret(),
        "at-secret-1"
    );
    // Again: nothing left to do, nothing changed.
    let (ok, output) = run_with_keys(&app, "rotate-keys", &newer);
    assert!(ok && output.contains("\"rotated\":0"), "{output}");
    assert_eq!(stored(&app, ACCESS_TOKEN).await[0].value, access[0].value);

    // A server with only the new key starts (its check reads every column), refreshes the
    // token and publishes with it, and finishes the pending authorization.
    let replica = app
        .spawn_replica_with(
            1,
            &[
                ("ENCRYPTION_KEYS", &new_key),
                ("OAUTH_PROVIDERS", &providers_env(&provider)),
                ("EGRESS_ALLOW", LOOPBACK),
                ("PUBLIC_URL", "http://tenantql.test"),
            ],
        )
        .await;
    app.owner_connection()
        .await
        .execute_unprepared("UPDATE integrations SET expires_at = created_at")
        .await
        .unwrap();
    let project = acme.project("Social").await;
    let created = acme
        .owner
        .gql(
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({ "input": { "name": "Poster", "kind": "publish", "config": { "provider": "fakebook", "path": "/publish" } } }),
        )
        .await;
    let agent = created.data("createAgent")["id"].as_str().unwrap().to_owned();
    let job = crate::jobs::start_job(&acme.owner, &agent, &project, json!({ "text": "Hello" })).await;
    let done = crate::jobs::wait_for(&acme.owner, &job, crate::jobs::terminal).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(done["output"]["published"]["id"], "p-1");
    let refresh = stored(&app, REFRESH_TOKEN).await;
    assert_eq!(
        keyring
            .decrypt(&refresh[0].value, REFRESH_TOKEN.binding(refresh[0].organization))
            .unwrap()
            .expose_secret(),
        "rt-secret-2"
    );

    *fake.expected.lock().unwrap() = Some(("c0de".into(), crate::oauth::param(&pending, "code_challenge")));
    let response = app
        .http
        .get(format!("{}/oauth/fakebook/callback", replica.base_url))
        .query(&[
            ("code", "c0de"),
            ("state", &crate::oauth::param(&pending, "state")),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let page = response.text().await.unwrap();
    assert_eq!(status, 200, "{page}");
}

/// The start-up check reads the newest value of every encrypted column: a provider
/// credential it can read does not hide an OAuth token it cannot.
async fn the_server_refuses_to_start_when_an_oauth_token_cannot_be_read(
    app: TestApp,
    fake: Arc<FakeProvider>,
    _provider: ProviderConfig,
) {
    let acme = app.org("Acme").await;
    connect(&app, &fake, &acme.owner).await;
    acme.owner
        .gql(SET, json!({ "provider": "openai", "secret": "sk-fine-0001" }))
        .await
        .data("setProviderCredential");

    // The access token sealed by another key under the same id.
    let org = Uuid::parse_str(&acme.id).unwrap();
    let stranger = Keyring::parse(&Keyring::generate_entry("test1")).unwrap();
    let forged = stranger.encrypt("at-forged", ACCESS_TOKEN.binding(org)).unwrap();
    let db = app.owner_connection().await;
    db.execute_raw(Statement::from_sql_and_values(
        app.db.backend(),
        match app.db.backend() {
            sea_orm::DbBackend::Postgres => "UPDATE integrations SET access_token = $1",
            _ => "UPDATE integrations SET access_token = ?",
        },
        [forged.into()],
    ))
    .await
    .unwrap();
    let (ok, output) = run_with_keys(&app, "", ENCRYPTION_KEYS);
    assert!(!ok, "{output}");
    assert!(
        output.contains("does not decrypt stored integrations.access_token"),
        "{output}"
    );
}

/// Runs each scenario on SQLite and PostgreSQL with the fake provider configured.
macro_rules! provider_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            async fn app(backend: Backend) -> Option<(TestApp, Arc<FakeProvider>, ProviderConfig)> {
                let (provider, fake) = fake_provider().await;
                let configured = provider.clone();
                let app = TestApp::spawn_with(backend, |config| {
                    config.oauth_providers = vec![configured];
                    config.workers = 0;
                })
                .await?;
                Some((app, fake, provider))
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (app, fake, provider) = app(Backend::Sqlite).await.expect("sqlite always runs");
                super::$name(app, fake, provider).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((app, fake, provider)) = app(Backend::Postgres).await {
                    super::$name(app, fake, provider).await;
                }
            }
        }
    )*};
}

provider_tests!(
    every_encrypted_column_rotates_and_the_new_key_alone_serves,
    the_server_refuses_to_start_when_an_oauth_token_cannot_be_read,
);
