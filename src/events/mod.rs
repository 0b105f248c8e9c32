//! What changed, published by the services after the change commits: every batch is first
//! heard by the [`Listener`]s — the caches, which drop what it changed — then its live
//! events (what changed for which member) are handed to that member's subscriptions — on
//! this instance through the [`Hub`], on every instance through a [`Bus`] (Redis pub/sub
//! when `REDIS_URL` is set, in-process otherwise). Changes of the catalog
//! ([`Kind::CatalogChanged`], [`Kind::PassportChanged`]) and of a member's views that have
//! no live event ([`Kind::Changed`]) are heard by the listeners only.
//!
//! Events carry ids, not data: a subscription reads the fresh rows when it receives one, so
//! an event can never show a state the database does not hold. Delivery is at most once
//! (pub/sub keeps nothing); whenever events may have been lost — the Redis subscriber
//! reconnected, or a slow subscriber fell behind — subscribers get [`Delivery::Resync`] and
//! re-read what they show.

mod hub;
mod redis_bus;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use self::hub::{Hub, MemberEvents, Observer};
pub use self::redis_bus::RedisBus;
use crate::metrics::Metrics;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    /// An earning was booked (incl. negative adjustments); subject: the earning.
    EarningCreated,
    /// An earning settled; subject: the earning.
    EarningSettled,
    /// An earning was reversed; subject: the earning.
    EarningReversed,
    /// A withdrawal was requested, approved or rejected; subject: the withdrawal.
    WithdrawalChanged,
    /// An order changed status; subject: the order (the member is its buyer).
    OrderChanged,
    /// Every token of the member was revoked (password change, freeze); subject: the member.
    TokensRevoked,
    /// Something the member's own views show changed without a live event of its own: its
    /// member row, its team (a binding, role or sale within three levels below) or an
    /// earning's settlement date; subject: the member whose change it was. Only drops the
    /// member's cached answers and its remembered row ([`crate::service::viewers`]):
    /// subscriptions never see it, and it never leaves the instance.
    Changed,
    /// What anonymous catalog answers show changed: a product's listing, SKUs, stock or units
    /// sold (subject: the product), or something no one product stands for, a brand or the
    /// seed (subject: nil). Names no member (nil). Drops every cached catalog answer
    /// ([`crate::responses`]). Stays on its instance, like [`Kind::Changed`]: what it drops
    /// is shared by every instance when there are several (Redis).
    CatalogChanged,
    /// A product's curation records changed — stages, scores, publishing (subject: the
    /// product): its cached passport goes ([`crate::service::curation::CurationStore`]), and
    /// with it every cached catalog answer, as for [`Kind::CatalogChanged`]. Names no member
    /// (nil); stays on its instance.
    PassportChanged,
    /// Something only the member's own views show changed, other than its member row: its
    /// addresses or its cart (subject: the member). Drops the member's cached answers, as
    /// [`Kind::Changed`] does, but keeps its remembered row ([`crate::service::viewers`]):
    /// a member filling its cart is not read again on every request. Stays on its
    /// instance.
    OwnChanged,
    /// What public note reads show changed (`notes`, `Product.notes`, a note's `node`): a
    /// note approved, rejected, hidden by reports, deleted, liked or unliked, or a frozen
    /// member's likes dropped (subject: the note, or nil for several). Names no member (nil).
    /// Drops every cached catalog answer, as [`Kind::CatalogChanged`]; stays on its instance.
    NoteChanged,
    /// A category, brand or merchant row changed (subject: that row; names no member, nil):
    /// every instance's kept rows ([`crate::service::immutable::CatalogRows`]) drop it, and
    /// every cached catalog answer goes, as for [`Kind::CatalogChanged`]. The one catalog kind
    /// that crosses the bus ([`Kind::is_live`]): those rows are kept in each instance's
    /// memory, which no shared store reaches. No subscription hears it (it names no member).
    CatalogRowChanged,
}

impl Kind {
    /// Whether the bus carries it to the other instances (and subscriptions of the member it
    /// names hear it). Exhaustive: a new kind must say.
    pub fn is_live(self) -> bool {
        match self {
            Kind::EarningCreated
            | Kind::EarningSettled
            | Kind::EarningReversed
            | Kind::WithdrawalChanged
            | Kind::OrderChanged
            | Kind::TokensRevoked
            | Kind::CatalogRowChanged => true,
            Kind::Changed
            | Kind::CatalogChanged
            | Kind::PassportChanged
            | Kind::OwnChanged
            | Kind::NoteChanged => false,
        }
    }

    /// Whether it changes what anonymous catalog answers show.
    pub fn changes_catalog(self) -> bool {
        matches!(
            self,
            Kind::CatalogChanged
                | Kind::PassportChanged
                | Kind::NoteChanged
                | Kind::CatalogRowChanged
        )
    }

    /// Whether it is addressed to a member (every kind but the catalog's).
    pub fn names_member(self) -> bool {
        !self.changes_catalog()
    }
}

/// One change, addressed to one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "m")]
    pub member: Uuid,
    #[serde(rename = "k")]
    pub kind: Kind,
    #[serde(rename = "s")]
    pub subject: Uuid,
}

impl Event {
    pub fn new(member: Uuid, kind: Kind, subject: Uuid) -> Event {
        Event {
            member,
            kind,
            subject,
        }
    }

    /// [`Kind::Changed`] for each of `members`, caused by a change of `subject`.
    pub fn changed(members: impl IntoIterator<Item = Uuid>, subject: Uuid) -> Vec<Event> {
        members
            .into_iter()
            .map(|m| Event::new(m, Kind::Changed, subject))
            .collect()
    }

    /// [`Kind::CatalogChanged`] of `product`, or of the catalog at large (`None`).
    pub fn catalog(product: Option<Uuid>) -> Event {
        Event::new(
            Uuid::nil(),
            Kind::CatalogChanged,
            product.unwrap_or_default(),
        )
    }

    /// [`Kind::CatalogChanged`] for each of `products` (each once).
    pub fn catalog_of(products: impl IntoIterator<Item = Uuid>) -> Vec<Event> {
        let products: std::collections::BTreeSet<Uuid> = products.into_iter().collect();
        products
            .into_iter()
            .map(|p| Event::catalog(Some(p)))
            .collect()
    }

    /// [`Kind::NoteChanged`] of `note` (`None`: of several).
    pub fn note(note: Option<Uuid>) -> Event {
        Event::new(Uuid::nil(), Kind::NoteChanged, note.unwrap_or_default())
    }

    /// [`Kind::CatalogRowChanged`] of the category, brand or merchant `row`.
    pub fn catalog_row(row: Uuid) -> Event {
        Event::new(Uuid::nil(), Kind::CatalogRowChanged, row)
    }

    /// [`Kind::PassportChanged`] of `product`.
    pub fn passport(product: Uuid) -> Event {
        Event::new(Uuid::nil(), Kind::PassportChanged, product)
    }
}

/// Hears every batch before it goes out, on the instance that publishes it: the caches that
/// hold what the batch changed drop it — the response cache its catalog answers and the own
/// answers of the members named ([`crate::responses::ResponseCache`]), the passport cache
/// the passports named ([`crate::service::curation::CurationStore`]), the remembered rows
/// those of the members named ([`crate::service::viewers::Viewers::forget`]). What a
/// listener drops in a store shared over Redis is dropped for every instance; the live
/// events then reach the other instances' [`Observer`]s over the bus.
#[async_trait::async_trait]
pub trait Listener: Send + Sync + 'static {
    async fn published(&self, batch: &[Event]);

    /// Hears a revocation of `member`'s tokens *before* it commits ([`Events::revoke`]); an
    /// error stops the revocation (nothing is committed). For what a revoked token could
    /// otherwise still read: answers served without the database.
    async fn revoking(&self, _member: Uuid) -> Result<(), String> {
        Ok(())
    }
}

/// What a subscriber receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Event(Event),
    /// Events may have been lost: re-read everything shown.
    Resync,
}

/// Carries batches of events to every instance's hub. One interface, two implementations.
#[async_trait::async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Sends one batch (one transaction's events). An error means the batch did not leave
    /// this instance.
    async fn publish(&self, batch: &[Event]) -> Result<(), String>;
    /// `redis` or `memory`, for metrics and `/readyz`.
    fn backend(&self) -> &'static str;
    /// Whether the bus currently reaches the other instances.
    fn connected(&self) -> bool;
}

/// The in-process bus: a batch goes straight to this instance's hub.
pub struct LocalBus {
    hub: Arc<Hub>,
}

#[async_trait::async_trait]
impl Bus for LocalBus {
    async fn publish(&self, batch: &[Event]) -> Result<(), String> {
        self.hub.deliver(batch);
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }

    fn connected(&self) -> bool {
        true
    }
}

/// The app's handle on live events: publish after commit, subscribe per member.
#[derive(Clone)]
pub struct Events {
    hub: Arc<Hub>,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    listeners: Vec<Arc<dyn Listener>>,
}

impl Events {
    /// Events within this process only.
    pub fn in_process(metrics: Arc<Metrics>) -> Events {
        let hub = Arc::new(Hub::default());
        let bus = Arc::new(LocalBus { hub: hub.clone() });
        Events {
            hub,
            bus,
            metrics,
            listeners: Vec::new(),
        }
    }

    /// Events across instances over Redis pub/sub; starts the subscriber task, which
    /// reconnects by itself.
    pub fn redis(
        client: redis::Client,
        publish: crate::redis_conn::LazyRedis,
        metrics: Arc<Metrics>,
    ) -> Events {
        let hub = Arc::new(Hub::default());
        let bus = Arc::new(RedisBus::start(
            client,
            publish,
            hub.clone(),
            metrics.clone(),
        ));
        Events {
            hub,
            bus,
            metrics,
            listeners: Vec::new(),
        }
    }

    /// These events, telling `listener` too of every batch before it goes out (after the
    /// listeners added before it).
    pub fn with_listener(mut self, listener: Arc<dyn Listener>) -> Events {
        self.listeners.push(listener);
        self
    }

    /// Publishes one committed transaction's events. Never fails the caller: the change is
    /// committed already. The listeners hear first (awaited: once this returns, no stale
    /// cached answer or remembered row of a named member is served on this instance); then
    /// the live events go out. When the bus cannot send, this instance's subscribers still
    /// get the batch (degraded to in-process) and the others resync when the bus recovers.
    pub async fn publish(&self, mut batch: Vec<Event>) {
        if batch.is_empty() {
            return;
        }
        for listener in &self.listeners {
            listener.published(&batch).await;
        }
        batch.retain(|e| e.kind.is_live());
        if batch.is_empty() {
            return;
        }
        let backend = self.bus.backend();
        match self.bus.publish(&batch).await {
            Ok(()) => self.metrics.count_events(backend, "published", batch.len()),
            Err(e) => {
                tracing::warn!(error = %e, events = batch.len(), "event bus unavailable; delivering on this instance only");
                self.metrics
                    .count_events(backend, "local_only", batch.len());
                self.hub.deliver(&batch);
            }
        }
    }

    /// Tells the listeners that `member`'s tokens are being revoked (a password change, a
    /// freeze). Call inside the revoking transaction, before its commit, and return its
    /// error: a listener that cannot take it (Redis did not take the member's new version)
    /// makes the revocation fail with `UNAVAILABLE` rather than commit and leave a revoked
    /// token reading cached answers. The [`Kind::TokensRevoked`] event published after the
    /// commit tells them again, so an answer cached between the two is dropped too.
    pub async fn revoke(&self, member: Uuid) -> crate::error::Result<()> {
        for listener in &self.listeners {
            if let Err(e) = listener.revoking(member).await {
                tracing::warn!(error = %e, %member, "a revocation could not be made safe; refusing it");
                return Err(crate::error::Error::Unavailable);
            }
        }
        Ok(())
    }

    /// These events, with `observer` hearing every live batch delivered on this instance —
    /// with Redis, those published on every instance — and every resync (after the
    /// observers added before it).
    pub fn with_observer(self, observer: Arc<dyn Observer>) -> Events {
        self.hub.observe(observer);
        self
    }

    /// The live deliveries for `member` on this instance, until dropped.
    pub fn subscribe(&self, member: Uuid) -> MemberEvents {
        self.hub.subscribe(member)
    }

    pub fn backend(&self) -> &'static str {
        self.bus.backend()
    }

    pub fn connected(&self) -> bool {
        self.bus.connected()
    }

    /// Members with at least one live subscriber here (for metrics and tests).
    pub fn members_listening(&self) -> usize {
        self.hub.members()
    }

    /// Live subscribers here: each subscription, and each signed-in WebSocket connection
    /// (which listens for revocations of its token).
    pub fn receivers(&self) -> usize {
        self.hub.receivers()
    }
}
