//! Fulfilment in GraphQL: parcels (`shipOrder`, `Order.shipments`, `Order.fulfilment`), the
//! buyer's `cancelOrder`, and the admins' order list (`orders`). A page of orders loads its
//! lines, parcels and cancellations through loaders: a few statements, whatever its size.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::{member, order, order_line};

use super::orders::{Order, OrderConnection, OrderLine, OrderStatus};
use crate::error::{Error, FieldErrors};
use crate::graphql::context::{actor, load_err, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{CancellationOf, Loaders, OrderLinesOf, ShipmentsOf};
use crate::graphql::pagination::{PageArgs, wants_total};
use crate::service::fulfilment as svc;
use crate::service::orders::OrderCursor;

/// The express company a parcel went with (a fixed list: frontends may link each to its
/// tracking page).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "entity::shipment::Carrier")]
pub enum Carrier {
    /// 顺丰速运 (SF Express).
    Sf,
    /// 京东物流 (JD Logistics).
    Jd,
    /// 中国邮政 EMS.
    Ems,
    /// 中通快递 (ZTO Express).
    Zto,
    /// 圆通速递 (YTO Express).
    Yto,
    /// 申通快递 (STO Express).
    Sto,
    /// 韵达速递 (Yunda Express).
    Yunda,
    /// 极兔速递 (J&T Express).
    Jt,
    /// 德邦快递 (Deppon Express).
    Deppon,
    /// Any other carrier: the tracking number is shown as it is.
    Other,
}

/// How much of an order has shipped (beside `status`, which stays `PAID` until every line
/// has).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "crate::service::fulfilment::Fulfilment")]
pub enum Fulfilment {
    /// No parcel has left.
    Unshipped,
    /// Some parcels left; other lines still wait (the order is still `PAID`).
    PartiallyShipped,
    /// Every line not refunded is in a parcel: the order is (or was) `SHIPPED`.
    Shipped,
}

/// Where a line stands with refunds.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum RefundState {
    /// No unit refunded.
    None,
    /// Some units refunded (`refundedQuantity` of `quantity`).
    Partial,
    /// Every unit refunded (`refundedAt` says when the last was).
    Full,
    /// Some units wait for the payment provider to confirm their refund
    /// (`refundingQuantity`; the line's `refunds` say where each stands).
    Refunding,
}

/// A line's refund state.
pub fn refund_state(l: &order_line::Model) -> RefundState {
    if l.refunding_quantity > 0 {
        return RefundState::Refunding;
    }
    match l.refunded_quantity {
        0 => RefundState::None,
        n if n >= l.quantity => RefundState::Full,
        _ => RefundState::Partial,
    }
}

impl From<OrderStatus> for order::Status {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::PendingPayment => order::Status::PendingPayment,
            OrderStatus::Paid => order::Status::Paid,
            OrderStatus::Shipped => order::Status::Shipped,
            OrderStatus::Completed => order::Status::Completed,
            OrderStatus::Cancelled => order::Status::Cancelled,
            OrderStatus::Refunded => order::Status::Refunded,
        }
    }
}

/// A parcel of an order.
pub struct Shipment(pub svc::Shipment);

/// A parcel (包裹): its carrier, tracking number and the order lines in it.
#[Object]
impl Shipment {
    /// Opaque global ID.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Shipment, self.0.row.id)
    }
    /// The express company; null for a parcel shipped without tracking (`shipOrder` without
    /// `parcels`).
    async fn carrier(&self) -> Option<Carrier> {
        self.0.row.carrier.map(Into::into)
    }
    /// The carrier's tracking number (upper case); null with `carrier`.
    async fn tracking_number(&self) -> Option<&str> {
        self.0.row.tracking_number.as_deref()
    }
    /// When it left.
    async fn shipped_at(&self) -> DateTime<Utc> {
        self.0.row.shipped_at
    }
    /// The order lines in it (each line is in one parcel at most), in the order's order.
    async fn lines(&self) -> Vec<OrderLine> {
        self.0.lines.iter().cloned().map(OrderLine).collect()
    }
}

/// An order's lines, through the loader (backs `Order.lines` and `Shipment.lines`).
pub async fn lines_of(ctx: &Context<'_>, order_id: uuid::Uuid) -> Result<Vec<OrderLine>> {
    let lines = ctx
        .data::<Loaders>()?
        .load_one(OrderLinesOf(order_id))
        .await
        .map_err(load_err)?;
    Ok(lines
        .unwrap_or_default()
        .into_iter()
        .map(OrderLine)
        .collect())
}

async fn shipment_rows(ctx: &Context<'_>, order_id: uuid::Uuid) -> Result<Vec<svc::Shipment>> {
    Ok(ctx
        .data::<Loaders>()?
        .load_one(ShipmentsOf(order_id))
        .await
        .map_err(load_err)?
        .unwrap_or_default())
}

/// An order's parcels (backs `Order.shipments`).
pub async fn shipments_of(ctx: &Context<'_>, order_id: uuid::Uuid) -> Result<Vec<Shipment>> {
    Ok(shipment_rows(ctx, order_id)
        .await?
        .into_iter()
        .map(Shipment)
        .collect())
}

/// How much of an order has shipped (backs `Order.fulfilment`).
pub async fn fulfilment_of(ctx: &Context<'_>, o: &order::Model) -> Result<Fulfilment> {
    let shipments = shipment_rows(ctx, o.id).await?;
    Ok(svc::fulfilment(o, &shipments).into())
}

/// The buyer's reason for cancelling (backs `Order.cancelReason`).
pub async fn cancel_reason_of(ctx: &Context<'_>, order_id: uuid::Uuid) -> Result<Option<String>> {
    Ok(ctx
        .data::<Loaders>()?
        .load_one(CancellationOf(order_id))
        .await
        .map_err(load_err)?
        .and_then(|c| c.reason))
}

/// Resolves `node(id:)` for parcels: the order's buyer and admins only.
pub async fn shipment_node(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Shipment> {
    Ok(Shipment(
        svc::visible_shipment(&state(ctx)?.db, viewer(ctx)?, id).await?,
    ))
}

/// A parcel to ship: exactly one of `merchantId` and `lineIds` (`VALIDATION` on
/// `parcels[i]` otherwise).
#[derive(InputObject)]
pub struct ParcelInput {
    /// A merchant (`Merchant.id`): the parcel holds every line of that merchant not yet
    /// shipped (`NOTHING_TO_SHIP` when none is left).
    pub merchant_id: Option<ID>,
    /// Exactly these lines of the order (`OrderLine.id`); a line not in the order is
    /// `LINE_NOT_IN_ORDER`, one already in a parcel `LINE_ALREADY_SHIPPED`, a refunded one
    /// `LINE_REFUNDED`; a line named in two parcels is `VALIDATION`.
    pub line_ids: Option<Vec<ID>>,
    /// The express company.
    pub carrier: Carrier,
    /// The carrier's tracking number: 6–32 letters, digits and `-` once trimmed (stored
    /// upper case); two parcels of one call with the same carrier and number are
    /// `VALIDATION`.
    pub tracking_number: String,
}

/// Who ships: an admin anything, a merchant's staff its own merchant's lines only.
fn shipper_of(m: &member::Model) -> Result<Option<uuid::Uuid>, Error> {
    match m.staff_role {
        Some(member::StaffRole::Admin) => Ok(None),
        _ => m
            .merchant_id
            .map(Some)
            .ok_or_else(|| Error::Forbidden("a merchant account without a merchant".into())),
    }
}

/// [`ids::decode_as`], its error naming `field`.
fn decode_at(id: &str, kind: Kind, field: String) -> Result<uuid::Uuid, Error> {
    ids::decode_as(id, kind, "id").map_err(|e| Error::validation(field, e.message()))
}

#[derive(Default)]
pub struct FulfilmentMutation;

#[Object]
impl FulfilmentMutation {
    /// ADMIN, or MERCHANT for its own merchant's lines: ships parcels of a PAID order. The
    /// order stays `PAID` (with `fulfilment: PARTIALLY_SHIPPED`) until every line not
    /// refunded is in a parcel, then becomes `SHIPPED` (`shippedAt`: the last parcel).
    /// Without `parcels`, every line not yet shipped goes in one parcel per merchant without
    /// carrier or tracking number (the call from before parcels). Every bad field of the
    /// parcels is reported at once (`VALIDATION`); `ORDER_NOT_SHIPPABLE` unless the order is
    /// PAID; `FORBIDDEN` for another merchant's lines. Audited; `orderStatusChanged` reports
    /// every call.
    async fn ship_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "A PAID order (`ORDER_NOT_SHIPPABLE` otherwise; `NOT_FOUND` to a \
                          merchant with no line in it)."
        )]
        order_id: ID,
        #[graphql(
            desc = "1–20 parcels, each with its carrier and tracking number; omit to \
                          ship every line left in one untracked parcel per merchant."
        )]
        parcels: Option<Vec<ParcelInput>>,
    ) -> Result<Order> {
        let staff = viewer(ctx)?.staff(member::StaffRole::Merchant)?;
        let merchant = shipper_of(staff)?;
        let st = state(ctx)?;
        let id = ids::decode_as(&order_id, Kind::Order, "orderId")?;
        let mut errors = FieldErrors::default();
        let parcels = parcels.map(|parcels| {
            let mut out = Vec::with_capacity(parcels.len());
            for (i, p) in parcels.into_iter().enumerate() {
                let merchant = p.merchant_id.and_then(|m| {
                    errors.check(decode_at(
                        &m,
                        Kind::Merchant,
                        format!("parcels[{i}].merchantId"),
                    ))
                });
                let lines = p.line_ids.map(|lines| {
                    lines
                        .iter()
                        .filter_map(|l| {
                            errors.check(decode_at(
                                l,
                                Kind::OrderLine,
                                format!("parcels[{i}].lineIds"),
                            ))
                        })
                        .collect()
                });
                out.push(svc::ParcelRequest {
                    merchant,
                    lines,
                    carrier: Some(p.carrier.into()),
                    tracking_number: Some(p.tracking_number),
                });
            }
            out
        });
        let actor = actor(ctx, staff);
        let shipper = svc::Shipper {
            actor: Some(&actor),
            merchant,
        };
        let o = svc::ship(
            &st.db,
            &st.events,
            shipper,
            id,
            parcels,
            errors,
            st.clock.now(),
        )
        .await?;
        Ok(Order(o))
    }

    /// The buyer cancels its order while it awaits payment: it becomes CANCELLED and its
    /// stock returns at once. Cancelling a cancelled order (also one that expired) answers
    /// it unchanged; a paid order is `ORDER_NOT_CANCELLABLE`.
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of the viewer's orders (another member's is `NOT_FOUND`).")]
        order_id: ID,
        #[graphql(desc = "Why, for the record (`Order.cancelReason`): at most 200 \
                          characters, none that hides text (`VALIDATION`); optional.")]
        reason: Option<String>,
    ) -> Result<Order> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let id = ids::decode_as(&order_id, Kind::Order, "orderId")?;
        let o = svc::cancel(
            &st.db,
            &st.events,
            me,
            id,
            reason.as_deref(),
            st.clock.now(),
        )
        .await?;
        Ok(Order(o))
    }
}

#[derive(Default)]
pub struct FulfilmentQuery;

#[Object]
impl FulfilmentQuery {
    /// ADMIN: every member's orders, newest first, filtered (`FORBIDDEN` to anyone else).
    #[allow(clippy::too_many_arguments)]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only orders in this status.")] status: Option<OrderStatus>,
        #[graphql(desc = "Only this member's orders (its `Member` or `MemberProfile` ID).")]
        member_id: Option<ID>,
        #[graphql(desc = "Only orders placed at or after this moment.")] placed_from: Option<
            DateTime<Utc>,
        >,
        #[graphql(
            desc = "Only orders placed before this moment (`VALIDATION` when before \
                          `placedFrom`)."
        )]
        placed_to: Option<DateTime<Utc>>,
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
    ) -> Result<OrderConnection> {
        viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let args = PageArgs::<OrderCursor>::parse(first, after)?;
        let filter = svc::OrderFilter {
            status: status.map(Into::into),
            buyer: member_id
                .map(|m| ids::decode_member(&m, "memberId"))
                .transpose()?,
            placed_from,
            placed_to,
        };
        let page = svc::list(&st.db, filter, args.after(), args.first).await?;
        let total = svc::total(&st.db, filter, wants_total(ctx)).await?;
        Ok(args.counted(page, total, |o| OrderCursor::of(o.created_at, o.id), Order))
    }
}
