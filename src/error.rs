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
    /// Several bad fields of one input, reported together ([`FieldErrors`]): `VALIDATION`,
    /// with the first field in `extensions.field` and every one in `extensions.fields`.
    Fields(Vec<FieldError>),
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
            Error::Validation { .. } | Error::Fields(_) => "VALIDATION",
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
            Error::Fields(fields) => fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; "),
            Error::Rule { message, .. } => message.to_string(),
            Error::Unavailable => "service temporarily unavailable, retry shortly".into(),
            Error::Internal(_) => "internal error".into(),
        }
    }

    /// The argument the error is about, if any (`extensions.field`).
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Validation { field, .. } => field.as_deref(),
            Error::Fields(fields) => fields.first().map(|f| &*f.field),
            _ => None,
        }
    }

    /// Every bad field with its message, for an error of several fields
    /// (`extensions.fields`); empty for any other error.
    pub fn fields(&self) -> &[FieldError] {
        match self {
            Error::Fields(fields) => fields,
            _ => &[],
        }
    }
}

/// One bad field of an input: its path from the argument (`input.phone`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub message: Cow<'static, str>,
}

/// Collects the validation errors of every field of an input, so that one answer names them
/// all (a form shows each next to its field) instead of one per attempt.
///
/// ```ignore
/// let mut errors = FieldErrors::default();
/// let phone = errors.check(Phone::parse("input.phone", &input.phone));
/// let detail = errors.check(text::name("input.detail", &input.detail, 120));
/// errors.finish()?; // VALIDATION naming both, if both are bad
/// ```
#[derive(Debug, Default)]
pub struct FieldErrors {
    fields: Vec<FieldError>,
    /// An error that is not about a field (none of the checks should give one): returned
    /// as it is by [`FieldErrors::finish`].
    other: Option<Error>,
}

impl FieldErrors {
    /// The value of a check, or `None` after noting its error.
    pub fn check<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(Error::Validation {
                field: Some(field),
                message,
            }) => {
                self.fields.push(FieldError { field, message });
                None
            }
            Err(Error::Fields(fields)) => {
                self.fields.extend(fields);
                None
            }
            Err(other) => {
                self.other.get_or_insert(other);
                None
            }
        }
    }

    /// Notes that `field` is bad.
    pub fn push(
        &mut self,
        field: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) {
        self.fields.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.other.is_none()
    }

    /// `Ok` when every check passed; otherwise the error naming every bad field.
    pub fn finish(self) -> Result<()> {
        if let Some(other) = self.other {
            return Err(other);
        }
        if self.fields.is_empty() {
            Ok(())
        } else {
            Err(Error::Fields(self.fields))
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
