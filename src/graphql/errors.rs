//! The error presenter: gives every error its API.md code, and hides internal ones.

use async_graphql::{ErrorExtensionValues, Response, ServerError, Value};

use crate::error::AppError;

/// Most errors one response carries: a document can repeat a mistake thousands of times,
/// and its answer should not be many times its size.
pub const MAX_ERRORS: usize = 20;

/// Gives every error of a response its code, keeping the first [`MAX_ERRORS`] and one more
/// that says how many were left out; the HTTP endpoint and the websocket handler call it on
/// everything they send. (A plain function rather than a schema extension: each extension
/// costs a boxed future per resolved field.)
pub fn present_all(response: &mut Response) {
    // Every error is presented, so an internal one is logged even when it is left out.
    response.errors.iter_mut().for_each(present);
    let total = response.errors.len();
    if total > MAX_ERRORS {
        response.errors.truncate(MAX_ERRORS);
        let mut left_out =
            ServerError::new(format!("{} more errors were left out", total - MAX_ERRORS), None);
        present(&mut left_out);
        response.errors.push(left_out);
    }
}

/// An error of a whole request (it never reached a field), carrying its [`AppError`] so
/// [`present`] gives it its code.
pub fn request_error(error: AppError) -> ServerError {
    let mut error = async_graphql::Error::new_with_source(error).into_server_error(Default::default());
    error.locations.clear();
    error
}

/// Errors raised by our code carry an [`AppError`] as their source. Errors without one come
/// from async-graphql itself: parsing, validation and argument coercion, all the client's.
pub fn present(error: &mut ServerError) {
    let app_error = error
        .source
        .as_ref()
        .and_then(|source| source.downcast_ref::<AppError>());
    let extensions = error.extensions.get_or_insert_with(ErrorExtensionValues::default);
    match app_error {
        Some(AppError::Internal(cause)) => {
            tracing::error!(error = format!("{cause:#}"), path = ?error.path, "internal error");
            error.message = "internal error".to_owned();
            extensions.set("code", "INTERNAL");
        }
        Some(app_error) => {
            extensions.set("code", app_error.code());
            match app_error {
                AppError::BadUserInput { field, .. } => extensions.set("field", *field),
                AppError::RateLimited { retry_after_seconds } => {
                    extensions.set("retryAfterSeconds", Value::from(*retry_after_seconds))
                }
                _ => {}
            }
        }
        None if is_limit_error(&error.message) => extensions.set("code", "QUERY_TOO_COMPLEX"),
        None => extensions.set("code", "BAD_USER_INPUT"),
    }
}

fn is_limit_error(message: &str) -> bool {
    message.starts_with("Query is too complex") || message.starts_with("Query is nested too deep")
}
