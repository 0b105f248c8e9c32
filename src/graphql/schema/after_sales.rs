//! After-sales (售后) in GraphQL: the `AfterSale` type (on `me.afterSales` and
//! `OrderLine.afterSales`), the admins' `afterSales(status)` list, and the four steps —
//! `requestAfterSale` and `submitReturnShipment` (the buyer), `reviewAfterSale` and
//! `receiveReturn` (admins). The rules, the return window and how the line's settlement
//! waits are in [`crate::service::after_sales`].

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Duration, Utc};
use entity::after_sale;

use super::fulfilment::Carrier;
use super::refunds::{Refund, refunds_of};
use crate::error::Error;
use crate::graphql::context::{actor, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::PageArgs;
use crate::graphql::scalars::Dec;
use crate::service::after_sales::{self as svc, Filter, NewAfterSale};
use crate::service::page::NewestCursor;
use crate::state::AppState;

/// What the buyer asks for.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "entity::after_sale::Kind")]
pub enum AfterSaleKind {
    /// 仅退款: a refund; the buyer keeps the goods (or never got them). Approval refunds at
    /// once.
    RefundOnly,
    /// 退货退款: the buyer sends the units back (`submitReturnShipment`) within 7 days of the
    /// approval; the refund follows `receiveReturn`.
    ReturnAndRefund,
}

/// Where an after-sale stands. `REQUESTED`, `APPROVED`, `RETURN_SHIPPED` and `REFUNDING`
/// are open: while one is, the line's earnings do not settle.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "entity::after_sale::Status")]
pub enum AfterSaleStatus {
    /// Waiting for an admin's review.
    Requested,
    /// A return was approved: the buyer ships the units back within 7 days
    /// (`returnDeadline`), or it closes by itself (`CLOSED`).
    Approved,
    /// The buyer shipped the units back; staff receive them (`receiveReturn`).
    ReturnShipped,
    /// The refund was asked of the payment provider (see `refund`); it becomes `REFUNDED`
    /// when the provider confirms.
    Refunding,
    /// Refunded: the units' stock came back and their earnings were reversed, once.
    Refunded,
    /// Rejected by an admin (`reviewNote` says why). The line's earnings settle the return
    /// window (`PUSHHAND_RETURN_WINDOW_DAYS`) after the rejection.
    Rejected,
    /// Closed because the return was not shipped within 7 days of the approval; the line's
    /// earnings settle the return window after the closing.
    Closed,
}

/// A buyer's after-sale request (售后) for units of an order line.
pub struct AfterSale(pub after_sale::Model);

/// An after-sale: a buyer's request to be refunded for units of a received order line, with
/// or without returning them.
#[Object]
impl AfterSale {
    /// The after-sale's id (a UUID), for `reviewAfterSale`, `submitReturnShipment` and
    /// `receiveReturn`.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// What the buyer asks for: a refund only, or a return and refund.
    async fn kind(&self) -> AfterSaleKind {
        self.0.kind.into()
    }
    /// Where it stands; `orderStatusChanged` reports each step on its order.
    async fn status(&self) -> AfterSaleStatus {
        self.0.status.into()
    }
    /// Units asked about.
    async fn quantity(&self) -> i32 {
        self.0.quantity
    }
    /// What a refund gives back, CNY: what was paid for `quantity` units (their part of the
    /// line's paid amount, after its coupon share). The shipping fee is
    /// not refunded.
    async fn amount(&self) -> Dec {
        self.0.amount.into()
    }
    /// The buyer's reason.
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    /// The buyer's evidence (photos, …).
    async fn evidence_urls(&self) -> Vec<String> {
        serde_json::from_str(&self.0.evidence_urls).unwrap_or_default()
    }
    /// The reviewer's note to the buyer.
    async fn review_note(&self) -> Option<&str> {
        self.0.review_note.as_deref()
    }
    /// The carrier of the return shipment.
    async fn return_carrier(&self) -> Option<Carrier> {
        self.0.return_carrier.map(Into::into)
    }
    /// The return shipment's tracking number.
    async fn return_tracking_number(&self) -> Option<&str> {
        self.0.return_tracking_number.as_deref()
    }
    /// For an approved return: until when the buyer may ship it back (7 days after the
    /// approval; after that the server closes it at its next periodic run).
    async fn return_deadline(&self) -> Option<DateTime<Utc>> {
        match (self.0.kind, self.0.reviewed_at, self.0.status) {
            (after_sale::Kind::ReturnAndRefund, Some(at), s)
                if s != after_sale::Status::Rejected =>
            {
                Some(at + Duration::days(svc::RETURN_SHIPMENT_DAYS))
            }
            _ => None,
        }
    }
    /// The provider refund it started (orders paid through `createPayment`); null for an
    /// order paid by `confirmPayment`, refunded at once.
    async fn refund(&self, ctx: &Context<'_>) -> Result<Option<Refund>> {
        let Some(id) = self.0.refund_id else {
            return Ok(None);
        };
        let row = crate::service::refunds::get(&state(ctx)?.db, id).await?;
        Ok(Some(Refund(row)))
    }
    /// The order line (`OrderLine.id`).
    async fn order_line_id(&self) -> ID {
        ids::encode(Kind::OrderLine, self.0.order_line_id)
    }
    /// The order (`Order.id`).
    async fn order_id(&self) -> ID {
        ids::encode(Kind::Order, self.0.order_id)
    }
    /// The buyer (a `Member` ID).
    async fn buyer_id(&self) -> ID {
        ids::encode(Kind::Member, self.0.buyer_id)
    }
    /// When it was requested.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last moved.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When an admin reviewed it.
    async fn reviewed_at(&self) -> Option<DateTime<Utc>> {
        self.0.reviewed_at
    }
    /// When the buyer shipped the return.
    async fn return_shipped_at(&self) -> Option<DateTime<Utc>> {
        self.0.return_shipped_at
    }
    /// When staff received the return.
    async fn received_at(&self) -> Option<DateTime<Utc>> {
        self.0.received_at
    }
    /// When it closed (`REFUNDED`, `REJECTED` or `CLOSED`); null while open.
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }
}

/// What an after-sale list holds besides its page.
#[derive(SimpleObject)]
pub struct AfterSaleTotals {
    /// How many after-sales the list holds (all pages).
    pub total_count: i64,
}

pub type AfterSaleConnection =
    Connection<OpaqueCursor<NewestCursor>, AfterSale, AfterSaleTotals, EmptyFields>;

/// A page of after-sales through `filter`, newest first, with the total.
async fn connection(
    ctx: &Context<'_>,
    filter: Filter,
    first: Option<i32>,
    after: Option<String>,
) -> Result<AfterSaleConnection> {
    let args = PageArgs::<NewestCursor>::parse(first, after)?;
    let db = &state(ctx)?.db;
    let page = svc::list(db, filter, args.after(), args.first).await?;
    let total = svc::count(db, filter).await?;
    let mut conn = Connection::with_additional_fields(
        args.after.is_some(),
        page.has_next,
        AfterSaleTotals {
            total_count: i64::try_from(total).unwrap_or(i64::MAX),
        },
    );
    conn.edges.extend(page.items.into_iter().map(|a| {
        Edge::new(
            OpaqueCursor(NewestCursor::of(a.created_at, a.id)),
            AfterSale(a),
        )
    }));
    Ok(conn)
}

/// A member's after-sales (`Member.afterSales`): the member itself and admins.
pub(crate) async fn of_member(
    ctx: &Context<'_>,
    member: uuid::Uuid,
    status: Option<AfterSaleStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<AfterSaleConnection> {
    if !viewer(ctx)?.is_or_admin(member) {
        return Err(Error::Forbidden("only the member itself reads its after-sales".into()).into());
    }
    let filter = Filter {
        buyer: Some(member),
        status: status.map(Into::into),
    };
    connection(ctx, filter, first, after).await
}

/// The after-sales of an order line (`OrderLine.afterSales`), oldest first.
pub(crate) async fn of_line(ctx: &Context<'_>, line: uuid::Uuid) -> Result<Vec<AfterSale>> {
    let rows = svc::of_line(&state(ctx)?.db, line).await?;
    Ok(rows.into_iter().map(AfterSale).collect())
}

fn after_sale_id(id: &ID) -> Result<uuid::Uuid, Error> {
    uuid::Uuid::try_parse(id.as_str())
        .map_err(|_| Error::validation("id", "must be an after-sale's id (AfterSale.id)"))
}

fn return_window(st: &AppState) -> Duration {
    Duration::days(i64::from(st.config.policy.return_window_days))
}

#[derive(Default)]
pub struct AfterSalesQuery;

#[Object]
impl AfterSalesQuery {
    /// ADMIN: after-sales, newest first, optionally in one state (e.g. `REQUESTED` to review,
    /// `RETURN_SHIPPED` to receive), with their total.
    async fn after_sales(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only after-sales in this state; default: all.")] status: Option<
            AfterSaleStatus,
        >,
        #[graphql(
            desc = "Page size: at most this many edges (default 20, capped at 100; negative is \
                    `VALIDATION`)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "The previous page's last `cursor` (or `pageInfo.endCursor`) to continue after; \
                    omit for the first page. A malformed cursor or one from another list is \
                    `VALIDATION`."
        )]
        after: Option<String>,
    ) -> Result<AfterSaleConnection> {
        viewer(ctx)?.admin()?;
        let filter = Filter {
            buyer: None,
            status: status.map(Into::into),
        };
        connection(ctx, filter, first, after).await
    }

    /// An after-sale by id: its buyer and admins (`NOT_FOUND` for anyone else).
    async fn after_sale(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The after-sale (`AfterSale.id`).")] id: ID,
    ) -> Result<AfterSale> {
        let id = after_sale_id(&id)?;
        let row = svc::visible(&state(ctx)?.db, viewer(ctx)?, id).await?;
        Ok(AfterSale(row))
    }
}

/// A buyer's after-sale request.
#[derive(InputObject)]
pub struct RequestAfterSaleInput {
    /// A line (`OrderLine.id`) of one's own order (`NOT_FOUND` for anyone else's), received
    /// (`COMPLETED`; `AFTER_SALE_NOT_ALLOWED` before) no longer than the return window ago
    /// (`PUSHHAND_RETURN_WINDOW_DAYS` after completion, default 7 — the statutory seven-day
    /// no-reason window; `AFTER_SALE_WINDOW_CLOSED` after).
    pub order_line_id: ID,
    /// Units, 1 to the line's units neither refunded nor being refunded (`VALIDATION`).
    pub quantity: i32,
    /// A refund only (仅退款), or a return and refund (退货退款).
    pub kind: AfterSaleKind,
    /// Why, 1–500 characters.
    pub reason: String,
    /// Up to 9 http(s) URLs of evidence (photos).
    #[graphql(default)]
    pub evidence_urls: Vec<String>,
    /// 1–128 printable characters making retries safe: the same key with the same line,
    /// quantity and kind returns the after-sale the first request opened; with others it is
    /// `IDEMPOTENCY_CONFLICT`.
    pub idempotency_key: String,
}

#[derive(Default)]
pub struct AfterSalesMutation;

#[Object]
impl AfterSalesMutation {
    /// The buyer asks for an after-sale (售后) of units of a received line. At most one
    /// after-sale per line is open at a time (`AFTER_SALE_OPEN`). While it is open, the
    /// line's earnings do not settle. Every bad input field is named at once (`VALIDATION`).
    async fn request_after_sale(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The line, units, kind, reason, evidence and idempotency key.")]
        input: RequestAfterSaleInput,
    ) -> Result<AfterSale> {
        let buyer = viewer(ctx)?.member()?;
        let st = state(ctx)?;
        let line_id = ids::decode_as(&input.order_line_id, Kind::OrderLine, "input.orderLineId")?;
        let actor = actor(ctx, buyer);
        let req = NewAfterSale {
            line_id,
            quantity: input.quantity,
            kind: input.kind.into(),
            reason: input.reason,
            evidence_urls: input.evidence_urls,
            key: input.idempotency_key,
        };
        let row = svc::request(
            refunds_of(st),
            buyer,
            &actor,
            req,
            return_window(st),
            st.clock.now(),
        )
        .await?;
        Ok(AfterSale(row))
    }

    /// ADMIN: reviews a `REQUESTED` after-sale (`AFTER_SALE_STATE` otherwise; of concurrent
    /// reviews one goes). Approving a refund-only request refunds it now (through the
    /// order's payment provider: `REFUNDING` until it confirms); approving a return waits
    /// for the buyer's shipment; rejecting closes it and the line's earnings settle the
    /// return window after now. Audited.
    async fn review_after_sale(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The after-sale (`AfterSale.id`).")] id: ID,
        #[graphql(desc = "True approves, false rejects.")] approve: bool,
        #[graphql(desc = "A note to the buyer, up to 500 characters.")] note: Option<String>,
    ) -> Result<AfterSale> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = after_sale_id(&id)?;
        let actor = actor(ctx, admin);
        let row = svc::review(
            refunds_of(st),
            &actor,
            id,
            approve,
            note.as_deref(),
            return_window(st),
            st.clock.now(),
        )
        .await?;
        Ok(AfterSale(row))
    }

    /// The buyer's return parcel for an `APPROVED` return (`AFTER_SALE_STATE` otherwise),
    /// accepted until the server closes the after-sale 7 days after its approval.
    async fn submit_return_shipment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The after-sale (`AfterSale.id`).")] id: ID,
        #[graphql(desc = "The carrier of the return parcel.")] carrier: Carrier,
        #[graphql(desc = "6–32 letters, digits and '-'.")] tracking_number: String,
    ) -> Result<AfterSale> {
        let buyer = viewer(ctx)?.member()?;
        let st = state(ctx)?;
        let id = after_sale_id(&id)?;
        let actor = actor(ctx, buyer);
        let row = svc::submit_return(
            refunds_of(st),
            buyer,
            &actor,
            id,
            carrier.into(),
            &tracking_number,
            st.clock.now(),
        )
        .await?;
        Ok(AfterSale(row))
    }

    /// ADMIN: the returned units arrived (`RETURN_SHIPPED`; `AFTER_SALE_STATE` otherwise):
    /// the refund runs, as for an approved refund-only request. Audited.
    async fn receive_return(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The after-sale (`AfterSale.id`).")] id: ID,
    ) -> Result<AfterSale> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = after_sale_id(&id)?;
        let actor = actor(ctx, admin);
        let row = svc::receive_return(refunds_of(st), &actor, id, st.clock.now()).await?;
        Ok(AfterSale(row))
    }
}
