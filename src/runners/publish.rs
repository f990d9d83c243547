//! `publish`: posts text to a connected account (OAuth2, see `integrations::oauth`).
//! Configuration: `{"provider": "…", "path": "/v2/posts"}`; input `{"text": "…"}`. The
//! account's access token goes only to the provider's API as the operator configured it
//! (`apiUrl` in `OAUTH_PROVIDERS`): the agent names a path under it, never an address. The
//! token is refreshed first when it is about to expire. The output keeps the answer's
//! status and its `id` (when the answer is a JSON object with one, up to 200 characters),
//! nothing else the provider sent. A refused token fails at once.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{RunError, Runner, Steps};

const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_PATH_CHARS: usize = 512;
const MAX_ID_CHARS: usize = 200;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    provider: String,
    /// Under the provider's `apiUrl`, starting with `/`.
    path: String,
}

/// The provider's API base joined with the agent's path; `None` if the result would leave it.
fn target(api_url: &str, path: &str) -> Option<String> {
    // Compared in the parser's spelling (lowercase host, default port dropped), so the
    // check is about where the URL goes, not how the operator wrote it.
    let base = reqwest::Url::parse(api_url).ok()?;
    let base_str = base.as_str().trim_end_matches('/');
    let joined = reqwest::Url::parse(&format!("{base_str}{path}")).ok()?;
    (joined.origin() == base.origin() && joined.as_str().starts_with(&format!("{base_str}/")))
        .then(|| joined.to_string())
}

pub struct Publish;

impl Runner for Publish {
    type Config = Config;

    const MOVED: &[(&str, &str)] = &[(
        "url",
        "it names a path under its provider's apiUrl, e.g. {\"provider\": \"…\", \"path\": \"/v2/posts\"}",
    )];

    fn check(config: &Config) -> Result<(), String> {
        let path = &config.path;
        let valid = path.starts_with('/')
            && !path.starts_with("//")
            && path.len() <= MAX_PATH_CHARS
            && !path.contains("..")
            && !path.contains(['\\', '#', '@'])
            && !path.to_ascii_lowercase().contains("%2e")
            && !path.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err(format!(
                "publish: path must start with / and stay under the provider's apiUrl (no .., \\, #, @; at most {MAX_PATH_CHARS} characters)"
            ));
        }
        Ok(())
    }

    async fn run(config: Config, input: &Value, steps: &mut impl Steps) -> Result<Value, RunError> {
        let text = input["text"]
            .as_str()
            .ok_or_else(|| RunError::Fatal("publish: the input needs a `text` string".into()))?;
        let api_url = steps
            .tools()
            .oauth
            .api_url(&config.provider)
            .ok_or_else(|| {
                RunError::Fatal(format!(
                    "the {} provider has no apiUrl configured to publish to",
                    config.provider
                ))
            })?
            .to_owned();
        let url = target(&api_url, &config.path)
            .ok_or_else(|| RunError::Fatal("publish: the path leaves the provider's apiUrl".into()))?;
        let token = steps.account_token(&config.provider).await?.ok_or_else(|| {
            RunError::Fatal(format!(
                "no {} account is connected (startOAuth)",
                config.provider
            ))
        })?;
        let gate = steps.tools().gate.clone();
        let response = gate
            .post(&url)
            .headers(crate::telemetry::trace_headers())
            .bearer_auth(token.expose_secret())
            .timeout(TIMEOUT)
            .json(&json!({ "text": text }))
            .send()
            .await?;
        let status = response.status();
        if matches!(status, 401 | 403) {
            return Err(RunError::Fatal(format!(
                "the provider refused the connected account ({status}); connect it again"
            )));
        }
        if !response.is_success() {
            return Err(RunError::Failed(format!("the provider answered {status}")));
        }
        // Only the id is kept: the rest of the answer is the provider's to tell, not ours
        // to store; an answer that is not JSON, or too large, still published.
        let answer: Option<Value> = response.json().await.ok();
        let id = answer.as_ref().and_then(|answer| match &answer["id"] {
            Value::String(id) => Some(id.chars().take(MAX_ID_CHARS).collect::<String>()),
            Value::Number(id) => Some(id.to_string()),
            _ => None,
        });
        steps.progress(100, "published".into()).await?;
        Ok(json!({ "published": { "status": status, "id": id } }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runners::RunnerKind;

    #[test]
    fn paths_stay_under_the_api_base() {
        let base = "https://api.example.com/v2";
        assert_eq!(
            target(base, "/posts").as_deref(),
            Some("https://api.example.com/v2/posts")
        );
        assert_eq!(
            target("https://api.example.com/v2/", "/posts?draft=1").as_deref(),
            Some("https://api.example.com/v2/posts?draft=1")
        );
        assert_eq!(
            target("HTTPS://API.Example.com:443/v2", "/posts").as_deref(),
            Some("https://api.example.com/v2/posts")
        );
        assert_eq!(target(base, "/../admin"), None);
        assert_eq!(target(base, "/%2e%2e/admin"), None);
        assert_eq!(target(base, "@evil.example.com/x"), None);
        assert_eq!(target(base, "s"), None);
        let check = |path: &str| RunnerKind::Publish.check_config(&json!({ "provider": "x", "path": path }));
        assert!(check("/v2/posts").is_ok());
        for bad in [
            "posts",
            "//evil.example.com/x",
            "/../x",
            "/%2E%2E/x",
            "/a\\b",
            "/a b",
            "/x#y",
            "/@x",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
        let old =
            RunnerKind::Publish.check_config(&json!({ "provider": "x", "url": "https://evil.example.com/" }));
        assert!(old.unwrap_err().contains("apiUrl"));
    }
}
