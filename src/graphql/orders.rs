//! Orders in GraphQL: share links, checkout, the payment callback, shipping, receipt and
//! refunds. A member sees only its own orders; `node(id:)` on anyone else's is `NOT_FOUND`.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Duration, Utc};
use entity::{order, order_line};

use super::catalog::{Product, Sku};
use super::ids::{self, Kind};
use super::loaders::{Loaders, ProductKey, SkuKey};
use super::pagination::{ConnectionOf, PageArgs};
use super::scalars::{Dec, DecArg};
use super::{actor, load_err, state, viewer};
use crate::error::Error;
use crate::service::orders as svc;
use crate::state::AppState;

/// Where an order stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Shipped,
    Completed,
    /// Expired unpaid; its stock was released.
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
    async fn status(&self) -> OrderStatus {
        self.0.status.into()
    }
    /// CNY.
    async fn total(&self) -> Dec {
        self.0.total.into()
    }
    async fn lines(&self, ctx: &Context<'_>) -> Result<Vec<OrderLine>> {
        Ok(svc::lines_of(&state(ctx)?.db, &[self.0.id])
            .await?
            .into_iter()
            .map(OrderLine)
            .collect())
    }
    async fn payment_reference(&self) -> Option<&str> {
        self.0.payment_reference.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Unpaid after this, the order is cancelled.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    async fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.0.paid_at
    }
    async fn shipped_at(&self) -> Option<DateTime<Utc>> {
        self.0.shipped_at
    }
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
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
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        let p = ctx
            .data::<Loaders>()?
            .load_one(ProductKey(self.0.product_id))
            .await
            .map_err(load_err)?;
        Ok(p.map(Product::of))
    }
    async fn sku(&self, ctx: &Context<'_>) -> Result<Option<Sku>> {
        let s = ctx
            .data::<Loaders>()?
            .load_one(SkuKey(self.0.sku_id))
            .await
            .map_err(load_err)?;
        Ok(s.map(Sku))
    }
    async fn quantity(&self) -> i32 {
        self.0.quantity
    }
    async fn unit_price(&self) -> Dec {
        self.0.unit_price.into()
    }
    /// unitPrice × quantity.
    async fn amount(&self) -> Dec {
        self.0.amount.into()
    }
    /// When the last unit was refunded.
    async fn refunded_at(&self) -> Option<DateTime<Utc>> {
        self.0.refunded_at
    }
    /// Units refunded so far.
    async fn refunded_quantity(&self) -> i32 {
        self.0.refunded_quantity
    }
}

pub type OrderConnection = ConnectionOf<svc::OrderCursor, Order>;

/// The viewer's orders, newest first (backs `Member.orders`).
pub async fn orders_of(
    ctx: &Context<'_>,
    buyer: uuid::Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<OrderConnection> {
    let args = PageArgs::parse(first, after)?;
    let page = svc::list(&state(ctx)?.db, buyer, args.after(), args.first).await?;
    Ok(args.connection(page, |o| svc::OrderCursor::of(o.created_at, o.id), Order))
}

/// A checkout line.
#[derive(InputObject)]
pub struct OrderLineInput {
    pub sku_id: ID,
    /// 1–99.
    pub quantity: i32,
    /// A share link's code, to credit the push-hand who shared the product.
    pub share_code: Option<String>,
}

#[derive(InputObject)]
pub struct PlaceOrderInput {
    pub lines: Vec<OrderLineInput>,
    /// Optional (1–128 characters): a retry with the same key and lines returns the first
    /// order instead of placing another; other lines under the same key are
    /// `IDEMPOTENCY_CONFLICT`.
    pub idempotency_key: Option<String>,
}

/// The payment provider's callback (stands in for its signed notification).
#[derive(InputObject)]
pub struct ConfirmPaymentInput {
    pub order_id: ID,
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
    async fn create_share_link(&self, ctx: &Context<'_>, product_id: ID) -> Result<ShareLink> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let id = ids::decode_as(&product_id, Kind::Product, "productId")?;
        Ok(ShareLink(
            svc::share_link(&st.db, me, id, st.clock.now()).await?,
        ))
    }

    /// Places an order, reserving stock at once (`OUT_OF_STOCK` names the SKU). Unpaid, it
    /// expires after the payment timeout and releases the stock. A SKU that does not exist
    /// or is not on sale is `NOT_FOUND`; more unpaid orders than the cap is
    /// `TOO_MANY_UNPAID_ORDERS`, more units of one SKU than the cap `QUANTITY_LIMIT`.
    async fn place_order(&self, ctx: &Context<'_>, input: PlaceOrderInput) -> Result<Order> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let mut lines = Vec::with_capacity(input.lines.len());
        for (i, l) in input.lines.iter().enumerate() {
            let field: &'static str = if i == 0 {
                "lines[0].skuId"
            } else {
                "lines.skuId"
            };
            lines.push(svc::LineRequest {
                sku_id: ids::decode_as(&l.sku_id, Kind::Sku, field)?,
                quantity: l.quantity,
                share_code: l.share_code.clone(),
            });
        }
        let p = &st.config.policy;
        let timeout = Duration::minutes(i64::from(p.payment_timeout_minutes));
        let limits = svc::OrderLimits {
            max_unpaid_orders: p.max_unpaid_orders,
            max_units_per_sku: p.max_units_per_sku,
        };
        let (o, _) = svc::place_order_as(
            &st.checkouts,
            me,
            lines,
            input.idempotency_key.as_deref(),
            limits,
            timeout,
            st.clock.now(),
        )
        .await?;
        // Stock was reserved. Only on success: a refusal commits nothing, and a flood of
        // OUT_OF_STOCK refusals must not flush the cache.
        st.catalog_changed().await;
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
        // Nothing an anonymous catalog read answers moved: the units sold are written (and
        // the cache told) by `AppState::write_units_sold`.
        Ok(Order(o))
    }

    /// ADMIN: marks a paid order shipped.
    async fn ship_order(&self, ctx: &Context<'_>, order_id: ID) -> Result<Order> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = self::order_id(&order_id, "orderId")?;
        Ok(Order(
            svc::ship_as(
                &st.db,
                &st.events,
                Some(&actor(ctx, admin)),
                id,
                st.clock.now(),
            )
            .await?,
        ))
    }

    /// The buyer confirms receipt: the order completes and its earnings' return window
    /// starts (orders also complete by themselves some days after shipping).
    async fn confirm_receipt(&self, ctx: &Context<'_>, order_id: ID) -> Result<Order> {
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
    /// With `idempotencyKey`, a retry with the same line and quantity returns the order and
    /// refunds nothing more; another line or quantity under the key is
    /// `IDEMPOTENCY_CONFLICT`.
    async fn refund_order_line(
        &self,
        ctx: &Context<'_>,
        order_line_id: ID,
        quantity: Option<i32>,
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
        let o =
            svc::refund_line_as(&st.db, &st.events, &st.units_sold, refund, st.clock.now()).await?;
        // Stock came back (nothing fails after the refund's commit).
        st.catalog_changed().await;
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
