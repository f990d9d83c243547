//! Every secret at rest: `rotate-keys` and the start-up check cover every encrypted column
//! (provider credentials, OAuth tokens, PKCE verifiers), so a server runs on the new key
//! alone after a rotation, and refuses to start when any stored secret cannot be read.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sea_orm::{ConnectionTrait, Statement};
use secrecy::ExposeSecret;
use serde_json::json;
use tenantql::integrations::crypto::Keyring;
use tenantql::integrations::keys::binding;
use tenantql::integrations::oauth::ProviderConfig;
use tenantql::tenancy::sealed::{ACCESS_TOKEN, PKCE_VERIFIER, REFRESH_TOKEN, SEALED_COLUMNS, SealedColumn};
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

/// A value as releases before row binding wrote it: `v1`, under the tests' key, bound to the
/// organization, table and column only.
fn sealed_as_v1(plain: &str, organization: Uuid, column: SealedColumn) -> String {
    let (id, key) = ENCRYPTION_KEYS.split_once(':').unwrap();
    let key = STANDARD.decode(key).unwrap();
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::try_from(key.as_slice()).unwrap());
    let nonce = [7u8; 12];
    let aad = format!("tenantql/{}.{}/{organization}", column.table, column.column);
    let sealed = cipher
        .encrypt(
            &Nonce::try_from(&nonce[..]).unwrap(),
            Payload {
                msg: plain.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .unwrap();
    format!("v1:{id}:{}", STANDARD.encode([&nonce[..], &sealed].concat()))
}

/// Runs `sql` with bound values, written with `?` (numbered for PostgreSQL here).
async fn execute_with(app: &TestApp, sql: &str, values: Vec<sea_orm::Value>) {
    let sql = match app.db.backend() {
        sea_orm::DbBackend::Postgres => {
            let mut numbered = String::new();
            for (n, part) in sql.split('?').enumerate() {
                if n > 0 {
                    numbered.push_str(&format!("${n}"));
                }
                numbered.push_str(part);
            }
            numbered
        }
        _ => sql.to_owned(),
    };
    app.owner_connection()
        .await
        .execute_raw(Statement::from_sql_and_values(app.db.backend(), sql, values))
        .await
        .unwrap();
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
    // The refresh token as an older release wrote it: read still, and rotated to v2.
    let org = Uuid::parse_str(&acme.id).unwrap();
    execute_with(
        &app,
        "UPDATE integrations SET refresh_token = ?",
        vec![sealed_as_v1("rt-secret-1", org, REFRESH_TOKEN).into()],
    )
    .await;
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
        let rows = stored(&app, column).await;
        assert!(!rows.is_empty(), "{column:?} holds nothing to check");
        for row in rows {
            assert!(row.value.starts_with("v2:k2:"), "{column:?}: {}", row.value);
            keyring
                .decrypt(&row.value, binding(column, row.organization, row.id))
                .unwrap_or_else(|_| panic!("{column:?} of {} decrypts under k2 alone", row.id));
        }
    }
    assert_eq!(stored(&app, PKCE_VERIFIER).await.len(), 1);
    let access = stored(&app, ACCESS_TOKEN).await;
    assert_eq!(
        keyring
            .decrypt(
                &access[0].value,
                binding(ACCESS_TOKEN, access[0].organization, access[0].id)
            )
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
            .decrypt(
                &refresh[0].value,
                binding(REFRESH_TOKEN, refresh[0].organization, refresh[0].id)
            )
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
        .header("cookie", &pending.cookie)
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
    let row = stored(&app, ACCESS_TOKEN).await[0].id;
    let stranger = Keyring::parse(&Keyring::generate_entry("test1")).unwrap();
    let forged = stranger
        .encrypt("at-forged", binding(ACCESS_TOKEN, org, row))
        .unwrap();
    execute_with(
        &app,
        "UPDATE integrations SET access_token = ?",
        vec![forged.into()],
    )
    .await;
    let (ok, output) = run_with_keys(&app, "", ENCRYPTION_KEYS);
    assert!(!ok, "{output}");
    assert!(
        output.contains("does not decrypt stored integrations.access_token"),
        "{output}"
    );
}

/// A token's ciphertext copied onto another integration row of the same organization (here
/// one for a second provider whose API is the same fake) does not decrypt there: the job
/// fails on reading it, and nothing is sent.
async fn a_token_copied_to_another_row_is_refused_not_sent(
    app: TestApp,
    fake: Arc<FakeProvider>,
    _provider: ProviderConfig,
) {
    let acme = app.org("Acme").await;
    connect(&app, &fake, &acme.owner).await;
    let original = stored(&app, ACCESS_TOKEN).await.remove(0);
    let owner = Uuid::parse_str(&acme.owner_user_id).unwrap();
    let now = chrono::Utc::now();
    execute_with(
        &app,
        "INSERT INTO integrations (id, organization_id, provider, access_token, scopes, connected_by, \
         created_at, updated_at) VALUES (?, ?, 'fakegram', ?, '', ?, ?, ?)",
        vec![
            Uuid::now_v7().into(),
            original.organization.into(),
            original.value.clone().into(),
            owner.into(),
            now.into(),
            now.into(),
        ],
    )
    .await;
    let project = acme.project("Social").await;
    let created = acme
        .owner
        .gql(
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({ "input": { "name": "Poster", "kind": "publish", "config": { "provider": "fakegram", "path": "/publish" } } }),
        )
        .await;
    let agent = created.data("createAgent")["id"].as_str().unwrap().to_owned();
    let job = crate::jobs::start_job(&acme.owner, &agent, &project, json!({ "text": "Hello" })).await;
    let done = crate::jobs::wait_for(&acme.owner, &job, crate::jobs::terminal).await;
    assert_eq!(done["status"], "FAILED", "{done:#}");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("fakegram account's token could not be read"),
        "{done:#}"
    );
    assert!(!done.to_string().contains("at-secret"), "{done:#}");
    assert_eq!(fake.api_calls.load(Ordering::SeqCst), 0);
    // The original row still reads its own token.
    let keyring = Keyring::parse(ENCRYPTION_KEYS).unwrap();
    assert_eq!(
        keyring
            .decrypt(
                &original.value,
                binding(ACCESS_TOKEN, original.organization, original.id)
            )
            .unwrap()
            .expose_secret(),
        "at-secret-1"
    );
}

/// Runs each scenario on SQLite and PostgreSQL with the fake provider configured.
macro_rules! provider_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            async fn app(backend: Backend) -> Option<(TestApp, Arc<FakeProvider>, ProviderConfig)> {
                let (provider, fake) = fake_provider().await;
                // A second provider with the same API, for a row of another provider.
                let second = ProviderConfig {
                    name: "fakegram".into(),
                    ..provider.clone()
                };
                let configured = vec![provider.clone(), second];
                let app = TestApp::spawn_with(backend, |config| {
                    config.oauth_providers = configured;
                    config.workers = workers(stringify!($name));
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

/// The rotation scenario runs its jobs on a replica that has only the new key.
fn workers(scenario: &str) -> usize {
    if scenario == "every_encrypted_column_rotates_and_the_new_key_alone_serves" {
        0
    } else {
        2
    }
}

provider_tests!(
    every_encrypted_column_rotates_and_the_new_key_alone_serves,
    the_server_refuses_to_start_when_an_oauth_token_cannot_be_read,
    a_token_copied_to_another_row_is_refused_not_sent,
);
