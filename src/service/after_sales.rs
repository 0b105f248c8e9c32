//! After-sales (售后): a buyer asks for units of a received line to be refunded
//! (`REFUND_ONLY`) or returned and refunded (`RETURN_AND_REFUND`); an admin reviews it; a
//! return is shipped back by the buyer and received by staff; the refund then runs as any
//! refund does — through the provider the order was paid with (`REFUNDING` until it
//! confirms, [`super::refunds`]), or at once for an order paid by hand.
//!
//! ```text
//! REQUESTED ─approve (refund only)──────────────────────────▶ REFUNDING ─▶ REFUNDED
//!     │      └approve (return)─▶ APPROVED ─ship─▶ RETURN_SHIPPED ─receive─┘   (or at once)
//!     └reject─▶ REJECTED          └no shipment within 7 days (job)─▶ CLOSED
//! ```
//!
//! **The return window.** SPEC §2.4 makes `return_window_days` (default 7, the statutory
//! seven-day no-reason return window, 七天无理由退货) the time after completion — the buyer's
//! receipt, confirmed or automatic — before a line's earnings settle. A request is accepted
//! in that same window: from the order's completion until `completed_at +
//! return_window_days`. So a request can only come while the line's earnings would still be
//! pending, except when it races the settlement at the window's last moment (below). The
//! window does not grow while an after-sale is open: a second request after a rejection
//! still has to come within it.
//!
//! **Settlement waits.** While an after-sale is open, its line's pending earnings have no
//! `settle_after` (the request clears it, keeping the old value in `paused_settle_after`),
//! and the settlement only takes — and only moves, the condition being part of its update —
//! earnings due by a time. When it closes without a refund (rejected, or closed for want of
//! a return shipment) the window restarts: they settle `return_window_days` after the
//! closing. After a refund the earnings of the refunded units are reversed (pending) and
//! the line's other units' earnings resume their old deadline.
//!
//! A request racing the settlement: both take the earnings' rows (PostgreSQL: the update
//! re-checks its condition once the row is free; SQLite: one writer at a time). Either the
//! settlement went first — the earnings are settled, the request opens all the same, and
//! its refund claws them back with a negative `ADJUSTMENT`, as every refund after
//! settlement does — or the request went first and the settlement leaves them. Never both.
//!
//! **Invariants.** At most one open after-sale per line (a partial unique index; the
//! request also looks first, to answer `AFTER_SALE_OPEN`), for 1 to the line's units neither
//! refunded nor being refunded, read with the order's row locked; the refund itself moves the
//! line's counts conditionally, under the database's `refunded + refunding <= quantity`.
//! Every transition is a conditional update from the state it expects, after the order's row
//! is locked (the lock order of [`super`]): of an approval, a rejection and the auto-close
//! racing, exactly one moves it. The shipping fee is not refunded: the amount is what was
//! paid for the units (their part of the line's paid amount, after its coupon share), as
//! `refundOrderLine`'s.
//!
//! Every step is in the audit log (the buyer's steps with the buyer as actor, the auto-close
//! with none) in its own transaction, and publishes the order's `OrderChanged` (heard by
//! `orderStatusChanged`) after it commits.

use chrono::{DateTime, Duration, Utc};
use entity::{
    Money, after_sale, audit_entry, earning, idempotency_key, member, order, order_line, refund,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use super::orders;
use super::page::{NewestCursor, Page, newest_first};
use super::refunds::{self, Refunds};
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, Events, Kind};

pub use entity::after_sale::{Kind as AfterSaleKind, Status};

/// Days the buyer has to ship an approved return before the after-sale closes by itself.
pub const RETURN_SHIPMENT_DAYS: i64 = 7;
/// Characters of a reason or a review note.
pub const MAX_TEXT_CHARS: usize = 500;
/// Evidence URLs per request.
pub const MAX_EVIDENCE_URLS: usize = 9;
/// The idempotency keys' scope of `requestAfterSale`.
const REQUEST_AFTER_SALE: &str = "requestAfterSale";

/// A buyer's request as the API takes it.
#[derive(Clone, Debug)]
pub struct NewAfterSale {
    pub line_id: Uuid,
    pub quantity: i32,
    pub kind: AfterSaleKind,
    pub reason: String,
    pub evidence_urls: Vec<String>,
    /// A retry with the same key, line, units and kind returns the after-sale the first one
    /// opened; another request under the key is `IDEMPOTENCY_CONFLICT`.
    pub key: String,
}

/// An after-sale by id.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<after_sale::Model> {
    after_sale::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("after-sale"))
}

/// `buyer`'s after-sale `id`, or `NOT_FOUND` (also for anyone else's).
async fn of_buyer(db: &impl ConnectionTrait, buyer: Uuid, id: Uuid) -> Result<after_sale::Model> {
    match get(db, id).await {
        Ok(a) if a.buyer_id == buyer => Ok(a),
        _ => Err(Error::not_found("after-sale")),
    }
}

/// Checks a request's fields, every bad one at once; returns the trimmed reason, the key.
fn check(req: &NewAfterSale) -> Result<(String, String)> {
    let mut errors = FieldErrors::default();
    if req.quantity < 1 {
        errors.push("input.quantity", "must be at least 1");
    }
    let reason = errors.check(super::text::name(
        "input.reason",
        &req.reason,
        MAX_TEXT_CHARS,
    ));
    if req.evidence_urls.len() > MAX_EVIDENCE_URLS {
        errors.push(
            "input.evidenceUrls",
            format!("at most {MAX_EVIDENCE_URLS} URLs"),
        );
    }
    for (i, url) in req.evidence_urls.iter().enumerate() {
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() <= 2_000
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            errors.push(
                format!("input.evidenceUrls[{i}]"),
                "must be an http or https URL",
            );
        }
    }
    let key = req.key.trim();
    if key.is_empty() || key.len() > 128 || key.chars().any(char::is_control) {
        errors.push(
            "input.idempotencyKey",
            "must be 1 to 128 printable characters",
        );
    }
    errors.finish()?;
    Ok((reason.unwrap_or_default(), key.to_owned()))
}

/// Locks the order's row (first, as every write to an order takes it).
async fn lock_order(txn: &impl ConnectionTrait, id: Uuid) -> Result<order::Model> {
    order::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| Error::not_found("order"))
}

/// Pauses the line's pending earnings (they wait with no `settle_after`). Returns when they
/// were due (the earliest; `None` when none was pending) and their earners.
async fn pause(
    txn: &impl ConnectionTrait,
    line: Uuid,
) -> Result<(Option<DateTime<Utc>>, Vec<Uuid>)> {
    // Taken in id order, as the settlement takes a line's earnings.
    let pending = earning::Entity::find()
        .filter(earning::Column::OrderLineId.eq(line))
        .filter(earning::Column::Status.eq(earning::Status::Pending))
        .order_by_asc(earning::Column::Id)
        .lock_exclusive()
        .all(txn)
        .await?;
    if pending.is_empty() {
        return Ok((None, Vec::new()));
    }
    let due = pending.iter().filter_map(|e| e.settle_after).min();
    earning::Entity::update_many()
        .col_expr(
            earning::Column::SettleAfter,
            Expr::value(None::<DateTime<Utc>>),
        )
        .filter(earning::Column::OrderLineId.eq(line))
        .filter(earning::Column::Status.eq(earning::Status::Pending))
        .exec(txn)
        .await?;
    Ok((due, earners(pending)))
}

/// Lets the line's paused earnings settle from `at` again. Returns their earners.
async fn resume(txn: &impl ConnectionTrait, line: Uuid, at: DateTime<Utc>) -> Result<Vec<Uuid>> {
    let pending = earning::Entity::find()
        .filter(earning::Column::OrderLineId.eq(line))
        .filter(earning::Column::Status.eq(earning::Status::Pending))
        .filter(earning::Column::SettleAfter.is_null())
        .order_by_asc(earning::Column::Id)
        .all(txn)
        .await?;
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    earning::Entity::update_many()
        .col_expr(earning::Column::SettleAfter, Expr::value(at))
        .filter(earning::Column::OrderLineId.eq(line))
        .filter(earning::Column::Status.eq(earning::Status::Pending))
        .filter(earning::Column::SettleAfter.is_null())
        .exec(txn)
        .await?;
    Ok(earners(pending))
}

fn earners(rows: Vec<earning::Model>) -> Vec<Uuid> {
    let mut members: Vec<Uuid> = rows.into_iter().map(|e| e.member_id).collect();
    members.sort_unstable();
    members.dedup();
    members
}

/// What a key already opened: the after-sale, or `IDEMPOTENCY_CONFLICT`.
async fn replay(
    db: &impl ConnectionTrait,
    buyer: Uuid,
    key: &str,
    request: &str,
) -> Result<Option<after_sale::Model>> {
    match orders::replay(db, buyer, REQUEST_AFTER_SALE, key, request).await? {
        Some(id) => Ok(Some(get(db, id).await?)),
        None => Ok(None),
    }
}

fn open_already() -> Error {
    Error::rule(
        "AFTER_SALE_OPEN",
        "this line has an open after-sale already; wait for it to close",
    )
}

/// `requestAfterSale`: the buyer asks about units of a line of its completed order, within
/// the return window. `NOT_FOUND` for a line of another buyer's order.
pub async fn request(
    ctx: Refunds<'_>,
    buyer: &member::Model,
    actor: &Actor,
    req: NewAfterSale,
    return_window: Duration,
    now: DateTime<Utc>,
) -> Result<after_sale::Model> {
    let db = ctx.db;
    let (reason, key) = check(&req)?;
    let request = format!(
        "{}*{}*{}",
        req.line_id,
        req.quantity,
        sea_orm::ActiveEnum::to_value(&req.kind)
    );
    if let Some(a) = replay(db, buyer.id, &key, &request).await? {
        return Ok(a);
    }
    let line = order_line::Entity::find_by_id(req.line_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("order line"))?;
    if orders::get(db, line.order_id).await?.buyer_id != buyer.id {
        return Err(Error::not_found("order line"));
    }
    let id = Uuid::now_v7();
    let txn = crate::db::begin_write(db).await?;
    let row = idempotency_key::Model {
        id: Uuid::now_v7(),
        owner_id: buyer.id,
        scope: REQUEST_AFTER_SALE.to_owned(),
        key: key.clone(),
        request: request.clone(),
        result_id: id,
        created_at: now,
    };
    match idempotency_key::Entity::insert(idempotency_key::ActiveModel::from(row))
        .exec_without_returning(&txn)
        .await
    {
        Ok(_) => {}
        // A twin committed first (this insert waited for it): its outcome is ours.
        Err(e) if crate::db::is_unique_violation(&e) => {
            drop(txn);
            return replay(db, buyer.id, &key, &request)
                .await?
                .ok_or_else(|| Error::internal(anyhow::anyhow!("idempotency key vanished")));
        }
        Err(e) => return Err(e.into()),
    }
    let o = lock_order(&txn, line.order_id).await?;
    let Some(completed_at) = o
        .completed_at
        .filter(|_| o.status == order::Status::Completed)
    else {
        return Err(Error::rule(
            "AFTER_SALE_NOT_ALLOWED",
            "an after-sale can be requested once the order is received (COMPLETED)",
        ));
    };
    if now > completed_at + return_window {
        return Err(Error::rule(
            "AFTER_SALE_WINDOW_CLOSED",
            format!(
                "the return window ended {} days after receipt",
                return_window.num_days()
            ),
        ));
    }
    // Read again under the order's lock: refunds move the counts with it held.
    let line = order_line::Entity::find_by_id(line.id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("order line"))?;
    let left = line.quantity - line.refunded_quantity - line.refunding_quantity;
    if left == 0 {
        return Err(Error::rule(
            "ALREADY_REFUNDED",
            "every unit of this line is refunded or being refunded",
        ));
    }
    if req.quantity > left {
        return Err(Error::validation(
            "input.quantity",
            format!("must be 1 to {left} (the units neither refunded nor being refunded)"),
        ));
    }
    let open = after_sale::Entity::find()
        .filter(after_sale::Column::OrderLineId.eq(line.id))
        .filter(after_sale::Column::Status.is_in(Status::OPEN))
        .count(&txn)
        .await?;
    if open > 0 {
        return Err(open_already());
    }
    let (paused, earners) = pause(&txn, line.id).await?;
    let model = after_sale::Model {
        id,
        order_id: o.id,
        order_line_id: line.id,
        buyer_id: buyer.id,
        kind: req.kind,
        status: Status::Requested,
        quantity: req.quantity,
        // What the buyer paid for these units (after the line's coupon share), as a
        // provider refund of them asks for.
        amount: Money::from_fen(orders::paid_portion(
            &line,
            line.refunded_quantity + line.refunding_quantity,
            line.refunded_quantity + line.refunding_quantity + req.quantity,
        )),
        reason,
        evidence_urls: serde_json::to_string(&req.evidence_urls).map_err(Error::internal)?,
        review_note: None,
        reviewed_by: None,
        return_carrier: None,
        return_tracking_number: None,
        refund_id: None,
        paused_settle_after: paused,
        created_at: now,
        updated_at: now,
        reviewed_at: None,
        return_shipped_at: None,
        received_at: None,
        closed_at: None,
    };
    match after_sale::Entity::insert(after_sale::ActiveModel::from(model.clone()))
        .exec_without_returning(&txn)
        .await
    {
        Ok(_) => {}
        // Another request for the line committed meanwhile (the partial unique index).
        Err(e) if crate::db::is_unique_violation(&e) => return Err(open_already()),
        Err(e) => return Err(e.into()),
    }
    audit::record(
        &txn,
        actor,
        Action::AfterSaleRequested,
        Some((TargetType::OrderLine, line.id)),
        serde_json::json!({
            "afterSale": id,
            "kind": sea_orm::ActiveEnum::to_value(&req.kind),
            "quantity": req.quantity,
            "idempotencyKey": key,
        }),
        now,
    )
    .await?;
    super::webhooks::record_after_sale(&txn, &model).await?;
    txn.commit().await?;
    publish(ctx.events, &model, earners).await;
    Ok(model)
}

/// The order's `OrderChanged` (its after-sale moved) and, for the earners whose earnings'
/// settlement date moved, `Changed`.
async fn publish(events: &Events, a: &after_sale::Model, earners: Vec<Uuid>) {
    let mut batch = vec![Event::new(a.buyer_id, Kind::OrderChanged, a.order_id)];
    batch.extend(Event::changed(earners, a.order_id));
    events.publish(batch).await;
}

/// The error for an after-sale not in the state a step needs.
fn not_in(a: &after_sale::Model, step: &str) -> Error {
    Error::rule(
        "AFTER_SALE_STATE",
        format!(
            "the after-sale is {}: it cannot be {step}",
            sea_orm::ActiveEnum::to_value(&a.status)
        ),
    )
}

/// Moves an after-sale from `from` with `set` (a conditional update); `false` when it was
/// not in `from` any more.
async fn transition(
    txn: &impl ConnectionTrait,
    id: Uuid,
    from: Status,
    set: after_sale::ActiveModel,
) -> Result<bool> {
    let moved = after_sale::Entity::update_many()
        .set(set)
        .filter(after_sale::Column::Id.eq(id))
        .filter(after_sale::Column::Status.eq(from))
        .exec(txn)
        .await?;
    if moved.rows_affected != 1 {
        return Ok(false);
    }
    // Its `after_sale.*` webhook event, in the same transaction.
    super::webhooks::record_after_sale(txn, &get(txn, id).await?).await?;
    Ok(true)
}

/// `reviewAfterSale` (ADMIN): a rejection closes it (the line's earnings settle
/// `return_window` from now); an approved return waits for the buyer's shipment; an
/// approved refund-only request is refunded now.
#[allow(clippy::too_many_arguments)]
pub async fn review(
    ctx: Refunds<'_>,
    actor: &Actor,
    id: Uuid,
    approve: bool,
    note: Option<&str>,
    return_window: Duration,
    now: DateTime<Utc>,
) -> Result<after_sale::Model> {
    let note = note
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| super::text::name("note", n, MAX_TEXT_CHARS))
        .transpose()?;
    let a = get(ctx.db, id).await?;
    if a.status != Status::Requested {
        return Err(not_in(&a, "reviewed"));
    }
    let mut set = after_sale::ActiveModel {
        review_note: Set(note.clone()),
        reviewed_by: Set(Some(actor.member)),
        reviewed_at: Set(Some(now)),
        updated_at: Set(now),
        ..Default::default()
    };
    if approve && a.kind == AfterSaleKind::RefundOnly {
        return refund(
            ctx,
            &a,
            Status::Requested,
            set,
            actor,
            Action::AfterSaleApproved,
            now,
        )
        .await;
    }
    let txn = crate::db::begin_write(ctx.db).await?;
    lock_order(&txn, a.order_id).await?;
    let (to, action) = if approve {
        (Status::Approved, Action::AfterSaleApproved)
    } else {
        set.closed_at = Set(Some(now));
        (Status::Rejected, Action::AfterSaleRejected)
    };
    set.status = Set(to);
    if !transition(&txn, id, Status::Requested, set).await? {
        drop(txn);
        return Err(not_in(&get(ctx.db, id).await?, "reviewed"));
    }
    let earners = if approve {
        Vec::new()
    } else {
        resume(&txn, a.order_line_id, now + return_window).await?
    };
    audit::record(
        &txn,
        actor,
        action,
        Some((TargetType::OrderLine, a.order_line_id)),
        serde_json::json!({ "note": note, "afterSale": a.id }),
        now,
    )
    .await?;
    let a = get(&txn, id).await?;
    txn.commit().await?;
    publish(ctx.events, &a, earners).await;
    Ok(a)
}

/// `submitReturnShipment`: the buyer's parcel back, for an `APPROVED` return. Accepted until
/// the auto-close has closed it (of the two racing, one moves it).
pub async fn submit_return(
    ctx: Refunds<'_>,
    buyer: &member::Model,
    actor: &Actor,
    id: Uuid,
    carrier: entity::shipment::Carrier,
    tracking_number: &str,
    now: DateTime<Utc>,
) -> Result<after_sale::Model> {
    let number = super::fulfilment::tracking_number("trackingNumber".into(), tracking_number)?;
    let a = of_buyer(ctx.db, buyer.id, id).await?;
    if a.status != Status::Approved {
        return Err(not_in(&a, "shipped back"));
    }
    let txn = crate::db::begin_write(ctx.db).await?;
    lock_order(&txn, a.order_id).await?;
    let set = after_sale::ActiveModel {
        status: Set(Status::ReturnShipped),
        return_carrier: Set(Some(carrier)),
        return_tracking_number: Set(Some(number.clone())),
        return_shipped_at: Set(Some(now)),
        updated_at: Set(now),
        ..Default::default()
    };
    if !transition(&txn, id, Status::Approved, set).await? {
        drop(txn);
        return Err(not_in(&get(ctx.db, id).await?, "shipped back"));
    }
    audit::record(
        &txn,
        actor,
        Action::AfterSaleReturnShipped,
        Some((TargetType::OrderLine, a.order_line_id)),
        serde_json::json!({
            "afterSale": id,
            "carrier": sea_orm::ActiveEnum::to_value(&carrier),
            "trackingNumber": number,
        }),
        now,
    )
    .await?;
    let a = get(&txn, id).await?;
    txn.commit().await?;
    publish(ctx.events, &a, Vec::new()).await;
    Ok(a)
}

/// `receiveReturn` (staff): the returned units arrived; the refund runs.
pub async fn receive_return(
    ctx: Refunds<'_>,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<after_sale::Model> {
    let a = get(ctx.db, id).await?;
    if a.status != Status::ReturnShipped {
        return Err(not_in(&a, "received"));
    }
    let set = after_sale::ActiveModel {
        received_at: Set(Some(now)),
        updated_at: Set(now),
        ..Default::default()
    };
    refund(
        ctx,
        &a,
        Status::ReturnShipped,
        set,
        actor,
        Action::AfterSaleReturnReceived,
        now,
    )
    .await
}

/// Refunds an after-sale's units, moving it from `from` with `set` (plus the refund's own
/// columns) in the refund's transaction: an order paid through a provider gets a provider
/// refund (`REFUNDING` until it confirms, then [`refund_confirmed`]); one paid by hand is
/// refunded at once (`REFUNDED`).
async fn refund(
    ctx: Refunds<'_>,
    a: &after_sale::Model,
    from: Status,
    mut set: after_sale::ActiveModel,
    actor: &Actor,
    action: Action,
    now: DateTime<Utc>,
) -> Result<after_sale::Model> {
    let db = ctx.db;
    let o = orders::get(db, a.order_id).await?;
    let intent = refunds::paid_intent(db, &o).await?;
    let provider = intent
        .as_ref()
        .map(|i| refunds::provider_of(&ctx, &i.channel))
        .transpose()?;
    let refund_id = Uuid::now_v7();
    if provider.is_some() {
        set.status = Set(Status::Refunding);
    } else {
        set.status = Set(Status::Refunded);
        set.closed_at = Set(Some(now));
    }
    let txn = crate::db::begin_write(db).await?;
    let o = lock_order(&txn, a.order_id).await?;
    // The after-sale's move first: of concurrent steps, the losers learn it here.
    if !transition(&txn, a.id, from, set).await? {
        drop(txn);
        let step = if from == Status::Requested {
            "reviewed"
        } else {
            "received"
        };
        return Err(not_in(&get(db, a.id).await?, step));
    }
    if !matches!(
        o.status,
        order::Status::Paid | order::Status::Shipped | order::Status::Completed
    ) {
        return Err(Error::rule(
            "ORDER_NOT_REFUNDABLE",
            "only a paid, shipped or completed order can be refunded",
        ));
    }
    let line = order_line::Entity::find_by_id(a.order_line_id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("order line"))?;
    let left = line.quantity - line.refunded_quantity - line.refunding_quantity;
    if a.quantity > left {
        return Err(Error::rule(
            "REFUND_CONFLICT",
            format!(
                "only {left} of the line's units are left to refund (refunded meanwhile); \
                 reject this after-sale"
            ),
        ));
    }
    let refund_row = match (&intent, provider) {
        (Some(intent), Some(_)) => {
            let marked = order_line::Entity::update_many()
                .col_expr(
                    order_line::Column::RefundingQuantity,
                    Expr::value(line.refunding_quantity + a.quantity),
                )
                .filter(order_line::Column::Id.eq(line.id))
                .filter(order_line::Column::RefundedQuantity.eq(line.refunded_quantity))
                .filter(order_line::Column::RefundingQuantity.eq(line.refunding_quantity))
                .exec(&txn)
                .await?;
            if marked.rows_affected != 1 {
                return Err(Error::rule(
                    "REFUND_CONFLICT",
                    "the line was refunded concurrently; retry",
                ));
            }
            let id = refund_id;
            let row = refund::Model {
                id,
                order_id: o.id,
                order_line_id: line.id,
                intent_id: intent.id,
                channel: intent.channel.clone(),
                out_refund_no: crate::payments::out_refund_no(id),
                quantity: a.quantity,
                // The paid portion of these units as the line stands now (other refunds
                // may have come between the request and this step).
                amount: Money::from_fen(orders::paid_portion(
                    &line,
                    line.refunded_quantity + line.refunding_quantity,
                    line.refunded_quantity + line.refunding_quantity + a.quantity,
                )),
                status: refund::Status::Pending,
                failure_reason: None,
                provider_reference: None,
                attempts: 1,
                requested_by: Some(actor.member),
                created_at: now,
                updated_at: now,
                completed_at: None,
            };
            refund::Entity::insert(refund::ActiveModel::from(row.clone()))
                .exec_without_returning(&txn)
                .await?;
            after_sale::Entity::update_many()
                .col_expr(after_sale::Column::RefundId, Expr::value(id))
                .filter(after_sale::Column::Id.eq(a.id))
                .exec(&txn)
                .await?;
            Some(row)
        }
        _ => None,
    };
    let mut reversed = None;
    let mut earners = Vec::new();
    if refund_row.is_none() {
        // Paid by hand: refunded now, as `refundOrderLine` does.
        let after = line.refunded_quantity + a.quantity;
        let marked = order_line::Entity::update_many()
            .col_expr(order_line::Column::RefundedQuantity, Expr::value(after))
            .col_expr(
                order_line::Column::RefundedAt,
                Expr::value((after == line.quantity).then_some(now)),
            )
            .filter(order_line::Column::Id.eq(line.id))
            .filter(order_line::Column::RefundedQuantity.eq(line.refunded_quantity))
            .filter(order_line::Column::RefundingQuantity.eq(line.refunding_quantity))
            .exec(&txn)
            .await?;
        if marked.rows_affected != 1 {
            return Err(Error::rule(
                "REFUND_CONFLICT",
                "the line was refunded concurrently; retry",
            ));
        }
        reversed = Some(orders::reverse_units(&txn, &o, &line, a.quantity, now).await?);
        earners = resume_after_refund(&txn, a).await?;
    }
    audit::record(
        &txn,
        actor,
        action,
        Some((TargetType::OrderLine, a.order_line_id)),
        serde_json::json!({
            "afterSale": a.id,
            "quantity": a.quantity,
            "amount": a.amount.to_decimal().to_string(),
            "refund": refund_row.as_ref().map(|r| r.id),
            "channel": refund_row.as_ref().map(|r| r.channel.clone()),
        }),
        now,
    )
    .await?;
    let o = orders::get(&txn, o.id).await?;
    let done = get(&txn, a.id).await?;
    txn.commit().await?;
    if let Some(reversed) = reversed {
        ctx.sold.add(line.product_id, -i64::from(a.quantity));
        ctx.events
            .publish(reversed.events(&o, line.product_id))
            .await;
    }
    publish(ctx.events, &done, earners).await;
    if let (Some(row), Some(provider)) = (refund_row, provider) {
        // A provider's failure leaves the refund FAILED (retryable by staff), the after-sale
        // REFUNDING.
        refunds::submit(ctx, provider, &row, now).await?;
        return get(db, a.id).await;
    }
    Ok(done)
}

/// The line's earnings not refunded resume the deadline they had before the pause.
async fn resume_after_refund(
    txn: &impl ConnectionTrait,
    a: &after_sale::Model,
) -> Result<Vec<Uuid>> {
    match a.paused_settle_after {
        Some(at) => resume(txn, a.order_line_id, at).await,
        None => Ok(Vec::new()),
    }
}

/// Called by the provider refund's confirmation, in its transaction after the reversal:
/// the after-sale that started refund `refund_id` (if any) becomes `REFUNDED` and its line's
/// other earnings resume. Returns the earners whose settlement dates moved.
pub(crate) async fn refund_confirmed(
    txn: &impl ConnectionTrait,
    refund_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    let Some(a) = after_sale::Entity::find()
        .filter(after_sale::Column::RefundId.eq(refund_id))
        .filter(after_sale::Column::Status.eq(Status::Refunding))
        .one(txn)
        .await?
    else {
        return Ok(Vec::new());
    };
    let set = after_sale::ActiveModel {
        status: Set(Status::Refunded),
        closed_at: Set(Some(now)),
        updated_at: Set(now),
        ..Default::default()
    };
    if !transition(txn, a.id, Status::Refunding, set).await? {
        return Ok(Vec::new());
    }
    resume_after_refund(txn, &a).await
}

/// The auto-close job: closes every return approved more than [`RETURN_SHIPMENT_DAYS`]
/// ago that the buyer has not shipped; the line's earnings settle `return_window` from now.
/// Idempotent and safe with several instances (each closes by a conditional update).
/// Returns how many it closed.
pub async fn auto_close(
    db: &DatabaseConnection,
    events: &Events,
    return_window: Duration,
    now: DateTime<Utc>,
) -> Result<usize> {
    let due = after_sale::Entity::find()
        .filter(after_sale::Column::Status.eq(Status::Approved))
        .filter(after_sale::Column::ReviewedAt.lte(now - Duration::days(RETURN_SHIPMENT_DAYS)))
        .order_by_asc(after_sale::Column::Id)
        .limit(500)
        .all(db)
        .await?;
    let mut n = 0;
    for a in due {
        let txn = crate::db::begin_write(db).await?;
        lock_order(&txn, a.order_id).await?;
        let set = after_sale::ActiveModel {
            status: Set(Status::Closed),
            closed_at: Set(Some(now)),
            updated_at: Set(now),
            ..Default::default()
        };
        if !transition(&txn, a.id, Status::Approved, set).await? {
            continue;
        }
        let earners = resume(&txn, a.order_line_id, now + return_window).await?;
        audit_entry::Entity::insert(audit_entry::ActiveModel {
            id: Set(Uuid::now_v7()),
            actor_id: Set(None),
            action: Set(Action::AfterSaleClosed.as_str().to_owned()),
            target_type: Set(Some(TargetType::OrderLine.as_str().to_owned())),
            target_id: Set(Some(a.order_line_id)),
            arguments: Set(serde_json::json!({
                "reason": "no return shipment",
                "afterSale": a.id,
            })
            .to_string()),
            client_addr: Set(None),
            at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        let a = get(&txn, a.id).await?;
        txn.commit().await?;
        publish(events, &a, earners).await;
        n += 1;
    }
    Ok(n)
}

/// Which after-sales a list shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    /// Only this buyer's.
    pub buyer: Option<Uuid>,
    pub status: Option<Status>,
}

fn filtered(filter: Filter) -> Select<after_sale::Entity> {
    let mut q = after_sale::Entity::find();
    if let Some(buyer) = filter.buyer {
        q = q.filter(after_sale::Column::BuyerId.eq(buyer));
    }
    if let Some(status) = filter.status {
        q = q.filter(after_sale::Column::Status.eq(status));
    }
    q
}

/// After-sales newest first, narrowed by `filter`.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: Filter,
    after: Option<&NewestCursor>,
    first: u64,
) -> Result<Page<after_sale::Model>> {
    newest_first(
        db,
        filtered(filter),
        after_sale::Column::CreatedAt,
        after_sale::Column::Id,
        after,
        first,
    )
    .await
}

/// How many after-sales `filter` lets through.
pub async fn count(db: &impl ConnectionTrait, filter: Filter) -> Result<u64> {
    Ok(filtered(filter).count(db).await?)
}

/// The after-sales of an order line, oldest first.
pub async fn of_line(db: &impl ConnectionTrait, line: Uuid) -> Result<Vec<after_sale::Model>> {
    Ok(after_sale::Entity::find()
        .filter(after_sale::Column::OrderLineId.eq(line))
        .order_by_asc(after_sale::Column::Id)
        .all(db)
        .await?)
}

/// An after-sale `viewer` may see (its buyer's, and admins'), or `NOT_FOUND`.
pub async fn visible(
    db: &impl ConnectionTrait,
    viewer: &super::auth::Viewer,
    id: Uuid,
) -> Result<after_sale::Model> {
    match get(db, id).await {
        Ok(a) if viewer.is_or_admin(a.buyer_id) => Ok(a),
        _ => Err(Error::not_found("after-sale")),
    }
}
