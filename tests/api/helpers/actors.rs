//! Who the tests act as: organizations signed up through the API with their owners, members,
//! API keys and projects, and access tokens signed like the server's.

use serde_json::json;

use super::{Client, JWT_SECRET, TestApp};

/// A tenant created for a test, with its owner's client.
pub struct Org {
    pub id: String,
    pub slug: String,
    pub owner: Client,
    pub owner_user_id: String,
}

/// A person added to an organization: their client acts in that organization.
pub struct Person {
    pub client: Client,
    pub user_id: String,
}

impl Org {
    /// Signs up a new person with their own organization named `name`.
    pub(super) async fn sign_up(app: &TestApp, name: &str) -> Self {
        let email = format!(
            "owner-{}@{}.example.com",
            uuid::Uuid::new_v4().simple(),
            name.to_lowercase()
        );
        let signed_up = app.signup(&email, name).await;
        let org_id = signed_up["organization"]["id"]
            .as_str()
            .expect("organization id")
            .to_owned();
        let owner = app
            .anonymous()
            .bearer(signed_up["accessToken"].as_str().expect("token"));
        Org {
            id: org_id.clone(),
            slug: signed_up["organization"]["slug"]
                .as_str()
                .expect("slug")
                .to_owned(),
            owner: owner.in_org(&org_id),
            owner_user_id: signed_up["user"]["id"].as_str().expect("user id").to_owned(),
        }
    }

    /// Signs up a new person and has the owner add them with `role` (OWNER, ADMIN, MEMBER, VIEWER).
    pub async fn member(&self, app: &TestApp, role: &str) -> Person {
        let email = format!(
            "{}-{}@example.com",
            role.to_lowercase(),
            uuid::Uuid::new_v4().simple()
        );
        let signed_up = app.signup(&email, "Own Org").await;
        let added = self
            .owner
            .gql(
                "mutation($input: AddMemberInput!) { addMember(input: $input) { userId role } }",
                json!({ "input": { "email": email, "role": role } }),
            )
            .await;
        assert_eq!(added.data("addMember")["role"], role);
        let token = signed_up["accessToken"].as_str().expect("token");
        Person {
            client: app.anonymous().bearer(token).in_org(&self.id),
            user_id: signed_up["user"]["id"].as_str().expect("user id").to_owned(),
        }
    }

    /// An API key of this organization with `role`, optionally restricted to a project.
    pub async fn api_key(&self, app: &TestApp, role: &str, project_id: Option<&str>) -> Client {
        let created = self
            .owner
            .gql(
                "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { id } } }",
                json!({ "input": { "name": "bot", "role": role, "projectId": project_id } }),
            )
            .await;
        let key = created.data("createApiKey")["key"]
            .as_str()
            .expect("key")
            .to_owned();
        app.anonymous().header("x-api-key", &key)
    }

    /// Creates a project as the owner and returns its id.
    pub async fn project(&self, name: &str) -> String {
        let created = self
            .owner
            .gql(
                "mutation($input: CreateProjectInput!) { createProject(input: $input) { id } }",
                json!({ "input": { "name": name } }),
            )
            .await;
        created.data("createProject")["id"]
            .as_str()
            .expect("project id")
            .to_owned()
    }
}

/// An access token for `user` that expires in `seconds`, signed like the server's.
pub fn access_token(user: &str, seconds: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "sub": user, "sid": uuid::Uuid::now_v7(), "iss": "tenantql", "aud": "tenantql-api",
        "iat": now, "nbf": now, "exp": now + seconds });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("token")
}
