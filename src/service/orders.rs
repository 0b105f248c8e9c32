//! Orders: share links, checkout with atomic stock reservation and snapshotted prices and
//! rates, the idempotent payment callback (which books the earnings in its transaction),
//! completion (by the buyer or automatically), refunds, and expiry of unpaid orders (shipping
//! in parcels and the buyer's cancellation are the `fulfilment` module's).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use entity::{
    Money, address, audit_entry, binding, idempotency_key, member, order, order_line,
    payment_intent, product, share_link, sku,
};
use sea_orm::sea_query::{Expr, ExprTrait, JoinType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use super::auth::Viewer;
use super::batch::Batch;
use super::checkouts::{Checkout, Checkouts};
use super::earnings::{self, Policy};
use super::hierarchy::{self, NewBinding};
use super::members::INVITE_CODE_LEN;
use super::shipping;
use super::units_sold::UnitsSold;
use super::writes::Writes;
use crate::error::{Error, Result};
use crate::events::{Event, Events, Kind};

pub(crate) const SHARE_CODE_LEN: usize = 10;

/// The member's share link for a product (created on first use; one per member and product).
/// Only push-hands and partners share for rewards.
pub async fn share_link(
    db: &DatabaseConnection,
    m: &member::Model,
    product_id: Uuid,
    now: DateTime<Utc>,
) -> Result<share_link::Model> {
    if m.tier == member::Tier::Buyer {
        return Err(Error::Forbidden(
            "only push-hands and partners have share links".into(),
        ));
    }
    let p = product::Entity::find_by_id(product_id).one(db).await?;
    if !p.is_some_and(|p| p.status == product::Status::Published) {
        return Err(Error::not_found("product"));
    }
    let existing = || async {
        share_link::Entity::find()
            .filter(share_link::Column::MemberId.eq(m.id))
            .filter(share_link::Column::ProductId.eq(product_id))
            .one(db)
            .await
    };
    if let Some(link) = existing().await? {
        return Ok(link);
    }
    let model = share_link::Model {
        id: Uuid::now_v7(),
        code: super::members::random_code(SHARE_CODE_LEN),
        member_id: m.id,
        product_id,
        created_at: now,
    };
    match share_link::Entity::insert(share_link::ActiveModel::from(model.clone()))
        .exec_without_returning(db)
        .await
    {
        Ok(_) => Ok(model),
        // Created concurrently by the same member: theirs is as good as ours.
        Err(e) if crate::db::is_unique_violation(&e) => existing()
            .await?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("share link vanished"))),
        Err(e) => Err(e.into()),
    }
}

/// One line of a checkout as the client sends it.
pub struct LineRequest {
    pub sku_id: Uuid,
    pub quantity: i32,
    pub share_code: Option<String>,
}

/// Where the lines of an order come from.
pub enum Lines {
    /// Explicit lines (SKU, quantity, share code).
    Given(Vec<LineRequest>),
    /// Lines of the buyer's cart, by id, in this order: each keeps its quantity and share
    /// code, and leaves the cart with the order, in the order's transaction.
    Cart(Vec<Uuid>),
}

/// A checkout as the client asks for it (`placeOrder`, `checkoutPreview`).
pub struct OrderRequest {
    pub lines: Lines,
    /// One of the buyer's addresses: copied onto the order (later edits of the address do
    /// not move it) and the parcels' shipping quoted to its province. Without one the order
    /// has no address and no shipping fee.
    pub address_id: Option<Uuid>,
    /// A note to the shop, at most [`MAX_NOTE_CHARS`] characters (blank: none).
    pub buyer_note: Option<String>,
    /// One of the buyer's coupons (another member's: `NOT_FOUND`): what it takes off is
    /// spread over the lines it applies to ([`super::coupons`]).
    pub coupon_id: Option<Uuid>,
}

/// The longest buyer's note, in characters.
pub const MAX_NOTE_CHARS: usize = 200;
/// The most lines one order has.
pub const MAX_ORDER_LINES: usize = 50;

/// [`place_order_as`] without an idempotency key or caps (the command line, tests).
pub async fn place_order(
    checkouts: &Checkouts,
    buyer: &member::Model,
    lines: Vec<LineRequest>,
    payment_timeout: Duration,
    now: DateTime<Utc>,
) -> Result<(order::Model, Vec<order_line::Model>)> {
    place_order_as(
        checkouts,
        buyer,
        lines,
        None,
        OrderLimits::NONE,
        payment_timeout,
        now,
    )
    .await
}

/// [`place_order_with`] explicit lines, without address or note.
pub async fn place_order_as(
    checkouts: &Checkouts,
    buyer: &member::Model,
    lines: Vec<LineRequest>,
    key: Option<&str>,
    limits: OrderLimits,
    payment_timeout: Duration,
    now: DateTime<Utc>,
) -> Result<(order::Model, Vec<order_line::Model>)> {
    let request = OrderRequest {
        lines: Lines::Given(lines),
        address_id: None,
        buyer_note: None,
        coupon_id: None,
    };
    place_order_with(checkouts, buyer, request, key, limits, payment_timeout, now).await
}

/// Places an order: reserves stock atomically (a decrement per SKU that the `stock >= 0`
/// check refuses to take below zero, so concurrent checkouts can never oversell), snapshots
/// prices, rates and the delivery address, adds the shipping fee to the total, totals in
/// exact money. Unpaid, it expires after `payment_timeout`.
///
/// The reads come first, outside any transaction ([`prepare`]); the writes (the order, its
/// lines, its key, the cart lines it came from, the stock) then go through [`Checkouts`]: on
/// PostgreSQL in one statement with the other checkouts of its SKU queued at that moment, so
/// that a popular SKU's row is locked once for all of them; on SQLite in a write transaction
/// of its own. A cart line is ordered once: `order_lines.cart_line_id` is unique, so of
/// concurrent checkouts of one cart line one is written and the others are `NOT_FOUND`
/// (the line is gone), unless they carry the winner's idempotency key and request.
///
/// With an idempotency `key`, a retry with the same request returns the first order (placed
/// once however many retries race: the key is written with the order under a unique index);
/// another request under the same key is `IDEMPOTENCY_CONFLICT`.
///
/// A member holds at most `limits.max_unpaid_orders` unpaid orders (`TOO_MANY_UNPAID_ORDERS`)
/// and takes at most `limits.max_units_per_sku` units of a SKU per order (`QUANTITY_LIMIT`).
/// The first cap is counted before the write and again after its commit: of orders placed at
/// once, one that finds more than the cap pending once it is written cancels itself (the last
/// of any set of orders to count sees all of them, so the cap holds across instances).
pub async fn place_order_with(
    checkouts: &Checkouts,
    buyer: &member::Model,
    req: OrderRequest,
    key: Option<&str>,
    limits: OrderLimits,
    payment_timeout: Duration,
    now: DateTime<Utc>,
) -> Result<(order::Model, Vec<order_line::Model>)> {
    let db = checkouts.db();
    let key = key.map(idempotency_key_text).transpose()?;
    let note = buyer_note(req.buyer_note.as_deref())?;
    let request = key.map(|_| place_request(&req, note.as_deref()));
    if let (Some(key), Some(request)) = (key, &request)
        && let Some(id) = replay(db, buyer.id, PLACE_ORDER, key, request).await?
    {
        let o = get(db, id).await?;
        let lines = lines_of(db, &[id]).await?;
        return Ok((o, lines));
    }
    check_lines(&req.lines)?;
    let capped = limits.max_unpaid_orders < u32::MAX;
    if capped && unpaid_orders(db, buyer.id, now).await? >= u64::from(limits.max_unpaid_orders) {
        return Err(too_many_unpaid(limits));
    }
    let p = match prepare(db, buyer, req, limits, now).await {
        Ok(p) => p,
        // A twin under the same key may have ordered the cart lines meanwhile: its order.
        Err(e) if e.code() == "NOT_FOUND" => {
            if let (Some(key), Some(request)) = (key, &request)
                && let Some(id) = replay(db, buyer.id, PLACE_ORDER, key, request).await?
            {
                let o = get(db, id).await?;
                let lines = lines_of(db, &[id]).await?;
                return Ok((o, lines));
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let order_id = p.order_id;
    let (coupon_id, discount) = match &p.coupon {
        None => (None, Money::ZERO),
        Some(c) => match &c.outcome {
            Ok(applied) => (Some(applied.coupon_id), applied.discount),
            Err(refusal) => return Err(refusal.error()),
        },
    };
    let o = order::Model {
        id: order_id,
        buyer_id: buyer.id,
        status: order::Status::PendingPayment,
        total: p.total,
        payment_reference: None,
        created_at: now,
        expires_at: now + payment_timeout,
        paid_at: None,
        shipped_at: None,
        completed_at: None,
        cancelled_at: None,
        shipping_fee: p.shipping_fee,
        buyer_note: note,
        ship_recipient_name: p.address.as_ref().map(|a| a.recipient_name.clone()),
        ship_phone: p.address.as_ref().map(|a| a.phone.clone()),
        ship_province_code: p.address.as_ref().map(|a| a.province_code.clone()),
        ship_province_name: p.address.as_ref().map(|a| a.province_name.clone()),
        ship_city_code: p.address.as_ref().map(|a| a.city_code.clone()),
        ship_city_name: p.address.as_ref().map(|a| a.city_name.clone()),
        ship_district_code: p.address.as_ref().map(|a| a.district_code.clone()),
        ship_district_name: p.address.as_ref().map(|a| a.district_name.clone()),
        ship_detail: p.address.as_ref().map(|a| a.detail.clone()),
        ship_postal_code: p.address.as_ref().and_then(|a| a.postal_code.clone()),
        coupon_id,
        discount,
    };
    let rows = p.lines;
    let reservations = p.reservations;
    // The share codes the cart lines came with, should they go back to the cart.
    let codes: HashMap<Uuid, String> = p.codes.by_id();
    let cart_lines: Vec<Uuid> = rows.iter().filter_map(|l| l.cart_line_id).collect();
    let checkout = Checkout {
        order: o.clone(),
        lines: rows.clone(),
        stock: reservations
            .iter()
            .map(|(id, r)| (*id, r.quantity))
            .collect(),
        key: key
            .zip(request.clone())
            .map(|(key, request)| idempotency_key::Model {
                id: Uuid::now_v7(),
                owner_id: buyer.id,
                scope: PLACE_ORDER.to_owned(),
                key: key.to_owned(),
                request,
                result_id: order_id,
                created_at: now,
            }),
        cart_lines: cart_lines.clone(),
        coupon: coupon_id,
    };
    match checkouts.write(checkout).await {
        // Stock was taken (and the cart lines went, and the coupon is used).
        Ok(()) => {
            let products = rows.iter().map(|l| l.product_id);
            let mut batch = Event::catalog_of(products);
            if !cart_lines.is_empty() || coupon_id.is_some() {
                batch.push(Event::new(buyer.id, Kind::OwnChanged, buyer.id));
            }
            checkouts.events().publish(batch).await;
        }
        Err(e) if crate::db::is_check_violation(&e) => {
            // The coupon's CHECK (another order holds it), or a SKU's stock.
            if let Some(id) = coupon_id
                && let Some(c) = entity::coupon::Entity::find_by_id(id).one(db).await?
                && c.in_use > 0
                && c.order_id != Some(order_id)
            {
                return Err(Error::rule(
                    "COUPON_USED",
                    "this coupon is used by another order",
                ));
            }
            return Err(out_of_stock(checkouts.db(), &reservations).await?);
        }
        // The key was written by a twin of this request (or by another one), or a cart
        // line was ordered by another checkout.
        Err(e) if crate::db::is_unique_violation(&e) => {
            if let (Some(key), Some(request)) = (key, &request)
                && let Some(id) = replay(db, buyer.id, PLACE_ORDER, key, request).await?
            {
                let o = get(db, id).await?;
                let lines = lines_of(db, &[id]).await?;
                return Ok((o, lines));
            }
            if !cart_lines.is_empty() {
                return Err(Error::not_found("cart line (ordered meanwhile)"));
            }
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    }
    // Placed at once with others, it may be one too many: the cap holds whatever ran beside.
    if capped && unpaid_orders(db, buyer.id, now).await? > u64::from(limits.max_unpaid_orders) {
        cancel_unpaid(db, checkouts.events(), o.id, now).await?;
        // What it took from the cart goes back (the order that withdrew never was).
        if !cart_lines.is_empty() {
            super::cart::restore(db, checkouts.events(), buyer.id, &rows, &codes, now).await?;
        }
        return Err(too_many_unpaid(limits));
    }
    Ok((o, rows))
}

/// A buyer's note, trimmed: `None` when absent or blank, `VALIDATION` (`buyerNote`) when
/// longer than [`MAX_NOTE_CHARS`] or holding control characters other than line breaks.
fn buyer_note(note: Option<&str>) -> Result<Option<String>> {
    let Some(note) = note.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(Error::validation(
            "buyerNote",
            format!("at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::validation(
            "buyerNote",
            "no control characters but line breaks",
        ));
    }
    Ok(Some(note.to_owned()))
}

/// The checks of a request's lines that need no database: 1 to [`MAX_ORDER_LINES`] lines of
/// 1 to 99 units, or 1 to [`MAX_ORDER_LINES`] distinct cart lines.
pub fn check_lines(lines: &Lines) -> Result<()> {
    match lines {
        Lines::Given(lines) => {
            if lines.is_empty() {
                return Err(Error::validation(
                    "lines",
                    "an order needs at least one line",
                ));
            }
            if lines.len() > MAX_ORDER_LINES {
                return Err(Error::validation("lines", "at most 50 lines"));
            }
            for (i, l) in lines.iter().enumerate() {
                if !(1..=99).contains(&l.quantity) {
                    return Err(Error::validation(
                        format!("lines[{i}].quantity"),
                        "must be 1 to 99",
                    ));
                }
            }
        }
        Lines::Cart(ids) => {
            if ids.is_empty() {
                return Err(Error::validation(
                    "cartLineIds",
                    "an order needs at least one line",
                ));
            }
            if ids.len() > MAX_ORDER_LINES {
                return Err(Error::validation("cartLineIds", "at most 50 lines"));
            }
            for (i, id) in ids.iter().enumerate() {
                if ids[..i].contains(id) {
                    return Err(Error::validation(
                        format!("cartLineIds[{i}]"),
                        "a cart line named twice",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// An order worked out from its request, not written: what [`place_order_with`] writes and
/// `checkoutPreview` shows.
pub struct Prepared {
    pub order_id: Uuid,
    /// The lines as they would be written (in the request's order).
    pub lines: Vec<order_line::Model>,
    /// The lines' products, by id.
    pub products: HashMap<Uuid, product::Model>,
    /// The lines' SKUs as read, by id.
    pub skus: HashMap<Uuid, sku::Model>,
    /// The share links and notes the lines' codes name.
    pub codes: super::funnel::Codes,
    /// The delivery address, as read.
    pub address: Option<address::Model>,
    /// One parcel per merchant (empty without an address).
    pub quotes: Vec<shipping::Quote>,
    /// The lines' amounts together: the goods.
    pub goods: Money,
    pub shipping_fee: Money,
    /// goods − the coupon's discount + shipping_fee: what the buyer pays.
    pub total: Money,
    /// The coupon asked for, and what it takes off or why it does not apply (a
    /// preview shows the reason; placing the order refuses with it).
    pub coupon: Option<CouponOutcome>,
    reservations: BTreeMap<Uuid, Reservation>,
}

/// A coupon in a checkout: the coupon and its template as read, and what [`super::coupons::apply`]
/// decided (the lines' shares are already on [`Prepared::lines`] when it applies).
pub struct CouponOutcome {
    pub coupon: entity::coupon::Model,
    pub template: entity::coupon_template::Model,
    pub outcome: std::result::Result<super::coupons::Applied, super::coupons::Refusal>,
}

/// Reads what an order of `req` needs and works it out, writing nothing: the cart lines
/// (another member's, or gone: `NOT_FOUND`), the address (the same), every SKU with its
/// product, every share link, the shipping rules, the coupon — a fixed number of statements
/// whatever the number of lines. A cart checkout to an address reads its lines, SKUs,
/// products, the address and the rules in one statement ([`super::cart::for_checkout_to`]);
/// explicit lines with a coupon read the coupon and its template with their SKUs
/// ([`super::skus_with_products_and_coupon`]); the share links, when lines carry codes, in
/// one more. Call after [`check_lines`].
pub async fn prepare(
    db: &impl ConnectionTrait,
    buyer: &member::Model,
    req: OrderRequest,
    limits: OrderLimits,
    now: DateTime<Utc>,
) -> Result<Prepared> {
    // Every SKU (with its product) and every share link in one statement each, whatever
    // the number of lines; cart lines come with their SKUs.
    // A cart checkout to an address reads the address and the shipping rules with its lines.
    let mut destination = None;
    // Explicit lines with a coupon read the coupon and its template with their SKUs.
    let mut coupon_read: Option<super::CouponRead> = None;
    let (lines, cart_ids, skus): (Vec<LineRequest>, Vec<Option<Uuid>>, super::SkusWithProducts) =
        match req.lines {
            Lines::Given(lines) => {
                let n = lines.len();
                let ids = lines.iter().map(|l| l.sku_id);
                let skus = match req.coupon_id {
                    Some(coupon) => {
                        let (skus, read) =
                            super::skus_with_products_and_coupon(db, ids, coupon, buyer.id).await?;
                        coupon_read = read;
                        skus
                    }
                    None => super::skus_with_products(db, ids).await?,
                };
                (lines, vec![None; n], skus)
            }
            Lines::Cart(ids) => {
                let (rows, skus) = match req.address_id {
                    Some(address) => {
                        let (rows, skus, to) =
                            super::cart::for_checkout_to(db, buyer.id, &ids, address).await?;
                        destination = to;
                        (rows, skus)
                    }
                    None => super::cart::for_checkout(db, buyer.id, &ids).await?,
                };
                let (lines, ids) = rows
                    .into_iter()
                    .map(|l| {
                        let id = Some(l.id);
                        let request = LineRequest {
                            sku_id: l.sku_id,
                            quantity: l.quantity,
                            share_code: l.share_code,
                        };
                        (request, id)
                    })
                    .unzip();
                (lines, ids, skus)
            }
        };
    let (address, rules) = match (req.address_id, destination) {
        (_, Some(d)) => (Some(d.address), Some(d.rules)),
        (Some(id), None) => (Some(super::addresses::get(db, buyer.id, id).await?), None),
        (None, None) => (None, None),
    };
    // (A malformed code is refused in its line's turn below.)
    let codes = super::funnel::Codes::read(
        db,
        lines
            .iter()
            .filter_map(|l| super::funnel::normalise(l.share_code.as_deref()?)),
    )
    .await?;
    let order_id = Uuid::now_v7();
    let mut rows = Vec::with_capacity(lines.len());
    let mut products: HashMap<Uuid, product::Model> = HashMap::new();
    let mut found_skus: HashMap<Uuid, sku::Model> = HashMap::new();
    // Units to take from each SKU (two lines of one SKU take their sum), in SKU order.
    let mut reservations: BTreeMap<Uuid, Reservation> = BTreeMap::new();
    let mut total = 0i64;
    for (i, (l, cart_line_id)) in lines.into_iter().zip(cart_ids).enumerate() {
        let found = skus.get(&l.sku_id).and_then(|(s, p)| {
            p.as_ref()
                .filter(|p| p.status == product::Status::Published)
                .map(|p| (s, p))
        });
        // A SKU of an unpublished product is as unknown as a SKU that does not exist: a
        // buyer must not learn that a product is being prepared. A cart line says it
        // cannot be ordered (the cart shows why).
        let Some((s, p)) = found else {
            if cart_line_id.is_some() {
                return Err(Error::rule(
                    "CART_LINE_UNAVAILABLE",
                    format!("cart line {i} is no longer on sale; remove it to check out"),
                ));
            }
            return Err(Error::not_found("SKU"));
        };
        let referral = match l
            .share_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            None => None,
            Some(code) => {
                let code = super::funnel::normalise(code).ok_or_else(|| {
                    Error::validation(format!("lines[{i}].shareCode"), "unknown share code")
                })?;
                let via = codes.for_product(&code, p.id).ok_or_else(|| {
                    Error::validation(
                        format!("lines[{i}].shareCode"),
                        "unknown share code for this product",
                    )
                })?;
                Some(via.referral)
            }
        };
        let amount = s
            .price
            .fen()
            .checked_mul(i64::from(l.quantity))
            .ok_or_else(|| Error::validation("lines", "amount too large"))?;
        total = total
            .checked_add(amount)
            .ok_or_else(|| Error::validation("lines", "amount too large"))?;
        reservations
            .entry(s.id)
            .or_insert_with(|| Reservation {
                quantity: 0,
                name: format!("{} ({})", s.name, p.name),
            })
            .quantity += l.quantity;
        products.entry(p.id).or_insert_with(|| p.clone());
        found_skus.entry(s.id).or_insert_with(|| s.clone());
        rows.push(order_line::Model {
            id: Uuid::now_v7(),
            order_id,
            product_id: p.id,
            sku_id: s.id,
            quantity: l.quantity,
            unit_price: s.price,
            amount: Money::from_fen(amount),
            rebate_rate: p.rebate_rate,
            team_rebate_rate: p.team_rebate_rate,
            membership_activity: p.membership_activity,
            share_link_id: referral.and_then(|r| r.share_link),
            note_id: referral.and_then(|r| r.note),
            refunded_at: None,
            refunded_quantity: 0,
            cart_line_id,
            refunding_quantity: 0,
            coupon_share: Money::ZERO,
        });
    }
    if let Some(r) = reservations
        .values()
        .find(|r| i64::from(r.quantity) > i64::from(limits.max_units_per_sku))
    {
        return Err(Error::rule(
            "QUANTITY_LIMIT",
            format!(
                "at most {} units of one SKU per order ({} asked {})",
                limits.max_units_per_sku, r.name, r.quantity
            ),
        ));
    }
    // One parcel per merchant, in the order merchants first appear.
    let quotes = match &address {
        None => Vec::new(),
        Some(a) => {
            let subtotals: Vec<(Uuid, Money)> = rows
                .iter()
                .filter_map(|l| Some((products.get(&l.product_id)?.merchant_id, l.amount)))
                .collect();
            match &rules {
                Some(rules) => shipping::quote_by(&subtotals, rules, &a.province_code),
                None => shipping::quote(db, &subtotals, &a.province_code).await?,
            }
        }
    };
    let shipping_fee: i64 = quotes.iter().map(|q| q.fee.fen()).sum();
    // The coupon (two statements more, only when one is given): its shares go on the lines.
    let coupon = match req.coupon_id {
        None => None,
        Some(id) => {
            let (c, t) = match coupon_read {
                Some(read) => read.ok_or_else(|| Error::not_found("coupon"))?,
                None => super::coupons::for_checkout(db, buyer.id, id).await?,
            };
            let outcome = super::coupons::apply(&c, &t, &rows, &products, now);
            if let Ok(applied) = &outcome {
                for (line, share) in rows.iter_mut().zip(&applied.shares) {
                    line.coupon_share = Money::from_fen(*share);
                }
            }
            Some(CouponOutcome {
                coupon: c,
                template: t,
                outcome,
            })
        }
    };
    let discount = coupon
        .as_ref()
        .and_then(|c| c.outcome.as_ref().ok())
        .map_or(0, |a| a.discount.fen());
    let payable = (total - discount)
        .checked_add(shipping_fee)
        .ok_or_else(|| Error::validation("lines", "amount too large"))?;
    Ok(Prepared {
        order_id,
        lines: rows,
        products,
        skus: found_skus,
        codes,
        address,
        quotes,
        goods: Money::from_fen(total),
        shipping_fee: Money::from_fen(shipping_fee),
        total: Money::from_fen(payable),
        coupon,
        reservations,
    })
}

/// The caps on what one member may hold in unpaid orders.
#[derive(Clone, Copy, Debug)]
pub struct OrderLimits {
    /// Unpaid, unexpired orders per member.
    pub max_unpaid_orders: u32,
    /// Units of one SKU in one order.
    pub max_units_per_sku: u32,
}

impl OrderLimits {
    /// No caps.
    pub const NONE: OrderLimits = OrderLimits {
        max_unpaid_orders: u32::MAX,
        max_units_per_sku: u32::MAX,
    };
}

impl Default for OrderLimits {
    fn default() -> Self {
        OrderLimits {
            max_unpaid_orders: 5,
            max_units_per_sku: 50,
        }
    }
}

fn too_many_unpaid(limits: OrderLimits) -> Error {
    Error::rule(
        "TOO_MANY_UNPAID_ORDERS",
        format!(
            "at most {} unpaid orders at once: pay or let one expire first",
            limits.max_unpaid_orders
        ),
    )
}

/// The member's orders awaiting payment and not yet expired, read from the partial index
/// `idx_orders_pending` (migration 34). The status is a literal in the statement, not a
/// parameter: a planner matches a partial index's predicate only against the statement's
/// text (SQLite always; PostgreSQL in its generic plan, which it then keeps instead of
/// planning every call).
async fn unpaid_orders(db: &impl ConnectionTrait, buyer: Uuid, now: DateTime<Utc>) -> Result<u64> {
    let n: Option<i64> = order::Entity::find()
        .select_only()
        .column_as(Expr::cust("COUNT(*)"), "n")
        .filter(order::Column::BuyerId.eq(buyer))
        .filter(Expr::cust("status = 'PENDING_PAYMENT'"))
        .filter(order::Column::ExpiresAt.gt(now))
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// Cancels an unpaid order placed beyond the cap: its stock returns (published once
/// committed) and its idempotency key goes (a retry is refused again, or placed once the
/// member is under the cap).
async fn cancel_unpaid(
    db: &DatabaseConnection,
    events: &Events,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    let txn = crate::db::begin_write(db).await?;
    let restocked = cancel_pending(&txn, id, now).await?;
    if restocked.is_some() {
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::Scope.eq(PLACE_ORDER))
            .filter(idempotency_key::Column::ResultId.eq(id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    if let Some(products) = restocked {
        events.publish(Event::catalog_of(products)).await;
    }
    Ok(())
}

/// Cancels an order still awaiting payment and gives its units back to their SKUs, in
/// `txn`; returns the products whose stock came back, for the caller to publish once `txn`
/// commits. `None` (nothing written) when the order had left `PENDING_PAYMENT` meanwhile.
pub(super) async fn cancel_pending(
    txn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Vec<Uuid>>> {
    if !transition(
        txn,
        id,
        &[order::Status::PendingPayment],
        order::Status::Cancelled,
        (order::Column::CancelledAt, now),
    )
    .await?
    {
        return Ok(None);
    }
    // Its coupon (if any) goes back to the buyer, before the stock (a checkout takes the
    // coupon before the stock too).
    super::coupons::release_of_order(txn, id).await?;
    let lines = lines_of(txn, &[id]).await?;
    restock(txn, lines.iter().map(|l| (l.sku_id, l.quantity))).await?;
    Ok(Some(lines.iter().map(|l| l.product_id).collect()))
}

/// The scopes of idempotency keys.
const PLACE_ORDER: &str = "placeOrder";
pub(crate) const REFUND_ORDER_LINE: &str = "refundOrderLine";

/// A client's idempotency key, trimmed: 1 to 128 printable characters.
pub(crate) fn idempotency_key_text(key: &str) -> Result<&str> {
    let key = key.trim();
    if key.is_empty() || key.len() > 128 || key.chars().any(char::is_control) {
        return Err(Error::validation(
            "idempotencyKey",
            "must be 1 to 128 printable characters",
        ));
    }
    Ok(key)
}

/// `placeOrder`'s arguments in a canonical form, to tell a retry from another request.
/// Explicit lines without address or note read as they always did.
fn place_request(req: &OrderRequest, note: Option<&str>) -> String {
    let mut out = String::new();
    match &req.lines {
        Lines::Given(lines) => {
            for l in lines {
                let code = l.share_code.as_deref().map_or("", str::trim);
                out.push_str(&format!("{}*{}@{};", l.sku_id, l.quantity, code));
            }
        }
        Lines::Cart(ids) => {
            out.push_str("cart:");
            for id in ids {
                out.push_str(&format!("{id};"));
            }
        }
    }
    if let Some(address) = req.address_id {
        out.push_str(&format!("|address:{address}"));
    }
    if let Some(note) = note {
        out.push_str(&format!("|note:{note}"));
    }
    if let Some(coupon) = req.coupon_id {
        out.push_str(&format!("|coupon:{coupon}"));
    }
    out
}

/// What a key already made: `Some(result)` when it was used with the same `request`,
/// `None` when unused, `IDEMPOTENCY_CONFLICT` when used with other arguments.
pub(crate) async fn replay(
    db: &impl ConnectionTrait,
    owner: Uuid,
    scope: &str,
    key: &str,
    request: &str,
) -> Result<Option<Uuid>> {
    let Some(row) = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::OwnerId.eq(owner))
        .filter(idempotency_key::Column::Scope.eq(scope))
        .filter(idempotency_key::Column::Key.eq(key))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if row.request != request {
        return Err(Error::rule(
            "IDEMPOTENCY_CONFLICT",
            "this idempotency key was used with other arguments",
        ));
    }
    Ok(Some(row.result_id))
}

/// Units a checkout takes from one SKU.
struct Reservation {
    quantity: i32,
    /// "SKU (product)", for the error.
    name: String,
}

/// The error of a checkout the stock check refused: names the first SKU (in SKU order) that
/// has fewer units left than the checkout asked for.
async fn out_of_stock(
    db: &DatabaseConnection,
    reservations: &BTreeMap<Uuid, Reservation>,
) -> Result<Error> {
    let left: HashMap<Uuid, i32> = sku::Entity::find()
        .select_only()
        .columns([sku::Column::Id, sku::Column::Stock])
        .filter(super::one_of(
            db,
            sku::Column::Id,
            reservations.keys().copied(),
        ))
        .into_tuple::<(Uuid, i32)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let short = reservations
        .iter()
        .find(|(id, r)| left.get(id).is_none_or(|n| *n < r.quantity))
        .or_else(|| reservations.iter().next());
    Ok(match short {
        Some((_, r)) => Error::rule(
            "OUT_OF_STOCK",
            format!("SKU {} has fewer than {} left", r.name, r.quantity),
        ),
        None => Error::rule("OUT_OF_STOCK", "out of stock"),
    })
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<order::Model> {
    order::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("order"))
}

pub async fn lines_of(
    db: &impl ConnectionTrait,
    order_ids: &[Uuid],
) -> Result<Vec<order_line::Model>> {
    Ok(order_line::Entity::find()
        .filter(super::one_of(
            db,
            order_line::Column::OrderId,
            order_ids.iter().copied(),
        ))
        .order_by_asc(order_line::Column::Id)
        .all(db)
        .await?)
}

/// A payment as the provider reports it.
pub struct Payment<'a> {
    pub order_id: Uuid,
    /// The provider's reference (1–128 characters once trimmed).
    pub reference: &'a str,
    /// Must equal the order's total.
    pub amount: Money,
    /// The staff member confirming it, for the audit log (`None`: the command line, tests).
    pub actor: Option<&'a Actor>,
    /// The provider's payment intent it settles (a notification's): marked `PAID` with the
    /// reference in the payment's own transaction, by the call that makes the transition.
    pub intent: Option<Uuid>,
}

/// The payment provider's callback. Idempotent: the same reference again returns the order
/// unchanged; any number of concurrent identical callbacks make exactly one transition and
/// one set of earnings (the transition is a conditional update; the loser sees it done). A
/// wrong amount is `PAYMENT_MISMATCH` and books nothing; another reference for a paid order
/// is `PAYMENT_CONFLICT`. The units sold go to `sold` once the payment commits. With an
/// actor, the payment that makes the transition also writes its audit entry (reference and
/// amount), in the same statement.
///
/// Under a daily cap on membership rewards, a payment rewarding a member books against the
/// day's figure it read; should another payment move that figure first, it reads again and
/// books what is left (`TRY_AGAIN` after [`MAX_PAYMENT_TRIES`] such rounds).
pub async fn confirm_payment(
    db: &DatabaseConnection,
    events: &Events,
    sold: &UnitsSold,
    payment: Payment<'_>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<order::Model> {
    confirm_payment_of(db, events, sold, payment, None, policy, now).await
}

/// An order a caller of [`confirm_payment_of`] has just read, with its lines (in id order)
/// and its buyer when it read them too.
pub struct Read {
    pub order: order::Model,
    pub lines: Option<(Vec<order_line::Model>, member::Model)>,
}

/// [`confirm_payment`], with the order when the caller has just read it (a notification's
/// intent comes with its order, [`super::payments::notified`]; the sandbox's pay button
/// reads its lines and buyer with it too): what was read is not read again.
pub async fn confirm_payment_of(
    db: &DatabaseConnection,
    events: &Events,
    sold: &UnitsSold,
    payment: Payment<'_>,
    read: Option<Read>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<order::Model> {
    let Payment {
        order_id,
        reference,
        amount,
        actor,
        intent,
    } = payment;
    let reference = reference.trim();
    if reference.is_empty() || reference.len() > 128 {
        return Err(Error::validation(
            "paymentReference",
            "must be 1 to 128 characters",
        ));
    }
    let (mut o, mut lines_read) = match read.filter(|r| r.order.id == order_id) {
        Some(r) => (r.order, r.lines),
        None => (get(db, order_id).await?, None),
    };
    // The usual case: an order awaiting exactly this amount, unexpired. What it books is
    // worked out from reads first; then the transition (a conditional update: of concurrent
    // identical callbacks, one makes it) and every write go together, the writes only if the
    // transition happened and the counters they were worked out from did not move
    // (`Writes::run_guarded`: one statement on PostgreSQL).
    let mut tries = 0;
    while o.status == order::Status::PendingPayment && o.total == amount && o.expires_at > now {
        if tries == MAX_PAYMENT_TRIES {
            return Err(Error::rule(
                "TRY_AGAIN",
                "the payment's earnings kept changing under it; please retry",
            ));
        }
        tries += 1;
        let paid = order::Model {
            status: order::Status::Paid,
            payment_reference: Some(reference.to_owned()),
            paid_at: Some(now),
            ..o
        };
        // (Read with the order, the first time, when the caller read them.)
        let (lines, buyer) = match lines_read.take() {
            Some(read) => read,
            None => lines_and_buyer(db, &paid).await?,
        };
        let mut writes = Writes::default();
        let booked =
            earnings::book_order(db, &mut writes, &paid, &buyer, &lines, policy, now).await?;
        let mut team = Vec::new();
        // A buyer without an upline is in nobody's team.
        if buyer.upline_id.is_some() {
            for upsert in
                hierarchy::team_sales(db, paid.buyer_id, goods_of(&paid), now, &mut team).await?
            {
                writes.push(upsert);
            }
        }
        if let Some(actor) = actor {
            writes.push(
                audit_entry::Entity::insert(audit::entry(
                    actor,
                    Action::PaymentConfirmed,
                    Some((TargetType::Order, order_id)),
                    serde_json::json!({
                        "paymentReference": reference,
                        "amount": amount.to_decimal().to_string(),
                    }),
                    now,
                ))
                .into_query(),
            );
        }
        if let Some(intent) = intent {
            let paid = payment_intent::Status::Paid;
            writes.push(super::payments::marking(intent, paid, reference, now).into_query());
        }
        writes.push(super::webhooks::outbox(
            "order.paid",
            super::webhooks::order_data(&paid, "PAID", Some(&lines)),
            now,
        ));
        let transition = order::Entity::update_many()
            .col_expr(order::Column::Status, Expr::value(order::Status::Paid))
            .col_expr(order::Column::PaymentReference, Expr::value(reference))
            .col_expr(order::Column::PaidAt, Expr::value(now))
            .filter(order::Column::Id.eq(order_id))
            .filter(order::Column::Status.eq(order::Status::PendingPayment))
            .filter(order::Column::Total.eq(amount))
            .filter(order::Column::ExpiresAt.gt(now))
            .into_query();
        // The balances go last: the rows every payment to the same earner waits for stay
        // locked only until the commit right after.
        let made = writes.run_guarded(db, transition).await.map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                Error::rule(
                    "PAYMENT_CONFLICT",
                    "this payment reference belongs to another order",
                )
            } else {
                e.into()
            }
        })?;
        if made {
            for l in &lines {
                sold.add(l.product_id, i64::from(l.quantity));
            }
            let mut batch = earnings::events_of(&booked);
            batch.push(Event::new(paid.buyer_id, Kind::OrderChanged, paid.id));
            batch.extend(Event::changed(team, paid.id));
            events.publish(batch).await;
            return Ok(paid);
        }
        // The transition lost a race (a twin callback, an expiry: read what won), or a
        // capped counter moved since it was read (another payment rewarded the same
        // member: the order still waits, so work it out again).
        o = get(db, order_id).await?;
    }
    // Not paid by this call: say why.
    if o.status == order::Status::PendingPayment {
        if amount != o.total {
            return Err(Error::rule(
                "PAYMENT_MISMATCH",
                format!("the order totals {}, the payment is {}", o.total, amount),
            ));
        }
        if o.expires_at <= now {
            return Err(Error::rule(
                "ORDER_EXPIRED",
                "the order expired before it was paid",
            ));
        }
    }
    // Already paid (by this callback's twin or earlier): same reference and amount →
    // unchanged; the same reference with another amount is not this payment.
    match &o.payment_reference {
        Some(r) if r == reference && o.total != amount => Err(Error::rule(
            "PAYMENT_MISMATCH",
            format!("the order totals {}, the payment is {}", o.total, amount),
        )),
        Some(r) if r == reference => Ok(o),
        Some(_) => Err(Error::rule(
            "PAYMENT_CONFLICT",
            "the order was paid with another reference",
        )),
        None => Err(Error::rule(
            "ORDER_NOT_PAYABLE",
            format!("the order is {:?}", o.status).to_uppercase(),
        )),
    }
}

/// An order's goods amount in fen: its total without the shipping fee (what team sales
/// count; shipping is never a sale of anyone's).
pub fn goods_of(o: &order::Model) -> i64 {
    o.total.fen() - o.shipping_fee.fen()
}

/// How many times a payment works out its earnings before it gives up with `TRY_AGAIN`:
/// each round lost means another payment rewarded the same member meanwhile.
pub const MAX_PAYMENT_TRIES: u32 = 16;

/// An order's lines (in id order) and its buyer, in one statement: the lines joined with the
/// buyer's row.
async fn lines_and_buyer(
    db: &impl ConnectionTrait,
    o: &order::Model,
) -> Result<(Vec<order_line::Model>, member::Model)> {
    let mut select = order_line::Entity::find()
        .filter(order_line::Column::OrderId.eq(o.id))
        .order_by_asc(order_line::Column::Id)
        .select_also(member::Entity);
    QueryTrait::query(&mut select).join(
        JoinType::InnerJoin,
        member::Entity,
        Expr::col((member::Entity, member::Column::Id)).eq(o.buyer_id),
    );
    let rows = select.all(db).await?;
    let buyer = rows
        .first()
        .and_then(|(_, m)| m.clone())
        .ok_or_else(|| Error::not_found("member"))?;
    Ok((rows.into_iter().map(|(l, _)| l).collect(), buyer))
}

async fn transition(
    db: &impl ConnectionTrait,
    id: Uuid,
    from: &[order::Status],
    to: order::Status,
    at: (order::Column, DateTime<Utc>),
) -> Result<bool> {
    let updated = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(to))
        .col_expr(at.0, Expr::value(at.1))
        .filter(order::Column::Id.eq(id))
        .filter(order::Column::Status.is_in(from.iter().copied()))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Which of `lines` are in a parcel.
pub(super) async fn shipped_lines(
    db: &impl ConnectionTrait,
    lines: impl IntoIterator<Item = Uuid>,
) -> Result<std::collections::HashSet<Uuid>> {
    let lines: Vec<Uuid> = lines.into_iter().collect();
    if lines.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    Ok(entity::shipment_line::Entity::find()
        .select_only()
        .column(entity::shipment_line::Column::OrderLineId)
        .filter(super::one_of(
            db,
            entity::shipment_line::Column::OrderLineId,
            lines,
        ))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// `PAID` → `SHIPPED`, shipped at `at`.
pub(super) async fn mark_shipped(
    txn: &impl ConnectionTrait,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<bool> {
    let updated = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(order::Status::Shipped))
        .col_expr(order::Column::ShippedAt, Expr::value(at))
        .filter(order::Column::Id.eq(id))
        .filter(order::Column::Status.eq(order::Status::Paid))
        .exec(txn)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(false);
    }
    // `order.shipped`, with its parcels, in the same transaction.
    let o = get(txn, id).await?;
    let parcels = entity::shipment::Entity::find()
        .filter(entity::shipment::Column::OrderId.eq(id))
        .order_by_asc(entity::shipment::Column::ShippedAt)
        .order_by_asc(entity::shipment::Column::Id)
        .all(txn)
        .await?;
    let mut data = super::webhooks::order_data(&o, "SHIPPED", None);
    data["parcels"] = parcels
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": super::webhooks::node_id("Shipment", p.id),
                "carrier": p.carrier.map(|c| sea_orm::ActiveEnum::to_value(&c)),
                "trackingNumber": p.tracking_number,
                "shippedAt": p.shipped_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            })
        })
        .collect();
    super::webhooks::record(txn, "order.shipped", data, at).await?;
    Ok(true)
}

/// After a refund, in its transaction (the order's row locked): a paid order some of whose
/// lines shipped and whose other lines are now all refunded has shipped — as of its last
/// parcel. Returns whether it changed.
async fn ship_if_complete(txn: &impl ConnectionTrait, o: &order::Model) -> Result<bool> {
    if o.status != order::Status::Paid {
        return Ok(false);
    }
    let lines = lines_of(txn, &[o.id]).await?;
    let shipped = shipped_lines(txn, lines.iter().map(|l| l.id)).await?;
    if shipped.is_empty()
        || lines
            .iter()
            .any(|l| l.refunded_at.is_none() && !shipped.contains(&l.id))
    {
        return Ok(false);
    }
    let last = entity::shipment::Entity::find()
        .filter(entity::shipment::Column::OrderId.eq(o.id))
        .order_by_desc(entity::shipment::Column::ShippedAt)
        .one(txn)
        .await?
        .map(|s| s.shipped_at);
    match last {
        Some(at) => mark_shipped(txn, o.id, at).await,
        None => Ok(false),
    }
}

/// Completes a shipped order: starts the return window of its earnings and, for a
/// membership-activity line, makes a plain buyer a push-hand (bound to the referrer if it has
/// no upline). Used by the buyer's `confirmReceipt` and by auto-completion.
pub async fn complete(
    db: &DatabaseConnection,
    events: &Events,
    id: Uuid,
    return_window: Duration,
    now: DateTime<Utc>,
) -> Result<order::Model> {
    let txn = crate::db::begin_write(db).await?;
    if !transition(
        &txn,
        id,
        &[order::Status::Shipped],
        order::Status::Completed,
        (order::Column::CompletedAt, now),
    )
    .await?
    {
        get(&txn, id).await?;
        return Err(Error::rule(
            "ORDER_NOT_COMPLETABLE",
            "only a shipped order can be completed",
        ));
    }
    let o = get(&txn, id).await?;
    let lines = lines_of(&txn, &[id]).await?;
    // The earners' earnings now show when they settle.
    let mut changed = earnings::start_window(&txn, id, &lines, now + return_window).await?;
    if let Some(line) = lines
        .iter()
        .find(|l| l.membership_activity && l.refunded_at.is_none())
    {
        promote_to_push_hand(&txn, o.buyer_id, line, now, &mut changed).await?;
    }
    super::webhooks::record(
        &txn,
        "order.completed",
        super::webhooks::order_data(&o, "COMPLETED", None),
        now,
    )
    .await?;
    txn.commit().await?;
    let mut batch = vec![Event::new(o.buyer_id, Kind::OrderChanged, o.id)];
    batch.extend(Event::changed(changed, o.id));
    events.publish(batch).await;
    Ok(o)
}

/// Makes a buyer a push-hand (with an invite code), bound to whoever referred the
/// purchase if it has no upline. Adds the members this changes (the buyer, whose role shows
/// in its uplines' teams, and the uplines) to `changed`.
async fn promote_to_push_hand(
    txn: &impl ConnectionTrait,
    buyer_id: Uuid,
    line: &order_line::Model,
    now: DateTime<Utc>,
    changed: &mut Vec<Uuid>,
) -> Result<()> {
    let buyer = super::members::get(txn, buyer_id).await?;
    if buyer.tier != member::Tier::Buyer {
        return Ok(());
    }
    member::Entity::update_many()
        .col_expr(member::Column::Tier, Expr::value(member::Tier::PushHand))
        .col_expr(
            member::Column::InviteCode,
            Expr::value(super::members::random_code(INVITE_CODE_LEN)),
        )
        .filter(member::Column::Id.eq(buyer_id))
        .exec(txn)
        .await?;
    changed.push(buyer_id);
    changed.extend(hierarchy::uplines(txn, buyer_id).await?);
    // Bound to whoever referred the purchase, if the buyer has no upline yet.
    let referrer = match (line.share_link_id, line.note_id) {
        (Some(link), _) => share_link::Entity::find_by_id(link)
            .one(txn)
            .await?
            .map(|l| l.member_id),
        (None, Some(n)) => entity::note::Entity::find_by_id(n)
            .one(txn)
            .await?
            .map(|n| n.author_id),
        (None, None) => None,
    };
    if let Some(referrer) = referrer.filter(|r| *r != buyer_id) {
        hierarchy::lock(txn).await?;
        hierarchy::lapse_if_expired(txn, buyer_id, now, changed).await?;
        if hierarchy::active_binding(txn, buyer_id, now)
            .await?
            .is_none()
            && !hierarchy::would_cycle(txn, buyer_id, referrer).await?
        {
            let b = NewBinding {
                member: buyer_id,
                upline: referrer,
                kind: binding::Kind::MembershipPurchase,
                expires_at: None,
                created_by: None,
            };
            hierarchy::attach(txn, b, now, changed).await?;
        }
    }
    Ok(())
}

/// The buyer confirms receipt.
pub async fn confirm_receipt(
    db: &DatabaseConnection,
    events: &Events,
    buyer: &member::Model,
    id: Uuid,
    return_window: Duration,
    now: DateTime<Utc>,
) -> Result<order::Model> {
    let o = get(db, id).await?;
    if o.buyer_id != buyer.id {
        return Err(Error::not_found("order"));
    }
    complete(db, events, id, return_window, now).await
}

/// Completes every order shipped more than `after` ago. Returns how many.
pub async fn auto_complete(
    db: &DatabaseConnection,
    events: &Events,
    after: Duration,
    return_window: Duration,
    now: DateTime<Utc>,
) -> Result<usize> {
    let due: Vec<Uuid> = order::Entity::find()
        .select_only()
        .column(order::Column::Id)
        .filter(order::Column::Status.eq(order::Status::Shipped))
        .filter(order::Column::ShippedAt.lte(now - after))
        .limit(500)
        .into_tuple()
        .all(db)
        .await?;
    let mut n = 0;
    for id in due {
        if complete(db, events, id, return_window, now).await.is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// Cancels unpaid orders past their expiry and releases their stock (published with each
/// order's change once it commits). Returns how many.
pub async fn expire_unpaid(
    db: &DatabaseConnection,
    events: &Events,
    now: DateTime<Utc>,
) -> Result<usize> {
    let due: Vec<Uuid> = order::Entity::find()
        .select_only()
        .column(order::Column::Id)
        .filter(order::Column::Status.eq(order::Status::PendingPayment))
        .filter(order::Column::ExpiresAt.lte(now))
        .limit(500)
        .into_tuple()
        .all(db)
        .await?;
    let mut n = 0;
    for id in due {
        let txn = crate::db::begin_write(db).await?;
        if let Some(products) = cancel_pending(&txn, id, now).await? {
            let o = get(&txn, id).await?;
            txn.commit().await?;
            let mut batch = vec![Event::new(o.buyer_id, Kind::OrderChanged, id)];
            batch.extend(Event::catalog_of(products));
            events.publish(batch).await;
            n += 1;
            continue;
        }
        txn.commit().await?;
    }
    Ok(n)
}

/// Gives `units` back to their SKUs (pairs of SKU and units), in the order a checkout takes
/// them ([`super::checkouts::push_stock_moves`]).
async fn restock(
    txn: &impl ConnectionTrait,
    units: impl IntoIterator<Item = (Uuid, i32)>,
) -> Result<()> {
    let mut batch = Batch::default();
    super::checkouts::push_stock_moves(&mut batch, units);
    batch.run(txn).await?;
    Ok(())
}

/// Refunds `quantity` units of a line of a paid order (all remaining units when `None`),
/// by staff. The units' stock returns; the line's earnings are reversed in proportion —
/// pending ones reversed (or reduced by a pending adjustment for part of a line), settled ones
/// clawed back with a negative `ADJUSTMENT` — each refund taking
/// `floor(A × refunded_after / q) − floor(A × refunded_before / q)` of an earning A, so the
/// parts add up to exactly A and never more. The order becomes `REFUNDED` when every unit of
/// every line is. The units come off `sold` once the refund commits.
pub async fn refund_line(
    db: &DatabaseConnection,
    events: &Events,
    sold: &UnitsSold,
    line_id: Uuid,
    quantity: Option<i32>,
    now: DateTime<Utc>,
) -> Result<order::Model> {
    let refund = Refund {
        line_id,
        quantity,
        key: None,
        actor: None,
    };
    refund_line_as(db, events, sold, refund, now).await
}

/// A refund as staff ask for it.
pub struct Refund<'a> {
    pub line_id: Uuid,
    /// Units to refund (`None`: every unit not yet refunded).
    pub quantity: Option<i32>,
    /// The client's idempotency key: a retry with the same line and quantity returns the
    /// order as the first refund left it and refunds nothing more; another line or quantity
    /// under the same key is `IDEMPOTENCY_CONFLICT`.
    pub key: Option<&'a str>,
    /// Who refunds, for the audit log (`None`: the command line, tests).
    pub actor: Option<&'a Actor>,
}

/// [`refund_line`] with an idempotency key and an audit entry, both written in the
/// refund's transaction: of concurrent retries with one key, one refunds and the others wait
/// for it (the key's unique index) and return its order.
pub async fn refund_line_as(
    db: &DatabaseConnection,
    events: &Events,
    sold: &UnitsSold,
    refund: Refund<'_>,
    now: DateTime<Utc>,
) -> Result<order::Model> {
    let Refund {
        line_id,
        quantity,
        key,
        actor,
    } = refund;
    let key = key.map(idempotency_key_text).transpose()?;
    let request = format!(
        "{line_id}*{}",
        quantity.map_or_else(|| "all".to_owned(), |q| q.to_string())
    );
    // The owner of a key: the staff member, or nobody in particular off the API.
    let owner = actor.map(|a| a.member);
    if let (Some(key), Some(owner)) = (key, owner)
        && let Some(id) = replay(db, owner, REFUND_ORDER_LINE, key, &request).await?
    {
        return get(db, id).await;
    }
    let txn = crate::db::begin_write(db).await?;
    let line = order_line::Entity::find_by_id(line_id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("order line"))?;
    if let (Some(key), Some(owner)) = (key, owner) {
        let row = idempotency_key::Model {
            id: Uuid::now_v7(),
            owner_id: owner,
            scope: REFUND_ORDER_LINE.to_owned(),
            key: key.to_owned(),
            request: request.clone(),
            result_id: line.order_id,
            created_at: now,
        };
        let inserted = idempotency_key::Entity::insert(idempotency_key::ActiveModel::from(row))
            .exec_without_returning(&txn)
            .await;
        match inserted {
            Ok(_) => {}
            // A twin committed first (this insert waited for it): its outcome is ours.
            Err(e) if crate::db::is_unique_violation(&e) => {
                drop(txn);
                let id = replay(db, owner, REFUND_ORDER_LINE, key, &request)
                    .await?
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("idempotency key vanished")))?;
                return get(db, id).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let left = line.quantity - line.refunded_quantity;
    if left == 0 {
        return Err(Error::rule(
            "ALREADY_REFUNDED",
            "this line was refunded already",
        ));
    }
    let units = quantity.unwrap_or(left);
    if units < 1 || units > left {
        return Err(Error::validation(
            "quantity",
            format!("must be 1 to {left} (the units not yet refunded)"),
        ));
    }
    // The order's row first, as a payment, a completion or an expiry takes it: the refund
    // then waits for them (or they for it) before either holds anything the other needs.
    let o = order::Entity::find_by_id(line.order_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("order"))?;
    if !matches!(
        o.status,
        order::Status::Paid | order::Status::Shipped | order::Status::Completed
    ) {
        return Err(Error::rule(
            "ORDER_NOT_REFUNDABLE",
            "only a paid, shipped or completed order can be refunded",
        ));
    }
    let after = line.refunded_quantity + units;
    // Conditional on the count read above: two concurrent refunds cannot both take the
    // same units.
    let marked = order_line::Entity::update_many()
        .col_expr(order_line::Column::RefundedQuantity, Expr::value(after))
        .col_expr(
            order_line::Column::RefundedAt,
            Expr::value(if after == line.quantity {
                Some(now)
            } else {
                None
            }),
        )
        .filter(order_line::Column::Id.eq(line_id))
        .filter(order_line::Column::RefundedQuantity.eq(line.refunded_quantity))
        .exec(&txn)
        .await?;
    if marked.rows_affected == 0 {
        return Err(Error::rule(
            "REFUND_CONFLICT",
            "the line was refunded concurrently; reload it",
        ));
    }
    let reversed = reverse_units(&txn, &o, &line, units, now).await?;
    if let Some(actor) = actor {
        audit::record(
            &txn,
            actor,
            Action::OrderLineRefunded,
            Some((TargetType::OrderLine, line.id)),
            serde_json::json!({
                "quantity": units,
                "idempotencyKey": key,
            }),
            now,
        )
        .await?;
    }
    let o = get(&txn, o.id).await?;
    txn.commit().await?;
    sold.add(line.product_id, -i64::from(units));
    let status_changed = reversed.status_changed;
    let mut batch = reversed.events(&o, line.product_id);
    if status_changed {
        batch.push(Event::new(o.buyer_id, Kind::OrderChanged, o.id));
    }
    events.publish(batch).await;
    Ok(o)
}

/// What [`reverse_units`] changed, for the events after the commit.
pub(crate) struct Reversed {
    /// The earnings reversed or adjusted.
    changed: Vec<entity::earning::Model>,
    /// The members whose team sales moved.
    team: Vec<Uuid>,
    /// Whether the order's status changed (every line refunded, or its last unshipped
    /// line refunded).
    pub(crate) status_changed: bool,
}

impl Reversed {
    /// The events of a reversal of a line of product `product` of `o` (the order's own
    /// `OrderChanged` is the caller's).
    pub(crate) fn events(self, o: &order::Model, product: Uuid) -> Vec<Event> {
        let mut batch = earnings::events_of(&self.changed);
        batch.extend(Event::changed(self.team, o.id));
        // The units' stock came back.
        batch.push(Event::catalog(Some(product)));
        batch
    }
}

/// Reverses `units` of `line` of `o` once the line says they are refunded (its
/// `refunded_quantity` already moved from `line.refunded_quantity`; the order's row locked):
/// the stock returns, the earnings are reversed or clawed back in proportion, the team sales
/// of the month of payment go down, and the order becomes `REFUNDED` when every line is (or
/// `SHIPPED` when its last unshipped line went). Shared by the immediate refund and a
/// provider's confirmed one ([`super::refunds`]). Call in the refund's transaction.
pub(crate) async fn reverse_units(
    txn: &impl ConnectionTrait,
    o: &order::Model,
    line: &order_line::Model,
    units: i32,
    now: DateTime<Utc>,
) -> Result<Reversed> {
    let after = line.refunded_quantity + units;
    restock(txn, [(line.sku_id, units)]).await?;
    let mut writes = Writes::default();
    let changed =
        earnings::claw_back_line(txn, &mut writes, line, line.refunded_quantity, after, now)
            .await?;
    // Team sales are counted in the month of payment, so the refund comes off that month:
    // the units' part of what was paid for the line (after its coupon share).
    let refunded_fen = paid_portion(line, line.refunded_quantity, after);
    let mut team = Vec::new();
    let paid_at = o.paid_at.unwrap_or(now);
    hierarchy::add_team_sales(txn, o.buyer_id, -refunded_fen, paid_at, &mut team).await?;
    // The ledger's rows, then the months and the balances in key order, as a payment ends.
    writes.run(txn).await?;
    let open = order_line::Entity::find()
        .filter(order_line::Column::OrderId.eq(o.id))
        .filter(order_line::Column::RefundedAt.is_null())
        .count(txn)
        .await?;
    if open == 0 {
        order::Entity::update_many()
            .col_expr(order::Column::Status, Expr::value(order::Status::Refunded))
            .filter(order::Column::Id.eq(o.id))
            .exec(txn)
            .await?;
    }
    // Every line the coupon took money off fully refunded: the coupon goes back.
    let coupon_back = match o.coupon_id {
        Some(c) if after == line.quantity && line.coupon_share.fen() > 0 => {
            super::coupons::release_if_refunded(txn, c, o.id).await?
        }
        _ => false,
    };
    // Its last unshipped line refunded, a partly shipped order has shipped.
    let shipped = open > 0 && ship_if_complete(txn, o).await?;
    super::webhooks::record(
        txn,
        "refund.completed",
        serde_json::json!({
            "refund": {
                "orderId": super::webhooks::node_id("Order", o.id),
                "orderLineId": super::webhooks::node_id("OrderLine", line.id),
                "quantity": units,
                "amount": super::webhooks::money(entity::Money::from_fen(refunded_fen)),
                "lineFullyRefunded": after == line.quantity,
                "orderFullyRefunded": open == 0,
                "refundedAt": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            }
        }),
        now,
    )
    .await?;
    Ok(Reversed {
        changed,
        team,
        status_changed: open == 0 || shipped || coupon_back,
    })
}

/// The part of `line`'s paid amount (after its coupon share) that units `before..after`
/// stand for: cumulative floors, so the parts of all its units add up to exactly what was
/// paid for the line, never more.
pub fn paid_portion(line: &order_line::Model, before: i32, after: i32) -> i64 {
    earnings::refund_portion(line.paid().fen(), line.quantity, before, after)
}

/// Whether `viewer` may see an order: its buyer and admins.
pub fn can_see(viewer: &Viewer, o: &order::Model) -> bool {
    viewer.is_or_admin(o.buyer_id)
}

/// An order `viewer` may see, or `NOT_FOUND` (as for an order that does not exist).
pub async fn visible(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> Result<order::Model> {
    match get(db, id).await {
        Ok(o) if can_see(viewer, &o) => Ok(o),
        _ => Err(Error::not_found("order")),
    }
}

/// An order line whose order `viewer` may see, or `NOT_FOUND`.
pub async fn visible_line(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: Uuid,
) -> Result<order_line::Model> {
    let line = order_line::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("order line"))?;
    visible(db, viewer, line.order_id)
        .await
        .map_err(|_| Error::not_found("order line"))?;
    Ok(line)
}

/// `buyer`'s order `id`, or `NOT_FOUND` (also for anyone else's: a subscription follows its
/// own orders only).
pub async fn of_buyer(db: &impl ConnectionTrait, buyer: Uuid, id: Uuid) -> Result<order::Model> {
    match get(db, id).await {
        Ok(o) if o.buyer_id == buyer => Ok(o),
        _ => Err(Error::not_found("order")),
    }
}

/// Position after the last order of a page: newest first.
pub type OrderCursor = super::page::NewestCursor;

/// A buyer's orders (in `status` if given), newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    buyer: Uuid,
    status: Option<order::Status>,
    after: Option<&OrderCursor>,
    first: u64,
) -> Result<super::page::Page<order::Model>> {
    let mut q = order::Entity::find().filter(order::Column::BuyerId.eq(buyer));
    if let Some(status) = status {
        q = q.filter(order::Column::Status.eq(status));
    }
    super::page::newest_first(
        db,
        q,
        order::Column::CreatedAt,
        order::Column::Id,
        after,
        first,
    )
    .await
}
