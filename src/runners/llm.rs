//! `llm`: one chat completion from an OpenAI-compatible endpoint, with the running
//! organization's own credential, sent only to that credential's endpoint (through the
//! egress gate). Configuration: `{"provider": "openai", "model": "…", "system": "…",
//! "stream": true, "maxTokens": 1024, "timeoutMs": 60000, "maxRetries": 3}`: an agent names
//! no address, so a shared agent cannot send another tenant's key to its author. Input
//! `{"prompt": "…"}` or `{"messages": [{"role", "content"}]}`.
//! Streamed tokens become progress events; tokens and their cost (the price list) are
//! charged to the organization as they arrive, and the run stops when its budget runs out.
//! 429 and 5xx answers are retried with backoff; a refused credential fails at once; errors
//! name the status, never the provider's text. With `"draftPost": true` the answer is saved
//! as a draft post of the job's project.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Credential, RunError, Runner, Steps};
use crate::integrations::egress::{Gate, Reply};

const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Streamed tokens per progress event.
const TOKENS_PER_EVENT: u64 = 16;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    model: String,
    #[serde(default = "default_provider")]
    provider: String,
    system: Option<String>,
    #[serde(default = "default_stream")]
    stream: bool,
    #[serde(default = "default_max_tokens")]
    max_tokens: u32,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_max_retries")]
    max_retries: u32,
    /// Save the answer as a draft post of the job's project.
    #[serde(default)]
    draft_post: bool,
}

fn default_provider() -> String {
    "openai".into()
}
fn default_stream() -> bool {
    true
}
fn default_max_tokens() -> u32 {
    1_024
}
fn default_timeout_ms() -> u64 {
    60_000
}
fn default_max_retries() -> u32 {
    3
}

pub struct Llm;

impl Runner for Llm {
    type Config = Config;

    const MOVED: &[(&str, &str)] = &[(
        "baseUrl",
        "the endpoint belongs to the organization's credential (setProviderCredential with \
         baseUrl); name its provider",
    )];

    fn check(config: &Config) -> Result<(), String> {
        if config.model.trim().is_empty() || config.model.len() > 100 {
            return Err("llm: model is required (at most 100 characters)".into());
        }
        if !(1..=32_768).contains(&config.max_tokens) {
            return Err("llm: maxTokens must be between 1 and 32768".into());
        }
        if !(100..=600_000).contains(&config.timeout_ms) {
            return Err("llm: timeoutMs must be between 100 and 600000".into());
        }
        if config.max_retries > 10 {
            return Err("llm: maxRetries must be at most 10".into());
        }
        Ok(())
    }

    async fn run(config: Config, input: &Value, steps: &mut impl Steps) -> Result<Value, RunError> {
        let messages = messages(&config, input)?;
        let credential = steps.credential(&config.provider).await?.ok_or_else(|| {
            RunError::Fatal(format!(
                "the organization has no {} credential (setProviderCredential)",
                config.provider
            ))
        })?;
        let gate = steps.tools().gate.clone();
        let response = send(&gate, &config, &credential, &messages).await?;
        let mut meter = Meter::new(&config.model);
        let text = if config.stream {
            read_stream(response, steps, &mut meter).await?
        } else {
            read_whole(response, &mut meter).await?
        };
        meter.settle(steps).await?;
        let post = if config.draft_post {
            Some(steps.save_draft_post(&draft_title(&text), &text).await?)
        } else {
            None
        };
        Ok(json!({
            "text": text,
            "model": config.model,
            "usage": { "promptTokens": meter.input, "completionTokens": meter.output },
            "postId": post,
        }))
    }
}

/// A draft's title: the answer's first line, shortened.
fn draft_title(text: &str) -> String {
    let first = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("Draft");
    let first = first.trim_start_matches('#').trim();
    let mut title: String = first.chars().take(80).collect();
    if title.is_empty() {
        title = "Draft".into();
    }
    title
}

fn messages(config: &Config, input: &Value) -> Result<Vec<Value>, RunError> {
    let mut messages = Vec::new();
    if let Some(system) = &config.system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    match (input.get("prompt"), input.get("messages")) {
        (Some(Value::String(prompt)), None) => messages.push(json!({ "role": "user", "content": prompt })),
        (None, Some(Value::Array(given))) if !given.is_empty() => messages.extend(given.iter().cloned()),
        _ => {
            return Err(RunError::Fatal(
                "llm: the input needs a `prompt` string or a `messages` array".into(),
            ));
        }
    }
    Ok(messages)
}

/// POSTs the completion request to the credential's endpoint, retrying rate limits, server
/// errors and lost connections.
async fn send(
    gate: &Gate,
    config: &Config,
    credential: &Credential,
    messages: &[Value],
) -> Result<Reply, RunError> {
    let url = format!("{}/chat/completions", credential.endpoint);
    let mut body = json!({
        "model": config.model,
        "messages": messages,
        "max_tokens": config.max_tokens,
        "stream": config.stream,
    });
    if config.stream {
        body["stream_options"] = json!({ "include_usage": true });
    }
    let mut attempt = 0;
    loop {
        let sent = gate
            .post(&url)
            .headers(crate::telemetry::trace_headers())
            .bearer_auth(credential.secret.expose_secret())
            .timeout(Duration::from_millis(config.timeout_ms))
            .json(&body)
            .send()
            .await;
        let retry_after = match sent {
            Ok(response) if response.is_success() => return Ok(response),
            Ok(response) if matches!(response.status(), 401 | 403) => {
                return Err(RunError::Fatal(format!(
                    "the provider refused the organization's {} credential ({})",
                    config.provider,
                    response.status()
                )));
            }
            Ok(response) if response.status() == 429 || response.status() >= 500 => {
                let wait = response
                    .header("retry-after")
                    .and_then(|value| value.parse::<u64>().ok())
                    .map(Duration::from_secs);
                if attempt >= config.max_retries {
                    return Err(RunError::Failed(format!(
                        "the provider answered {} {} times",
                        response.status(),
                        attempt + 1
                    )));
                }
                wait
            }
            // Redirects are not followed and bodies are not shown: the status says enough.
            Ok(response) => {
                return Err(RunError::Fatal(format!(
                    "the provider refused the request ({})",
                    response.status()
                )));
            }
            Err(error) if !error.is_transient() || attempt >= config.max_retries => {
                return Err(error.into());
            }
            Err(_) => None,
        };
        let backoff = Duration::from_millis(250) * 2u32.pow(attempt.min(8));
        tokio::time::sleep(retry_after.unwrap_or(backoff).min(MAX_BACKOFF)).await;
        attempt += 1;
    }
}

/// Tokens counted and charged so far. Charges go out in whole cents as they accrue, so the
/// total charged equals the run's cost rounded up once.
struct Meter<'a> {
    model: &'a str,
    input: u64,
    output: u64,
    charged_tokens: u64,
    charged_cents: i64,
}

impl<'a> Meter<'a> {
    fn new(model: &'a str) -> Self {
        Self {
            model,
            input: 0,
            output: 0,
            charged_tokens: 0,
            charged_cents: 0,
        }
    }

    /// Charges what accrued since the last charge: whole cents so far mid-run, the rest
    /// (rounded up) when the run settles.
    async fn charge(&mut self, steps: &mut impl Steps, settle: bool) -> Result<(), RunError> {
        let micro = steps
            .tools()
            .prices
            .cost_micro_cents(self.model, self.input, self.output);
        let owed = if settle {
            micro.div_ceil(1_000_000)
        } else {
            micro / 1_000_000
        };
        let cents = i64::try_from(owed).unwrap_or(i64::MAX) - self.charged_cents;
        let tokens = (self.input + self.output).saturating_sub(self.charged_tokens);
        if cents <= 0 && tokens == 0 {
            return Ok(());
        }
        let service = format!("llm:{}", self.model);
        steps
            .record_usage(&service, i64::try_from(tokens).unwrap_or(i64::MAX), cents.max(0))
            .await?;
        self.charged_cents += cents.max(0);
        self.charged_tokens += tokens;
        Ok(())
    }

    async fn settle(&mut self, steps: &mut impl Steps) -> Result<(), RunError> {
        self.charge(steps, true).await
    }
}

/// Reads server-sent events: each `data:` line is a chunk with a token delta; the last
/// chunk carries the exact usage.
async fn read_stream(
    mut response: Reply,
    steps: &mut impl Steps,
    meter: &mut Meter<'_>,
) -> Result<String, RunError> {
    let mut events = EventData::default();
    let mut text = String::new();
    let mut unsent = String::new();
    let mut usage: Option<(u64, u64)> = None;
    while let Some(bytes) = response.chunk().await.map_err(RunError::from)? {
        for data in events.feed(&bytes) {
            let chunk: Value = serde_json::from_str(&data)
                .map_err(|_| RunError::Failed("the provider sent a chunk that is not JSON".into()))?;
            if let Some(reported) = reported_usage(&chunk) {
                usage = Some(reported);
            }
            let Some(delta) = chunk["choices"][0]["delta"]["content"].as_str() else {
                continue;
            };
            text.push_str(delta);
            unsent.push_str(delta);
            meter.output += 1;
            if meter.output.is_multiple_of(TOKENS_PER_EVENT) {
                flush(steps, meter, &mut unsent).await?;
            }
        }
    }
    if !unsent.is_empty() {
        flush(steps, meter, &mut unsent).await?;
    }
    if let Some((input, output)) = usage {
        meter.input = input;
        meter.output = output;
    }
    Ok(text)
}

/// The `data:` payloads of a server-sent event stream, fed as its bytes arrive. Bytes wait
/// until their line is complete and are decoded a whole line at a time: a network chunk may
/// end inside a character.
#[derive(Default)]
struct EventData {
    pending: Vec<u8>,
}

impl EventData {
    /// The payloads of the lines `bytes` completes, the closing `[DONE]` left out.
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let Some(last_newline) = self.pending.iter().rposition(|&byte| byte == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.pending.drain(..=last_newline).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .filter_map(|line| line.trim().strip_prefix("data:"))
            .map(str::trim)
            .filter(|data| *data != "[DONE]")
            .map(str::to_owned)
            .collect()
    }
}

/// A progress event with the text since the last one, and the charge for its tokens.
async fn flush(steps: &mut impl Steps, meter: &mut Meter<'_>, unsent: &mut String) -> Result<(), RunError> {
    meter.charge(steps, false).await?;
    let progress = i32::try_from(meter.output.min(95)).unwrap_or(95);
    steps.progress(progress, std::mem::take(unsent)).await?;
    Ok(())
}

async fn read_whole(response: Reply, meter: &mut Meter<'_>) -> Result<String, RunError> {
    let body: Value = response.json().await.map_err(RunError::from)?;
    let text = body["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| RunError::Failed("the provider's answer has no message".into()))?
        .to_owned();
    if let Some((input, output)) = reported_usage(&body) {
        meter.input = input;
        meter.output = output;
    }
    Ok(text)
}

fn reported_usage(body: &Value) -> Option<(u64, u64)> {
    let usage = body.get("usage")?;
    Some((
        usage.get("prompt_tokens")?.as_u64()?,
        usage.get("completion_tokens")?.as_u64()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str =
        "data: {\"delta\":\"Hi 👋\"}\n\ndata: {\"delta\":\"世界\"}\r\n\r\n: comment\ndata: [DONE]\n\n";
    const PAYLOADS: [&str; 2] = ["{\"delta\":\"Hi 👋\"}", "{\"delta\":\"世界\"}"];

    #[test]
    fn characters_split_across_chunks_are_decoded_whole() {
        let bytes = STREAM.as_bytes();
        let inside_emoji = STREAM.find('👋').unwrap() + 2;
        let inside_cjk = STREAM.find('世').unwrap() + 1;
        let mut events = EventData::default();
        let mut payloads = events.feed(&bytes[..inside_emoji]);
        assert!(payloads.is_empty(), "{payloads:?}");
        payloads.extend(events.feed(&bytes[inside_emoji..inside_cjk]));
        assert_eq!(payloads, PAYLOADS[..1]);
        payloads.extend(events.feed(&bytes[inside_cjk..]));
        assert_eq!(payloads, PAYLOADS);
    }

    #[test]
    fn a_stream_fed_byte_by_byte_gives_the_same_payloads() {
        let mut events = EventData::default();
        let payloads: Vec<String> = STREAM
            .as_bytes()
            .iter()
            .flat_map(|byte| events.feed(std::slice::from_ref(byte)))
            .collect();
        assert_eq!(payloads, PAYLOADS);
    }
}
