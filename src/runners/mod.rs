//! Runners execute an agent's job. One file per runner; each checks its own configuration
//! and reports progress through [`Steps`], where cancellation and lost leases surface.
//! [`RunnerKind`] is the one list of kinds: a new runner is a file here and a variant there.

pub mod echo;
pub mod llm;
pub mod publish;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, bail};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::input::setting_entries;
use crate::integrations::credentials::ProviderEndpoints;
use crate::integrations::crypto::Keyring;
use crate::integrations::egress::{EgressError, Gate};
use crate::integrations::oauth::OAuth;
use crate::integrations::workspaces::Workspaces;

/// Every agent kind there is a runner for; an agent's `kind` column holds its [`name`](Self::name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerKind {
    Echo,
    Llm,
    Publish,
}

impl RunnerKind {
    pub const ALL: [RunnerKind; 3] = [RunnerKind::Echo, RunnerKind::Llm, RunnerKind::Publish];

    pub fn name(self) -> &'static str {
        match self {
            RunnerKind::Echo => "echo",
            RunnerKind::Llm => "llm",
            RunnerKind::Publish => "publish",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Checks an agent's configuration when it is created or changed.
    pub fn check_config(self, config: &Value) -> Result<(), String> {
        match self {
            RunnerKind::Echo => check::<echo::Echo>(self, config),
            RunnerKind::Llm => check::<llm::Llm>(self, config),
            RunnerKind::Publish => check::<publish::Publish>(self, config),
        }
    }

    /// What one run is expected to cost, checked against the budget before it is queued.
    pub fn estimated_cost_cents(self, config: &Value) -> i64 {
        match self {
            RunnerKind::Echo => estimate::<echo::Echo>(self, config),
            RunnerKind::Llm => estimate::<llm::Llm>(self, config),
            RunnerKind::Publish => estimate::<publish::Publish>(self, config),
        }
    }

    pub async fn run(self, config: &Value, input: &Value, steps: &mut impl Steps) -> Result<Value, RunError> {
        match self {
            RunnerKind::Echo => run::<echo::Echo>(self, config, input, steps).await,
            RunnerKind::Llm => run::<llm::Llm>(self, config, input, steps).await,
            RunnerKind::Publish => run::<publish::Publish>(self, config, input, steps).await,
        }
    }
}

/// What runners reach outside the database: the keys to the organization's credentials and
/// the endpoints they belong to, the egress gate (their only way out), and the price list
/// their usage is billed by.
pub struct Toolbox {
    pub keyring: Arc<Keyring>,
    pub oauth: Arc<OAuth>,
    pub workspaces: Workspaces,
    pub gate: Arc<Gate>,
    pub prices: Prices,
    pub llm_providers: ProviderEndpoints,
}

/// An organization's credential for a provider, and the one endpoint it may be sent to.
pub struct Credential {
    pub secret: SecretString,
    pub endpoint: String,
}

/// Cents per million tokens, by model; `*` is the price of models not listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices(HashMap<String, (u64, u64)>);

impl Prices {
    pub const DEFAULT: &str = "gpt-4o-mini=15/60,gpt-4o=250/1000,*=300/1200";

    /// `model=input/output[,…]`, in cents per million input and output tokens.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let mut prices = HashMap::new();
        for (model, price) in setting_entries(spec, '=', "LLM_PRICES entries are model=input/output")? {
            let (input, output) = price
                .split_once('/')
                .context("LLM_PRICES entries are model=input/output")?;
            let parse = |n: &str| {
                n.trim()
                    .parse::<u64>()
                    .with_context(|| format!("LLM_PRICES: {n:?} is not a whole number of cents"))
            };
            prices.insert(model.trim().to_owned(), (parse(input)?, parse(output)?));
        }
        if !prices.contains_key("*") {
            bail!("LLM_PRICES needs a `*` entry, the price of models it does not list");
        }
        Ok(Self(prices))
    }

    /// What `input` and `output` tokens of `model` cost, in millionths of a cent.
    pub fn cost_micro_cents(&self, model: &str, input: u64, output: u64) -> u64 {
        let (per_input, per_output) = self
            .0
            .get(model)
            .or_else(|| self.0.get("*"))
            .copied()
            .unwrap_or_default();
        input.saturating_mul(per_input) + output.saturating_mul(per_output)
    }
}

/// Why a run stopped before its end without failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Someone cancelled the job.
    Cancelled,
    /// The organization's monthly budget ran out; the job fails without retries.
    BudgetExceeded,
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
    /// The run failed in a way retrying cannot fix (a refused credential, a bad request).
    Fatal(String),
}

/// A failure the gate reports in its own words; retried only when it may pass (a lost
/// connection), not when the gate refused the call or cut the answer off.
impl From<EgressError> for RunError {
    fn from(error: EgressError) -> Self {
        if error.is_transient() {
            RunError::Failed(format!("the provider failed: {error}"))
        } else {
            RunError::Fatal(error.to_string())
        }
    }
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
    fn tools(&self) -> &Toolbox;
    /// The organization's credential for `provider`, decrypted, with its endpoint.
    fn credential(
        &mut self,
        provider: &str,
    ) -> impl Future<Output = Result<Option<Credential>, RunError>> + Send;
    /// The access token of the organization's connected `provider` account, refreshed if
    /// it is about to expire.
    fn account_token(
        &mut self,
        provider: &str,
    ) -> impl Future<Output = Result<Option<SecretString>, RunError>> + Send;
    /// Saves a file under the job's folder of its organization's workspace
    /// (`jobs/<job id>/<name>`); returns its workspace path.
    fn save_artifact(
        &mut self,
        name: &str,
        contents: &[u8],
    ) -> impl Future<Output = Result<String, RunError>> + Send;
    /// Saves what the run wrote as a draft post of the job's project; returns its id.
    fn save_draft_post(
        &mut self,
        title: &str,
        body: &str,
    ) -> impl Future<Output = Result<uuid::Uuid, RunError>> + Send;
    /// Charges what the run used to its organization's monthly usage; stops the run once the
    /// month's budget is spent.
    fn record_usage(
        &mut self,
        service: &str,
        tokens: i64,
        cost_cents: i64,
    ) -> impl Future<Output = Result<(), Stop>> + Send;
}

pub trait Runner {
    /// What an agent of this kind is configured with: its `config`, as JSON.
    type Config: DeserializeOwned;
    /// Fields older releases took that moved elsewhere, with where: a clear refusal rather
    /// than "unknown field".
    const MOVED: &[(&str, &str)] = &[];
    /// Checks a configuration beyond its shape.
    fn check(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }
    /// What one run is expected to cost, checked against the budget before it is queued.
    fn estimated_cost_cents(_config: &Self::Config) -> i64 {
        0
    }
    fn run(
        config: Self::Config,
        input: &Value,
        steps: &mut impl Steps,
    ) -> impl Future<Output = Result<Value, RunError>> + Send;
}

/// Reads and checks an agent's configuration: when it is created or changed, and before
/// each run. Errors start with the kind.
fn parse<R: Runner>(kind: RunnerKind, config: &Value) -> Result<R::Config, String> {
    let kind = kind.name();
    if let Some((field, moved)) = R::MOVED.iter().find(|(field, _)| config.get(field).is_some()) {
        return Err(format!("{kind}: an agent names no {field}: {moved}"));
    }
    let config = serde_json::from_value(config.clone()).map_err(|error| format!("{kind}: {error}"))?;
    R::check(&config)?;
    Ok(config)
}

fn check<R: Runner>(kind: RunnerKind, config: &Value) -> Result<(), String> {
    parse::<R>(kind, config).map(|_| ())
}

fn estimate<R: Runner>(kind: RunnerKind, config: &Value) -> i64 {
    parse::<R>(kind, config).map_or(0, |config| R::estimated_cost_cents(&config))
}

/// A stored configuration was checked when it was written; one that no longer reads is not
/// fixed by retrying.
async fn run<R: Runner>(
    kind: RunnerKind,
    config: &Value,
    input: &Value,
    steps: &mut impl Steps,
) -> Result<Value, RunError> {
    R::run(parse::<R>(kind, config).map_err(RunError::Fatal)?, input, steps).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_per_million_tokens_and_fall_back_to_the_star() {
        let prices = Prices::parse("small=100/200,*=1000/1000").unwrap();
        let cents = |model, input, output| prices.cost_micro_cents(model, input, output).div_ceil(1_000_000);
        assert_eq!(cents("small", 1_000, 1_000), 1);
        assert_eq!(cents("small", 10_000, 5_000), 2);
        assert_eq!(cents("other", 1_000_000, 0), 1_000);
        assert!(Prices::parse("small=1/2").is_err());
        assert!(Prices::parse("*=x/2").is_err());
        assert!(Prices::parse(Prices::DEFAULT).is_ok());
    }
}
