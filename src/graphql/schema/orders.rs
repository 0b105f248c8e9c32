//! Orders in GraphQL: share links, checkout, the payment callback, receipt and refunds
//! (shipping, cancelling and the admins' list: [`super::fulfilment`]). A member sees only its own orders; `node(id:)` on anyone else's is `NOT_FOUND`.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Duration, Utc};
use entity::{order, order_line};

use super::catalog::{Product, Sku};
use crate::error::Error;
use crate::graphql::context::{actor, load_err, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{Loaders, ProductKey, SkuKey};
use crate::graphql::pagination::PageArgs;
use crate::graphql::scalars::{Dec, DecArg};
use crate::service::orders as svc;
use crate::state::AppState;

/// Where an order stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Placed, stock reserved, waiting for payment until `expiresAt`.
    PendingPayment,
    /// Paid: its earnings are booked (pending); waiting to be shipped.
    Paid,
    /// On its way; the buyer confirms receipt, or it completes by itself some days later.
    Shipped,
    /// Received: its earnings' return window (then settlement) runs from now.
    Completed,
    /// Cancelled unpaid, by the buyer (`cancelOrder`) or by its expiry; its stock was
    /// released.
    Cancelled,
    /// Every line refunded.
    Refunded,
}

impl From<order::Status> for OrderStatus {
    fn from(s: order::Status) -> Self {
        match s {
            order::Status::PendingPayment => OrderStatus::PendingPayment,
            order::Status::Paid => OrderStatus::Paid,
            order::Status::Shipped => OrderStatus::Shipped,
            order::Status::Completed => OrderStatus::Completed,
            order::Status::Cancelled => OrderStatus::Cancelled,
            order::Status::Refunded => OrderStatus::Refunded,
        }
    }
}

/// A push-hand's link to a product; orders placed through it earn the push-hand PROMOTION
/// rebates.
pub struct ShareLink(pub entity::share_link::Model);

/// A share link (推广链接).
#[Object]
impl ShareLink {
    /// Pass as `shareCode` on an order line.
    async fn code(&self) -> &str {
        &self.0.code
    }
    /// A path frontends can turn into a full link.
    async fn url(&self) -> String {
        format!(
            "/p/{}?s={}",
            ids::encode(Kind::Product, self.0.product_id).0,
            self.0.code
        )
    }
}

/// A buyer's order.
pub struct Order(pub order::Model);

/// An order, with its lines (prices and rates as they were at checkout).
#[Object]
impl Order {
    /// Opaque global ID.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Order, self.0.id)
    }
    /// Where the order stands; `orderStatusChanged` reports each change.
    async fn status(&self) -> OrderStatus {
        self.0.status.into()
    }
    /// How much has shipped: `PARTIALLY_SHIPPED` while some parcels left and other lines
    /// wait (the status stays `PAID` until every line not refunded is in a parcel).
    async fn fulfilment(&self, ctx: &Context<'_>) -> Result<super::fulfilment::Fulfilment> {
        super::fulfilment::fulfilment_of(ctx, &self.0).await
    }
    /// The parcels it shipped in, in the order they left (empty until the first).
    async fn shipments(&self, ctx: &Context<'_>) -> Result<Vec<super::fulfilment::Shipment>> {
        super::fulfilment::shipments_of(ctx, self.0.id).await
    }
    /// The buyer's reason, when it cancelled the order with one (`cancelOrder`); null
    /// otherwise (also for an order that expired).
    async fn cancel_reason(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        super::fulfilment::cancel_reason_of(ctx, self.0.id).await
    }
    /// What the buyer pays, CNY: `goodsTotal` plus `shippingFee`.
    async fn total(&self) -> Dec {
        self.0.total.into()
    }
    /// The lines' paid amounts together, CNY: their list amounts less the coupon's
    /// `discount` (the base of every earning).
    async fn goods_total(&self) -> Dec {
        entity::Money::from_fen(svc::goods_of(&self.0)).into()
    }
    /// What the coupon took off the goods, CNY (zero without one): the lines'
    /// `couponShare` together.
    async fn discount(&self) -> Dec {
        self.0.discount.into()
    }
    /// The coupon used (a `Coupon` ID as `me.coupons` gives them); null for none.
    async fn coupon_id(&self) -> Option<ID> {
        self.0.coupon_id.map(|id| ids::encode(Kind::Coupon, id))
    }
    /// The parcels' shipping, CNY (zero for an order placed without an address). Part of
    /// `total`, never of a rebate base.
    async fn shipping_fee(&self) -> Dec {
        self.0.shipping_fee.into()
    }
    /// The delivery address as it was when the order was placed (later edits of the
    /// address do not move it); null for an order placed without one, which cannot be
    /// shipped to anyone.
    async fn address(&self) -> Option<super::cart::OrderAddress> {
        super::cart::OrderAddress::of(&self.0)
    }
    /// The buyer's note to the shop; null for none.
    async fn buyer_note(&self) -> Option<&str> {
        self.0.buyer_note.as_deref()
    }
    /// What was bought, in the order placed (at least one line).
    async fn lines(&self, ctx: &Context<'_>) -> Result<Vec<OrderLine>> {
        super::fulfilment::lines_of(ctx, self.0.id).await
    }
    /// The payment provider's reference, from `confirmPayment`; null until paid.
    async fn payment_reference(&self) -> Option<&str> {
        self.0.payment_reference.as_deref()
    }
    /// When it was placed.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Unpaid after this, the order is cancelled.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    /// When the payment was confirmed; null until paid.
    async fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.0.paid_at
    }
    /// When it became SHIPPED (its last parcel left); null until then.
    async fn shipped_at(&self) -> Option<DateTime<Utc>> {
        self.0.shipped_at
    }
    /// When it completed (receipt confirmed, or automatically); null until then.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
    /// The provider refunds of its lines, oldest first (see `OrderLine.refunds`).
    async fn refunds(&self, ctx: &Context<'_>) -> Result<Vec<super::refunds::Refund>> {
        super::refunds::of_order(ctx, self.0.id).await
    }
}

/// A line of an order.
pub struct OrderLine(pub order_line::Model);

/// What was bought, at the price and rates of checkout time.
#[Object]
impl OrderLine {
    /// Opaque global ID (for `refundOrderLine`).
    pub async fn id(&self) -> ID {
        ids::encode(Kind::OrderLine, self.0.id)
    }
    /// The product bought, as it is now (its name and price may have changed since; the
    /// line keeps the checkout price). Null only if the product no longer exists.
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        let p = ctx
            .data::<Loaders>()?
            .load_one(ProductKey(self.0.product_id))
            .await
            .map_err(load_err)?;
        Ok(p.map(Product::of))
    }
    /// The variant bought, as it is now; null only if it no longer exists.
    async fn sku(&self, ctx: &Context<'_>) -> Result<Option<Sku>> {
        let s = ctx
            .data::<Loaders>()?
            .load_one(SkuKey(self.0.sku_id))
            .await
            .map_err(load_err)?;
        Ok(s.map(Sku))
    }
    /// Units bought (1–99), refunded ones included.
    async fn quantity(&self) -> i32 {
        self.0.quantity
    }
    /// The SKU's price at checkout, CNY.
    async fn unit_price(&self) -> Dec {
        self.0.unit_price.into()
    }
    /// unitPrice × quantity: the list amount.
    async fn amount(&self) -> Dec {
        self.0.amount.into()
    }
    /// The line's share of the order's coupon discount, CNY (zero without one): spread
    /// over the lines the coupon applies to in proportion to their amounts.
    async fn coupon_share(&self) -> Dec {
        self.0.coupon_share.into()
    }
    /// What the buyer paid for the line: `amount` − `couponShare`. Its earnings are
    /// computed on this, and refunds give back its part per unit (exact to the fen).
    async fn paid_amount(&self) -> Dec {
        self.0.paid().into()
    }
    /// When the last unit was refunded.
    async fn refunded_at(&self) -> Option<DateTime<Utc>> {
        self.0.refunded_at
    }
    /// Units refunded so far.
    async fn refunded_quantity(&self) -> i32 {
        self.0.refunded_quantity
    }
    /// Whether none, some or all of its units were refunded — or `REFUNDING` while a
    /// provider has not confirmed a refund of some.
    async fn refund_state(&self) -> super::fulfilment::RefundState {
        super::fulfilment::refund_state(&self.0)
    }
    /// Units whose refund the payment provider has not confirmed yet (not in
    /// `refundedQuantity` until it does).
    async fn refunding_quantity(&self) -> i32 {
        self.0.refunding_quantity
    }
    /// The provider refunds of this line, oldest first (empty for an order paid by
    /// `confirmPayment`, whose refunds are immediate).
    async fn refunds(&self, ctx: &Context<'_>) -> Result<Vec<super::refunds::Refund>> {
        super::refunds::of_line(ctx, self.0.id).await
    }
    /// The buyer's after-sales of this line, oldest first (at most one open at a time).
    async fn after_sales(&self, ctx: &Context<'_>) -> Result<Vec<super::after_sales::AfterSale>> {
        super::after_sales::of_line(ctx, self.0.id).await
    }
}

/// An order list: a buyer's own (`Member.orders`) or the admins' (`orders`), with
/// `totalCount`.
pub type OrderConnection = crate::graphql::pagination::CountedOf<svc::OrderCursor, Order>;

/// The viewer's orders, newest first (backs `Member.orders`).
pub async fn orders_of(
    ctx: &Context<'_>,
    buyer: uuid::Uuid,
    status: Option<OrderStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<OrderConnection> {
    let args = PageArgs::parse(first, after)?;
    let filter = crate::service::fulfilment::OrderFilter {
        status: status.map(Into::into),
        buyer: Some(buyer),
        ..Default::default()
    };
    let db = &state(ctx)?.db;
    let page = crate::service::fulfilment::list(db, filter, args.after(), args.first).await?;
    let wanted = crate::graphql::pagination::wants_total(ctx);
    let total = crate::service::fulfilment::total(db, filter, wanted).await?;
    Ok(args.counted(
        page,
        total,
        |o| svc::OrderCursor::of(o.created_at, o.id),
        Order,
    ))
}

/// A checkout line.
#[derive(InputObject)]
pub struct OrderLineInput {
    /// The variant to buy (`Sku.id`); one of an unpublished product is `NOT_FOUND`.
    pub sku_id: ID,
    /// 1–99.
    pub quantity: i32,
    /// A share link's code, to credit the push-hand who shared the product.
    pub share_code: Option<String>,
}

/// A checkout: explicit lines or cart lines (exactly one of the two), a delivery address, a
/// note and an optional idempotency key.
#[derive(InputObject)]
pub struct PlaceOrderInput {
    /// 1–50 explicit lines; each SKU's units across lines count against the per-SKU cap.
    /// Give this or `cartLineIds` (both or neither is `VALIDATION` on `lines`).
    pub lines: Option<Vec<OrderLineInput>>,
    /// 1–50 of the viewer's cart lines, each at most once: each is ordered with its
    /// quantity (at most 99) and share code, and leaves the cart with the order. Another
    /// member's line, or one already ordered, is `NOT_FOUND`; one that cannot be ordered
    /// now is `CART_LINE_UNAVAILABLE`.
    pub cart_line_ids: Option<Vec<ID>>,
    /// One of the viewer's addresses (another member's is `NOT_FOUND`): copied onto the
    /// order, and shipping is charged to its province, one parcel per merchant. Optional
    /// for compatibility: an order without one has no shipping fee and nowhere to ship.
    pub address_id: Option<ID>,
    /// A note to the shop, at most 200 characters (`VALIDATION` on `buyerNote`).
    pub buyer_note: Option<String>,
    /// Optional (1–128 characters): a retry with the same key and request returns the first
    /// order instead of placing another; another request under the same key is
    /// `IDEMPOTENCY_CONFLICT`.
    pub idempotency_key: Option<String>,
    /// One of the viewer's coupons (`me.coupons`; another member's is `NOT_FOUND`), one per
    /// order. One that does not apply is refused with the code `checkoutPreview` gives
    /// (`COUPON_MIN_SPEND`, `COUPON_NO_ELIGIBLE_LINE`, `COUPON_EXPIRED`,
    /// `COUPON_NOT_YET_VALID`, `COUPON_DISABLED`, `COUPON_USED`); of orders placed at once
    /// with one coupon, one gets it and the others are `COUPON_USED`.
    pub coupon_id: Option<ID>,
}

/// The payment provider's callback (stands in for its signed notification).
#[derive(InputObject)]
pub struct ConfirmPaymentInput {
    /// The order paid.
    pub order_id: ID,
    /// The provider's transaction reference, 1–128 characters; unique per order (a
    /// reference already used for another order is `PAYMENT_CONFLICT`).
    pub payment_reference: String,
    /// Must equal the order's total.
    pub amount: DecArg,
}

pub fn policy(st: &AppState) -> crate::service::earnings::Policy {
    let p = &st.config.policy;
    crate::service::earnings::Policy {
        commission_levels: p.commission_levels,
        membership_reward: entity::Money::from_decimal(p.membership_reward)
            .unwrap_or(entity::Money::ZERO),
        membership_reward_daily_cap: p
            .membership_reward_daily_cap
            .and_then(entity::Money::from_decimal),
    }
}

fn return_window(st: &AppState) -> Duration {
    Duration::days(i64::from(st.config.policy.return_window_days))
}

fn order_id(id: &ID, field: &'static str) -> Result<uuid::Uuid, Error> {
    ids::decode_as(id, Kind::Order, field)
}

#[derive(Default)]
pub struct OrdersMutation;

#[Object]
impl OrdersMutation {
    /// PUSH_HAND / PARTNER: your share link for a published product (one per product).
    async fn create_share_link(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A published product; asking again answers the same link.")]
        product_id: ID,
    ) -> Result<ShareLink> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let id = ids::decode_as(&product_id, Kind::Product, "productId")?;
        Ok(ShareLink(
            svc::share_link(&st.db, me, id, st.clock.now()).await?,
        ))
    }

    /// Places an order, reserving stock at once (`OUT_OF_STOCK` names the SKU), from explicit
    /// lines or cart lines (which leave the cart with it), with the delivery address copied
    /// onto it and its shipping added to the total. Unpaid, it expires after the payment
    /// timeout and releases the stock. A SKU that does not exist
    /// or is not on sale is `NOT_FOUND`; more unpaid orders than the cap is
    /// `TOO_MANY_UNPAID_ORDERS`, more units of one SKU than the cap `QUANTITY_LIMIT`.
    async fn place_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The lines to buy (explicit or from the cart), the address, a note.")]
        input: PlaceOrderInput,
    ) -> Result<Order> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let req = svc::OrderRequest {
            lines: super::cart::lines_of_input(input.lines, input.cart_line_ids)?,
            address_id: super::cart::address_id(input.address_id.as_ref())?,
            buyer_note: input.buyer_note,
            coupon_id: super::cart::coupon_id(input.coupon_id.as_ref())?,
        };
        let p = &st.config.policy;
        let timeout = Duration::minutes(i64::from(p.payment_timeout_minutes));
        let limits = svc::OrderLimits {
            max_unpaid_orders: p.max_unpaid_orders,
            max_units_per_sku: p.max_units_per_sku,
        };
        let (o, _) = svc::place_order_with(
            &st.checkouts,
            me,
            req,
            input.idempotency_key.as_deref(),
            limits,
            timeout,
            st.clock.now(),
        )
        .await?;
        Ok(Order(o))
    }

    /// ADMIN (the payment provider's callback): marks the order paid and books its earnings,
    /// once. Repeats with the same reference return the order unchanged; a wrong amount is
    /// `PAYMENT_MISMATCH`; another reference for a paid order is `PAYMENT_CONFLICT`;
    /// `TRY_AGAIN` (nothing booked; call again) when other payments kept moving a daily
    /// reward cap this one depends on.
    async fn confirm_payment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order, the provider's reference and the amount paid.")]
        input: ConfirmPaymentInput,
    ) -> Result<Order> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = order_id(&input.order_id, "orderId")?;
        let actor = actor(ctx, admin);
        let payment = svc::Payment {
            order_id: id,
            reference: &input.payment_reference,
            amount: input.amount.money("amount")?,
            actor: Some(&actor),
            intent: None,
        };
        let o = svc::confirm_payment(
            &st.db,
            &st.events,
            &st.units_sold,
            payment,
            &policy(st),
            st.clock.now(),
        )
        .await?;
        Ok(Order(o))
    }

    /// The buyer confirms receipt: the order completes and its earnings' return window
    /// starts (orders also complete by themselves some days after shipping).
    async fn confirm_receipt(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of the viewer's SHIPPED orders (`ORDER_NOT_COMPLETABLE` \
                          otherwise; another member's is `NOT_FOUND`).")]
        order_id: ID,
    ) -> Result<Order> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let id = self::order_id(&order_id, "orderId")?;
        Ok(Order(
            svc::confirm_receipt(
                &st.db,
                &st.events,
                me,
                id,
                return_window(st),
                st.clock.now(),
            )
            .await?,
        ))
    }

    /// ADMIN: refunds `quantity` units of a line (default: all units not yet refunded). The
    /// line's earnings are reversed in proportion — while pending by a reversal or a pending
    /// adjustment, once settled by a negative ADJUSTMENT (the balance may go negative).
    /// An order paid through a provider (`createPayment`) is refunded through it: a `Refund`
    /// is requested, the line reads `REFUNDING`, and the stock and earnings move only when
    /// the provider confirms (`REFUND_IN_PROGRESS` when every unit left is being refunded;
    /// a failed one is retried with `retryRefund`). An order paid by `confirmPayment` is
    /// refunded at once. With `idempotencyKey`, a retry with the same line and quantity
    /// returns the order and refunds nothing more; another line or quantity under the key
    /// is `IDEMPOTENCY_CONFLICT`.
    async fn refund_order_line(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The line (`OrderLine.id`) of a paid, shipped or completed order \
                          (`ORDER_NOT_REFUNDABLE` otherwise)."
        )]
        order_line_id: ID,
        #[graphql(
            desc = "Units to refund, 1 to the units not yet refunded (`VALIDATION` \
                          otherwise); default: all of them."
        )]
        quantity: Option<i32>,
        #[graphql(
            desc = "1–128 printable characters making retries safe; omit to refund \
                          without one."
        )]
        idempotency_key: Option<String>,
    ) -> Result<Order> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&order_line_id, Kind::OrderLine, "orderLineId")?;
        let actor = actor(ctx, admin);
        let refund = svc::Refund {
            line_id: id,
            quantity,
            key: idempotency_key.as_deref(),
            actor: Some(&actor),
        };
        let o = crate::service::refunds::refund_line(
            super::refunds::refunds_of(st),
            refund,
            st.clock.now(),
        )
        .await?;
        Ok(Order(o))
    }
}

/// Resolves `node(id:)` for orders: the buyer and admins only.
pub async fn order_node(ctx: &Context<'_>, id: uuid::Uuid) -> Result<order::Model> {
    Ok(svc::visible(&state(ctx)?.db, viewer(ctx)?, id).await?)
}

/// Resolves `node(id:)` for order lines: the order's buyer and admins only.
pub async fn order_line_node(ctx: &Context<'_>, id: uuid::Uuid) -> Result<order_line::Model> {
    Ok(svc::visible_line(&state(ctx)?.db, viewer(ctx)?, id).await?)
}
