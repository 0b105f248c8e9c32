//! Fulfilment: the parcels a paid order ships in (carrier, tracking number, the lines each
//! covers), the buyer's cancellation of an unpaid order, and the order lists (a member's own
//! and the admins').
//!
//! # Shipping in parcels
//! [`ship`] records one or more parcels. A parcel names its lines, or a merchant (the
//! merchant's lines not yet shipped). A line is in at most one parcel: the database enforces
//! it (a unique index on `shipment_lines.order_line_id`), and the order's row is locked first,
//! so that of concurrent calls shipping the same lines one wins and the others are told
//! `LINE_ALREADY_SHIPPED`. The order stays `PAID` while some of its lines wait (the API shows
//! `PARTIALLY_SHIPPED` beside the status) and becomes `SHIPPED` when every line not refunded is
//! in a parcel; `shipped_at` is then the moment the last parcel left, from which
//! auto-completion counts. A refund of the last unshipped line of a partly shipped order
//! completes it the same way (`orders::refund_line_as`). Receipt and settlement are unchanged:
//! they only ever see `SHIPPED` orders.
//!
//! # Cancelling
//! [`cancel`] is the buyer's: an order still awaiting payment is cancelled and its stock
//! returned at once, by the same conditional transition an expiry makes
//! (`orders::cancel_pending`): of a cancellation, a payment and an expiry racing for one order,
//! exactly one changes it, and the stock comes back at most once.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{member, order, order_cancellation, order_line, product, shipment, shipment_line};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use super::auth::Viewer;
use super::page::Page;
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, Events, Kind};

pub use entity::shipment::Carrier;

/// Parcels in one `shipOrder` call.
pub const MAX_PARCELS: usize = 20;
/// Characters of a tracking number.
pub const TRACKING_NUMBER_LEN: std::ops::RangeInclusive<usize> = 6..=32;
/// Characters of a cancellation's reason.
pub const MAX_REASON_CHARS: usize = 200;

/// A parcel as staff describe it: exactly one of `merchant` and `lines`; a carrier and a
/// tracking number together (both `None`: a parcel without tracking, as the call without
/// parcels ships).
#[derive(Clone, Debug, Default)]
pub struct ParcelRequest {
    /// The merchant whose lines not yet shipped the parcel covers.
    pub merchant: Option<Uuid>,
    /// Exactly these lines of the order.
    pub lines: Option<Vec<Uuid>>,
    pub carrier: Option<Carrier>,
    pub tracking_number: Option<String>,
}

/// Who ships: staff (for the audit log) and, for a merchant's staff, the merchant whose lines
/// alone it may ship (`None`: an admin, or the command line).
#[derive(Clone, Copy, Debug, Default)]
pub struct Shipper<'a> {
    pub actor: Option<&'a Actor>,
    pub merchant: Option<Uuid>,
}

/// A parcel with the lines it covers (in id order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shipment {
    pub row: shipment::Model,
    pub lines: Vec<order_line::Model>,
}

/// How much of an order has shipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fulfilment {
    Unshipped,
    PartiallyShipped,
    Shipped,
}

/// Where an order's fulfilment stands: shipped once it became `SHIPPED` (every line not
/// refunded in a parcel), partly while some parcels left and lines wait, else unshipped.
pub fn fulfilment(o: &order::Model, shipments: &[Shipment]) -> Fulfilment {
    if o.shipped_at.is_some() {
        Fulfilment::Shipped
    } else if shipments.is_empty() {
        Fulfilment::Unshipped
    } else {
        Fulfilment::PartiallyShipped
    }
}

/// A tracking number as stored: trimmed, upper case; `TRACKING_NUMBER_LEN` characters of
/// ASCII letters, digits and `-` (what the carriers' numbers are made of, e.g.
/// `SF1234567890123`, `JDVA01234567890`, `EA123456789CN`).
pub fn tracking_number(field: String, raw: &str) -> Result<String> {
    let t = raw.trim().to_ascii_uppercase();
    if !TRACKING_NUMBER_LEN.contains(&t.chars().count()) {
        return Err(Error::validation(
            field,
            format!(
                "must be {} to {} characters",
                TRACKING_NUMBER_LEN.start(),
                TRACKING_NUMBER_LEN.end()
            ),
        ));
    }
    if !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Error::validation(
            field,
            "may hold only letters, digits and '-'",
        ));
    }
    Ok(t)
}

/// Checks the parcels' shapes (every bad field at once, with those `errors` already holds);
/// returns their tracking numbers as stored.
fn check_parcels(
    mut errors: FieldErrors,
    parcels: Option<&[ParcelRequest]>,
) -> Result<Vec<Option<String>>> {
    let Some(parcels) = parcels else {
        errors.finish()?;
        return Ok(Vec::new());
    };
    if parcels.is_empty() {
        errors.push(
            "parcels",
            "give at least one parcel (or omit parcels to ship every line)",
        );
    }
    if parcels.len() > MAX_PARCELS {
        errors.push("parcels", format!("at most {MAX_PARCELS} parcels at once"));
    }
    let mut lines_seen: HashMap<Uuid, usize> = HashMap::new();
    let mut merchants_seen: HashMap<Uuid, usize> = HashMap::new();
    let mut numbers_seen: HashMap<(Carrier, String), usize> = HashMap::new();
    let mut numbers = Vec::with_capacity(parcels.len());
    for (i, p) in parcels.iter().enumerate() {
        match (&p.merchant, &p.lines) {
            (Some(_), Some(_)) | (None, None) => errors.push(
                format!("parcels[{i}]"),
                "give exactly one of merchantId and lineIds",
            ),
            (Some(m), None) => {
                if let Some(k) = merchants_seen.insert(*m, i) {
                    errors.push(
                        format!("parcels[{i}].merchantId"),
                        format!("the merchant is named by parcels[{k}] already"),
                    );
                }
            }
            (None, Some(lines)) => {
                if lines.is_empty() {
                    errors.push(format!("parcels[{i}].lineIds"), "name at least one line");
                }
                for l in lines {
                    if let Some(k) = lines_seen.insert(*l, i) {
                        errors.push(
                            format!("parcels[{i}].lineIds"),
                            if k == i {
                                "a line is named twice".to_owned()
                            } else {
                                format!("a line is in parcels[{k}] too")
                            },
                        );
                    }
                }
            }
        }
        let number = match (&p.carrier, &p.tracking_number) {
            (None, None) => None,
            (Some(carrier), Some(raw)) => errors
                .check(tracking_number(format!("parcels[{i}].trackingNumber"), raw))
                .inspect(|t| {
                    if let Some(k) = numbers_seen.insert((*carrier, t.clone()), i) {
                        errors.push(
                            format!("parcels[{i}].trackingNumber"),
                            format!("parcels[{k}] has the same tracking number"),
                        );
                    }
                }),
            (None, Some(_)) => {
                errors.push(
                    format!("parcels[{i}].carrier"),
                    "give the carrier with a tracking number",
                );
                None
            }
            (Some(_), None) => {
                errors.push(
                    format!("parcels[{i}].trackingNumber"),
                    "give the tracking number with a carrier",
                );
                None
            }
        };
        numbers.push(number);
    }
    errors.finish()?;
    Ok(numbers)
}

/// Ships parcels of a paid order (staff). `parcels: None` ships every line not yet shipped,
/// one parcel per merchant, without tracking (the call from before parcels); for a merchant's
/// staff, its own lines only. `errors`: what the caller found wrong in the same input already
/// (malformed IDs), reported with the rest.
///
/// `VALIDATION` for the parcels' shapes (every bad field at once); `NOT_FOUND` for an order
/// that does not exist (or has no line of the shipper's merchant); `ORDER_NOT_SHIPPABLE`
/// unless the order is `PAID`; `FORBIDDEN` for another merchant's lines; `LINE_NOT_IN_ORDER`,
/// `LINE_REFUNDED`, `LINE_ALREADY_SHIPPED` and `NOTHING_TO_SHIP` (a merchant with no line
/// left to ship) name every parcel concerned. The audit entry is written in the shipment's
/// transaction; the buyer's `orderStatusChanged` hears every call that shipped something.
pub async fn ship(
    db: &DatabaseConnection,
    events: &Events,
    shipper: Shipper<'_>,
    order_id: Uuid,
    parcels: Option<Vec<ParcelRequest>>,
    errors: FieldErrors,
    now: DateTime<Utc>,
) -> Result<order::Model> {
    let numbers = check_parcels(errors, parcels.as_deref())?;
    let txn = crate::db::begin_write(db).await?;
    // The order's row first (the service's lock order): concurrent shipments of one order,
    // and a refund, take turns, so the last of them sees every parcel before it.
    let o = order::Entity::find_by_id(order_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("order"))?;
    let lines = super::orders::lines_of(&txn, &[order_id]).await?;
    let merchant_of = merchants_of(&txn, &lines).await?;
    if let Some(m) = shipper.merchant
        && !lines.iter().any(|l| merchant_of.get(&l.id) == Some(&m))
    {
        return Err(Error::not_found("order"));
    }
    if o.status != order::Status::Paid {
        return Err(Error::rule(
            "ORDER_NOT_SHIPPABLE",
            format!(
                "only a paid order with lines to ship can be shipped (it is {:?})",
                o.status
            ),
        ));
    }
    let shipped = super::orders::shipped_lines(&txn, lines.iter().map(|l| l.id)).await?;
    let open = |l: &&order_line::Model| l.refunded_at.is_none() && !shipped.contains(&l.id);
    let parcels = match parcels {
        Some(parcels) => parcels,
        None => {
            let merchants: std::collections::BTreeSet<Uuid> = lines
                .iter()
                .filter(open)
                .filter_map(|l| merchant_of.get(&l.id).copied())
                .filter(|m| shipper.merchant.is_none_or(|s| s == *m))
                .collect();
            merchants
                .into_iter()
                .map(|m| ParcelRequest {
                    merchant: Some(m),
                    ..ParcelRequest::default()
                })
                .collect()
        }
    };
    let by_id: HashMap<Uuid, &order_line::Model> = lines.iter().map(|l| (l.id, l)).collect();
    let mut problems = Problems::default();
    let mut claimed: HashSet<Uuid> = HashSet::new();
    let mut covers: Vec<Vec<Uuid>> = vec![Vec::new(); parcels.len()];
    // Named lines first; a merchant's parcel then takes what is left of its lines.
    for (i, p) in parcels.iter().enumerate() {
        let Some(ids) = &p.lines else { continue };
        for (j, id) in ids.iter().enumerate() {
            let at = format!("parcels[{i}].lineIds[{j}]");
            match by_id.get(id) {
                None => problems.not_in_order.push(at),
                Some(l)
                    if shipper
                        .merchant
                        .is_some_and(|m| merchant_of.get(&l.id) != Some(&m)) =>
                {
                    problems.forbidden.push(at)
                }
                Some(l) if l.refunded_at.is_some() => problems.refunded.push(at),
                Some(l) if shipped.contains(&l.id) => problems.shipped.push(at),
                Some(l) => {
                    claimed.insert(l.id);
                    covers[i].push(l.id);
                }
            }
        }
    }
    for (i, p) in parcels.iter().enumerate() {
        let Some(m) = p.merchant else { continue };
        if shipper.merchant.is_some_and(|s| s != m) {
            problems.forbidden.push(format!("parcels[{i}].merchantId"));
            continue;
        }
        covers[i] = lines
            .iter()
            .filter(open)
            .filter(|l| merchant_of.get(&l.id) == Some(&m) && !claimed.contains(&l.id))
            .map(|l| l.id)
            .collect();
        if covers[i].is_empty() {
            problems.nothing.push(format!("parcels[{i}].merchantId"));
        }
    }
    problems.finish()?;
    if covers.iter().all(Vec::is_empty) {
        return Err(Error::rule("NOTHING_TO_SHIP", "every line has shipped"));
    }
    let mut rows = Vec::new();
    let mut links = Vec::new();
    let mut audited = Vec::new();
    for (i, (p, covered)) in parcels.iter().zip(&covers).enumerate() {
        let row = shipment::Model {
            id: Uuid::now_v7(),
            order_id,
            carrier: p.carrier,
            tracking_number: numbers.get(i).cloned().flatten(),
            shipped_at: now,
            shipped_by: shipper.actor.map(|a| a.member),
        };
        audited.push(serde_json::json!({
            "carrier": row.carrier.map(|c| c.to_value()),
            "trackingNumber": row.tracking_number,
            "lines": covered,
        }));
        links.extend(covered.iter().map(|line| shipment_line::Model {
            shipment_id: row.id,
            order_line_id: *line,
        }));
        rows.push(row);
    }
    shipment::Entity::insert_many(rows.into_iter().map(shipment::ActiveModel::from))
        .exec_without_returning(&txn)
        .await?;
    shipment_line::Entity::insert_many(links.into_iter().map(shipment_line::ActiveModel::from))
        .exec_without_returning(&txn)
        .await
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                Error::rule(
                    "LINE_ALREADY_SHIPPED",
                    "a line was shipped concurrently; reload the order",
                )
            } else {
                e.into()
            }
        })?;
    let left = lines
        .iter()
        .filter(open)
        .filter(|l| !covers.iter().any(|c| c.contains(&l.id)))
        .count();
    if left == 0 {
        super::orders::mark_shipped(&txn, order_id, now).await?;
    }
    if let Some(actor) = shipper.actor {
        audit::record(
            &txn,
            actor,
            Action::OrderShipped,
            Some((TargetType::Order, order_id)),
            serde_json::json!({ "parcels": audited, "complete": left == 0 }),
            now,
        )
        .await?;
    }
    let o = super::orders::get(&txn, order_id).await?;
    txn.commit().await?;
    events
        .publish(vec![Event::new(o.buyer_id, Kind::OrderChanged, o.id)])
        .await;
    Ok(o)
}

/// Ships every line of a paid order not yet shipped, one parcel per merchant without
/// tracking (the command line, tests).
pub async fn ship_all(
    db: &DatabaseConnection,
    events: &Events,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<order::Model> {
    ship(
        db,
        events,
        Shipper::default(),
        id,
        None,
        FieldErrors::default(),
        now,
    )
    .await
}

/// The rule errors of a shipment, each naming every parcel field concerned; reported in this
/// order of precedence.
#[derive(Default)]
struct Problems {
    forbidden: Vec<String>,
    not_in_order: Vec<String>,
    refunded: Vec<String>,
    shipped: Vec<String>,
    nothing: Vec<String>,
}

impl Problems {
    fn finish(self) -> Result<()> {
        if !self.forbidden.is_empty() {
            return Err(Error::Forbidden(
                format!("another merchant's lines: {}", self.forbidden.join(", ")).into(),
            ));
        }
        let rules = [
            (
                "LINE_NOT_IN_ORDER",
                "not a line of this order",
                self.not_in_order,
            ),
            ("LINE_REFUNDED", "refunded, not to ship", self.refunded),
            ("LINE_ALREADY_SHIPPED", "shipped already", self.shipped),
            (
                "NOTHING_TO_SHIP",
                "the merchant has no line left to ship in this order",
                self.nothing,
            ),
        ];
        for (code, what, fields) in rules {
            if !fields.is_empty() {
                return Err(Error::rule(code, format!("{what}: {}", fields.join(", "))));
            }
        }
        Ok(())
    }
}

/// The merchant of each line (by its product).
async fn merchants_of(
    db: &impl ConnectionTrait,
    lines: &[order_line::Model],
) -> Result<HashMap<Uuid, Uuid>> {
    let products: HashMap<Uuid, Uuid> = product::Entity::find()
        .select_only()
        .columns([product::Column::Id, product::Column::MerchantId])
        .filter(super::one_of(
            db,
            product::Column::Id,
            lines.iter().map(|l| l.product_id),
        ))
        .into_tuple::<(Uuid, Uuid)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(lines
        .iter()
        .filter_map(|l| Some((l.id, *products.get(&l.product_id)?)))
        .collect())
}

/// The buyer cancels its unpaid order: the order becomes `CANCELLED` and its stock returns at
/// once (published as a catalog change once committed). Idempotent: an order already
/// cancelled (by this call's twin, or by its expiry) is answered unchanged. Another member's
/// order is `NOT_FOUND`; a paid one `ORDER_NOT_CANCELLABLE`; `reason` (optional) is at most
/// [`MAX_REASON_CHARS`] characters with nothing that hides text (`VALIDATION`).
pub async fn cancel(
    db: &DatabaseConnection,
    events: &Events,
    buyer: &member::Model,
    id: Uuid,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<order::Model> {
    let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(super::text::name("reason", r, MAX_REASON_CHARS)?),
        None => None,
    };
    let o = super::orders::of_buyer(db, buyer.id, id).await?;
    if o.status == order::Status::Cancelled {
        return Ok(o);
    }
    let txn = crate::db::begin_write(db).await?;
    let Some(products) = super::orders::cancel_pending(&txn, id, now).await? else {
        drop(txn);
        // Paid, or cancelled meanwhile (by a twin or by its expiry).
        let o = super::orders::get(db, id).await?;
        if o.status == order::Status::Cancelled {
            return Ok(o);
        }
        return Err(Error::rule(
            "ORDER_NOT_CANCELLABLE",
            "only an order awaiting payment can be cancelled",
        ));
    };
    order_cancellation::Entity::insert(order_cancellation::ActiveModel::from(
        order_cancellation::Model {
            order_id: id,
            reason,
            cancelled_by: buyer.id,
            created_at: now,
        },
    ))
    .exec_without_returning(&txn)
    .await?;
    let o = super::orders::get(&txn, id).await?;
    txn.commit().await?;
    let mut batch = vec![Event::new(o.buyer_id, Kind::OrderChanged, id)];
    batch.extend(Event::catalog_of(products));
    events.publish(batch).await;
    Ok(o)
}

/// The admins' filter of the order list.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrderFilter {
    pub status: Option<order::Status>,
    pub buyer: Option<Uuid>,
    /// Placed at or after.
    pub placed_from: Option<DateTime<Utc>>,
    /// Placed before.
    pub placed_to: Option<DateTime<Utc>>,
}

impl OrderFilter {
    /// The orders it admits; `placedFrom` after `placedTo` is `VALIDATION`.
    fn query(self) -> Result<sea_orm::Select<order::Entity>> {
        if let (Some(from), Some(to)) = (self.placed_from, self.placed_to)
            && from > to
        {
            return Err(Error::validation(
                "placedFrom",
                "must not be after placedTo",
            ));
        }
        let mut q = order::Entity::find();
        if let Some(status) = self.status {
            q = q.filter(order::Column::Status.eq(status));
        }
        if let Some(buyer) = self.buyer {
            q = q.filter(order::Column::BuyerId.eq(buyer));
        }
        if let Some(from) = self.placed_from {
            q = q.filter(order::Column::CreatedAt.gte(from));
        }
        if let Some(to) = self.placed_to {
            q = q.filter(order::Column::CreatedAt.lt(to));
        }
        Ok(q)
    }
}

/// Every member's orders matching `filter`, newest first (admins). `placedFrom` after
/// `placedTo` is `VALIDATION`.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: OrderFilter,
    after: Option<&super::orders::OrderCursor>,
    first: u64,
) -> Result<Page<order::Model>> {
    super::page::newest_first(
        db,
        filter.query()?,
        order::Column::CreatedAt,
        order::Column::Id,
        after,
        first,
    )
    .await
}

/// How many orders `filter` admits, when `wanted` (`totalCount`).
pub async fn total(
    db: &impl ConnectionTrait,
    filter: OrderFilter,
    wanted: bool,
) -> Result<Option<u64>> {
    super::page::total(db, filter.query()?, wanted).await
}

/// The lines of each of `order_ids`, in id order (a loader's batch).
pub async fn lines_by_order_ids(
    db: &impl ConnectionTrait,
    order_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<order_line::Model>>> {
    let mut out: HashMap<Uuid, Vec<order_line::Model>> =
        order_ids.iter().map(|id| (*id, Vec::new())).collect();
    for l in super::orders::lines_of(db, order_ids).await? {
        out.entry(l.order_id).or_default().push(l);
    }
    Ok(out)
}

/// The parcels of each of `order_ids`, in the order they shipped, with their lines (a
/// loader's batch: three statements whatever the number of orders — the parcels, the lines
/// they cover, and those lines' rows, so that a parcel's lines need no second batch).
pub async fn shipments_by_order_ids(
    db: &impl ConnectionTrait,
    order_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Shipment>>> {
    let rows = shipment::Entity::find()
        .filter(super::one_of(
            db,
            shipment::Column::OrderId,
            order_ids.iter().copied(),
        ))
        .order_by_asc(shipment::Column::ShippedAt)
        .order_by_asc(shipment::Column::Id)
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<Shipment>> =
        order_ids.iter().map(|id| (*id, Vec::new())).collect();
    for s in with_lines(db, rows).await? {
        out.entry(s.row.order_id).or_default().push(s);
    }
    Ok(out)
}

/// Parcels with the rows of the lines each covers (in id order), in two statements.
async fn with_lines(
    db: &impl ConnectionTrait,
    rows: Vec<shipment::Model>,
) -> Result<Vec<Shipment>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let links = shipment_line::Entity::find()
        .filter(super::one_of(
            db,
            shipment_line::Column::ShipmentId,
            rows.iter().map(|r| r.id),
        ))
        .all(db)
        .await?;
    let mut lines: HashMap<Uuid, order_line::Model> = order_line::Entity::find()
        .filter(super::one_of(
            db,
            order_line::Column::Id,
            links.iter().map(|l| l.order_line_id),
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    let mut of: BTreeMap<Uuid, Vec<order_line::Model>> = BTreeMap::new();
    for link in links {
        if let Some(line) = lines.remove(&link.order_line_id) {
            of.entry(link.shipment_id).or_default().push(line);
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut lines = of.remove(&row.id).unwrap_or_default();
            lines.sort_unstable_by_key(|l| l.id);
            Shipment { row, lines }
        })
        .collect())
}

/// The buyer's cancellation of each of `order_ids` that has one (a loader's batch).
pub async fn cancellations_by_order_ids(
    db: &impl ConnectionTrait,
    order_ids: &[Uuid],
) -> Result<Vec<(Uuid, order_cancellation::Model)>> {
    Ok(order_cancellation::Entity::find()
        .filter(super::one_of(
            db,
            order_cancellation::Column::OrderId,
            order_ids.iter().copied(),
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.order_id, c))
        .collect())
}

/// A parcel whose order `viewer` may see (its buyer, admins), or `NOT_FOUND`.
pub async fn visible_shipment(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: Uuid,
) -> Result<Shipment> {
    let row = shipment::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("shipment"))?;
    super::orders::visible(db, viewer, row.order_id)
        .await
        .map_err(|_| Error::not_found("shipment"))?;
    with_lines(db, vec![row])
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("shipment"))
}
