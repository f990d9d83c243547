//! `publish`: posts text to a connected account (OAuth2, see `integrations::oauth`).
//! Configuration: `{"provider": "…", "url": "https://…"}`; input `{"text": "…"}`. The
//! account's access token is refreshed first when it is about to expire; the provider's
//! JSON answer is the output. A refused token fails at once.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{RunError, Runner, Steps};

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    provider: String,
    url: String,
}

fn parse(config: &Value) -> Result<Config, String> {
    let config: Config =
        serde_json::from_value(config.clone()).map_err(|error| format!("publish: {error}"))?;
    let url = reqwest::Url::parse(&config.url).map_err(|_| "publish: url is not a URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("publish: url must be http(s)".into());
    }
    Ok(config)
}

pub struct Publish;

impl Runner for Publish {
    fn check_config(config: &Value) -> Result<(), String> {
        parse(config).map(|_| ())
    }

    async fn run(config: &Value, input: &Value, steps: &mut impl Steps) -> Result<Value, RunError> {
        let config = parse(config).map_err(RunError::Fatal)?;
        let text = input["text"]
            .as_str()
            .ok_or_else(|| RunError::Fatal("publish: the input needs a `text` string".into()))?;
        let token = steps.account_token(&config.provider).await?.ok_or_else(|| {
            RunError::Fatal(format!(
                "no {} account is connected (startOAuth)",
                config.provider
            ))
        })?;
        let http = steps.tools().http.clone();
        let response = http
            .post(&config.url)
            .headers(crate::telemetry::trace_headers())
            .bearer_auth(token.expose_secret())
            .timeout(TIMEOUT)
            .json(&json!({ "text": text }))
            .send()
            .await
            .map_err(|error| RunError::Failed(format!("the provider could not be reached: {error}")))?;
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403) {
            return Err(RunError::Fatal(format!(
                "the provider refused the connected account ({}); connect it again",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(RunError::Failed(format!(
                "the provider answered {}",
                status.as_u16()
            )));
        }
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        steps.progress(100, "published".into()).await?;
        Ok(json!({ "published": answer }))
    }
}
