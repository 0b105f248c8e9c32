//! The one error type of the API boundary, with its stable `extensions.code` values.
//!
//! Services return [`Error`]; the GraphQL layer turns it into a GraphQL error whose
//! `extensions.code` is [`Error::code`]. Internal failures (database, Redis, bugs) are logged
//! with their cause where they are converted and reach the client only as `INTERNAL`.
//!
//! `Error` deliberately does not implement `Display`: async-graphql converts any `Display`
//! type into an error without extensions, and we never want a code-less error or an internal
//! message to slip out through `?`.

use std::borrow::Cow;

/// A failure a service reports. Every variant but `Internal` is the client's to fix.
#[derive(Debug)]
pub enum Error {
    /// No valid credentials.
    Unauthenticated,
    /// Authenticated, but the role or ownership does not allow this.
    Forbidden(Cow<'static, str>),
    /// The thing asked for does not exist or is not visible to the viewer.
    NotFound(Cow<'static, str>),
    /// Bad input; `field` names the argument path when there is one.
    Validation {
        field: Option<Cow<'static, str>>,
        message: Cow<'static, str>,
    },
    /// A business rule refused the request; `code` is the stable code (e.g. `OUT_OF_STOCK`).
    Rule {
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// A dependency is down (database unreachable, pool exhausted): retry later.
    Unavailable,
    /// Anything else: a bug or an unexpected dependency failure. Logged, never shown.
    Internal(anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(what: impl Into<Cow<'static, str>>) -> Error {
        Error::NotFound(what.into())
    }

    pub fn validation(
        field: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Error {
        Error::Validation {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn rule(code: &'static str, message: impl Into<Cow<'static, str>>) -> Error {
        Error::Rule {
            code,
            message: message.into(),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Error {
        Error::Internal(err.into())
    }

    /// The stable SCREAMING_SNAKE code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Validation { .. } => "VALIDATION",
            Error::Rule { code, .. } => code,
            Error::Unavailable => "UNAVAILABLE",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// The human message shown to clients: never internal detail.
    pub fn message(&self) -> String {
        match self {
            Error::Unauthenticated => "authentication required".into(),
            Error::Forbidden(why) => why.to_string(),
            Error::NotFound(what) => format!("{what} not found"),
            Error::Validation {
                field: Some(f),
                message,
            } => format!("{f}: {message}"),
            Error::Validation {
                field: None,
                message,
            } => message.to_string(),
            Error::Rule { message, .. } => message.to_string(),
            Error::Unavailable => "service temporarily unavailable, retry shortly".into(),
            Error::Internal(_) => "internal error".into(),
        }
    }

    /// The argument the error is about, if any (`extensions.field`).
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Validation { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(err: sea_orm::DbErr) -> Error {
        // Pool exhausted, server unreachable or restarting, statement timeout: the client
        // may retry.
        if crate::db::is_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            return Error::Unavailable;
        }
        Error::Internal(err.into())
    }
}

impl From<sea_orm::TransactionError<Error>> for Error {
    fn from(err: sea_orm::TransactionError<Error>) -> Error {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}

/// For the CLI and start-up, where an error ends the process with a message.
impl From<Error> for anyhow::Error {
    fn from(err: Error) -> anyhow::Error {
        match err {
            Error::Internal(cause) => cause,
            other => anyhow::anyhow!("{} ({})", other.message(), other.code()),
        }
    }
}
