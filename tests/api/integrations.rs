//! Integrations: provider credentials encrypted at rest (bound to their tenant, rotatable,
//! never readable back) and chat bots paired to projects with single-use codes.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use secrecy::ExposeSecret;
use serde_json::json;
use tenantql::integrations::credentials::binding;
use tenantql::integrations::crypto::Keyring;
use uuid::Uuid;

use crate::backend_tests;
use crate::helpers::{Backend, ENCRYPTION_KEYS, JWT_SECRET, TestApp};

const SET: &str = "mutation($provider: String!, $secret: String!) {
    setProviderCredential(input: { provider: $provider, secret: $secret }) { id provider lastFour } }";
const LIST: &str = "{ providerCredentials { id provider lastFour } }";

/// The stored ciphertexts, straight from the table: (organization, provider, secret, id).
async fn stored(app: &TestApp) -> Vec<(Uuid, String, String, Uuid)> {
    let db = app.owner_connection().await;
    let rows = db
        .query_all_raw(Statement::from_string(
            app.db.backend(),
            "SELECT organization_id, provider, secret, id FROM provider_credentials ORDER BY id",
        ))
        .await
        .unwrap();
    rows.into_iter()
        .map(|row| {
            (
                row.try_get_by_index(0).unwrap(),
                row.try_get_by_index(1).unwrap(),
                row.try_get_by_index(2).unwrap(),
                row.try_get_by_index(3).unwrap(),
            )
        })
        .collect()
}

async fn credentials_are_encrypted_bound_to_their_tenant_and_never_shown(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let set = acme
        .owner
        .gql(
            SET,
            json!({ "provider": "OpenAI", "secret": "sk-acme-secret-0001" }),
        )
        .await;
    assert_eq!(set.data("setProviderCredential")["provider"], "openai");
    assert_eq!(set.data("setProviderCredential")["lastFour"], "0001");
    // Setting it again replaces it.
    acme.owner
        .gql(
            SET,
            json!({ "provider": "openai", "secret": "sk-acme-secret-0002" }),
        )
        .await
        .data("setProviderCredential");
    let listed = acme.owner.gql(LIST, json!({})).await;
    assert_eq!(listed.data("providerCredentials").as_array().unwrap().len(), 1);
    assert_eq!(listed.data("providerCredentials")[0]["lastFour"], "0002");
    assert!(!listed.body.to_string().contains("sk-acme"));
    globex
        .owner
        .gql(
            SET,
            json!({ "provider": "openai", "secret": "sk-globex-secret-9999" }),
        )
        .await
        .data("setProviderCredential");

    let keyring = Keyring::parse(ENCRYPTION_KEYS).unwrap();
    let rows = stored(&app).await;
    assert_eq!(rows.len(), 2);
    let acme_id = Uuid::parse_str(&acme.id).unwrap();
    let globex_id = Uuid::parse_str(&globex.id).unwrap();
    let (_, _, acme_secret, acme_row) = rows.iter().find(|row| row.0 == acme_id).unwrap();
    let (_, _, _, globex_row) = rows.iter().find(|row| row.0 == globex_id).unwrap();
    assert!(acme_secret.starts_with("v2:test1:"), "{acme_secret}");
    assert!(!acme_secret.contains("sk-acme"));
    assert_eq!(
        keyring
            .decrypt(acme_secret, binding(acme_id, *acme_row))
            .unwrap()
            .expose_secret(),
        "sk-acme-secret-0002"
    );
    // Acme's ciphertext in Globex's row does not decrypt as Globex's.
    assert!(
        keyring
            .decrypt(acme_secret, binding(globex_id, *globex_row))
            .is_err()
    );

    // Not for members, not across tenants, and the audit trail holds no secret.
    let member = acme.member(&app, "MEMBER").await;
    assert_eq!(member.client.gql(LIST, json!({})).await.error_code(), "FORBIDDEN");
    let theirs = globex.owner.gql(LIST, json!({})).await;
    let globex_credential = theirs.data("providerCredentials")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(theirs.data("providerCredentials")[0]["lastFour"], "9999");
    let foreign_delete = acme
        .owner
        .gql(
            "mutation($id: ID!) { deleteProviderCredential(id: $id) }",
            json!({ "id": globex_credential }),
        )
        .await;
    assert_eq!(foreign_delete.error_code(), "NOT_FOUND");
    let trail = acme
        .owner
        .gql(
            "{ auditLog(filter: { action: \"setProviderCredential\" }) { edges { node { after } } } }",
            json!({}),
        )
        .await;
    let trail = trail.body.to_string();
    assert!(
        trail.contains("[REDACTED]") && !trail.contains("v2:test1"),
        "{trail}"
    );

    let bad = acme
        .owner
        .gql(SET, json!({ "provider": "open ai!", "secret": "x" }))
        .await;
    assert_eq!(bad.error_code(), "BAD_USER_INPUT");
    let empty = acme
        .owner
        .gql(SET, json!({ "provider": "openai", "secret": "  " }))
        .await;
    assert_eq!(empty.error_code(), "BAD_USER_INPUT");
}

/// Runs the binary on the test's database with other keys; its exit status and stderr.
pub(crate) fn run_with_keys(app: &TestApp, command: &str, keys: &str) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tenantql"));
    if !command.is_empty() {
        cmd.arg(command);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = cmd
        .envs(app.database_env())
        .env("JWT_SECRET", JWT_SECRET)
        .env("ENCRYPTION_KEYS", keys)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("AUTO_MIGRATE", "false")
        .env("WORKERS", "0")
        .env("LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            return (status.success(), text);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return (true, "still running".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn keys_rotate_and_wrong_keys_stop_the_server_at_start(app: TestApp) {
    let acme = app.org("Acme").await;
    acme.owner
        .gql(
            SET,
            json!({ "provider": "openai", "secret": "sk-rotate-me-4242" }),
        )
        .await
        .data("setProviderCredential");

    let stranger = Keyring::generate_entry("test1");
    let (ok, output) = run_with_keys(&app, "", &stranger);
    assert!(!ok && output.contains("does not decrypt"), "{output}");
    let (ok, output) = run_with_keys(&app, "", &Keyring::generate_entry("k9"));
    assert!(!ok && output.contains("lacks key"), "{output}");

    let newer = format!("{},{ENCRYPTION_KEYS}", Keyring::generate_entry("k2"));
    let (ok, output) = run_with_keys(&app, "rotate-keys", &newer);
    assert!(ok, "{output}");
    let rows = stored(&app).await;
    assert!(rows[0].2.starts_with("v2:k2:"), "{}", rows[0].2);
    let keyring = Keyring::parse(&newer).unwrap();
    let org = Uuid::parse_str(&acme.id).unwrap();
    assert_eq!(
        keyring
            .decrypt(&rows[0].2, binding(org, rows[0].3))
            .unwrap()
            .expose_secret(),
        "sk-rotate-me-4242"
    );
    // Again: nothing left to do, nothing changed.
    let (ok, output) = run_with_keys(&app, "rotate-keys", &newer);
    assert!(ok && output.contains("\"rotated\":0"), "{output}");
    assert_eq!(stored(&app).await[0].2, rows[0].2);
}

const CODE: &str = "mutation($p: ID!) { createPairingCode(projectId: $p) { code projectId expiresAt } }";
const PAIR: &str = "mutation($code: String!, $chat: String!) {
    pairChat(input: { code: $code, chatId: $chat, platform: \"telegram\" }) { id projectId platform chatId } }";
const PAIRINGS: &str = "query($p: ID!) { chatPairings(projectId: $p) { chatId platform } }";

async fn a_pairing_code_pairs_one_chat_once_within_its_tenant(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let project = acme.project("Support").await;
    let created = acme.owner.gql(CODE, json!({ "p": project })).await;
    let code = created.data("createPairingCode")["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    let expires: chrono::DateTime<chrono::Utc> = created.data("createPairingCode")["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let minutes = (expires - chrono::Utc::now()).num_minutes();
    assert!((14..=15).contains(&minutes), "{minutes}");

    // Another tenant's bot cannot use it, nor can a person.
    let their_bot = globex.api_key(&app, "MEMBER", None).await;
    let stolen = their_bot.gql(PAIR, json!({ "code": code, "chat": "c-1" })).await;
    assert_eq!(stolen.error_code(), "BAD_USER_INPUT");
    let by_person = acme.owner.gql(PAIR, json!({ "code": code, "chat": "c-1" })).await;
    assert_eq!(by_person.error_code(), "FORBIDDEN");

    let bot = acme.api_key(&app, "MEMBER", None).await;
    let paired = bot.gql(PAIR, json!({ "code": code, "chat": "c-1" })).await;
    assert_eq!(paired.data("pairChat")["projectId"], project.as_str());
    assert_eq!(paired.data("pairChat")["chatId"], "c-1");
    let again = bot.gql(PAIR, json!({ "code": code, "chat": "c-2" })).await;
    assert_eq!(again.error_code(), "BAD_USER_INPUT");

    let listed = acme.owner.gql(PAIRINGS, json!({ "p": project })).await;
    assert_eq!(
        listed.data("chatPairings"),
        &json!([{ "chatId": "c-1", "platform": "telegram" }])
    );
    let foreign = globex.owner.gql(PAIRINGS, json!({ "p": project })).await;
    assert_eq!(foreign.error_code(), "NOT_FOUND");
    let foreign_code = globex.owner.gql(CODE, json!({ "p": project })).await;
    assert_eq!(foreign_code.error_code(), "NOT_FOUND");
    let viewer = acme.member(&app, "VIEWER").await;
    assert_eq!(
        viewer
            .client
            .gql(CODE, json!({ "p": project }))
            .await
            .error_code(),
        "FORBIDDEN"
    );

    // An expired code is refused like a wrong one.
    let stale = acme.owner.gql(CODE, json!({ "p": project })).await;
    let stale = stale.data("createPairingCode")["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let db = app.owner_connection().await;
    db.execute_unprepared("UPDATE pairing_codes SET expires_at = created_at WHERE used_at IS NULL")
        .await
        .unwrap();
    let expired = bot.gql(PAIR, json!({ "code": stale, "chat": "c-3" })).await;
    assert_eq!(expired.error_code(), "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_pairing_codes_is_stopped_per_key_and_per_address() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.rate_limits.pairing_attempts_per_minute = 5;
        config.rate_limits.auth_attempts_per_minute = 8;
    })
    .await
    .unwrap();
    let acme = app.org("Acme").await;
    let project = acme.project("Support").await;
    let code = acme.owner.gql(CODE, json!({ "p": project })).await;
    let code = code.data("createPairingCode")["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = if code == "000000" { "000001" } else { "000000" };

    let bot = acme
        .api_key(&app, "MEMBER", None)
        .await
        .header("x-forwarded-for", "198.51.100.20");
    for _ in 0..5 {
        let guess = bot.gql(PAIR, json!({ "code": wrong, "chat": "c" })).await;
        assert_eq!(guess.error_code(), "BAD_USER_INPUT");
    }
    let stopped = bot.gql(PAIR, json!({ "code": code, "chat": "c" })).await;
    assert_eq!(stopped.error_code(), "RATE_LIMITED");

    // A second key from the same address gets the address's remaining three tries.
    let other = acme
        .api_key(&app, "MEMBER", None)
        .await
        .header("x-forwarded-for", "198.51.100.20");
    for _ in 0..3 {
        let guess = other.gql(PAIR, json!({ "code": wrong, "chat": "c" })).await;
        assert_eq!(guess.error_code(), "BAD_USER_INPUT");
    }
    let stopped = other.gql(PAIR, json!({ "code": code, "chat": "c" })).await;
    assert_eq!(stopped.error_code(), "RATE_LIMITED");

    // From elsewhere, a fresh key pairs with the right code.
    let honest = acme
        .api_key(&app, "MEMBER", None)
        .await
        .header("x-forwarded-for", "192.0.2.80");
    let paired = honest.gql(PAIR, json!({ "code": code, "chat": "c" })).await;
    assert_eq!(paired.data("pairChat")["chatId"], "c");
}

backend_tests!(
    credentials_are_encrypted_bound_to_their_tenant_and_never_shown,
    keys_rotate_and_wrong_keys_stop_the_server_at_start,
    a_pairing_code_pairs_one_chat_once_within_its_tenant,
);
