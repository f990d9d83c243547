//! Campaigns and posts: per project, editors write, everyone in the project reads, and
//! nothing crosses a tenant or a project-restricted key's bounds.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::TestApp;

const CREATE_CAMPAIGN: &str = "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { id name projectId organizationId } }";
const CREATE_POST: &str =
    "mutation($input: CreatePostInput!) { createPost(input: $input) { id title status campaignId } }";
const CAMPAIGN: &str = "query($id: ID!) { campaign(id: $id) { name description } }";
const POST: &str = "query($id: ID!) { post(id: $id) { title body status } }";
const CAMPAIGNS: &str = "query($p: ID!) { campaigns(projectId: $p) { edges { node { id } } } }";
const POSTS: &str =
    "query($p: ID!, $c: ID) { posts(projectId: $p, campaignId: $c) { edges { node { id title } } } }";
const UPDATE_CAMPAIGN: &str =
    "mutation($id: ID!, $name: String) { updateCampaign(id: $id, input: { name: $name }) { name } }";
const UPDATE_POST: &str =
    "mutation($id: ID!) { updatePost(id: $id, input: { status: APPROVED }) { status } }";
const DELETE_CAMPAIGN: &str = "mutation($id: ID!) { deleteCampaign(id: $id) }";
const DELETE_POST: &str = "mutation($id: ID!) { deletePost(id: $id) }";

fn ids(list: &Value) -> usize {
    list["edges"].as_array().unwrap().len()
}

async fn campaigns_and_posts_are_written_by_editors_and_read_in_their_project(app: TestApp) {
    let acme = app.org("Acme").await;
    let project = acme.project("Spring").await;
    let campaign = acme
        .owner
        .gql(
            CREATE_CAMPAIGN,
            json!({ "input": { "projectId": project, "name": "Launch", "description": "April" } }),
        )
        .await;
    let campaign = campaign.data("createCampaign").clone();
    assert_eq!(campaign["organizationId"], acme.id.as_str());
    let campaign_id = campaign["id"].as_str().unwrap().to_owned();
    let post = acme
        .owner
        .gql(CREATE_POST, json!({ "input": { "projectId": project, "campaignId": campaign_id, "title": "Hello", "body": "First" } }))
        .await;
    assert_eq!(post.data("createPost")["status"], "DRAFT");
    let post_id = post.data("createPost")["id"].as_str().unwrap().to_owned();
    acme.owner
        .gql(
            CREATE_POST,
            json!({ "input": { "projectId": project, "title": "Loose" } }),
        )
        .await
        .data("createPost");

    assert_eq!(
        ids(acme.owner.gql(POSTS, json!({ "p": project })).await.data("posts")),
        2
    );
    assert_eq!(
        ids(acme
            .owner
            .gql(POSTS, json!({ "p": project, "c": campaign_id }))
            .await
            .data("posts")),
        1
    );
    assert_eq!(
        acme.owner
            .gql(UPDATE_POST, json!({ "id": post_id }))
            .await
            .data("updatePost")["status"],
        "APPROVED"
    );
    assert_eq!(
        acme.owner
            .gql(UPDATE_CAMPAIGN, json!({ "id": campaign_id, "name": "Launch 2" }))
            .await
            .data("updateCampaign")["name"],
        "Launch 2"
    );

    // Viewers read but do not write.
    let viewer = acme.member(&app, "VIEWER").await;
    assert_eq!(
        viewer
            .client
            .gql(POST, json!({ "id": post_id }))
            .await
            .data("post")["title"],
        "Hello"
    );
    assert_eq!(
        viewer
            .client
            .gql(UPDATE_POST, json!({ "id": post_id }))
            .await
            .error_code(),
        "FORBIDDEN"
    );
    assert_eq!(
        viewer
            .client
            .gql(DELETE_POST, json!({ "id": post_id }))
            .await
            .error_code(),
        "FORBIDDEN"
    );
    let by_viewer = viewer
        .client
        .gql(
            CREATE_POST,
            json!({ "input": { "projectId": project, "title": "Nope" } }),
        )
        .await;
    assert_eq!(by_viewer.error_code(), "FORBIDDEN");

    // Bad input writes nothing.
    let empty = acme
        .owner
        .gql(
            CREATE_POST,
            json!({ "input": { "projectId": project, "title": " " } }),
        )
        .await;
    assert_eq!(empty.error_code(), "BAD_USER_INPUT");
    assert_eq!(empty.error_field(), Some("title"));
    let other_project = acme.project("Autumn").await;
    let misplaced = acme
        .owner
        .gql(
            CREATE_POST,
            json!({ "input": { "projectId": other_project, "campaignId": campaign_id, "title": "x" } }),
        )
        .await;
    assert_eq!(misplaced.error_code(), "BAD_USER_INPUT");
    assert_eq!(
        ids(acme
            .owner
            .gql(POSTS, json!({ "p": other_project }))
            .await
            .data("posts")),
        0
    );

    // Deleting the campaign takes its posts with it.
    assert_eq!(
        acme.owner
            .gql(DELETE_CAMPAIGN, json!({ "id": campaign_id }))
            .await
            .data("deleteCampaign"),
        campaign_id.as_str()
    );
    assert_eq!(
        acme.owner.gql(POST, json!({ "id": post_id })).await.error_code(),
        "NOT_FOUND"
    );
    assert_eq!(
        ids(acme.owner.gql(POSTS, json!({ "p": project })).await.data("posts")),
        1
    );
}

async fn content_of_another_tenant_or_project_is_not_found(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let project = acme.project("Spring").await;
    let other = acme.project("Other").await;
    let campaign = acme
        .owner
        .gql(
            CREATE_CAMPAIGN,
            json!({ "input": { "projectId": project, "name": "C" } }),
        )
        .await;
    let campaign = campaign.data("createCampaign")["id"].as_str().unwrap().to_owned();
    let post = acme
        .owner
        .gql(
            CREATE_POST,
            json!({ "input": { "projectId": project, "title": "P" } }),
        )
        .await;
    let post = post.data("createPost")["id"].as_str().unwrap().to_owned();

    let outsider = &globex.owner;
    let bounded = acme.api_key(&app, "MEMBER", Some(&other)).await;
    for client in [outsider, &bounded] {
        assert_eq!(
            client.gql(CAMPAIGN, json!({ "id": campaign })).await.error_code(),
            "NOT_FOUND"
        );
        assert_eq!(
            client.gql(POST, json!({ "id": post })).await.error_code(),
            "NOT_FOUND"
        );
        assert_eq!(
            client.gql(CAMPAIGNS, json!({ "p": project })).await.error_code(),
            "NOT_FOUND"
        );
        assert_eq!(
            client.gql(POSTS, json!({ "p": project })).await.error_code(),
            "NOT_FOUND"
        );
        assert_eq!(
            client
                .gql(UPDATE_CAMPAIGN, json!({ "id": campaign, "name": "X" }))
                .await
                .error_code(),
            "NOT_FOUND"
        );
        assert_eq!(
            client.gql(UPDATE_POST, json!({ "id": post })).await.error_code(),
            "NOT_FOUND"
        );
        assert_eq!(
            client
                .gql(DELETE_CAMPAIGN, json!({ "id": campaign }))
                .await
                .error_code(),
            "NOT_FOUND"
        );
        assert_eq!(
            client.gql(DELETE_POST, json!({ "id": post })).await.error_code(),
            "NOT_FOUND"
        );
        let planted = client
            .gql(
                CREATE_POST,
                json!({ "input": { "projectId": project, "title": "x" } }),
            )
            .await;
        assert_eq!(planted.error_code(), "NOT_FOUND");
    }
    // Untouched.
    assert_eq!(
        acme.owner.gql(POST, json!({ "id": post })).await.data("post")["status"],
        "DRAFT"
    );
    assert_eq!(
        ids(acme.owner.gql(POSTS, json!({ "p": project })).await.data("posts")),
        1
    );
    assert_eq!(
        acme.owner
            .gql(CAMPAIGN, json!({ "id": campaign }))
            .await
            .data("campaign")["name"],
        "C"
    );
}

backend_tests!(
    campaigns_and_posts_are_written_by_editors_and_read_in_their_project,
    content_of_another_tenant_or_project_is_not_found,
);
