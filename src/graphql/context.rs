//! What a resolver reads from its context — the viewer, the app state, the client's address,
//! the acting staff member — and the mapping of service errors to GraphQL errors with a stable
//! `extensions.code`. A leaf: every domain part of the schema uses it, it uses none of them.

use std::sync::Arc;

use async_graphql::ErrorExtensions;

use crate::error::Error;
use crate::service::auth::Viewer;
use crate::state::AppState;

/// The client's address, put into each request by the HTTP layer (rate limits key on it).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

/// The viewer of the request (anonymous unless the HTTP layer authenticated someone).
pub(crate) fn viewer<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a Viewer> {
    static ANONYMOUS: Viewer = Viewer::Anonymous;
    Ok(ctx.data_opt::<Viewer>().unwrap_or(&ANONYMOUS))
}

/// The client's IP address (loopback when the request did not come over HTTP).
pub(crate) fn client_addr(ctx: &async_graphql::Context<'_>) -> std::net::IpAddr {
    ctx.data_opt::<ClientAddr>()
        .map(|c| c.0)
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// The staff member `staff` acting in this request, with the client's address, for the
/// audit log ([`crate::service::audit`]).
pub(crate) fn actor(
    ctx: &async_graphql::Context<'_>,
    staff: &entity::member::Model,
) -> crate::service::audit::Actor {
    crate::service::audit::Actor::new(staff.id, ctx.data_opt::<ClientAddr>().map(|c| c.0))
}

/// The app state, from a resolver's context.
pub(crate) fn state<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a AppState> {
    Ok(shared_state(ctx)?.as_ref())
}

/// The app state as a pointer to keep: what a subscription holds while it waits (a copy of
/// [`AppState`] would allocate).
pub(crate) fn shared_state<'a>(
    ctx: &async_graphql::Context<'a>,
) -> async_graphql::Result<&'a std::sync::Arc<AppState>> {
    ctx.data::<std::sync::Arc<AppState>>()
}

/// Turns a service error into a GraphQL error with `extensions.code` (and `field` for
/// validation errors). Internal errors are logged here with their cause and reach the client
/// as a bare `INTERNAL`.
pub(crate) fn to_graphql(err: &Error) -> async_graphql::Error {
    if let Error::Internal(cause) = err {
        tracing::error!(error = ?cause, "internal error");
    }
    let code = err.code();
    let field = err.field().map(str::to_owned);
    let fields = fields_value(err);
    async_graphql::Error::new(err.message()).extend_with(|_, ext| {
        ext.set("code", code);
        if let Some(field) = &field {
            ext.set("field", field.as_str());
        }
        if let Some(fields) = &fields {
            ext.set("fields", fields.clone());
        }
    })
}

/// `extensions.fields` of an error about several fields of an input: `[{ field, message }]`.
fn fields_value(err: &Error) -> Option<async_graphql::Value> {
    use async_graphql::{Name, Value};
    let fields = err.fields();
    (!fields.is_empty()).then(|| {
        Value::List(
            fields
                .iter()
                .map(|f| {
                    Value::Object(
                        [
                            (Name::new("field"), Value::from(f.field.as_ref())),
                            (Name::new("message"), Value::from(f.message.as_ref())),
                        ]
                        .into_iter()
                        .collect(),
                    )
                })
                .collect(),
        )
    })
}

impl From<Error> for async_graphql::Error {
    fn from(err: Error) -> Self {
        to_graphql(&err)
    }
}

/// For DataLoader failures, which are shared between the fields that waited on a batch.
pub(crate) fn load_err(err: Arc<Error>) -> async_graphql::Error {
    to_graphql(&err)
}
