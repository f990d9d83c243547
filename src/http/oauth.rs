//! `GET /oauth/{provider}/callback`: where a provider sends the browser back, completed only
//! with the cookie the `startOAuth` response set in the browser that started the flow. The
//! outcome goes to OAUTH_RETURN_URL as query parameters, or onto a small page.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::{Data, Path, Query};
use poem::{IntoResponse, Request, Response, handler};

use super::HttpState;
use super::client::{client_info, cookie};
use crate::error::AppError;
use crate::integrations::oauth::{Callback, cookie_name};
use crate::tenancy::audit::Origin;

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
    let state_param = callback.state.clone();
    let browser = state_param
        .as_deref()
        .and_then(|state| cookie(req.headers(), &cookie_name(state)));
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
    if let Some(flow) = state_param
        && let Ok(clear) = services.oauth.cookie(&provider, &flow, "").parse()
    {
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
