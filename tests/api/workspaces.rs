//! Workspaces: each organization's files, written by its jobs, invisible to others, gone
//! with the organization.

use base64::Engine;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::TestApp;
use crate::jobs::{echo_agent, start_job, terminal, wait_for};

const FILES: &str = "{ workspaceFiles { path size } }";
const FILE: &str = "query($path: String!) { workspaceFileBase64(path: $path) }";

async fn job_artifacts_stay_in_their_organization_s_workspace(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let mut jobs = Vec::new();
    for org in [&acme, &globex] {
        let project = org.project("Files").await;
        let agent = echo_agent(
            &org.owner,
            json!({ "steps": 1, "artifact": "out.json", "output": { "by": org.id } }),
        )
        .await;
        let job = start_job(&org.owner, &agent, &project, json!({})).await;
        assert_eq!(wait_for(&org.owner, &job, terminal).await["status"], "SUCCEEDED");
        jobs.push(job);
    }
    let acme_path = format!("jobs/{}/out.json", jobs[0]);
    let listed = acme.owner.gql(FILES, json!({})).await;
    assert_eq!(listed.data("workspaceFiles").as_array().unwrap().len(), 1);
    assert_eq!(listed.data("workspaceFiles")[0]["path"], acme_path.as_str());
    let contents = acme.owner.gql(FILE, json!({ "path": acme_path })).await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(contents.data("workspaceFileBase64").as_str().unwrap())
        .unwrap();
    let written: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(written, json!({ "by": acme.id }));

    // Globex sees its own file only, and no path reaches Acme's.
    let theirs = globex.owner.gql(FILES, json!({})).await;
    assert_eq!(
        theirs.data("workspaceFiles")[0]["path"],
        format!("jobs/{}/out.json", jobs[1]).as_str()
    );
    assert_eq!(
        globex
            .owner
            .gql(FILE, json!({ "path": acme_path }))
            .await
            .error_code(),
        "NOT_FOUND"
    );
    let escape = format!("../{}/{acme_path}", acme.id);
    assert_eq!(
        globex
            .owner
            .gql(FILE, json!({ "path": escape }))
            .await
            .error_code(),
        "BAD_USER_INPUT"
    );
    let sneaky = acme
        .owner
        .gql(
            "mutation { createAgent(input: { name: \"x\", kind: \"echo\", config: { artifact: \"../../x\" } }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(sneaky.error_code(), "BAD_USER_INPUT");

    // Deleting the organization deletes its files, and only its files.
    acme.owner
        .gql("mutation { deleteOrganization }", json!({}))
        .await
        .data("deleteOrganization");
    assert!(!app.workspaces_dir.join(&acme.id).exists());
    assert!(app.workspaces_dir.join(&globex.id).exists());
}

backend_tests!(job_artifacts_stay_in_their_organization_s_workspace);
