//! Schema migrations of Pushhand, one file per migration, applied in name order.
//!
//! `pushhand migrate` and `pushhand serve` (before it listens) apply whatever is pending;
//! tests apply them to each fresh database. Migrations are written once and never edited
//! after they land: a change to the schema is a new file.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_catalog;
mod m20261125_000002_members;
mod m20261125_000003_curation;
mod m20261125_000004_orders_ledger;
mod m20261125_000005_team_sales;
mod m20261125_000006_partial_refunds;
mod m20261125_000007_ledger_months;
mod m20261129_000008_membership_reward_days;
mod m20261201_000010_audit_log;
mod m20261202_000011_idempotency_keys;
mod m20261202_000012_money_invariants;
mod m20261203_000013_addresses_shipping;
mod m20261203_000029_image_uploads;
mod m20261204_000014_cart_checkout;
mod m20261204_000015_shipments;
mod m20261204_000016_payment_intents;
mod m20261205_000017_refunds;
mod m20261205_000018_payouts;
mod m20261206_000019_after_sales;
mod m20261206_000020_coupons;
mod m20261206_000021_back_office;
mod m20261206_000022_notes;
mod m20261207_000023_levels;
mod m20261207_000024_webhooks;
mod m20261207_000025_merchant_side;
mod m20261207_000026_funnel;
mod m20261208_000027_leaderboards;
mod m20261208_000028_images;
mod m20261209_000032_visit_index;
mod m20261210_000033_visit_counts;
mod m20261211_000034_pending_orders;
mod m20261212_000035_visit_counts_view;
mod m20261213_000036_note_products_inline;
mod m20261214_000037_earnings_by_line;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_catalog::Migration),
            Box::new(m20261125_000002_members::Migration),
            Box::new(m20261125_000003_curation::Migration),
            Box::new(m20261125_000004_orders_ledger::Migration),
            Box::new(m20261125_000005_team_sales::Migration),
            Box::new(m20261125_000006_partial_refunds::Migration),
            Box::new(m20261125_000007_ledger_months::Migration),
            Box::new(m20261129_000008_membership_reward_days::Migration),
            Box::new(m20261201_000010_audit_log::Migration),
            Box::new(m20261202_000011_idempotency_keys::Migration),
            Box::new(m20261202_000012_money_invariants::Migration),
            Box::new(m20261203_000013_addresses_shipping::Migration),
            Box::new(m20261204_000014_cart_checkout::Migration),
            Box::new(m20261204_000015_shipments::Migration),
            Box::new(m20261204_000016_payment_intents::Migration),
            Box::new(m20261205_000017_refunds::Migration),
            Box::new(m20261205_000018_payouts::Migration),
            Box::new(m20261206_000019_after_sales::Migration),
            Box::new(m20261206_000020_coupons::Migration),
            Box::new(m20261206_000021_back_office::Migration),
            Box::new(m20261206_000022_notes::Migration),
            Box::new(m20261207_000023_levels::Migration),
            Box::new(m20261207_000024_webhooks::Migration),
            Box::new(m20261207_000025_merchant_side::Migration),
            Box::new(m20261207_000026_funnel::Migration),
            Box::new(m20261208_000027_leaderboards::Migration),
            Box::new(m20261208_000028_images::Migration),
            Box::new(m20261203_000029_image_uploads::Migration),
            Box::new(m20261209_000032_visit_index::Migration),
            Box::new(m20261210_000033_visit_counts::Migration),
            Box::new(m20261211_000034_pending_orders::Migration),
            Box::new(m20261212_000035_visit_counts_view::Migration),
            Box::new(m20261213_000036_note_products_inline::Migration),
            Box::new(m20261214_000037_earnings_by_line::Migration),
        ]
    }
}
