//! The schema's domain parts: one module per domain, each with its API types (wrapping the
//! service's rows) and its `*Query` / `*Mutation` roots, merged in [`crate::graphql`].
//! Resolvers read the viewer and state from the context, call one service function and wrap
//! the result; they never run SQL and never invalidate a cache (services publish events).

pub mod addresses;
pub mod after_sales;
pub mod audit;
pub mod cart;
pub mod catalog;
pub mod catalog_admin;
pub mod coupons;
pub mod curation;
pub mod earnings;
pub mod fulfilment;
pub mod funnel;
pub mod images;
pub mod leaderboards;
pub mod levels;
pub mod live;
pub mod members;
pub mod merchant;
pub mod node;
pub mod notes;
pub mod orders;
pub mod payments;
pub mod payouts;
pub mod posters;
pub mod refunds;
pub mod shipping;
pub mod staff;
pub mod webhooks;
