//! The tests' GraphQL-over-HTTP client: a caller's credentials and organization as headers,
//! and the responses it reads.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Client {
    pub url: String,
    pub http: reqwest::Client,
    pub headers: HeaderMap,
}

impl Client {
    pub fn header(&self, name: &str, value: &str) -> Self {
        let mut client = self.clone();
        client.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
        client
    }

    pub fn bearer(&self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn in_org(&self, org: &str) -> Self {
        self.header("x-organization-id", org)
    }

    pub fn without(&self, name: &str) -> Self {
        let mut client = self.clone();
        client.headers.remove(name);
        client
    }

    pub async fn gql(&self, query: &str, variables: Value) -> GqlResponse {
        self.post_json(&json!({ "query": query, "variables": variables }))
            .await
    }

    /// POSTs any JSON body (a batch, a persisted query's extensions, …) as this client.
    pub async fn post_json(&self, body: &Value) -> GqlResponse {
        let response = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .json(body)
            .send()
            .await
            .expect("request sent");
        GqlResponse::read(response).await
    }

    /// The client's credentials and organization as a `connection_init` payload.
    pub fn init_payload(&self) -> Value {
        let mut payload = serde_json::Map::new();
        for (header, key) in [
            ("authorization", "Authorization"),
            ("x-api-key", "X-Api-Key"),
            ("x-organization-id", "X-Organization-Id"),
        ] {
            if let Some(value) = self.headers.get(header) {
                payload.insert(
                    key.into(),
                    Value::String(value.to_str().expect("ascii header").to_owned()),
                );
            }
        }
        Value::Object(payload)
    }
}

#[derive(Debug)]
pub struct GqlResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl GqlResponse {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            headers,
            body,
        }
    }

    /// The named root field, asserting the response had no errors.
    #[track_caller]
    pub fn data(&self, field: &str) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {:#}",
            self.body
        );
        &self.body["data"][field]
    }

    /// The first error's code.
    #[track_caller]
    pub fn error_code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error with a code: {:#}", self.body))
    }

    /// The first error's `field` extension (for BAD_USER_INPUT).
    pub fn error_field(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["field"].as_str()
    }
}

/// The tests' own HTTP client, which calls the server under test as its clients do.
#[expect(
    clippy::disallowed_methods,
    reason = "a test client calling the server under test, not the server's egress"
)]
pub fn test_client() -> reqwest::Client {
    reqwest::Client::new()
}
