//! Signup, login, refresh rotation and reuse, logout, and token checks.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{JWT_SECRET, PASSWORD, TestApp};

backend_tests!(
    signup_makes_the_caller_owner_of_a_new_organization,
    login_rejects_wrong_password_and_unknown_email_alike,
    refresh_rotates_and_reuse_revokes_the_whole_chain,
    logout_revokes_the_refresh_token,
    forged_expired_and_foreign_algorithm_tokens_are_unauthenticated,
    duplicate_signup_email_is_bad_input,
);

const ME: &str =
    "{ me { id email displayName isPlatformAdmin memberships { role organization { id slug } } } }";
const LOGIN: &str =
    "mutation($input: LoginInput!) { login(input: $input) { accessToken refreshToken organization { id } } }";
const REFRESH: &str = "mutation($token: String!) { refreshSession(refreshToken: $token) { accessToken refreshToken user { email } } }";

async fn signup_makes_the_caller_owner_of_a_new_organization(app: TestApp) {
    let signed_up = app.signup("Ann@Example.com", "Acme Studio").await;
    assert_eq!(signed_up["user"]["email"], "ann@example.com");
    assert_eq!(signed_up["organization"]["slug"], "acme-studio");
    assert_eq!(signed_up["expiresIn"], 900);

    let me = app
        .anonymous()
        .bearer(signed_up["accessToken"].as_str().unwrap())
        .gql(ME, json!({}))
        .await;
    let me = me.data("me");
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["isPlatformAdmin"], false);
    assert_eq!(
        me["memberships"],
        json!([{ "role": "OWNER", "organization": {
        "id": signed_up["organization"]["id"], "slug": "acme-studio" } }])
    );

    // A second organization of the same name gets a distinct slug.
    let other = app.signup("bob@example.com", "Acme Studio").await;
    assert_ne!(other["organization"]["slug"], "acme-studio");
    assert!(
        other["organization"]["slug"]
            .as_str()
            .unwrap()
            .starts_with("acme-studio-")
    );
}

async fn login_rejects_wrong_password_and_unknown_email_alike(app: TestApp) {
    app.signup("carol@example.com", "Carol Co").await;
    let client = app.anonymous();
    let ok = client
        .gql(
            LOGIN,
            json!({ "input": { "email": "CAROL@example.com", "password": PASSWORD } }),
        )
        .await;
    assert!(ok.data("login")["accessToken"].is_string());
    assert!(ok.data("login")["organization"]["id"].is_string());

    let wrong = client
        .gql(
            LOGIN,
            json!({ "input": { "email": "carol@example.com", "password": "Wrong-horse-42" } }),
        )
        .await;
    let unknown = client
        .gql(
            LOGIN,
            json!({ "input": { "email": "nobody@example.com", "password": PASSWORD } }),
        )
        .await;
    let malformed = client
        .gql(
            LOGIN,
            json!({ "input": { "email": "not-an-email", "password": PASSWORD } }),
        )
        .await;
    for response in [&wrong, &unknown, &malformed] {
        assert_eq!(response.error_code(), "UNAUTHENTICATED");
        assert_eq!(
            response.body["errors"][0]["message"],
            wrong.body["errors"][0]["message"]
        );
    }
}

async fn refresh_rotates_and_reuse_revokes_the_whole_chain(app: TestApp) {
    let signed_up = app.signup("dan@example.com", "Dan Co").await;
    let client = app.anonymous();
    let first = signed_up["refreshToken"].as_str().unwrap().to_owned();

    let rotated = client.gql(REFRESH, json!({ "token": first })).await;
    let second = rotated.data("refreshSession")["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    let access = rotated.data("refreshSession")["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        client.bearer(&access).gql(ME, json!({})).await.data("me")["email"],
        "dan@example.com"
    );

    // Presenting the already-rotated token again: refused, and the chain is revoked...
    let reused = client.gql(REFRESH, json!({ "token": first })).await;
    assert_eq!(reused.error_code(), "UNAUTHENTICATED");
    // ...so the newest token of the chain no longer works either.
    let after_reuse = client.gql(REFRESH, json!({ "token": second })).await;
    assert_eq!(after_reuse.error_code(), "UNAUTHENTICATED");

    // Another sign-in of the same user is unaffected.
    let login = client
        .gql(
            LOGIN,
            json!({ "input": { "email": "dan@example.com", "password": PASSWORD } }),
        )
        .await;
    let other_chain = login.data("login")["refreshToken"].as_str().unwrap().to_owned();
    assert!(
        client
            .gql(REFRESH, json!({ "token": other_chain }))
            .await
            .data("refreshSession")
            .is_object()
    );

    let garbage = client.gql(REFRESH, json!({ "token": "not-a-token" })).await;
    assert_eq!(garbage.error_code(), "UNAUTHENTICATED");
}

async fn logout_revokes_the_refresh_token(app: TestApp) {
    let signed_up = app.signup("erin@example.com", "Erin Co").await;
    let client = app.anonymous().bearer(signed_up["accessToken"].as_str().unwrap());
    assert_eq!(
        client.gql("mutation { logout }", json!({})).await.data("logout"),
        true
    );
    let refresh = app
        .anonymous()
        .gql(REFRESH, json!({ "token": signed_up["refreshToken"] }))
        .await;
    assert_eq!(refresh.error_code(), "UNAUTHENTICATED");
    // Logging out needs a signed-in user.
    assert_eq!(
        app.anonymous()
            .gql("mutation { logout }", json!({}))
            .await
            .error_code(),
        "UNAUTHENTICATED"
    );
}

fn token(algorithm: Algorithm, secret: &[u8], claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

async fn forged_expired_and_foreign_algorithm_tokens_are_unauthenticated(app: TestApp) {
    let signed_up = app.signup("fay@example.com", "Fay Co").await;
    let user_id = signed_up["user"]["id"].clone();
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64, aud: &str| {
        json!({ "sub": user_id, "sid": uuid::Uuid::now_v7(), "iss": "tenantql", "aud": aud,
                "iat": now, "nbf": now - 10, "exp": exp })
    };
    let valid = token(
        Algorithm::HS256,
        JWT_SECRET.as_bytes(),
        claims(now + 600, "tenantql-api"),
    );
    assert_eq!(
        app.anonymous().bearer(&valid).gql(ME, json!({})).await.data("me")["email"],
        "fay@example.com"
    );

    let unsigned = {
        let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
        let body = base64_url(claims(now + 600, "tenantql-api").to_string().as_bytes());
        format!("{header}.{body}.")
    };
    let forged = [
        token(
            Algorithm::HS256,
            JWT_SECRET.as_bytes(),
            claims(now - 120, "tenantql-api"),
        ),
        token(
            Algorithm::HS256,
            b"another-secret-another-secret-another",
            claims(now + 600, "tenantql-api"),
        ),
        token(
            Algorithm::HS512,
            JWT_SECRET.as_bytes(),
            claims(now + 600, "tenantql-api"),
        ),
        token(
            Algorithm::HS256,
            JWT_SECRET.as_bytes(),
            claims(now + 600, "someone-else"),
        ),
        unsigned,
        "tql_abcdefghij_0123456789012345678901234567890123456789".to_owned(),
        "garbage".to_owned(),
    ];
    for bad in forged {
        let response = app.anonymous().bearer(&bad).gql(ME, json!({})).await;
        assert_eq!(response.error_code(), "UNAUTHENTICATED", "accepted {bad}");
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn duplicate_signup_email_is_bad_input(app: TestApp) {
    app.signup("gus@example.com", "Gus Co").await;
    let again = app
        .anonymous()
        .gql(
            "mutation($input: SignupInput!) { signup(input: $input) { accessToken } }",
            json!({ "input": { "email": "GUS@example.com", "password": PASSWORD, "displayName": "Gus", "organizationName": "Other" } }),
        )
        .await;
    assert_eq!(again.error_code(), "BAD_USER_INPUT");
    assert_eq!(again.error_field(), Some("email"));
    // The failed signup left no organization behind: its derived slug is still free.
    let other = app.signup("hal@example.com", "Other").await;
    assert_eq!(other["organization"]["slug"], "other");
}
