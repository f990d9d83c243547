//! `echo`: deterministic steps for demos, tests and benchmarks. Configuration:
//! `{"steps": 3, "delayMs": 0, "output": …, "failAttempts": 0, "costCentsPerStep": 0}`:
//! `steps` progress events `delayMs` apart, then `output` (default `{"echo": input}`); the
//! first `failAttempts` attempts fail after their first step, to show retries; each step
//! charges `costCentsPerStep` to the organization, to show budgets; with `artifact` the
//! output is also saved under that name in the job's folder of the workspace.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{RunError, Runner, Steps};
use crate::integrations::workspaces::checked_path;

const MAX_STEPS: u32 = 1_000;
const MAX_DELAY_MS: u64 = 60_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_steps")]
    steps: u32,
    #[serde(default)]
    delay_ms: u64,
    output: Option<Value>,
    #[serde(default)]
    fail_attempts: i32,
    #[serde(default)]
    cost_cents_per_step: i64,
    artifact: Option<String>,
}

fn default_steps() -> u32 {
    3
}

pub struct Echo;

impl Runner for Echo {
    type Config = Config;

    fn check(config: &Config) -> Result<(), String> {
        if config.steps > MAX_STEPS {
            return Err(format!("echo: steps must be at most {MAX_STEPS}"));
        }
        if config.delay_ms > MAX_DELAY_MS {
            return Err(format!("echo: delayMs must be at most {MAX_DELAY_MS}"));
        }
        if config.cost_cents_per_step < 0 {
            return Err("echo: costCentsPerStep cannot be negative".into());
        }
        if let Some(name) = &config.artifact
            && (name.contains('/') || checked_path(name).is_err())
        {
            return Err("echo: artifact must be a plain file name".into());
        }
        Ok(())
    }

    fn estimated_cost_cents(config: &Config) -> i64 {
        i64::from(config.steps).saturating_mul(config.cost_cents_per_step)
    }

    async fn run(config: Config, input: &Value, steps: &mut impl Steps) -> Result<Value, RunError> {
        let failing = steps.attempt() <= config.fail_attempts;
        for step in 1..=config.steps {
            if config.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(config.delay_ms)).await;
            }
            let progress = (step * 100 / config.steps.max(1)) as i32;
            if config.cost_cents_per_step > 0 {
                steps.record_usage("echo", 0, config.cost_cents_per_step).await?;
            }
            steps
                .progress(progress, format!("step {step} of {}", config.steps))
                .await?;
            if failing {
                return Err(RunError::Failed(format!(
                    "echo fails attempt {} as configured",
                    steps.attempt()
                )));
            }
        }
        if failing {
            return Err(RunError::Failed(format!(
                "echo fails attempt {} as configured",
                steps.attempt()
            )));
        }
        let output = config.output.unwrap_or_else(|| json!({ "echo": input }));
        if let Some(name) = &config.artifact {
            steps.save_artifact(name, output.to_string().as_bytes()).await?;
        }
        Ok(output)
    }
}
