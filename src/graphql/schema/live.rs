//! Subscriptions: `earningsUpdated` and `orderStatusChanged`. Whose events a subscription
//! receives is decided by the token of the connection, never by an argument; each event is
//! answered from fresh rows (events carry ids only), and a resync delivery becomes an event
//! that tells the client to re-read.

use async_graphql::{Context, Enum, ID, Result, SimpleObject, Subscription};
use futures_util::Stream;
use uuid::Uuid;

use super::earnings::{Earning, EarningsSummary, Withdrawal, summary_in};
use super::orders::Order;
use crate::events::{Delivery, Kind};
use crate::graphql::context::{shared_state, viewer};
use crate::graphql::ids::{self, Kind as IdKind};
use crate::service::{earnings, orders as order_svc, withdrawals};
use crate::state::AppState;

/// What happened in an `earningsUpdated` event.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum EarningEventKind {
    /// An earning was booked (also a negative adjustment after a refund).
    EarningCreated,
    /// An earning's return window passed: its amount moved from pending to available.
    EarningSettled,
    /// An earning was reversed by a refund before it settled.
    EarningReversed,
    /// A withdrawal was requested, approved or rejected.
    WithdrawalChanged,
    /// Events may have been missed (the server's event connection was interrupted, or the
    /// client fell behind): re-read earnings and withdrawals. `summary` is current.
    Resync,
}

/// Something changed in the member's earnings.
#[derive(SimpleObject)]
pub struct EarningEvent {
    /// What happened; decides which of `earning` and `withdrawal` is set.
    pub kind: EarningEventKind,
    /// The earning concerned; null for withdrawal and resync events.
    pub earning: Option<Earning>,
    /// The withdrawal concerned; null unless `kind` is `WITHDRAWAL_CHANGED`.
    pub withdrawal: Option<Withdrawal>,
    /// The member's summary after the change.
    pub summary: EarningsSummary,
    /// True when the client should re-read (same as `kind == RESYNC`).
    pub resync: bool,
}

#[derive(Default)]
pub struct Subscription;

/// Live updates over the WebSocket at `/graphql/ws` (`graphql-transport-ws`, or the legacy
/// `graphql-ws`). Sign in with `{"Authorization": "Bearer <token>"}` in `connection_init`;
/// each subscription concerns the signed-in member only.
#[Subscription]
impl Subscription {
    /// The signed-in member's earnings as they change: booked, settled, reversed, and its
    /// withdrawals as they are requested and reviewed. `UNAUTHENTICATED` without a valid
    /// token in `connection_init`.
    async fn earnings_updated(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<EarningEvent>> + use<>> {
        let st = shared_state(ctx)?.clone();
        let me = viewer(ctx)?.member()?.id;
        let rx = st.events.subscribe(me);
        Ok(futures_util::stream::unfold(
            (st, rx),
            |(st, mut rx)| async move {
                loop {
                    let delivery = rx.recv().await;
                    // Boxed: an idle subscription then holds a pointer here, not the state of
                    // the database calls inline.
                    match Box::pin(earning_event(&st, rx.member(), delivery)).await {
                        Ok(Some(event)) => return Some((Ok(event), (st, rx))),
                        Ok(None) => continue,
                        Err(e) => return Some((Err(e.into()), (st, rx))),
                    }
                }
            },
        ))
    }

    /// The order as it changes (paid, each parcel shipped — `fulfilment` says partly or
    /// wholly —, completed, cancelled, refunded), for its buyer. After a resync the current order is sent again. `NOT_FOUND` for an order
    /// that is not yours.
    async fn order_status_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of the signed-in member's orders.")] order_id: ID,
    ) -> Result<impl Stream<Item = Result<Order>> + use<>> {
        let st = shared_state(ctx)?.clone();
        let me = viewer(ctx)?.member()?.id;
        let id = ids::decode_as(&order_id, IdKind::Order, "orderId")?;
        order_svc::of_buyer(&st.db, me, id).await?;
        let rx = st.events.subscribe(me);
        Ok(futures_util::stream::unfold(
            (st, rx),
            move |(st, mut rx)| async move {
                loop {
                    match rx.recv().await {
                        Delivery::Event(e) if e.kind == Kind::OrderChanged && e.subject == id => {}
                        Delivery::Resync => {}
                        Delivery::Event(_) => continue,
                    }
                    let order = Box::pin(order_svc::get(&st.db, id)).await.map(Order);
                    return Some((order.map_err(Into::into), (st, rx)));
                }
            },
        ))
    }
}

/// The event to send for a delivery, or `None` when it does not concern earnings.
async fn earning_event(
    st: &AppState,
    me: Uuid,
    delivery: Delivery,
) -> crate::error::Result<Option<EarningEvent>> {
    let (kind, subject) = match delivery {
        Delivery::Resync => (EarningEventKind::Resync, None),
        Delivery::Event(e) => match e.kind {
            Kind::EarningCreated => (EarningEventKind::EarningCreated, Some(e.subject)),
            Kind::EarningSettled => (EarningEventKind::EarningSettled, Some(e.subject)),
            Kind::EarningReversed => (EarningEventKind::EarningReversed, Some(e.subject)),
            Kind::WithdrawalChanged => (EarningEventKind::WithdrawalChanged, Some(e.subject)),
            Kind::OrderChanged
            | Kind::TokensRevoked
            | Kind::Changed
            | Kind::CatalogChanged
            | Kind::PassportChanged
            | Kind::OwnChanged
            | Kind::NoteChanged
            | Kind::CatalogRowChanged => return Ok(None),
        },
    };
    let (mut earning, mut withdrawal) = (None, None);
    match (kind, subject) {
        (EarningEventKind::WithdrawalChanged, Some(id)) => {
            withdrawal = withdrawals::of_member(&st.db, me, id)
                .await?
                .map(Withdrawal);
        }
        (_, Some(id)) => {
            earning = earnings::of_member(&st.db, me, id).await?.map(Earning);
        }
        _ => {}
    }
    if subject.is_some() && earning.is_none() && withdrawal.is_none() {
        // Not this member's (cannot happen: events are addressed by member) or gone.
        return Ok(None);
    }
    Ok(Some(EarningEvent {
        kind,
        earning,
        withdrawal,
        summary: summary_in(st, me).await?,
        resync: kind == EarningEventKind::Resync,
    }))
}
