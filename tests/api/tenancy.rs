//! Resolving the active organization: header (id or slug), subdomain, cookie, API key, only membership.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{BASE_DOMAIN, TestApp};

backend_tests!(
    each_way_of_naming_the_organization_selects_it,
    several_organizations_need_one_named_and_strangers_are_forbidden,
    api_keys_act_in_their_own_organization_only,
    a_new_slug_names_the_organization_at_once,
);

const ACTIVE: &str = "{ organization { id slug } }";

async fn each_way_of_naming_the_organization_selects_it(app: TestApp) {
    let acme = app.org("Acme").await;
    let owner = acme.owner.without("x-organization-id");
    // The user's only organization, with nothing named.
    assert_eq!(
        owner.gql(ACTIVE, json!({})).await.data("organization")["id"],
        acme.id.as_str()
    );

    // A second organization makes the choice explicit.
    let created = owner
        .gql(
            "mutation { createOrganization(input: { name: \"Beta Labs\" }) { id slug } }",
            json!({}),
        )
        .await;
    let beta_id = created.data("createOrganization")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let beta_slug = created.data("createOrganization")["slug"]
        .as_str()
        .unwrap()
        .to_owned();

    let by_header_id = owner.in_org(&beta_id).gql(ACTIVE, json!({})).await;
    assert_eq!(by_header_id.data("organization")["id"], beta_id.as_str());
    let by_header_slug = owner.in_org(&acme.slug).gql(ACTIVE, json!({})).await;
    assert_eq!(by_header_slug.data("organization")["id"], acme.id.as_str());
    let by_subdomain = owner
        .header("host", &format!("{beta_slug}.{BASE_DOMAIN}"))
        .gql(ACTIVE, json!({}))
        .await;
    assert_eq!(by_subdomain.data("organization")["id"], beta_id.as_str());
    let by_cookie = owner
        .header("cookie", &format!("theme=dark; organization_id={beta_id}"))
        .gql(ACTIVE, json!({}))
        .await;
    assert_eq!(by_cookie.data("organization")["id"], beta_id.as_str());

    // The header outranks the subdomain, which outranks the cookie.
    let header_wins = owner
        .in_org(&acme.id)
        .header("host", &format!("{beta_slug}.{BASE_DOMAIN}"))
        .header("cookie", &format!("organization_id={beta_id}"))
        .gql(ACTIVE, json!({}))
        .await;
    assert_eq!(header_wins.data("organization")["id"], acme.id.as_str());
    let subdomain_wins = owner
        .header("host", &format!("{}.{BASE_DOMAIN}", acme.slug))
        .header("cookie", &format!("organization_id={beta_id}"))
        .gql(ACTIVE, json!({}))
        .await;
    assert_eq!(subdomain_wins.data("organization")["id"], acme.id.as_str());
}

async fn several_organizations_need_one_named_and_strangers_are_forbidden(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let person = acme.member(&app, "MEMBER").await; // also owns the organization they signed up with
    let unnamed = person
        .client
        .without("x-organization-id")
        .gql(ACTIVE, json!({}))
        .await;
    assert_eq!(unnamed.error_code(), "TENANT_REQUIRED");
    // `me` needs no tenant.
    let me = person
        .client
        .without("x-organization-id")
        .gql("{ me { memberships { role } } }", json!({}))
        .await;
    assert_eq!(me.data("me")["memberships"].as_array().unwrap().len(), 2);

    for stranger in [
        globex.id.as_str(),
        globex.slug.as_str(),
        "00000000-0000-0000-0000-000000000000",
        "no-such-org",
    ] {
        let response = person.client.in_org(stranger).gql(ACTIVE, json!({})).await;
        assert_eq!(response.error_code(), "FORBIDDEN", "naming {stranger}");
    }
}

async fn api_keys_act_in_their_own_organization_only(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let key = acme.api_key(&app, "MEMBER", None).await;
    assert_eq!(
        key.gql(ACTIVE, json!({})).await.data("organization")["id"],
        acme.id.as_str()
    );
    // The same key as a bearer token.
    let bearer = app.anonymous().bearer(key.headers["x-api-key"].to_str().unwrap());
    assert_eq!(
        bearer.gql(ACTIVE, json!({})).await.data("organization")["id"],
        acme.id.as_str()
    );
    assert_eq!(
        key.in_org(&acme.slug)
            .gql(ACTIVE, json!({}))
            .await
            .data("organization")["id"],
        acme.id.as_str()
    );
    assert_eq!(
        key.in_org(&globex.id).gql(ACTIVE, json!({})).await.error_code(),
        "FORBIDDEN"
    );
    // API keys have no user.
    assert_eq!(
        key.gql("{ me { id } }", json!({})).await.error_code(),
        "FORBIDDEN"
    );
}

/// The organizations a caller belongs to are kept for a few seconds between requests; a
/// renamed slug is the organization's name from the next request, the old one is nobody's.
async fn a_new_slug_names_the_organization_at_once(app: TestApp) {
    let acme = app.org("Acme").await;
    let by_slug = |slug: &str| acme.owner.in_org(slug);
    assert_eq!(
        by_slug(&acme.slug)
            .gql(ACTIVE, json!({}))
            .await
            .data("organization")["id"],
        acme.id.as_str()
    );
    acme.owner
        .gql(
            "mutation { updateOrganization(input: { slug: \"acme-renamed\" }) { slug } }",
            json!({}),
        )
        .await
        .data("updateOrganization");
    assert_eq!(
        by_slug("acme-renamed")
            .gql(ACTIVE, json!({}))
            .await
            .data("organization")["id"],
        acme.id.as_str()
    );
    assert_eq!(
        by_slug(&acme.slug).gql(ACTIVE, json!({})).await.error_code(),
        "FORBIDDEN"
    );
}
