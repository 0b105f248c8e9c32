//! The cart and the checkout preview in GraphQL: `me.cart`, `addToCart`, `updateCartLine`,
//! `removeCartLines`, `checkoutPreview`, and the address snapshot an order carries
//! (`Order.address`). The rules live in [`crate::service::cart`] and
//! [`crate::service::orders`].

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::order;

use super::addresses::{Address, Region, RegionLevel};
use super::catalog::{Merchant, Sku};
use super::earnings::{EarningExplanation, EarningKind};
use super::orders::{OrderLineInput, policy};
use crate::error::Error;
use crate::graphql::context::{load_err, state, viewer};
use crate::graphql::ids::{self, GlobalId, Kind};
use crate::graphql::loaders::{Loaders, MerchantKey};
use crate::graphql::scalars::Dec;
use crate::graphql::transport::plain::{self, Fast, plain_enums, plain_object};
use crate::service::cart::{self as svc, Unavailable};
use crate::service::orders::{self as orders_svc, Lines, OrderLimits, OrderRequest};
use crate::service::{regions, shipping};
use crate::state::AppState;

/// Why a cart line cannot be ordered now.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CartLineUnavailableReason {
    /// The SKU no longer exists.
    Deleted,
    /// Its product is not on sale any more (delisted, or back in curation).
    Unpublished,
    /// No units of the SKU are left.
    OutOfStock,
    /// Fewer units of the SKU are left than the line holds: lower its quantity.
    NotEnoughStock,
}

impl From<Unavailable> for CartLineUnavailableReason {
    fn from(u: Unavailable) -> Self {
        match u {
            Unavailable::Deleted => CartLineUnavailableReason::Deleted,
            Unavailable::Unpublished => CartLineUnavailableReason::Unpublished,
            Unavailable::OutOfStock => CartLineUnavailableReason::OutOfStock,
            Unavailable::NotEnoughStock => CartLineUnavailableReason::NotEnoughStock,
        }
    }
}

pub struct Attribution(pub svc::Credit);

impl Attribution {
    fn of(c: &svc::Credit) -> Attribution {
        Attribution(c.clone())
    }
}

plain_object! {
    /// Who would get credit for a line, and by which rule (SPEC §2.4): the buyer's own purchase
    /// as a push-hand or partner; else the share link's push-hand or partner (the line's share
    /// code: the last one added with wins); else the buyer's upline; a membership-activity
    /// product's referrer gets a fixed reward instead. Named as an earning's explanation names
    /// its rule.
    impl Attribution => svc::Credit as "Attribution" {
        |this| &this.0;
        |r, e|
        /// The rule that would book the direct (level-1) earning; null when nobody earns.
        rule "rule": Option<EarningKind> = r.rule().map(EarningKind::from);
        /// The display name of who would earn it; null when nobody does.
        earner_name "earnerName": Option<&str> = r.earner_name.as_deref();
        /// The rule in words, e.g. "PROMOTION: bought through 小王's share link".
        summary "summary": String = r.summary();
    }
    plain |s, field, out| {}
    resolvers {}
}

/// A member's cart as the API answers it: its lines as stored, read at once (one
/// statement), and what the cart shows about them — SKUs, availability, credit — read on
/// the first field that needs it, once for every line (a mutation asked only for the lines'
/// IDs reads nothing more).
struct CartState {
    buyer: std::sync::Arc<entity::member::Model>,
    rows: Vec<entity::cart_line::Model>,
    now: DateTime<Utc>,
    detail: tokio::sync::OnceCell<svc::Cart>,
}

impl CartState {
    fn new(
        buyer: &entity::member::Model,
        rows: Vec<entity::cart_line::Model>,
        now: DateTime<Utc>,
    ) -> std::sync::Arc<CartState> {
        std::sync::Arc::new(CartState {
            buyer: std::sync::Arc::new(buyer.clone()),
            rows,
            now,
            detail: tokio::sync::OnceCell::new(),
        })
    }

    async fn detail(&self, ctx: &Context<'_>) -> Result<&svc::Cart> {
        self.detail
            .get_or_try_init(|| async {
                let st = state(ctx)?;
                svc::detail(&st.db, &self.buyer, self.rows.clone(), self.now)
                    .await
                    .map_err(async_graphql::Error::from)
            })
            .await
    }
}

/// A line of the signed-in member's cart: the `index`th of its cart's.
pub struct CartLine {
    cart: std::sync::Arc<CartState>,
    index: usize,
}

impl CartLine {
    fn row(&self) -> &entity::cart_line::Model {
        &self.cart.rows[self.index]
    }

    async fn line<'a>(&'a self, ctx: &Context<'_>) -> Result<&'a svc::Line> {
        let cart = self.cart.detail(ctx).await?;
        cart.lines
            .get(self.index)
            .ok_or_else(|| Error::not_found("cart line").into())
    }
}

/// A line of a cart (购物车): one SKU, its units, and the share code it was added with. A
/// line whose SKU cannot be ordered now stays, with `available: false` and the reason.
#[Object]
impl CartLine {
    /// Opaque global ID (for `updateCartLine`, `removeCartLines`, `placeOrder`).
    pub async fn id(&self) -> ID {
        ids::encode(Kind::CartLine, self.row().id)
    }
    /// The SKU as it is now; null once it was deleted or its product is no longer on sale.
    async fn sku(&self, ctx: &Context<'_>) -> Result<Option<Sku>> {
        let line = self.line(ctx).await?;
        Ok(match line.unavailable {
            Some(Unavailable::Deleted | Unavailable::Unpublished) => None,
            _ => line.sku.clone().map(Sku),
        })
    }
    /// The SKU's global ID, even once the SKU is gone.
    async fn sku_id(&self) -> ID {
        ids::encode(Kind::Sku, self.row().sku_id)
    }
    /// Units, 1 to 999 (an order takes at most 99 of a line).
    async fn quantity(&self) -> i32 {
        self.row().quantity
    }
    /// The share code the line was added with (the last add that came with one); null for
    /// none.
    async fn share_code(&self) -> Option<&str> {
        self.row().share_code.as_deref()
    }
    /// Who would get credit for the line if it were ordered now, and why.
    async fn attribution(&self, ctx: &Context<'_>) -> Result<Attribution> {
        Ok(Attribution::of(&self.line(ctx).await?.credit))
    }
    /// Whether the line can be ordered now.
    async fn available(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.line(ctx).await?.unavailable.is_none())
    }
    /// Why it cannot be ordered now; null when it can.
    async fn unavailable_reason(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<CartLineUnavailableReason>> {
        Ok(self.line(ctx).await?.unavailable.map(Into::into))
    }
    /// The SKU's price now, CNY; null once the SKU was deleted.
    async fn unit_price(&self, ctx: &Context<'_>) -> Result<Option<Dec>> {
        Ok(self.line(ctx).await?.unit_price().map(Into::into))
    }
    /// The SKU's price when the line was last added to, CNY.
    async fn price_when_added(&self) -> Dec {
        self.row().unit_price.into()
    }
    /// Whether the price changed since the line was last added to.
    async fn price_changed(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.line(ctx).await?.price_changed())
    }
    /// When the line was first added.
    async fn added_at(&self) -> DateTime<Utc> {
        self.row().created_at
    }
}

/// The signed-in member's cart.
pub struct Cart(std::sync::Arc<CartState>);

impl Cart {
    /// The cart of `buyer`'s lines `rows` (oldest first).
    pub fn of(
        buyer: &entity::member::Model,
        rows: Vec<entity::cart_line::Model>,
        now: DateTime<Utc>,
    ) -> Cart {
        Cart(CartState::new(buyer, rows, now))
    }
}

/// A member's cart (购物车): at most 100 lines, one per SKU, oldest first. Only the member
/// reads it.
#[Object]
impl Cart {
    /// The lines, oldest first, available or not.
    async fn lines(&self) -> Vec<CartLine> {
        (0..self.0.rows.len())
            .map(|index| CartLine {
                cart: self.0.clone(),
                index,
            })
            .collect()
    }
    /// The available lines at today's prices, CNY (shipping comes with an address, in
    /// `checkoutPreview`).
    async fn subtotal(&self, ctx: &Context<'_>) -> Result<Dec> {
        Ok(self.0.detail(ctx).await?.subtotal().into())
    }
}

/// The member's cart (`me.cart`): only the member itself reads it.
pub(crate) async fn cart_of(ctx: &Context<'_>, member_id: uuid::Uuid) -> Result<Cart> {
    let st = state(ctx)?;
    let me = viewer(ctx)?.member()?;
    if me.id != member_id {
        return Err(Error::Forbidden("only the member itself reads its cart".into()).into());
    }
    let rows = svc::rows(&st.db, me.id).await?;
    Ok(Cart::of(me, rows, st.clock.now()))
}

/// The viewer's cart line `id` for `node(id:)`: `NOT_FOUND` for anyone else's.
pub(crate) async fn cart_line_node(ctx: &Context<'_>, id: uuid::Uuid) -> Result<CartLine> {
    let Ok(me) = viewer(ctx)?.member() else {
        return Err(Error::not_found("cart line").into());
    };
    let st = state(ctx)?;
    let rows: Vec<_> = svc::rows(&st.db, me.id)
        .await?
        .into_iter()
        .filter(|l| l.id == id)
        .collect();
    if rows.is_empty() {
        return Err(Error::not_found("cart line").into());
    }
    Ok(CartLine {
        cart: CartState::new(me, rows, st.clock.now()),
        index: 0,
    })
}

/// Exactly one of explicit `lines` and `cartLineIds` (`VALIDATION` on `lines` otherwise).
pub(crate) fn lines_of_input(
    lines: Option<Vec<OrderLineInput>>,
    cart_line_ids: Option<Vec<ID>>,
) -> Result<Lines, Error> {
    match (lines, cart_line_ids) {
        (Some(lines), None) => {
            let mut out = Vec::with_capacity(lines.len());
            for (i, l) in lines.iter().enumerate() {
                let field: &'static str = if i == 0 {
                    "lines[0].skuId"
                } else {
                    "lines.skuId"
                };
                out.push(orders_svc::LineRequest {
                    sku_id: ids::decode_as(&l.sku_id, Kind::Sku, field)?,
                    quantity: l.quantity,
                    share_code: l.share_code.clone(),
                });
            }
            Ok(Lines::Given(out))
        }
        (None, Some(ids)) => Ok(Lines::Cart(
            ids.iter()
                .map(|id| ids::decode_as(id, Kind::CartLine, "cartLineIds"))
                .collect::<Result<_, _>>()?,
        )),
        _ => Err(Error::validation(
            "lines",
            "give exactly one of lines and cartLineIds",
        )),
    }
}

/// The viewer's address `id`, decoded (`VALIDATION` on `addressId` when malformed).
pub(crate) fn address_id(id: Option<&ID>) -> Result<Option<uuid::Uuid>, Error> {
    id.map(|id| ids::decode_as(id, Kind::Address, "addressId"))
        .transpose()
}

/// A checkout's `couponId`, decoded (`VALIDATION` on `couponId` when malformed).
pub(crate) fn coupon_id(id: Option<&ID>) -> Result<Option<uuid::Uuid>, Error> {
    id.map(|id| ids::decode_as(id, Kind::Coupon, "couponId"))
        .transpose()
}

fn limits(st: &AppState) -> OrderLimits {
    let p = &st.config.policy;
    OrderLimits {
        max_unpaid_orders: p.max_unpaid_orders,
        max_units_per_sku: p.max_units_per_sku,
    }
}

/// What `checkoutPreview` works out: explicit lines or cart lines, and an address.
#[derive(InputObject)]
pub struct CheckoutPreviewInput {
    /// Explicit lines (SKU, quantity, share code); give this or `cartLineIds`.
    pub lines: Option<Vec<OrderLineInput>>,
    /// Lines of the viewer's cart (1–50, each at most once); give this or `lines`. Another
    /// member's line is `NOT_FOUND`; one that cannot be ordered is `CART_LINE_UNAVAILABLE`.
    pub cart_line_ids: Option<Vec<ID>>,
    /// One of the viewer's addresses (another member's is `NOT_FOUND`): shipping is quoted
    /// to its province. Without it no shipping is quoted.
    pub address_id: Option<ID>,
    /// One of the viewer's coupons (another member's is `NOT_FOUND`): `coupon` says what it
    /// takes off, or why it does not apply.
    pub coupon_id: Option<ID>,
}

/// Why a parcel costs what it costs.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ShippingBasis {
    /// The merchant has no shipping rule: free shipping (no surcharge either).
    NoRule,
    /// The base fee applies: no threshold, or the subtotal is below it.
    BaseFee,
    /// The subtotal reached the free-shipping threshold: the base fee is waived.
    FreeOverThreshold,
}

impl From<shipping::Basis> for ShippingBasis {
    fn from(b: shipping::Basis) -> Self {
        match b {
            shipping::Basis::NoRule => ShippingBasis::NoRule,
            shipping::Basis::BaseFee => ShippingBasis::BaseFee,
            shipping::Basis::FreeOverThreshold => ShippingBasis::FreeOverThreshold,
        }
    }
}

/// One merchant's parcel of a checkout and its shipping fee, with the merchant when it
/// was read with the preview.
pub struct ShippingParcel {
    pub quote: shipping::Quote,
    pub merchant: Option<entity::merchant::Model>,
}

plain_enums!(ShippingBasis, EarningKind);

plain_object! {
    /// A parcel: the platform ships one per merchant of an order, priced by the merchant's
    /// shipping rule.
    impl ShippingParcel => ShippingParcel as "ShippingParcel" {
        |this| this;
        |r, e|
        /// The merchant's lines' subtotal, compared with the free-shipping threshold, CNY.
        subtotal "subtotal": Dec = r.quote.subtotal.into();
        /// What the buyer pays for the parcel: the base fee unless waived, plus the surcharge.
        fee "fee": Dec = r.quote.fee.into();
        /// The rule's base fee (zero without a rule), charged or waived as `basis` says.
        base_fee "baseFee": Dec = r.quote.base_fee.into();
        /// The destination province's remote surcharge (zero when the rule names none).
        surcharge "surcharge": Dec = r.quote.surcharge.into();
        /// The free-shipping threshold; null when the base fee is never waived.
        free_threshold "freeThreshold": Option<Dec> = r.quote.free_threshold.map(Into::into);
        /// Why the fee is what it is.
        basis "basis": ShippingBasis = r.quote.basis.into();
        /// The reason in words, e.g. "base fee 10.00 waived: subtotal 120.00 reaches the
        /// free-shipping threshold 99.00; remote surcharge 20.00 to 新疆维吾尔自治区; fee 20.00".
        reason "reason": String = r.quote.reason();
    }
    plain |s, field, out| {
        "merchant" => plain::object(s.merchant.as_ref()?, e, &field.selection_set.node, out)?,
    }
    resolvers {
        /// The merchant whose lines the parcel holds.
        async fn merchant(&self, ctx: &Context<'_>) -> Result<Option<Merchant>> {
            if let Some(m) = &self.merchant {
                return Ok(Some(Merchant(m.clone())));
            }
            let found = ctx
                .data::<Loaders>()?
                .load_one(MerchantKey(self.quote.merchant_id))
                .await
                .map_err(load_err)?;
            Ok(found.map(Merchant))
        }
    }
}

/// An earning the viewer would book on a line if the order were paid now.
pub struct EarningPreview(pub crate::service::earnings::Planned);

plain_object! {
    /// What the viewer itself would earn on a line (its own earnings only, never another
    /// member's), before any daily cap on membership rewards.
    impl EarningPreview => crate::service::earnings::Planned as "EarningPreview" {
        |this| &this.0;
        |r, e|
        /// The rule.
        kind "kind": EarningKind = r.kind.into();
        /// 1 for the direct earner.
        level "level": i32 = i32::from(r.level);
        /// CNY, rounded down to the fen.
        amount "amount": Dec = r.amount.into();
    }
    plain |s, field, out| {
        "explanation" => {
            let explanation = EarningExplanation::from_parts(s.explanation.clone(), s.amount);
            plain::object(&explanation, e, &field.selection_set.node, out)?;
        }
    }
    resolvers {
        /// How the amount would be computed, as the booked earning will explain it: the base is
        /// the line's goods amount, never shipping.
        async fn explanation(&self) -> EarningExplanation {
            EarningExplanation::from_parts(self.0.explanation.clone(), self.0.amount)
        }
    }
}

/// A line of a checkout preview.
pub struct CheckoutLine(pub svc::PreviewLine);

plain_object! {
    /// A line as `placeOrder` would write it now.
    impl CheckoutLine => svc::PreviewLine as "CheckoutLine" {
        |this| &this.0;
        |r, e|
        /// The cart line it comes from; null for an explicit line.
        cart_line_id "cartLineId": Option<GlobalId> =
            r.line.cart_line_id.map(|id| GlobalId(Kind::CartLine, id));
        /// Units.
        quantity "quantity": i32 = r.line.quantity;
        /// The SKU's price now, CNY.
        unit_price "unitPrice": Dec = r.line.unit_price.into();
        /// unitPrice × quantity: the line's list amount.
        line_total "lineTotal": Dec = r.line.amount.into();
        /// The line's share of the coupon's discount (zero without one, or when the coupon
        /// does not apply).
        coupon_share "couponShare": Dec = r.line.coupon_share.into();
        /// `lineTotal` − `couponShare`: what would be paid for the line, the base of its
        /// earnings.
        paid_amount "paidAmount": Dec = r.line.paid().into();
        /// The share code the line would be credited through; null for none.
        share_code "shareCode": Option<&str> = r.share_code.as_deref();
    }
    plain |s, field, out| {
        "sku" => match &s.sku {
            Some(sku) => plain::object(sku, e, &field.selection_set.node, out)?,
            None => out.null(),
        },
        "attribution" => plain::object(&s.credit, e, &field.selection_set.node, out)?,
        "earnings" => plain::list(&s.earnings, e, &field.selection_set.node, out)?,
    }
    resolvers {
        /// The SKU (as the preview read it).
        async fn sku(&self) -> Option<Sku> {
            self.0.sku.clone().map(Sku)
        }
        /// Who would get credit for the line, and why.
        async fn attribution(&self) -> Attribution {
            Attribution::of(&self.0.credit)
        }
        /// What the viewer itself would earn on the line once the order is paid (a push-hand's
        /// or partner's own purchase); empty for a plain buyer. Never another member's amounts.
        async fn earnings(&self) -> Vec<EarningPreview> {
            self.0
                .earnings
                .iter()
                .cloned()
                .map(EarningPreview)
                .collect()
        }
    }
}

/// What an order would be, worked out without writing anything, with its parcels'
/// merchants.
pub struct CheckoutPreview {
    preview: svc::Preview,
    parcels: Vec<ShippingParcel>,
}

impl CheckoutPreview {
    /// What the coupon takes off the goods (zero without one or when it does not apply).
    fn coupon_discount(&self) -> entity::Money {
        self.preview
            .coupon
            .as_ref()
            .and_then(|c| c.outcome.as_ref().ok())
            .map_or(entity::Money::ZERO, |a| a.discount)
    }
}

plain_object! {
    /// An order as `placeOrder` would place it now: its lines, its parcels with their shipping,
    /// and what the buyer would pay. Stock and the unpaid-order cap are decided only when the
    /// order is placed.
    impl CheckoutPreview => CheckoutPreview as "CheckoutPreview" {
        |this| this;
        |r, e|
        /// The lines' amounts together (the goods), CNY.
        goods_total "goodsTotal": Dec = r.preview.goods.into();
        /// The parcels' fees together, CNY.
        shipping_total "shippingTotal": Dec = r.preview.shipping_fee.into();
        /// What the buyer would pay: goods less the coupon's discount, plus shipping, CNY.
        total "total": Dec = r.preview.total.into();
        /// What the coupon would take off the goods, CNY (zero without one or when it does not
        /// apply).
        discount "discount": Dec = r.coupon_discount().into();
    }
    plain |s, field, out| {
        "lines" => plain::list(&s.preview.lines, e, &field.selection_set.node, out)?,
        "parcels" => plain::list(&s.parcels, e, &field.selection_set.node, out)?,
        "address" if s.preview.address.is_none() => out.null(),
        "coupon" if s.preview.coupon.is_none() => out.null(),
    }
    resolvers {
        /// The lines, in the order asked.
        async fn lines(&self) -> Vec<CheckoutLine> {
            self.preview.lines.iter().cloned().map(CheckoutLine).collect()
        }
        /// One parcel per merchant with its shipping fee; empty without an address.
        async fn parcels(&self) -> Vec<&ShippingParcel> {
            self.parcels.iter().collect()
        }
        /// The delivery address; null when none was given.
        async fn address(&self) -> Option<Address> {
            self.preview.address.clone().map(Address)
        }
        /// The coupon asked for (`couponId`): whether it applies, and why not; null without one.
        async fn coupon(&self) -> Option<CheckoutCoupon> {
            self.preview.coupon.as_ref().map(|c| CheckoutCoupon {
                id: ids::encode(Kind::Coupon, c.coupon.id),
                applies: c.outcome.is_ok(),
                code: c.outcome.as_ref().err().map(|r| r.code.to_owned()),
                reason: c.outcome.as_ref().err().map(|r| r.reason.clone()),
                discount: c
                    .outcome
                    .as_ref()
                    .map_or(entity::Money::ZERO, |a| a.discount)
                    .into(),
                template: super::coupons::CouponTemplate(c.template.clone()),
            })
        }
    }
}

/// A coupon in a checkout preview: whether it applies, and if not why.
#[derive(async_graphql::SimpleObject)]
pub struct CheckoutCoupon {
    /// The coupon (`couponId`).
    pub id: ID,
    /// Whether it applies to this order (`placeOrder` would take it).
    pub applies: bool,
    /// Why not, as a stable code (`placeOrder` refuses with the same one):
    /// `COUPON_MIN_SPEND`, `COUPON_NO_ELIGIBLE_LINE`, `COUPON_EXPIRED`,
    /// `COUPON_NOT_YET_VALID`, `COUPON_DISABLED`, `COUPON_USED`; null when it applies.
    pub code: Option<String>,
    /// Why not, in words (e.g. "¥20.00 short of the minimum: …"); null when it applies.
    pub reason: Option<String>,
    /// What it takes off, CNY (zero when it does not apply).
    pub discount: Dec,
    /// Its template: what it is.
    pub template: super::coupons::CouponTemplate,
}

/// The delivery address an order was placed with, as it was then.
pub struct OrderAddress(pub order::Model);

/// A delivery address copied onto an order when it was placed: later edits of the member's
/// address do not move the order.
#[Object]
impl OrderAddress {
    /// The person who receives the parcels.
    async fn recipient_name(&self) -> &str {
        self.0.ship_recipient_name.as_deref().unwrap_or_default()
    }
    /// A mainland mobile number in E.164.
    async fn phone(&self) -> &str {
        self.0.ship_phone.as_deref().unwrap_or_default()
    }
    /// The province.
    async fn province(&self) -> Region {
        Region::stored(
            self.0.ship_province_code.as_deref().unwrap_or_default(),
            self.0.ship_province_name.as_deref().unwrap_or_default(),
            RegionLevel::Province,
            None,
        )
    }
    /// The city, inside the province.
    async fn city(&self) -> Region {
        Region::stored(
            self.0.ship_city_code.as_deref().unwrap_or_default(),
            self.0.ship_city_name.as_deref().unwrap_or_default(),
            RegionLevel::City,
            self.0.ship_province_code.as_deref(),
        )
    }
    /// The district, inside the city.
    async fn district(&self) -> Region {
        Region::stored(
            self.0.ship_district_code.as_deref().unwrap_or_default(),
            self.0.ship_district_name.as_deref().unwrap_or_default(),
            RegionLevel::District,
            self.0.ship_city_code.as_deref(),
        )
    }
    /// Province, city and district as people write them (北京市朝阳区).
    async fn region_text(&self) -> String {
        regions::text_of(
            self.0.ship_province_name.as_deref().unwrap_or_default(),
            self.0.ship_city_name.as_deref().unwrap_or_default(),
            self.0.ship_district_name.as_deref().unwrap_or_default(),
        )
    }
    /// Street, building, unit and room.
    async fn detail(&self) -> &str {
        self.0.ship_detail.as_deref().unwrap_or_default()
    }
    /// Six digits, if given.
    async fn postal_code(&self) -> Option<&str> {
        self.0.ship_postal_code.as_deref()
    }
}

impl OrderAddress {
    /// The snapshot of `o`, if it was placed with an address.
    pub fn of(o: &order::Model) -> Option<OrderAddress> {
        o.ship_recipient_name
            .is_some()
            .then(|| OrderAddress(o.clone()))
    }
}

#[derive(Default)]
pub struct CartQuery;

#[Object]
impl CartQuery {
    /// Works out the order `placeOrder` would place for the viewer, writing nothing: lines
    /// with unit price and line total, one parcel per merchant with its shipping fee (with
    /// an address), goods, shipping and total payable, and per line who would earn by which
    /// rule and what the viewer itself would earn (its own amounts only). The same errors
    /// as `placeOrder` (`NOT_FOUND` for another member's cart line or address,
    /// `CART_LINE_UNAVAILABLE`, `VALIDATION`), but stock and the unpaid cap are decided
    /// only when ordering.
    async fn checkout_preview(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Explicit lines or cart lines, and optionally an address.")]
        input: CheckoutPreviewInput,
    ) -> Result<Fast<CheckoutPreview>> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let req = OrderRequest {
            lines: lines_of_input(input.lines, input.cart_line_ids)?,
            address_id: address_id(input.address_id.as_ref())?,
            buyer_note: None,
            coupon_id: coupon_id(input.coupon_id.as_ref())?,
        };
        let preview =
            svc::checkout_preview(&st.db, me, req, limits(st), &policy(st), st.clock.now()).await?;
        // The parcels' merchants are read here (from memory), so that the whole preview
        // can be answered without a future per field.
        let loaders = ctx.data::<Loaders>()?;
        let merchants = loaders
            .load_many(preview.parcels.iter().map(|q| MerchantKey(q.merchant_id)))
            .await
            .map_err(load_err)?;
        let parcels = preview
            .parcels
            .iter()
            .map(|q| ShippingParcel {
                quote: q.clone(),
                merchant: merchants.get(&MerchantKey(q.merchant_id)).cloned(),
            })
            .collect();
        Ok(Fast(CheckoutPreview { preview, parcels }))
    }
}

#[derive(Default)]
pub struct CartMutation;

#[Object]
impl CartMutation {
    /// Adds units of a SKU on sale to the viewer's cart and answers the cart. A SKU already
    /// in the cart gets the units added (999 at most in all; concurrent adds add both), its
    /// share code replaced when one is given (the last click wins) and today's price as its
    /// price when added. A new SKU needs room: at most 100 lines (`CART_FULL`). A SKU not on
    /// sale is `NOT_FOUND`.
    async fn add_to_cart(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The variant (`Sku.id`).")] sku_id: ID,
        #[graphql(desc = "Units to add, 1 to 999 (`VALIDATION` otherwise).")] quantity: i32,
        #[graphql(
            desc = "A share link's code for the SKU's product, to credit who shared it; an \
                    unknown code or one for another product is `VALIDATION`."
        )]
        share_code: Option<String>,
    ) -> Result<Cart> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let sku = ids::decode_as(&sku_id, Kind::Sku, "skuId")?;
        let now = st.clock.now();
        let rows = svc::add(
            &st.db,
            &st.events,
            me,
            sku,
            quantity,
            share_code.as_deref(),
            now,
        )
        .await?;
        Ok(Cart::of(me, rows, now))
    }

    /// Sets the units of one of the viewer's cart lines and answers the cart. Another
    /// member's line is `NOT_FOUND`.
    async fn update_cart_line(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of the viewer's `CartLine` IDs.")] line_id: ID,
        #[graphql(desc = "The units the line holds from now on, 1 to 999.")] quantity: i32,
    ) -> Result<Cart> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let id = ids::decode_as(&line_id, Kind::CartLine, "lineId")?;
        let now = st.clock.now();
        let rows = svc::update_line(&st.db, &st.events, me, id, quantity, now).await?;
        Ok(Cart::of(me, rows, now))
    }

    /// Removes lines from the viewer's cart, all or none, and answers the cart. A line that
    /// is another member's (or gone) is `NOT_FOUND` and nothing is removed.
    async fn remove_cart_lines(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "1 to 100 of the viewer's `CartLine` IDs.")] line_ids: Vec<ID>,
    ) -> Result<Cart> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let ids = line_ids
            .iter()
            .map(|id| ids::decode_as(id, Kind::CartLine, "lineIds"))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = svc::remove_lines(&st.db, &st.events, me, &ids).await?;
        Ok(Cart::of(me, rows, st.clock.now()))
    }
}
