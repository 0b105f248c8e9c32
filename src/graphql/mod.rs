//! The GraphQL schema: root types merged from one module per domain, the error mapping to
//! `extensions.code`, and SDL export.
//!
//! Resolvers are thin: they read the viewer and the [`AppState`] from the context, call one
//! service function and wrap the rows in API types. They never run SQL.

pub mod addresses;
pub mod api;
pub mod audit;
pub mod catalog;
pub mod cost;
pub mod curation;
pub mod earnings;
mod field_order;
pub mod guard;
pub mod ids;
pub mod json;
pub mod limits;
pub mod live;
pub mod loaders;
pub mod members;
pub mod node;
pub mod orders;
pub mod pagination;
pub mod plain;
pub mod scalars;
pub mod shipping;

use std::sync::Arc;

use async_graphql::{ErrorExtensions, MergedObject, SDLExportOptions, Schema, SchemaBuilder};

use crate::error::Error;
use crate::service::auth::Viewer;
use crate::state::AppState;

/// Everything that can be read. Anonymous requests see the published catalog; `me` and the
/// rest need `Authorization: Bearer <token>` (from `login` or `register`); fields marked
/// ADMIN, CURATOR or MERCHANT are `FORBIDDEN` to other roles.
#[derive(MergedObject, Default)]
pub struct Query(
    node::NodeQuery,
    catalog::CatalogQuery,
    members::MembersQuery,
    curation::CurationQuery,
    earnings::EarningsQuery,
    audit::AuditQuery,
    addresses::AddressesQuery,
    shipping::ShippingQuery,
);

/// Everything that changes state. All need a signed-in member except `register` and `login`;
/// fields marked ADMIN, CURATOR or MERCHANT are `FORBIDDEN` to other roles. Errors carry a
/// stable `extensions.code` (and `extensions.field` for `VALIDATION`).
#[derive(MergedObject, Default)]
pub struct Mutation(
    members::MembersMutation,
    curation::CurationMutation,
    orders::OrdersMutation,
    earnings::EarningsMutation,
    addresses::AddressesMutation,
    shipping::ShippingMutation,
);

pub type AppSchema = Schema<Query, Mutation, live::Subscription>;

/// The client's address, put into each request by the HTTP layer (rate limits key on it).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

/// The schema behind its front door ([`api::Api`]).
pub fn build(state: AppState) -> api::Api {
    api::Api::new(state)
}

/// The schema's builder, shared by the server ([`api::Api::new`]) and [`sdl`], with the
/// descriptions of the types no doc comment of ours reaches: the connection types
/// async-graphql makes, and chrono's `DateTime` scalar (whose own says "Implement the
/// DateTime<Utc> scalar").
pub fn builder() -> SchemaBuilder<Query, Mutation, live::Subscription> {
    Schema::build(Query::default(), Mutation::default(), live::Subscription)
        .override_output_type_description::<chrono::DateTime<chrono::Utc>>(
            "A moment in time: an RFC 3339 string. Answers are in UTC (`Z` or `+00:00`, with \
             fractional seconds when the moment has them); inputs may carry any offset, e.g. \
             \"2026-11-25T16:30:00+08:00\", and are read as that instant.",
        )
        .override_output_type_description::<catalog::ProductConnection>(
            "A page of published products: `edges` (each with its `cursor`) or `nodes`, and \
             `pageInfo` to ask for the next page.",
        )
        .override_output_type_description::<curation::StaffProductConnection>(
            "A page of products in any status, for staff, newest submission first: `edges` \
             or `nodes`, and `pageInfo` to ask for the next page.",
        )
        .override_output_type_description::<orders::OrderConnection>(
            "A page of the member's orders, newest first: `edges` or `nodes`, and \
             `pageInfo` to ask for the next page.",
        )
        .override_output_type_description::<earnings::EarningConnection>(
            "A page of the member's earnings, newest first: `edges` or `nodes`, and \
             `pageInfo` to ask for the next page.",
        )
        .override_output_type_description::<earnings::WithdrawalConnection>(
            "A page of the member's withdrawals, newest first: `edges` or `nodes`, and \
             `pageInfo` to ask for the next page.",
        )
        .override_output_type_description::<members::MemberProfileConnection>(
            "A page of one level of a member's team, most recently joined first: `edges` or \
             `nodes` (public profiles), and `pageInfo` to ask for the next page.",
        )
        .override_output_type_description::<shipping::ShippingRuleConnection>(
            "A page of merchants' shipping rules, newest first: `edges` or `nodes`, and \
             `pageInfo` to ask for the next page.",
        )
        .override_output_type_description::<audit::AuditEntryConnection>(
            "A page of the audit log, newest first: `edges` or `nodes`, and `pageInfo` to \
             ask for the next page.",
        )
}

/// The SDL clients consume, with fields, arguments and enum values sorted so that the file
/// diffs cleanly, and each custom scalar's `@specifiedBy` where a specification defines it
/// (`DateTime`: RFC 3339; `JSON`: RFC 8259; `Decimal` has none: its description is its
/// specification). `schema.graphql` at the repository root is this text.
pub fn sdl() -> String {
    builder().finish().sdl_with_options(
        SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items()
            .include_specified_by(),
    )
}

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
