//! Webhooks in GraphQL (issue #31, item 5): admins register endpoints, rotate their secrets,
//! read the deliveries and send one again. The rules are the service's
//! ([`crate::service::webhooks`]); every field here is ADMIN only (`FORBIDDEN` to anyone
//! else) and every mutation is audited.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::webhook_delivery::{self as delivery, Status};
use entity::webhook_endpoint as endpoint;

use crate::graphql::context::{actor, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{CountedOf, PageArgs, wants_total};
use crate::service::webhooks::{self as svc, DeliveryCursor, DeliveryFilter};

/// Where a delivery stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    /// Not yet answered with a 2xx: retried with exponential backoff (10 s, 20 s, 40 s …, at
    /// most an hour apart) until 24 hours after it was made or redelivered.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// No 2xx within 24 hours: given up (`redeliver` sends it again).
    Failed,
}

impl From<Status> for WebhookDeliveryStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => WebhookDeliveryStatus::Pending,
            Status::Delivered => WebhookDeliveryStatus::Delivered,
            Status::Failed => WebhookDeliveryStatus::Failed,
        }
    }
}

impl From<WebhookDeliveryStatus> for Status {
    fn from(s: WebhookDeliveryStatus) -> Self {
        match s {
            WebhookDeliveryStatus::Pending => Status::Pending,
            WebhookDeliveryStatus::Delivered => Status::Delivered,
            WebhookDeliveryStatus::Failed => Status::Failed,
        }
    }
}

/// An integration's endpoint: where events are POSTed (see docs/api.md, "Webhooks", for the
/// body, the headers and how to check the signature).
pub struct WebhookEndpoint(pub endpoint::Model);

/// An integration's webhook endpoint: where events are POSTed, which ones, and whether it
/// is enabled (docs/api.md, "Webhooks", gives the body, the headers and how to check the
/// signature). Its secret is shown only when created or rotated.
#[Object]
impl WebhookEndpoint {
    /// The endpoint's global ID.
    async fn id(&self) -> ID {
        ids::encode(Kind::WebhookEndpoint, self.0.id)
    }
    /// Where events are POSTed (`http://`).
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// The admins' note on what it is for.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The event types it wants, as registered (types such as `order.paid`, or groups such
    /// as `after_sale.*`).
    async fn events(&self) -> Vec<String> {
        svc::events_of(&self.0)
    }
    /// Whether events are sent to it (a disabled endpoint gets no new deliveries, and its
    /// pending ones wait).
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Until when the secret before the last rotation still signs (a second `v1` in
    /// `Pushhand-Signature`); null when only the current one does.
    async fn previous_secret_valid_until(&self) -> Option<DateTime<Utc>> {
        self.0.previous_secret_until
    }
    /// When it was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed (including a rotation).
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// An endpoint with its new signing secret: the only time the secret is shown.
#[derive(SimpleObject)]
pub struct WebhookEndpointSecret {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_…`): the HMAC-SHA256 key of `Pushhand-Signature`, used as
    /// its UTF-8 bytes. Store it now: it is never shown again (rotate to get a new one).
    pub secret: String,
}

/// One event's delivery to one endpoint, and its attempts so far.
pub struct WebhookDelivery {
    pub row: delivery::Model,
    /// The body it sends (null if the event is gone).
    pub payload: Option<String>,
}

/// One event's delivery to one endpoint: where it stands, its attempts so far and the body it
/// sends.
#[Object]
impl WebhookDelivery {
    /// The delivery's global ID (what `redeliver` takes; sent as `Pushhand-Delivery-Id` as a
    /// UUID).
    async fn id(&self) -> ID {
        ids::encode(Kind::WebhookDelivery, self.row.id)
    }
    /// The event's id (a UUID, the body's `id` and `Pushhand-Event-Id`): the same in every
    /// attempt and redelivery, for the receiver's deduplication.
    async fn event_id(&self) -> String {
        self.row.event_id.to_string()
    }
    /// The event type, e.g. `order.paid`.
    async fn event_type(&self) -> &str {
        &self.row.event_type
    }
    /// The endpoint it goes to.
    async fn endpoint_id(&self) -> ID {
        ids::encode(Kind::WebhookEndpoint, self.row.endpoint_id)
    }
    /// Where it stands.
    async fn status(&self) -> WebhookDeliveryStatus {
        self.row.status.into()
    }
    /// Attempts made so far.
    async fn attempts(&self) -> i32 {
        self.row.attempts
    }
    /// When the next attempt is due (`PENDING` only).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.row.status == Status::Pending).then_some(self.row.next_attempt_at)
    }
    /// When a failing delivery is given up (24 hours after it was made or redelivered).
    async fn give_up_at(&self) -> DateTime<Utc> {
        self.row.give_up_at
    }
    /// When the last attempt was made.
    async fn last_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.row.last_attempt_at
    }
    /// The HTTP status the endpoint last answered (null: no answer — refused, timed out).
    async fn last_status_code(&self) -> Option<i32> {
        self.row.last_status_code
    }
    /// Why the last attempt failed (the status and the start of the answer, or the
    /// connection error).
    async fn last_error(&self) -> Option<&str> {
        self.row.last_error.as_deref()
    }
    /// When the endpoint answered 2xx.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.row.delivered_at
    }
    /// When the delivery was made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    /// The JSON body every attempt sends, exactly (the signed bytes).
    async fn payload(&self) -> Option<&str> {
        self.payload.as_deref()
    }
}

/// Admins' list of webhook deliveries.
pub type WebhookDeliveryConnection = CountedOf<DeliveryCursor, WebhookDelivery>;

/// A new endpoint.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// An `http://` URL with a host, at most 2048 characters (an `https://` receiver is
    /// reached through an egress proxy, as the payment providers are).
    pub url: String,
    /// The event types wanted: any of `order.paid`, `order.shipped`, `order.completed`,
    /// `refund.completed`, `after_sale.requested`, `after_sale.approved`,
    /// `after_sale.rejected`, `after_sale.return_shipped`, `after_sale.completed`,
    /// `after_sale.closed`, `earning.settled`, `withdrawal.requested`,
    /// `withdrawal.approved`, `withdrawal.rejected`, `withdrawal.paid`,
    /// `withdrawal.failed`, `product.published`, or a group such as `after_sale.*`.
    pub events: Vec<String>,
    /// What it is for, at most 200 characters.
    pub description: Option<String>,
}

/// What to change of an endpoint: the fields given.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// A new URL (rules as in `CreateWebhookEndpointInput`).
    pub url: Option<String>,
    /// The new list of event types wanted (replaces the old one).
    pub events: Option<Vec<String>>,
    /// A new description (empty: none).
    pub description: Option<String>,
    /// Disable (false) or enable (true) it.
    pub enabled: Option<bool>,
}

fn endpoint_id(id: &ID, field: &'static str) -> Result<uuid::Uuid> {
    Ok(ids::decode_as(id, Kind::WebhookEndpoint, field)?)
}

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// ADMIN: every webhook endpoint, oldest first (`FORBIDDEN` to anyone else).
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> Result<Vec<WebhookEndpoint>> {
        viewer(ctx)?.admin()?;
        let rows = svc::endpoints(&state(ctx)?.db).await?;
        Ok(rows.into_iter().map(WebhookEndpoint).collect())
    }

    /// ADMIN: webhook deliveries with their attempts, newest first, optionally of one
    /// endpoint and in one status (`FORBIDDEN` to anyone else).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only deliveries to this endpoint.")] endpoint_id: Option<ID>,
        #[graphql(desc = "Only deliveries in this status.")] status: Option<WebhookDeliveryStatus>,
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
    ) -> Result<WebhookDeliveryConnection> {
        viewer(ctx)?.admin()?;
        let args = PageArgs::<DeliveryCursor>::parse(first, after)?;
        let filter = DeliveryFilter {
            endpoint: endpoint_id
                .map(|e| self::endpoint_id(&e, "endpointId"))
                .transpose()?,
            status: status.map(Into::into),
        };
        let db = &state(ctx)?.db;
        let page = svc::deliveries(db, filter, args.after(), args.first).await?;
        let total = svc::delivery_total(db, filter, wants_total(ctx)).await?;
        // The page's bodies in one statement, when asked for.
        let la = ctx.look_ahead();
        let bodies = if la.field("edges").field("node").field("payload").exists()
            || la.field("nodes").field("payload").exists()
        {
            svc::payloads(db, page.items.iter().map(|d| d.event_id)).await?
        } else {
            Default::default()
        };
        Ok(args.counted(
            page,
            total,
            |d| DeliveryCursor::of(d.created_at, d.id),
            |row| WebhookDelivery {
                payload: bodies.get(&row.event_id).cloned(),
                row,
            },
        ))
    }
}

#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// ADMIN: registers a webhook endpoint, enabled, and answers its signing secret — the
    /// only time it is shown. Every bad field is named at once (`VALIDATION`). Audited.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] input: CreateWebhookEndpointInput,
    ) -> Result<WebhookEndpointSecret> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let (row, secret) = svc::create_endpoint(
            &st.db,
            &st.webhooks,
            &actor(ctx, admin),
            svc::NewEndpoint {
                url: input.url,
                events: input.events,
                description: input.description,
            },
            st.clock.now(),
        )
        .await?;
        Ok(WebhookEndpointSecret {
            endpoint: WebhookEndpoint(row),
            secret,
        })
    }

    /// ADMIN: changes an endpoint's URL, events, description, or enables or disables it.
    /// Audited with the previous values.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] id: ID,
        #[graphql(desc = "The fields to change.")] input: UpdateWebhookEndpointInput,
    ) -> Result<WebhookEndpoint> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = endpoint_id(&id, "id")?;
        let row = svc::update_endpoint(
            &st.db,
            &st.webhooks,
            &actor(ctx, admin),
            id,
            svc::EndpointChanges {
                url: input.url,
                events: input.events,
                description: input.description.map(Some),
                enabled: input.enabled,
            },
            st.clock.now(),
        )
        .await?;
        Ok(WebhookEndpoint(row))
    }

    /// ADMIN: gives an endpoint a new signing secret, answered once. The previous secret
    /// keeps signing beside it (a second `v1=` in `Pushhand-Signature`) for `graceHours`,
    /// so the receiver can switch without refusing an event. Audited (never a secret).
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] id: ID,
        #[graphql(
            desc = "How long the previous secret still signs, 0–168 hours (default 24; 0: \
                    at once no more).",
            default = 24
        )]
        grace_hours: i32,
    ) -> Result<WebhookEndpointSecret> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = endpoint_id(&id, "id")?;
        let (row, secret) = svc::rotate_secret(
            &st.db,
            &actor(ctx, admin),
            id,
            chrono::Duration::hours(i64::from(grace_hours)),
            st.clock.now(),
        )
        .await?;
        Ok(WebhookEndpointSecret {
            endpoint: WebhookEndpoint(row),
            secret,
        })
    }

    /// ADMIN: sends a delivered or failed webhook delivery again, at once, with the same
    /// event id (the receiver deduplicates by it), retried for another 24 hours. A pending
    /// one is `WEBHOOK_DELIVERY_PENDING`. Audited.
    async fn redeliver(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The delivery (`WebhookDelivery.id`).")] id: ID,
    ) -> Result<WebhookDelivery> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&id, Kind::WebhookDelivery, "id")?;
        let row =
            svc::redeliver(&st.db, &st.webhooks, &actor(ctx, admin), id, st.clock.now()).await?;
        let payload = svc::payloads(&st.db, [row.event_id])
            .await?
            .remove(&row.event_id);
        Ok(WebhookDelivery { row, payload })
    }
}
