//! The one closed list of errors a client can see, each with its API.md code.

use std::borrow::Cow;

use sea_orm::{DbErr, SqlErr};

/// Every error a resolver or endpoint can return. Anything not ours becomes [`AppError::Internal`],
/// which is logged with its cause chain and shown to the client as `INTERNAL` with no details.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No credentials, or unknown, expired or revoked ones; which of these is never said.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller is known but lacks the role, or names an organization it does not belong to.
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    /// The row does not exist or belongs to another tenant; the two are never told apart.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// An argument failed validation; `field` names it as the client sent it.
    #[error("{message}")]
    BadUserInput {
        field: &'static str,
        message: Cow<'static, str>,
    },
    /// The caller belongs to several organizations and named none.
    #[error("name an organization with the X-Organization-Id header")]
    TenantRequired,
    #[error("rate limit exceeded")]
    RateLimited { retry_after_seconds: u64 },
    #[error("the organization's monthly budget is exhausted")]
    BudgetExceeded,
    #[error("PersistedQueryNotFound")]
    PersistedQueryNotFound,
    #[error("this API key may only run persisted queries")]
    PersistedQueryRequired,
    #[error("{0}")]
    QueryTooComplex(Cow<'static, str>),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::BadUserInput { .. } => "BAD_USER_INPUT",
            AppError::TenantRequired => "TENANT_REQUIRED",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::BudgetExceeded => "BUDGET_EXCEEDED",
            AppError::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            AppError::PersistedQueryRequired => "PERSISTED_QUERY_REQUIRED",
            AppError::QueryTooComplex(_) => "QUERY_TOO_COMPLEX",
            AppError::Internal(_) => "INTERNAL",
        }
    }

    pub fn bad_input(field: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        AppError::BadUserInput {
            field,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::Forbidden(message.into())
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(error.into())
    }
}

impl From<DbErr> for AppError {
    fn from(error: DbErr) -> Self {
        match error {
            DbErr::RecordNotFound(_) | DbErr::RecordNotUpdated => AppError::NotFound("record"),
            other => AppError::Internal(other.into()),
        }
    }
}

/// For `map_err` on a write that may hit a unique index: a duplicate becomes a
/// `BAD_USER_INPUT` naming `field`, anything else stays as it was.
pub fn duplicate_as<E: Into<AppError>>(
    field: &'static str,
    message: &'static str,
) -> impl FnOnce(E) -> AppError {
    move |error| match error.into() {
        AppError::Internal(cause) if is_unique_violation(&cause) => AppError::bad_input(field, message),
        other => other,
    }
}

/// For `map_err` on a write naming another row: a foreign key pointing nowhere becomes a
/// `BAD_USER_INPUT` naming `field`.
pub fn missing_reference_as<E: Into<AppError>>(
    field: &'static str,
    message: &'static str,
) -> impl FnOnce(E) -> AppError {
    move |error| match error.into() {
        AppError::Internal(cause)
            if matches!(sql_err(&cause), Some(SqlErr::ForeignKeyConstraintViolation(_))) =>
        {
            AppError::bad_input(field, message)
        }
        other => other,
    }
}

fn sql_err(cause: &anyhow::Error) -> Option<SqlErr> {
    cause.downcast_ref::<DbErr>().and_then(DbErr::sql_err)
}

fn is_unique_violation(cause: &anyhow::Error) -> bool {
    matches!(sql_err(cause), Some(SqlErr::UniqueConstraintViolation(_)))
}

pub type AppResult<T> = Result<T, AppError>;
