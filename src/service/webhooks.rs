//! Webhooks (issue #31, item 5): admins register endpoints for the events an integration
//! wants; the server POSTs each event to each endpoint wanting it, signed, until it answers
//! 2xx or a day has passed.
//!
//! How an event travels:
//! 1. **Outbox.** The change writes the event's row ([`outbox`]) in its own transaction —
//!    pushed into its batch (a payment: one statement on PostgreSQL) or run in its
//!    transaction ([`record`]). The row is an `INSERT … SELECT … WHERE EXISTS` an enabled
//!    endpoint wanting the type, so a change no one listens to writes nothing, and the row
//!    exists exactly when the change committed: a crash never loses an event nor invents one.
//!    Its id is the event id receivers deduplicate by.
//! 2. **Dispatch.** A worker in every instance ([`Worker`]) marks undispatched events
//!    dispatched and makes one delivery per endpoint wanting them, in one transaction (the
//!    conditional `UPDATE … WHERE NOT dispatched` decides which instance does; the unique
//!    `(event_id, endpoint_id)` backs it).
//! 3. **Claim.** Due deliveries are claimed with one conditional `UPDATE … RETURNING` that
//!    sets a lease (`lease_until`, a token) only where no live lease is: two instances never
//!    send the same delivery at once, on PostgreSQL (the second `UPDATE` re-reads the rows the
//!    first changed) and SQLite (one writer) alike. The result is recorded only under the
//!    same token.
//! 4. **Send.** A POST of the event's JSON with `Pushhand-Event-Id`, `Pushhand-Event-Type`,
//!    `Pushhand-Delivery-Id`, `Pushhand-Timestamp` and `Pushhand-Signature: t=…,v1=…`
//!    ([`signature`]; docs/api.md says how to check it). 2xx is delivered; anything else
//!    (or no answer in 10 s) is retried after 10 s, 20 s, 40 s … (at most an hour apart) until
//!    24 hours after the delivery was made, then `FAILED`. An instance that dies mid-send
//!    leaves its lease to expire; another sends again: at least once, never concurrently.
//!
//! Sending never happens in the request that caused the event: the worker wakes when this
//! instance publishes a batch of events (it is a [`Listener`]) and polls every
//! `PUSHHAND_WEBHOOK_POLL_MS` for the rest (other instances' leftovers, retries). With no
//! enabled endpoint it does not touch the database at all, but for one check every
//! `PUSHHAND_JOB_INTERVAL_SECONDS` (another instance may have registered one).
//!
//! The price: each change an endpoint could want carries one more `INSERT … SELECT` (a
//! part of its batch on PostgreSQL), which reads the few endpoint rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use entity::webhook_delivery::{self as delivery, Status};
use entity::{webhook_endpoint as endpoint, webhook_event as event};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::{Expr, InsertStatement, Query};
use sea_orm::{
    ActiveEnum, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use super::page::{NewestCursor, Page};
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event as BusEvent, Listener};

/// Every event type, as sent in `type` and `Pushhand-Event-Type`.
pub const EVENT_TYPES: &[&str] = &[
    "order.paid",
    "order.shipped",
    "order.completed",
    "refund.completed",
    "after_sale.requested",
    "after_sale.approved",
    "after_sale.rejected",
    "after_sale.return_shipped",
    "after_sale.refunding",
    "after_sale.refunded",
    "after_sale.closed",
    "earning.settled",
    "withdrawal.requested",
    "withdrawal.approved",
    "withdrawal.rejected",
    "withdrawal.paid",
    "withdrawal.failed",
    "product.published",
];

/// How long after a delivery is made (or redelivered) it is retried.
pub const RETRY_FOR: Duration = Duration::hours(24);
/// The first retry's delay; each next one doubles, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::seconds(10);
pub const MAX_BACKOFF: Duration = Duration::hours(1);
/// How long a claimed delivery is the claimer's (more than a send's 10 s timeout).
const LEASE: Duration = Duration::seconds(60);
/// Deliveries in flight per instance.
const CONCURRENCY: usize = 16;
/// Longest URL.
pub const MAX_URL: usize = 2048;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 200;
/// Longest grace for a rotated secret.
pub const MAX_GRACE: Duration = Duration::days(7);

/// Delay before attempt `n + 1` after `n` failed attempts (`n` ≥ 1).
pub fn backoff(attempts: i32) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 20) as u32;
    let delay = FIRST_BACKOFF * 2_i32.pow(doublings);
    delay.min(MAX_BACKOFF)
}

/// An event's group (`after_sale` of `after_sale.approved`), which `after_sale.*` wants.
fn group(kind: &str) -> &str {
    kind.split_once('.').map_or(kind, |(g, _)| g)
}

/// Whether an endpoint's stored `events` want `kind`.
fn wants(events: &str, kind: &str) -> bool {
    events.contains(&format!("|{kind}|")) || events.contains(&format!("|{}.*|", group(kind)))
}

/// The outbox row of an event of `kind` whose body's `data` is `data`, written only if an
/// enabled endpoint wants it: push it into the change's batch of writes, or run it in the
/// change's transaction ([`record`]).
pub fn outbox(kind: &'static str, data: Value, now: DateTime<Utc>) -> InsertStatement {
    debug_assert!(EVENT_TYPES.contains(&kind), "{kind}");
    let id = Uuid::now_v7();
    let body = json!({
        "id": id,
        "type": kind,
        "createdAt": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string();
    let wanted = Query::select()
        .expr(Expr::val(1))
        .from(endpoint::Entity)
        .and_where(endpoint::Column::Enabled.eq(true))
        .cond_where(
            Condition::any()
                .add(endpoint::Column::Events.like(format!("%|{kind}|%")))
                .add(endpoint::Column::Events.like(format!("%|{}.*|%", group(kind)))),
        )
        .to_owned();
    let row = Query::select()
        .expr(Expr::val(id))
        .expr(Expr::val(kind))
        .expr(Expr::val(body))
        .expr(Expr::val(false))
        .expr(Expr::val(now))
        .and_where(Expr::exists(wanted))
        .to_owned();
    let mut insert = Query::insert();
    insert.into_table(event::Entity).columns([
        event::Column::Id,
        event::Column::EventType,
        event::Column::Payload,
        event::Column::Dispatched,
        event::Column::CreatedAt,
    ]);
    // The select's five columns are the five above: it cannot fail.
    if let Err(e) = insert.select_from(row) {
        tracing::error!(error = %e, "webhook outbox insert");
    }
    insert
}

/// Writes the outbox row of an event ([`outbox`]) in the change's transaction `txn`.
pub async fn record(
    txn: &impl ConnectionTrait,
    kind: &'static str,
    data: Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let statement = txn.get_database_backend().build(&outbox(kind, data, now));
    txn.execute_raw(statement).await?;
    Ok(())
}

/// The global ID the API gives row `id` of type `type_name` (base64url of `Type:uuid`, as
/// `graphql::ids` makes them; the services do not import the API, and the webhook tests
/// compare the two).
pub fn node_id(type_name: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{type_name}:{}", id.simple()))
}

/// Money as the API writes it ("12.30").
pub fn money(m: entity::Money) -> String {
    m.to_decimal().to_string()
}

/// A time as the API writes it.
fn at(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
    })
}

/// The `data` of an `order.*` event: the order as it now stands, with its lines when given
/// (`order.paid`: what to fulfil, and where to).
pub fn order_data(
    o: &entity::order::Model,
    status: &str,
    lines: Option<&[entity::order_line::Model]>,
) -> Value {
    let mut data = json!({
        "order": {
            "id": node_id("Order", o.id),
            "buyerId": node_id("Member", o.buyer_id),
            "status": status,
            "total": money(o.total),
            "shippingFee": money(o.shipping_fee),
            "discount": money(o.discount),
            "paymentReference": o.payment_reference,
            "createdAt": at(Some(o.created_at)),
            "paidAt": at(o.paid_at),
            "shippedAt": at(o.shipped_at),
            "completedAt": at(o.completed_at),
        }
    });
    if let Some(lines) = lines {
        data["lines"] = lines
            .iter()
            .map(|l| {
                json!({
                    "id": node_id("OrderLine", l.id),
                    "productId": node_id("Product", l.product_id),
                    "skuId": node_id("Sku", l.sku_id),
                    "quantity": l.quantity,
                    "unitPrice": money(l.unit_price),
                    "amount": money(l.amount),
                })
            })
            .collect();
        data["shipTo"] = json!({
            "recipientName": o.ship_recipient_name,
            "phone": o.ship_phone,
            "provinceCode": o.ship_province_code,
            "provinceName": o.ship_province_name,
            "cityCode": o.ship_city_code,
            "cityName": o.ship_city_name,
            "districtCode": o.ship_district_code,
            "districtName": o.ship_district_name,
            "detail": o.ship_detail,
            "postalCode": o.ship_postal_code,
        });
    }
    data
}

/// The `data` of a `withdrawal.*` event: the withdrawal as it now stands (never the
/// account it is paid to).
pub fn withdrawal_data(w: &entity::withdrawal::Model, status: &str) -> Value {
    json!({
        "withdrawal": {
            "id": node_id("Withdrawal", w.id),
            "memberId": node_id("Member", w.member_id),
            "status": status,
            "amount": money(w.amount),
            "fee": money(w.fee),
            "payoutChannel": w.payout_channel,
            "payoutReference": w.payout_reference,
            "createdAt": at(Some(w.created_at)),
        }
    })
}

/// Writes the `after_sale.<status>` event of an after-sale that has just become `a` (its
/// status, lower-case, names the event), in the change's transaction.
pub async fn record_after_sale(
    txn: &impl ConnectionTrait,
    a: &entity::after_sale::Model,
) -> Result<()> {
    let status = a.status.to_value();
    let kind = EVENT_TYPES
        .iter()
        .find(|t| t.strip_prefix("after_sale.") == Some(status.to_lowercase().as_str()))
        .copied()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("no event for after-sale {status}")))?;
    let data = json!({
        "afterSale": {
            "id": a.id.to_string(),
            "orderId": node_id("Order", a.order_id),
            "orderLineId": node_id("OrderLine", a.order_line_id),
            "buyerId": node_id("Member", a.buyer_id),
            "kind": a.kind.to_value(),
            "status": status,
            "quantity": a.quantity,
            "amount": money(a.amount),
            "reason": a.reason,
            "reviewNote": a.review_note,
            "returnCarrier": a.return_carrier.map(|c| c.to_value()),
            "returnTrackingNumber": a.return_tracking_number,
            "createdAt": at(Some(a.created_at)),
            "updatedAt": at(Some(a.updated_at)),
        }
    });
    record(txn, kind, data, a.updated_at).await
}

// ---------------------------------------------------------------------------------------
// Endpoints

/// An endpoint as an admin registers it.
#[derive(Clone, Debug, Default)]
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// What to change of an endpoint: the fields given.
#[derive(Clone, Debug, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

fn check_url(field: &'static str, raw: &str) -> Result<String> {
    let url = raw.trim();
    if url.is_empty() || url.len() > MAX_URL {
        return Err(Error::validation(
            field,
            format!("must be 1 to {MAX_URL} characters"),
        ));
    }
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|_| Error::validation(field, "not a URL"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none_or(str::is_empty) {
        return Err(Error::validation(
            field,
            "must be an http:// URL with a host (reach https:// receivers through an egress \
             proxy, as for the payment providers)",
        ));
    }
    Ok(url.to_owned())
}

/// The event types wanted, stored `|`-delimited at both ends; each an event type or a group
/// with `.*` (`after_sale.*`).
fn check_events(field: &'static str, events: &[String]) -> Result<String> {
    if events.is_empty() {
        return Err(Error::validation(field, "name at least one event type"));
    }
    let mut stored = vec![];
    for e in events {
        let e = e.trim();
        let known = EVENT_TYPES.contains(&e)
            || e.strip_suffix(".*")
                .is_some_and(|g| EVENT_TYPES.iter().any(|t| group(t) == g));
        if !known {
            return Err(Error::validation(
                field,
                format!(
                    "{e:?} is not an event type (one of {}, or a group such as after_sale.*)",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !stored.contains(&e) {
            stored.push(e);
        }
    }
    Ok(format!("|{}|", stored.join("|")))
}

/// The event types (and groups) an endpoint wants, as registered.
pub fn events_of(e: &endpoint::Model) -> Vec<String> {
    e.events
        .split('|')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn check_description(field: &'static str, d: Option<&str>) -> Result<Option<String>> {
    match d.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(d) => super::text::name(field, d, MAX_DESCRIPTION).map(Some),
    }
}

/// A new signing secret: `whsec_` and 32 random bytes, base64url.
fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Registers an endpoint, enabled, with a new secret (returned with it: the only time the
/// secret is shown). Audited. Every bad field is named at once.
pub async fn create_endpoint(
    db: &DatabaseConnection,
    hooks: &Webhooks,
    actor: &Actor,
    input: NewEndpoint,
    now: DateTime<Utc>,
) -> Result<(endpoint::Model, String)> {
    let mut errors = FieldErrors::default();
    let url = errors.check(check_url("input.url", &input.url));
    let events = errors.check(check_events("input.events", &input.events));
    let description = errors.check(check_description(
        "input.description",
        input.description.as_deref(),
    ));
    errors.finish()?;
    let (Some(url), Some(events), Some(description)) = (url, events, description) else {
        return Err(Error::internal(anyhow::anyhow!("checked fields missing")));
    };
    let secret = new_secret();
    let row = endpoint::Model {
        id: Uuid::now_v7(),
        url,
        description,
        events,
        secret: secret.clone(),
        previous_secret: None,
        previous_secret_until: None,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    let txn = crate::db::begin_write(db).await?;
    endpoint::Entity::insert(endpoint::ActiveModel {
        id: Set(row.id),
        url: Set(row.url.clone()),
        description: Set(row.description.clone()),
        events: Set(row.events.clone()),
        secret: Set(row.secret.clone()),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        enabled: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    audit::record(
        &txn,
        actor,
        Action::WebhookEndpointCreated,
        Some((TargetType::WebhookEndpoint, row.id)),
        json!({ "url": row.url, "events": events_of(&row) }),
        now,
    )
    .await?;
    txn.commit().await?;
    hooks.set_active(true);
    Ok((row, secret))
}

async fn endpoint_in(db: &impl ConnectionTrait, id: Uuid) -> Result<endpoint::Model> {
    endpoint::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("webhook endpoint"))
}

/// Changes an endpoint's URL, events, description or whether it is enabled. Audited with
/// each changed field's previous value.
pub async fn update_endpoint(
    db: &DatabaseConnection,
    hooks: &Webhooks,
    actor: &Actor,
    id: Uuid,
    changes: EndpointChanges,
    now: DateTime<Utc>,
) -> Result<endpoint::Model> {
    let mut errors = FieldErrors::default();
    let url = changes
        .url
        .as_deref()
        .and_then(|u| errors.check(check_url("input.url", u)));
    let events = changes
        .events
        .as_deref()
        .and_then(|e| errors.check(check_events("input.events", e)));
    let description = changes
        .description
        .as_ref()
        .and_then(|d| errors.check(check_description("input.description", d.as_deref())));
    errors.finish()?;
    let txn = crate::db::begin_write(db).await?;
    let before = endpoint_in(&txn, id).await?;
    let mut after = before.clone();
    let mut changed = serde_json::Map::new();
    if let Some(url) = url.filter(|u| *u != before.url) {
        changed.insert(
            "url".into(),
            json!({ "value": url, "previous": before.url }),
        );
        after.url = url;
    }
    if let Some(events) = events.filter(|e| *e != before.events) {
        after.events = events;
        changed.insert(
            "events".into(),
            json!({ "value": events_of(&after), "previous": events_of(&before) }),
        );
    }
    if let Some(d) = description.filter(|d| *d != before.description) {
        changed.insert(
            "description".into(),
            json!({ "value": d, "previous": before.description }),
        );
        after.description = d;
    }
    if let Some(enabled) = changes.enabled.filter(|e| *e != before.enabled) {
        changed.insert(
            "enabled".into(),
            json!({ "value": enabled, "previous": before.enabled }),
        );
        after.enabled = enabled;
    }
    if changed.is_empty() {
        return Ok(before);
    }
    after.updated_at = now;
    endpoint::Entity::update(endpoint::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id),
        url: Set(after.url.clone()),
        description: Set(after.description.clone()),
        events: Set(after.events.clone()),
        enabled: Set(after.enabled),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    audit::record(
        &txn,
        actor,
        Action::WebhookEndpointUpdated,
        Some((TargetType::WebhookEndpoint, id)),
        Value::Object(changed),
        now,
    )
    .await?;
    txn.commit().await?;
    if after.enabled {
        hooks.set_active(true);
    }
    hooks.wake();
    Ok(after)
}

/// Gives an endpoint a new secret (returned: the only time it is shown); the previous one
/// keeps signing beside it (a second `v1`) for `grace` (0 to 7 days), so the receiver can
/// switch without losing an event. Audited (without either secret).
pub async fn rotate_secret(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    grace: Duration,
    now: DateTime<Utc>,
) -> Result<(endpoint::Model, String)> {
    if grace < Duration::zero() || grace > MAX_GRACE {
        return Err(Error::validation(
            "graceHours",
            "must be 0 to 168 hours (7 days)",
        ));
    }
    let secret = new_secret();
    let txn = crate::db::begin_write(db).await?;
    let before = endpoint_in(&txn, id).await?;
    let until = (grace > Duration::zero()).then_some(now + grace);
    let previous = until.map(|_| before.secret.clone());
    endpoint::Entity::update(endpoint::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id),
        secret: Set(secret.clone()),
        previous_secret: Set(previous.clone()),
        previous_secret_until: Set(until),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    audit::record(
        &txn,
        actor,
        Action::WebhookSecretRotated,
        Some((TargetType::WebhookEndpoint, id)),
        json!({ "graceHours": grace.num_hours(), "previousValidUntil": until }),
        now,
    )
    .await?;
    txn.commit().await?;
    let after = endpoint::Model {
        secret: secret.clone(),
        previous_secret: previous,
        previous_secret_until: until,
        updated_at: now,
        ..before
    };
    Ok((after, secret))
}

/// Every endpoint, oldest first (a short list: one per integration).
pub async fn endpoints(db: &impl ConnectionTrait) -> Result<Vec<endpoint::Model>> {
    Ok(endpoint::Entity::find()
        .order_by_asc(endpoint::Column::CreatedAt)
        .order_by_asc(endpoint::Column::Id)
        .all(db)
        .await?)
}

/// Whether any endpoint is enabled.
pub async fn any_enabled(db: &impl ConnectionTrait) -> Result<bool> {
    Ok(endpoint::Entity::find()
        .select_only()
        .column(endpoint::Column::Id)
        .filter(endpoint::Column::Enabled.eq(true))
        .limit(1)
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .is_some())
}

// ---------------------------------------------------------------------------------------
// Deliveries

/// Position after the last delivery of a page: newest first.
pub type DeliveryCursor = NewestCursor;

/// What a delivery list is narrowed to.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeliveryFilter {
    pub endpoint: Option<Uuid>,
    pub status: Option<Status>,
}

impl DeliveryFilter {
    fn query(self) -> sea_orm::Select<delivery::Entity> {
        let mut q = delivery::Entity::find();
        if let Some(e) = self.endpoint {
            q = q.filter(delivery::Column::EndpointId.eq(e));
        }
        if let Some(s) = self.status {
            q = q.filter(delivery::Column::Status.eq(s));
        }
        q
    }
}

/// Deliveries newest first.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    filter: DeliveryFilter,
    after: Option<&DeliveryCursor>,
    first: u64,
) -> Result<Page<delivery::Model>> {
    super::page::newest_first(
        db,
        filter.query(),
        delivery::Column::CreatedAt,
        delivery::Column::Id,
        after,
        first,
    )
    .await
}

/// How many deliveries `filter` admits, when `wanted`.
pub async fn delivery_total(
    db: &impl ConnectionTrait,
    filter: DeliveryFilter,
    wanted: bool,
) -> Result<Option<u64>> {
    super::page::total(db, filter.query(), wanted).await
}

/// The bodies of events `ids`, by id, in one statement.
pub async fn payloads(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<std::collections::HashMap<Uuid, String>> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .column(event::Column::Payload)
        .filter(super::one_of(db, event::Column::Id, ids))
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// One delivery, or `NOT_FOUND`.
pub async fn delivery(db: &impl ConnectionTrait, id: Uuid) -> Result<delivery::Model> {
    delivery::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("webhook delivery"))
}

/// Sends a delivered or failed delivery again: `PENDING` at once, retried for another 24
/// hours, the same event id (receivers deduplicate by it). A delivery still pending is
/// `WEBHOOK_DELIVERY_PENDING` (it is being sent already). Audited.
pub async fn redeliver(
    db: &DatabaseConnection,
    hooks: &Webhooks,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<delivery::Model> {
    let txn = crate::db::begin_write(db).await?;
    let before = delivery(&txn, id).await?;
    let updated = delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(Status::Pending))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
        .col_expr(delivery::Column::GiveUpAt, Expr::value(now + RETRY_FOR))
        .col_expr(
            delivery::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            delivery::Column::LeaseToken,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(delivery::Column::Id.eq(id))
        .filter(delivery::Column::Status.ne(Status::Pending))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(Error::rule(
            "WEBHOOK_DELIVERY_PENDING",
            "the delivery is still pending: it is being sent already",
        ));
    }
    audit::record(
        &txn,
        actor,
        Action::WebhookRedelivered,
        Some((TargetType::WebhookDelivery, id)),
        json!({ "eventId": before.event_id, "previousStatus": before.status.to_value() }),
        now,
    )
    .await?;
    txn.commit().await?;
    hooks.set_active(true);
    hooks.wake();
    Ok(delivery::Model {
        status: Status::Pending,
        next_attempt_at: now,
        give_up_at: now + RETRY_FOR,
        lease_until: None,
        lease_token: None,
        ..before
    })
}

/// Makes the deliveries of up to `limit` undispatched events: one per enabled endpoint
/// wanting each. Returns how many events it dispatched. Safe with several instances: the
/// conditional update decides which one dispatches an event.
pub async fn dispatch(db: &DatabaseConnection, now: DateTime<Utc>, limit: u64) -> Result<usize> {
    let pending: Vec<Uuid> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::Dispatched.eq(false))
        .order_by_asc(event::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let txn = crate::db::begin_write(db).await?;
    let taken = event::Entity::update_many()
        .col_expr(event::Column::Dispatched, Expr::value(true))
        .filter(super::one_of(&txn, event::Column::Id, pending))
        .filter(event::Column::Dispatched.eq(false))
        .exec_with_returning(&txn)
        .await?;
    if taken.is_empty() {
        return Ok(0);
    }
    let targets: Vec<endpoint::Model> = endpoint::Entity::find()
        .filter(endpoint::Column::Enabled.eq(true))
        .all(&txn)
        .await?;
    let mut rows = Vec::new();
    for e in &taken {
        for t in targets.iter().filter(|t| wants(&t.events, &e.event_type)) {
            rows.push(delivery::ActiveModel {
                id: Set(Uuid::now_v7()),
                event_id: Set(e.id),
                endpoint_id: Set(t.id),
                event_type: Set(e.event_type.clone()),
                status: Set(Status::Pending),
                attempts: Set(0),
                next_attempt_at: Set(now),
                give_up_at: Set(now + RETRY_FOR),
                lease_until: Set(None),
                lease_token: Set(None),
                last_attempt_at: Set(None),
                last_status_code: Set(None),
                last_error: Set(None),
                delivered_at: Set(None),
                created_at: Set(now),
            });
        }
    }
    if !rows.is_empty() {
        delivery::Entity::insert_many(rows)
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    delivery::Column::EventId,
                    delivery::Column::EndpointId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(taken.len())
}

/// A delivery claimed for sending, with what it sends.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery: delivery::Model,
    pub token: Uuid,
}

/// Claims up to `limit` due deliveries of enabled endpoints for this instance (see the
/// module's documentation).
pub async fn claim(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Claimed>> {
    let free = || {
        Condition::any()
            .add(delivery::Column::LeaseUntil.is_null())
            .add(delivery::Column::LeaseUntil.lt(now))
    };
    let due = || {
        Condition::all()
            .add(delivery::Column::Status.eq(Status::Pending))
            .add(delivery::Column::NextAttemptAt.lte(now))
            .add(free())
    };
    let enabled = Query::select()
        .column(endpoint::Column::Id)
        .from(endpoint::Entity)
        .and_where(endpoint::Column::Enabled.eq(true))
        .to_owned();
    let ids: Vec<Uuid> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Id)
        .filter(due())
        .filter(delivery::Column::EndpointId.in_subquery(enabled))
        .order_by_asc(delivery::Column::NextAttemptAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let token = Uuid::now_v7();
    let claimed = delivery::Entity::update_many()
        .col_expr(delivery::Column::LeaseUntil, Expr::value(now + LEASE))
        .col_expr(delivery::Column::LeaseToken, Expr::value(token))
        .filter(super::one_of(db, delivery::Column::Id, ids))
        .filter(due())
        .exec_with_returning(db)
        .await?;
    Ok(claimed
        .into_iter()
        .map(|delivery| Claimed { delivery, token })
        .collect())
}

/// When the earliest pending delivery is next due, if any (how long the worker may sleep).
pub async fn next_due(db: &impl ConnectionTrait) -> Result<Option<DateTime<Utc>>> {
    Ok(delivery::Entity::find()
        .select_only()
        .column(delivery::Column::NextAttemptAt)
        .filter(delivery::Column::Status.eq(Status::Pending))
        .order_by_asc(delivery::Column::NextAttemptAt)
        .limit(1)
        .into_tuple::<DateTime<Utc>>()
        .one(db)
        .await?)
}

/// `Pushhand-Signature`'s value for `body` sent at unix time `timestamp`: `t=<timestamp>`,
/// then `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` for each secret in force.
pub fn signature(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
            Ok(mac) => mac,
            // HMAC takes a key of any length.
            Err(_) => continue,
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        header.push_str(",v1=");
        for b in mac.finalize().into_bytes() {
            header.push_str(&format!("{b:02x}"));
        }
    }
    header
}

/// The secrets an endpoint signs with at `now`: its own, and the previous one during its
/// grace.
pub fn secrets_of(e: &endpoint::Model, now: DateTime<Utc>) -> Vec<&str> {
    let mut secrets = vec![e.secret.as_str()];
    if let (Some(old), Some(until)) = (&e.previous_secret, e.previous_secret_until)
        && until > now
    {
        secrets.push(old.as_str());
    }
    secrets
}

/// What an attempt came to.
#[derive(Debug)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

impl Outcome {
    fn delivered(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Records the attempt of `claimed`, under its lease: delivered on a 2xx; otherwise retried
/// after [`backoff`], or `FAILED` once past its `give_up_at`.
pub async fn finish(
    db: &DatabaseConnection,
    claimed: &Claimed,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Result<()> {
    let d = &claimed.delivery;
    let attempts = d.attempts + 1;
    let mut update = delivery::Entity::update_many()
        .col_expr(delivery::Column::Attempts, Expr::value(attempts))
        .col_expr(delivery::Column::LastAttemptAt, Expr::value(now))
        .col_expr(
            delivery::Column::LastStatusCode,
            Expr::value(outcome.status_code.map(i32::from)),
        )
        .col_expr(
            delivery::Column::LastError,
            Expr::value(
                outcome
                    .error
                    .as_deref()
                    .map(|e| e.chars().take(500).collect::<String>()),
            ),
        )
        .col_expr(
            delivery::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            delivery::Column::LeaseToken,
            Expr::value(Option::<Uuid>::None),
        );
    update = if outcome.delivered() {
        update
            .col_expr(delivery::Column::Status, Expr::value(Status::Delivered))
            .col_expr(delivery::Column::DeliveredAt, Expr::value(now))
    } else if now >= d.give_up_at {
        update.col_expr(delivery::Column::Status, Expr::value(Status::Failed))
    } else {
        update.col_expr(
            delivery::Column::NextAttemptAt,
            Expr::value(now + backoff(attempts)),
        )
    };
    update
        .filter(delivery::Column::Id.eq(d.id))
        .filter(delivery::Column::LeaseToken.eq(claimed.token))
        .exec(db)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The worker

/// The webhook worker's shared part: whether any endpoint is enabled (else it stays off the
/// database), and the signal that wakes it.
#[derive(Default)]
pub struct Webhooks {
    active: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Webhooks {
    pub fn new(active: bool) -> Webhooks {
        Webhooks {
            active: AtomicBool::new(active),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Relaxed);
    }

    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Wakes the worker (when any endpoint is enabled).
    pub fn wake(&self) {
        if self.active() {
            self.wake.notify_one();
        }
    }
}

/// Every batch this instance publishes follows a commit that may have written an event:
/// the worker looks at once.
#[async_trait::async_trait]
impl Listener for Webhooks {
    async fn published(&self, _batch: &[BusEvent]) {
        self.wake();
    }
}

/// The delivery loop of one instance.
pub struct Worker {
    pub db: DatabaseConnection,
    pub hooks: Arc<Webhooks>,
    pub clock: Arc<dyn super::Clock>,
    pub transport: crate::payments::transport::Transport,
    /// How often it polls while an endpoint is enabled.
    pub poll: StdDuration,
    /// How often it checks whether one is, while none is.
    pub idle: StdDuration,
}

impl Worker {
    /// Runs until aborted. Sends go out on tasks of their own, at most [`CONCURRENCY`] at a
    /// time: a slow receiver holds its own send only.
    pub async fn run(self) {
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut wait = if self.hooks.active() {
            self.poll
        } else {
            self.idle
        };
        loop {
            tokio::select! {
                _ = self.hooks.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            if !self.hooks.active() {
                match any_enabled(&self.db).await {
                    Ok(true) => self.hooks.set_active(true),
                    Ok(false) => {
                        wait = self.idle;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = ?e, "webhook endpoints not read; will retry");
                        wait = self.idle;
                        continue;
                    }
                }
            }
            wait = match self.round(&slots).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = ?e, "webhook round failed; will retry");
                    self.poll
                }
            };
        }
    }

    /// Dispatches new events, claims what is due and starts sending it; returns how long to
    /// sleep before the next round.
    async fn round(&self, slots: &Arc<tokio::sync::Semaphore>) -> Result<StdDuration> {
        let now = self.clock.now();
        while dispatch(&self.db, now, 100).await? == 100 {}
        let free = slots.available_permits() as u64;
        if free > 0 {
            let claimed = claim(&self.db, now, free).await?;
            if !claimed.is_empty() {
                let endpoints: std::collections::HashMap<Uuid, endpoint::Model> =
                    endpoints(&self.db)
                        .await?
                        .into_iter()
                        .map(|e| (e.id, e))
                        .collect();
                let bodies =
                    payloads(&self.db, claimed.iter().map(|c| c.delivery.event_id)).await?;
                for c in claimed {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        break;
                    };
                    let target = endpoints.get(&c.delivery.endpoint_id).cloned();
                    let body = bodies.get(&c.delivery.event_id).cloned();
                    let db = self.db.clone();
                    let clock = self.clock.clone();
                    let transport = self.transport.clone();
                    let hooks = self.hooks.clone();
                    tokio::spawn(async move {
                        let outcome = match (target, body) {
                            (Some(t), Some(b)) => send(&transport, &t, &c, b, clock.now()).await,
                            _ => Outcome {
                                status_code: None,
                                error: Some("the endpoint or the event is gone".into()),
                            },
                        };
                        if let Err(e) = finish(&db, &c, &outcome, clock.now()).await {
                            tracing::warn!(error = ?e, delivery = %c.delivery.id,
                                "webhook attempt not recorded; the lease will expire");
                        }
                        drop(permit);
                        // What is left (or now due again) is looked at.
                        hooks.wake();
                    });
                }
            }
        }
        let next = match next_due(&self.db).await? {
            Some(at) => (at - self.clock.now())
                .to_std()
                .unwrap_or(StdDuration::from_millis(1)),
            None => self.poll,
        };
        Ok(next.min(self.poll).max(StdDuration::from_millis(1)))
    }
}

/// POSTs one delivery.
async fn send(
    transport: &crate::payments::transport::Transport,
    target: &endpoint::Model,
    claimed: &Claimed,
    body: String,
    now: DateTime<Utc>,
) -> Outcome {
    // The wall-clock time: receivers compare it with theirs.
    let timestamp = Utc::now().timestamp();
    let signed = signature(&secrets_of(target, now), timestamp, body.as_bytes());
    let d = &claimed.delivery;
    let request = axum::http::Request::post(target.url.as_str())
        .header("content-type", "application/json")
        .header("user-agent", "Pushhand-Webhooks/1")
        .header("pushhand-event-id", d.event_id.to_string())
        .header("pushhand-event-type", d.event_type.as_str())
        .header("pushhand-delivery-id", d.id.to_string())
        .header("pushhand-timestamp", timestamp.to_string())
        .header("pushhand-signature", signed)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)));
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                status_code: None,
                error: Some(format!("bad request: {e}")),
            };
        }
    };
    match transport.send(request).await {
        Ok(answer) => Outcome {
            status_code: Some(answer.status),
            error: (!(200..300).contains(&answer.status)).then(|| {
                let text = String::from_utf8_lossy(&answer.body);
                format!(
                    "HTTP {}: {}",
                    answer.status,
                    text.chars().take(200).collect::<String>()
                )
            }),
        },
        Err(e) => Outcome {
            status_code: None,
            error: Some(format!("{e:#}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_an_hour() {
        assert_eq!(backoff(1), Duration::seconds(10));
        assert_eq!(backoff(2), Duration::seconds(20));
        assert_eq!(backoff(4), Duration::seconds(80));
        assert_eq!(backoff(30), Duration::hours(1));
    }

    #[test]
    fn patterns_and_events() {
        let stored = check_events("e", &["order.paid".into(), "after_sale.*".into()]).expect("ok");
        assert_eq!(stored, "|order.paid|after_sale.*|");
        assert!(wants(&stored, "order.paid"));
        assert!(wants(&stored, "after_sale.closed"));
        assert!(!wants(&stored, "order.shipped"));
        assert!(check_events("e", &["order.refunded".into()]).is_err());
        assert!(check_events("e", &["nope.*".into()]).is_err());
        assert!(check_events("e", &[]).is_err());
    }

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // RFC 4231-style check against a known value computed independently:
        // HMAC-SHA256("key", "1.{}") — recomputed here through the same crate, so this pins
        // the message layout, not the primitive.
        let header = signature(&["key"], 1, b"{}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").expect("key");
        mac.update(b"1.{}");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(header, format!("t=1,v1={hex}"));
        assert_eq!(signature(&["a", "b"], 5, b"x").matches("v1=").count(), 2);
    }

    #[test]
    fn urls_are_http_with_a_host() {
        assert!(check_url("u", "http://127.0.0.1:9/hook").is_ok());
        assert!(check_url("u", "https://example.com/hook").is_err());
        assert!(check_url("u", "ftp://x").is_err());
        assert!(check_url("u", "not a url").is_err());
    }
}
