//! The GraphQL schema: root types merged from one module per domain, the error mapping to
//! `extensions.code`, and SDL export.
//!
//! Two groups and the pieces both use:
//! - [`schema`]: the domain types and resolvers, one module per domain (catalog, members,
//!   orders, …) — where a new part of the API goes.
//! - [`transport`]: how a request becomes an answer — the front door ([`transport::api`]:
//!   parse once, limits, execution, metrics), the document guard, cost and limits, the
//!   plain renderer of listed products and its JSON text.
//! - Shared by both: global IDs ([`ids`]), scalars ([`scalars`]), dataloaders
//!   ([`loaders`]) and every connection's arguments and edges ([`pagination`]).
//!
//! Resolvers are thin: they read the viewer and the [`AppState`] from the context ([`context`]), call one
//! service function and wrap the rows in API types. They never run SQL.

pub mod context;
pub mod ids;
pub mod loaders;
pub mod pagination;
pub mod scalars;
pub mod schema;
pub mod transport;

use async_graphql::{MergedObject, SDLExportOptions, Schema, SchemaBuilder};

use crate::state::AppState;

/// Everything that can be read. Anonymous requests see the published catalog; `me` and the
/// rest need `Authorization: Bearer <token>` (from `login` or `register`); fields marked
/// ADMIN, CURATOR or MERCHANT are `FORBIDDEN` to other roles.
#[derive(MergedObject, Default)]
pub struct Query(
    schema::node::NodeQuery,
    schema::catalog::CatalogQuery,
    schema::members::MembersQuery,
    schema::curation::CurationQuery,
    schema::earnings::EarningsQuery,
    schema::audit::AuditQuery,
    schema::addresses::AddressesQuery,
    schema::shipping::ShippingQuery,
    schema::fulfilment::FulfilmentQuery,
    schema::cart::CartQuery,
    schema::refunds::RefundsQuery,
    schema::after_sales::AfterSalesQuery,
    schema::notes::NotesQuery,
    schema::staff::StaffQuery,
    schema::coupons::CouponsQuery,
    schema::webhooks::WebhooksQuery,
    schema::levels::LevelsQuery,
    schema::funnel::FunnelQuery,
    schema::merchant::MerchantQuery,
    schema::leaderboards::LeaderboardsQuery,
);

/// Everything that changes state. All need a signed-in member except `register` and `login`;
/// fields marked ADMIN, CURATOR or MERCHANT are `FORBIDDEN` to other roles. Errors carry a
/// stable `extensions.code` (and `extensions.field` for `VALIDATION`).
#[derive(MergedObject, Default)]
pub struct Mutation(
    schema::members::MembersMutation,
    schema::curation::CurationMutation,
    schema::orders::OrdersMutation,
    schema::earnings::EarningsMutation,
    schema::addresses::AddressesMutation,
    schema::shipping::ShippingMutation,
    schema::fulfilment::FulfilmentMutation,
    schema::cart::CartMutation,
    schema::payments::PaymentsMutation,
    schema::refunds::RefundsMutation,
    schema::payouts::PayoutsMutation,
    schema::after_sales::AfterSalesMutation,
    schema::notes::NotesMutation,
    schema::catalog_admin::CatalogAdminMutation,
    schema::coupons::CouponsMutation,
    schema::webhooks::WebhooksMutation,
    schema::levels::LevelsMutation,
    schema::merchant::MerchantMutation,
    schema::posters::PostersMutation,
    schema::images::ImagesMutation,
);

pub type AppSchema = Schema<Query, Mutation, schema::live::Subscription>;

/// The schema behind its front door ([`transport::api::Api`]).
pub fn build(state: AppState) -> transport::api::Api {
    transport::api::Api::new(state)
}

/// The schema's builder, shared by the server ([`transport::api::Api::new`]) and [`sdl`], with the
/// descriptions of the types no doc comment of ours reaches: the connection types
/// async-graphql makes, and chrono's `DateTime` scalar (whose own says "Implement the
/// DateTime<Utc> scalar").
pub fn builder() -> SchemaBuilder<Query, Mutation, schema::live::Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        schema::live::Subscription,
    )
    .override_output_type_description::<chrono::DateTime<chrono::Utc>>(
        "A moment in time: an RFC 3339 string. Answers are in UTC (`Z` or `+00:00`, with \
             fractional seconds when the moment has them); inputs may carry any offset, e.g. \
             \"2026-11-25T16:30:00+08:00\", and are read as that instant.",
    )
    .override_output_type_description::<schema::catalog::ProductConnection>(
        "A page of published products: `edges` (each with its `cursor`) or `nodes`, and \
             `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::curation::StaffProductConnection>(
        "A page of products in any status, for staff, newest submission first: `edges` \
             or `nodes`, and `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::coupons::CouponTemplateConnection>(
        "A page of coupon templates, newest first: `edges` or `nodes`, and `pageInfo` to \
             ask for the next page.",
    )
    .override_output_type_description::<schema::coupons::CouponConnection>(
        "A page of the member's coupons, newest claimed first: `edges` or `nodes`, and \
             `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::levels::PrivilegeConnection>(
        "A page of the member's privileges, newest granted first: `edges` or `nodes`, and \
             `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::levels::PrizeConnection>(
        "A page of the member's prizes, newest granted first: `edges` or `nodes`, and \
             `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::after_sales::AfterSaleConnection>(
        "A page of after-sales, newest first: `edges` or `nodes`, `pageInfo` to ask for the \
             next page, and `totalCount` (all pages).",
    )
    .override_output_type_description::<schema::orders::OrderConnection>(
        "A page of orders (a member's own, or any for admins), newest first: `edges` or \
             `nodes`, and `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::earnings::EarningConnection>(
        "A page of the member's earnings, newest first: `edges` or `nodes`, and \
             `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::earnings::WithdrawalConnection>(
        "A page of withdrawals (a member's own, or any for admins), newest first: `edges` \
             or `nodes`, `totalCount`, and `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::staff::MemberConnection>(
        "A page of members, for admins, newest registrations first: `edges` or `nodes`, \
             `totalCount`, and `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::members::MemberProfileConnection>(
        "A page of one level of a member's team, most recently joined first: `edges` or \
             `nodes` (public profiles), and `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::shipping::ShippingRuleConnection>(
        "A page of merchants' shipping rules, newest first: `edges` or `nodes`, and \
             `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::notes::NoteConnection>(
        "A page of public notes in the feed's order: `edges` or `nodes`, and `pageInfo` to \
             ask for the next page.",
    )
    .override_output_type_description::<schema::notes::NoteWorkConnection>(
        "A page of notes in work (an author's own, or the review queue), newest first: \
             `edges` or `nodes`, and `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::webhooks::WebhookDeliveryConnection>(
        "A page of webhook deliveries, for admins, newest first: `edges` or `nodes`, \
             `totalCount`, and `pageInfo` to ask for the next page.",
    )
    .override_output_type_description::<schema::audit::AuditEntryConnection>(
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
