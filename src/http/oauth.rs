//! `GET /oauth/{provider}/start`: the link `startOAuth` returns, which gives the browser
//! opening it a cookie and sends it on to the provider; `GET /oauth/{provider}/callback`:
//! where the provider sends the browser back, completed only with that cookie. The outcome
//! goes to OAUTH_RETURN_URL as query parameters, or onto a small page.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::{Data, Path, Query};
use poem::{IntoResponse, Request, Response, handler};

use super::HttpState;
use super::client::client_info;
use crate::error::AppError;
use crate::governance::audit::Origin;
use crate::integrations::oauth::Callback;

/// The cookie holding a flow's browser secret, scoped to its provider's `/oauth/` paths.
const COOKIE: &str = "tenantql_oauth";
/// As long as a pending authorization lives.
const COOKIE_MAX_AGE_SECONDS: u32 = 600;

#[derive(Debug, serde::Deserialize)]
pub struct Start {
    pub flow: Option<String>,
}

/// `Set-Cookie` for a flow's browser secret: HttpOnly (no script reads it), SameSite=Lax
/// (sent on the provider's top-level redirect back, not on cross-site subrequests), Secure
/// when browsers reach the server over https. An empty secret clears it.
fn browser_cookie(provider: &str, secret: &str, secure: bool) -> String {
    let max_age = if secret.is_empty() {
        0
    } else {
        COOKIE_MAX_AGE_SECONDS
    };
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={secret}; Path=/oauth/{provider}/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// The flow's browser secret the request's cookies carry, if any.
fn browser_secret(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

#[handler]
pub async fn start(
    Path(provider): Path<String>,
    Query(start): Query<Start>,
    Data(state): Data<&Arc<HttpState>>,
) -> Response {
    let services = state.services();
    if !services.oauth.has_provider(&provider) {
        return outcome(
            state,
            &provider,
            Err("no such OAuth provider is configured".into()),
        );
    }
    let flow = start.flow.unwrap_or_default();
    match services.oauth.open(&services.db, &provider, &flow).await {
        Ok((authorize_url, secret)) => Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, authorize_url)
            .header(
                header::SET_COOKIE,
                browser_cookie(&provider, &secret, state.oauth_cookie_secure),
            )
            .header(header::CACHE_CONTROL, "no-store")
            .finish(),
        Err(error) => outcome(state, &provider, Err(user_message(error))),
    }
}

#[handler]
pub async fn callback(
    req: &Request,
    Path(provider): Path<String>,
    Query(callback): Query<Callback>,
    Data(state): Data<&Arc<HttpState>>,
) -> Response {
    let services = state.services();
    if !services.oauth.has_provider(&provider) {
        return outcome(
            state,
            &provider,
            Err("no such OAuth provider is configured".into()),
        );
    }
    let origin = Origin {
        action: "connectIntegration".into(),
        client: client_info(req, state.trust_forwarded_for),
    };
    let browser = browser_secret(req);
    let result = services
        .oauth
        .finish(
            &services.db,
            &services.tenant_db,
            &provider,
            callback,
            browser.as_deref(),
            origin,
        )
        .await;
    let result = result.map(drop).map_err(user_message);
    // The flow is over either way: its cookie goes.
    let mut response = outcome(state, &provider, result);
    if let Ok(clear) = browser_cookie(&provider, "", state.oauth_cookie_secure).parse() {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

/// What the browser is told when a step fails: our words, never an internal error's.
fn user_message(error: AppError) -> String {
    match error {
        AppError::BadUserInput { message, .. } => message.into_owned(),
        AppError::Forbidden(message) => message.into_owned(),
        other => {
            tracing::error!(error = format!("{other:#}"), "OAuth callback failed");
            "the connection could not be completed".into()
        }
    }
}

fn outcome(state: &HttpState, provider: &str, result: Result<(), String>) -> Response {
    if let Some(return_url) = &state.oauth_return_url
        && let Ok(mut url) = reqwest::Url::parse(return_url)
    {
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("provider", provider);
            match &result {
                Ok(()) => query.append_pair("status", "connected"),
                Err(message) => query
                    .append_pair("status", "error")
                    .append_pair("message", message),
            };
        }
        return Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, url.as_str())
            .finish();
    }
    let (status, text) = match &result {
        Ok(()) => (
            StatusCode::OK,
            format!("{provider} is connected. You can close this window."),
        ),
        Err(message) => (
            StatusCode::BAD_REQUEST,
            format!("{provider} was not connected: {message}"),
        ),
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>tenantql</title><p>{}</p></html>",
        escape_html(&text)
    );
    page.with_status(status)
        .with_content_type("text/html; charset=utf-8")
        .into_response()
}

fn escape_html(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_cookie_is_http_only_lax_scoped_and_secure_over_https() {
        assert_eq!(
            browser_cookie("fakebook", "s3cret", false),
            "tenantql_oauth=s3cret; Path=/oauth/fakebook/; Max-Age=600; HttpOnly; SameSite=Lax"
        );
        assert!(browser_cookie("fakebook", "s3cret", true).ends_with("; Secure"));
        assert!(
            browser_cookie("fakebook", "", true)
                .contains("tenantql_oauth=; Path=/oauth/fakebook/; Max-Age=0;")
        );
    }
}
