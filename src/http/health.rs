//! Liveness and readiness probes.

use std::sync::Arc;
use std::time::Duration;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use super::HttpState;

/// 200 while the process serves; touches nothing else.
#[handler]
pub fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 only when the database answers within a second; otherwise 503 naming the failed check.
#[handler]
pub async fn readyz(Data(state): Data<&Arc<HttpState>>) -> Response {
    let ping = tokio::time::timeout(Duration::from_secs(1), state.services().db.ping()).await;
    match ping {
        Ok(Ok(())) => Json(json!({ "status": "ready", "checks": { "database": "ok" } })).into_response(),
        failure => {
            let reason = match failure {
                Ok(Err(error)) => format!("{error:#}"),
                _ => "timed out".to_owned(),
            };
            tracing::warn!(reason, "readiness check failed: database");
            Json(
                json!({ "status": "unavailable", "failed": "database", "checks": { "database": "failing" } }),
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
        }
    }
}
