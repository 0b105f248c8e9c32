//! The one cheap-to-clone state holding every resource a request may need. Resolvers read it
//! from the GraphQL context and hand its parts to services.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::{Config, Secret};
use crate::events::Events;
use crate::metrics::Metrics;
use crate::ratelimit::FailureLimiter;
use crate::responses::ResponseCache;
use crate::service::Clock;
use crate::service::curation::CurationStore;

#[derive(Clone)]
pub struct AppState {
    /// The pool (SeaORM's handle is itself a cheap clone of the pool).
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    /// Redis, when configured. A `Client` rather than a live connection: it connects on
    /// demand, so a Redis outage at start does not stop the server.
    pub redis: Option<redis::Client>,
    pub metrics: Arc<Metrics>,
    /// Key that signs and verifies member tokens.
    pub jwt_secret: Secret,
    /// Checks request tokens, remembering those that passed.
    pub tokens: crate::service::auth::Tokens,
    /// Signed-in members' rows, remembered between their requests.
    pub viewers: Arc<crate::service::viewers::Viewers>,
    /// Where every rule reads the time; tests substitute a clock they can move.
    pub clock: Arc<dyn Clock>,
    /// Failed credential attempts per client.
    pub failures: Arc<FailureLimiter>,
    /// Quality passports through the cache (Redis or in-process).
    pub curation: Arc<CurationStore>,
    /// Brands, merchants and categories once read, until an event says they changed.
    pub rows: Arc<crate::service::immutable::CatalogRows>,
    /// Live events: published after commit, delivered to subscriptions.
    pub events: Events,
    /// Whole answers to anonymous catalog reads (Redis or in-process, or off).
    pub responses: Arc<ResponseCache>,
    /// Units sold by committed payments, not yet written to the products.
    pub units_sold: Arc<crate::service::units_sold::UnitsSold>,
    /// Checkouts being written (combined into one statement on PostgreSQL).
    pub checkouts: crate::service::checkouts::Checkouts,
    /// The enabled payment providers, keys loaded at start.
    pub payments: Arc<crate::payments::Payments>,
    /// The webhook worker's switch and wake-up signal.
    pub webhooks: Arc<crate::service::webhooks::Webhooks>,
    /// Share posters made, kept by what they show, and the key that signs their PNG URLs.
    pub posters: Arc<crate::service::posters::Posters>,
    /// Uploaded images' store and rules.
    pub media: Arc<crate::media::Media>,
    /// The copies of the leaderboards being asked about, which ranks search.
    pub leaderboards: Arc<crate::service::leaderboards::Snapshots>,
    /// Where the short links' visits are written ([`crate::db::connect_visit_recorder`]).
    pub visits_db: DatabaseConnection,
}

impl AppState {
    /// Writes the units sold tallied since the last call to the products (which publishes
    /// them: answers showing `salesCount` go). Runs every `units_sold_interval_ms` and once
    /// more at shutdown. A failure is logged and the tally kept for the next call.
    pub async fn write_units_sold(&self) {
        if let Err(e) = self.units_sold.write(&self.db, &self.events).await {
            tracing::warn!(error = ?e, "units sold not written; will retry");
        }
    }
}
