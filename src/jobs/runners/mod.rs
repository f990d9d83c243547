//! Runners execute an agent's job. One file per runner; each checks its own configuration
//! and reports progress through [`Steps`], where cancellation and lost leases surface.

pub mod echo;

use std::future::Future;

use serde_json::Value;

/// Every agent kind there is a runner for.
pub const KINDS: &[&str] = &["echo"];

/// Why a run stopped before its end without failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Someone cancelled the job.
    Cancelled,
    /// The worker no longer holds the job (its lease expired and another took it over).
    LostLease,
    /// The worker is shutting down; the job goes back to the queue.
    ShuttingDown,
}

#[derive(Debug)]
pub enum RunError {
    Stop(Stop),
    /// The run failed; it is retried while attempts remain.
    Failed(String),
}

impl From<Stop> for RunError {
    fn from(stop: Stop) -> Self {
        RunError::Stop(stop)
    }
}

/// What a runner may do while it runs.
pub trait Steps: Send {
    /// Records progress (0–100) as an event. Fails when the run must stop here.
    fn progress(&mut self, progress: i32, message: String) -> impl Future<Output = Result<(), Stop>> + Send;
    /// 1 for the first attempt.
    fn attempt(&self) -> i32;
    /// Charges what the run used to its organization's monthly usage.
    fn record_usage(
        &mut self,
        service: &str,
        tokens: i64,
        cost_cents: i64,
    ) -> impl Future<Output = Result<(), Stop>> + Send;
}

pub trait Runner {
    /// Checks an agent's configuration when it is created or changed.
    fn check_config(config: &Value) -> Result<(), String>;
    /// What one run is expected to cost, checked against the budget before it is queued.
    fn estimated_cost_cents(_config: &Value) -> i64 {
        0
    }
    fn run(
        config: &Value,
        input: &Value,
        steps: &mut impl Steps,
    ) -> impl Future<Output = Result<Value, RunError>> + Send;
}

pub fn check_config(kind: &str, config: &Value) -> Result<(), String> {
    match kind {
        "echo" => echo::Echo::check_config(config),
        other => Err(format!("no runner for kind {other:?}")),
    }
}

pub fn estimated_cost_cents(kind: &str, config: &Value) -> i64 {
    match kind {
        "echo" => echo::Echo::estimated_cost_cents(config),
        _ => 0,
    }
}

pub async fn run(
    kind: &str,
    config: &Value,
    input: &Value,
    steps: &mut impl Steps,
) -> Result<Value, RunError> {
    match kind {
        "echo" => echo::Echo::run(config, input, steps).await,
        other => Err(RunError::Failed(format!("no runner for kind {other:?}"))),
    }
}
