//! SeaORM entities of Pushhand: one module per table, and the exact value types stored in them.
//!
//! # Layout
//! - [`money`]: `Money` (exact CNY, stored as integer fen) and `Rate` (stored as basis points).
//! - [`category`], [`merchant`], [`brand`], [`product`], [`sku`], [`product_image`],
//!   [`product_tag`]: the catalog tables.
//! - [`curation_stage_record`], [`curation_score`], [`curation_summary`]: the curation audit
//!   trail and the per-product quality passport rolled up from it.
//! - [`share_link`], [`order`], [`order_line`], [`earning`], [`ledger_entry`], [`balance`],
//!   [`withdrawal`], [`membership_reward_day`]: orders and the money they move;
//!   [`leaderboard_counter`]: members' net settled amounts per leaderboard and period.
//! - [`payment_intent`]: payments opened at a provider for orders, one per order and channel;
//!   [`refund`]: refunds requested from the provider an order was paid through;
//!   [`after_sale`]: buyers' after-sale requests (售后), which pause their line's settlement.
//! - [`payout_account`]: where members' withdrawals are paid, one per member and channel.
//! - [`note`], [`note_product`], [`note_like`], [`note_report`]: 种草 notes, the products
//!   their public versions link, and members' likes and reports of them.
//! - [`share_visit`], [`share_visit_count`], [`share_signup`]: the share funnel —
//!   deduplicated visits of short links (`/s/{code}`), their daily counts (kept by the
//!   database) and which code a member registered through.
//! - [`coupon_template`], [`coupon`]: coupon kinds admins define and the coupons members
//!   hold.
//! - [`level`], [`member_level`]: push-hand levels and where each member stands;
//!   [`privilege_rule`], [`privilege_grant`]: privileges and the ledger of their grants.
//! - [`category_service_fee`]: the platform's service fee rate per category over time;
//!   [`product_draft`]: merchants' working copies of listed products under review.
//! - [`audit_entry`]: the append-only log of staff actions.
//! - [`webhook_endpoint`], [`webhook_event`], [`webhook_delivery`]: integrations' endpoints,
//!   the outbox of events for them, and each event's delivery to each endpoint.
//! - [`idempotency_key`]: clients' keys for retried writes (orders, refunds).
//! - [`image`]: uploaded product and note images (the bytes are in the media store).
//! - [`address`]: members' delivery addresses; [`cart_line`]: members' carts;
//!   [`shipping_rule`], [`shipping_surcharge`]: what shipping a merchant's parcel costs;
//!   [`shipment`], [`shipment_line`]: the parcels an order ships in; [`order_cancellation`]:
//!   why a buyer cancelled.
//! - [`member`], [`binding`], [`member_ancestor`], [`team_counter`]: members, their binding
//!   history, the team closure table and its counters.
//!
//! Entities carry no GraphQL derives and no business rules: the API wraps them in its own
//! types, and the service layer owns the rules.

pub mod address;
pub mod after_sale;
pub mod audit_entry;
pub mod balance;
pub mod binding;
pub mod brand;
pub mod cart_line;
pub mod category;
pub mod category_service_fee;
pub mod coupon;
pub mod coupon_template;
pub mod curation_score;
pub mod curation_stage_record;
pub mod curation_summary;
pub mod earning;
pub mod idempotency_key;
pub mod image;
pub mod image_upload;
pub mod image_upload_quota;
pub mod leaderboard_counter;
pub mod ledger_entry;
pub mod ledger_month;
pub mod level;
pub mod member;
pub mod member_ancestor;
pub mod member_level;
pub mod membership_reward_day;
pub mod merchant;
pub mod money;
pub mod note;
pub mod note_like;
pub mod note_product;
pub mod note_report;
pub mod order;
pub mod order_cancellation;
pub mod order_line;
pub mod payment_intent;
pub mod payout_account;
pub mod privilege_grant;
pub mod privilege_rule;
pub mod product;
pub mod product_draft;
pub mod product_image;
pub mod product_tag;
pub mod refund;
pub mod share_link;
pub mod share_signup;
pub mod share_visit;
pub mod share_visit_count;
pub mod shipment;
pub mod shipment_line;
pub mod shipping_rule;
pub mod shipping_surcharge;
pub mod sku;
pub mod team_counter;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod webhook_event;
pub mod withdrawal;

pub use money::{Money, Rate};
