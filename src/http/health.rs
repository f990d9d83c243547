//! Liveness and readiness probes, and the metrics scrape.

use std::sync::Arc;
use std::time::Duration;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use super::HttpState;
use crate::telemetry;
use crate::tenancy::unscoped;

/// 200 while the process serves; touches nothing else.
#[handler]
pub fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 only when the database answers within a second and the server is not stopping;
/// otherwise 503 naming the failed check.
#[handler]
pub async fn readyz(Data(state): Data<&Arc<HttpState>>) -> Response {
    if *state.draining.borrow() {
        return Json(json!({ "status": "stopping" }))
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response();
    }
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

/// Prometheus text format. Queue depth and pool figures are read now, at scrape time.
#[handler]
pub async fn metrics(Data(state): Data<&Arc<HttpState>>) -> Response {
    let db = &state.services().db;
    let tenant_db = &state.services().tenant_db;
    let (in_use, idle) = tenant_db.pool_connections();
    telemetry::metrics::db_pool("tenant", in_use, idle);
    let (statements, transactions) = tenant_db.round_trips().counts();
    telemetry::metrics::db_round_trips("tenant", statements, transactions);
    // On SQLite both are one pool, counted once.
    if db.backend() == sea_orm::DbBackend::Postgres {
        let (in_use, idle) = db.pool_connections();
        telemetry::metrics::db_pool("owner", in_use, idle);
        let (statements, transactions) = db.round_trips().counts();
        telemetry::metrics::db_round_trips("owner", statements, transactions);
    }
    match tokio::time::timeout(
        Duration::from_secs(1),
        unscoped::job_queue::jobs_waiting_or_running(db),
    )
    .await
    {
        Ok(Ok(counts)) => {
            for (status, count) in counts {
                telemetry::metrics::jobs(status, count);
            }
        }
        Ok(Err(error)) => tracing::warn!(error = format!("{error:#}"), "counting jobs for metrics failed"),
        Err(_) => tracing::warn!("counting jobs for metrics timed out"),
    }
    let handle = telemetry::metrics::handle();
    handle.run_upkeep();
    handle
        .render()
        .with_content_type("text/plain; version=0.0.4; charset=utf-8")
        .into_response()
}
