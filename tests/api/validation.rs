//! Bad input: BAD_USER_INPUT naming the field, and nothing written.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{PASSWORD, TestApp};

backend_tests!(
    signup_input_is_checked_field_by_field,
    project_input_is_checked_and_nothing_is_written,
    pagination_arguments_are_checked
);

async fn signup_input_is_checked_field_by_field(app: TestApp) {
    let long = "x".repeat(10_000);
    let cases = [
        (
            json!({ "email": "not-an-email", "password": PASSWORD, "displayName": "A", "organizationName": "O" }),
            "email",
        ),
        (
            json!({ "email": "a@b.c@d.com", "password": PASSWORD, "displayName": "A", "organizationName": "O" }),
            "email",
        ),
        (
            json!({ "email": "a@example.com", "password": "short", "displayName": "A", "organizationName": "O" }),
            "password",
        ),
        (
            json!({ "email": "a@example.com", "password": "aaaaaaaaaaaa", "displayName": "A", "organizationName": "O" }),
            "password",
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "displayName": "  ", "organizationName": "O" }),
            "displayName",
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "displayName": long, "organizationName": "O" }),
            "displayName",
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "displayName": "A", "organizationName": "" }),
            "organizationName",
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "displayName": "A", "organizationName": long }),
            "organizationName",
        ),
    ];
    for (input, field) in cases {
        let response = app
            .anonymous()
            .gql(
                "mutation($input: SignupInput!) { signup(input: $input) { accessToken } }",
                json!({ "input": input }),
            )
            .await;
        assert_eq!(response.error_code(), "BAD_USER_INPUT", "{input}");
        assert_eq!(response.error_field(), Some(field), "{input}");
    }
    // None of the refused signups created the account.
    let login = app
        .anonymous()
        .gql("mutation { login(input: { email: \"a@example.com\", password: \"Correct-horse-42\" }) { accessToken } }", json!({}))
        .await;
    assert_eq!(login.error_code(), "UNAUTHENTICATED");
}

async fn project_input_is_checked_and_nothing_is_written(app: TestApp) {
    let acme = app.org("Acme").await;
    let existing = acme.project("Existing").await;
    let long = "x".repeat(10_000);
    let create = "mutation($input: CreateProjectInput!) { createProject(input: $input) { id } }";
    let cases = [
        (json!({ "name": "" }), "name"),
        (json!({ "name": "   " }), "name"),
        (json!({ "name": long }), "name"),
        (json!({ "name": "Ok", "slug": "Bad Slug!" }), "slug"),
        (json!({ "name": "Ok", "slug": "ab" }), "slug"),
        (json!({ "name": "Ok", "slug": "existing" }), "slug"),
        (json!({ "name": "Ok", "description": long }), "description"),
    ];
    for (input, field) in cases {
        let response = acme.owner.gql(create, json!({ "input": input })).await;
        assert_eq!(
            response.error_code(),
            "BAD_USER_INPUT",
            "{input}: {:#}",
            response.body
        );
        assert_eq!(response.error_field(), Some(field), "{input}");
    }
    let update =
        "mutation($id: ID!, $input: UpdateProjectInput!) { updateProject(id: $id, input: $input) { name } }";
    let bad_update = acme
        .owner
        .gql(update, json!({ "id": existing, "input": { "name": long } }))
        .await;
    assert_eq!(bad_update.error_field(), Some("name"));
    let malformed = acme
        .owner
        .gql("query { project(id: \"not-a-uuid\") { id } }", json!({}))
        .await;
    assert_eq!(malformed.error_code(), "BAD_USER_INPUT");
    assert_eq!(malformed.error_field(), Some("id"));

    let projects = acme
        .owner
        .gql("{ projects { edges { node { name slug } } } }", json!({}))
        .await;
    assert_eq!(
        projects.data("projects")["edges"],
        json!([{ "node": { "name": "Existing", "slug": "existing" } }])
    );

    // The same slug in another organization is fine.
    let globex = app.org("Globex").await;
    let ok = globex
        .owner
        .gql(create, json!({ "input": { "name": "Existing" } }))
        .await;
    assert!(ok.data("createProject")["id"].is_string());
}

async fn pagination_arguments_are_checked(app: TestApp) {
    let acme = app.org("Acme").await;
    for name in ["One", "Two", "Three"] {
        acme.project(name).await;
    }
    let page = |first: i64, after: Option<String>| {
        let owner = acme.owner.clone();
        async move {
            owner
                .gql(
                    "query($first: Int, $after: String) { projects(first: $first, after: $after) {
                        edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }",
                    json!({ "first": first, "after": after }),
                )
                .await
        }
    };
    let first = page(2, None).await;
    let first = first.data("projects");
    assert_eq!(first["edges"][0]["node"]["name"], "Three");
    assert_eq!(first["edges"][1]["node"]["name"], "Two");
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let second = page(2, first["pageInfo"]["endCursor"].as_str().map(str::to_owned)).await;
    assert_eq!(second.data("projects")["edges"][0]["node"]["name"], "One");
    assert_eq!(second.data("projects")["pageInfo"]["hasNextPage"], false);

    for first in [0, -1, 101] {
        let response = page(first, None).await;
        assert_eq!(response.error_field(), Some("first"), "first: {first}");
    }
    let bad_cursor = page(2, Some("%%%".into())).await;
    assert_eq!(bad_cursor.error_code(), "BAD_USER_INPUT");
    assert_eq!(bad_cursor.error_field(), Some("after"));
}
