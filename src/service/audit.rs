//! The audit log of staff actions: who did what, to what, with which arguments, when and from
//! where.
//!
//! Every staff mutation (payments confirmed, shipments, refunds, settlement runs, withdrawal
//! reviews, freezes and unfreezes, partner reviews, rebinding, binding expiry, brands and
//! products submitted, curation records, publishing and delisting, shipping rules), and every
//! step of an after-sale (the buyer's too), writes one entry **in
//! products submitted, curation records, publishing and delisting, shipping rules, the
//! catalog's categories, merchants and brand assignments) writes one entry **in
//! its own transaction**, through [`record`] (or [`entry`] pushed into the action's batch of
//! writes): the entry exists exactly when the action committed, and an action whose entry
//! cannot be written does not happen. Refused attempts write nothing (they changed nothing).
//!
//! The table is append-only in the database itself (triggers refuse `UPDATE` and `DELETE`
//! on SQLite and PostgreSQL, and `TRUNCATE` on PostgreSQL), and the API has no write to it:
//! admins read it with `auditLog`. History that a row's own columns lose — an unfreeze
//! clears `frozen_at` and `frozen_reason` — stays here: the freeze's entry keeps its reason,
//! its actor and its time.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use entity::audit_entry;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

use super::page::{NewestCursor, Page, newest_first};
use crate::error::{Error, Result};

/// Who performs a staff action, and from which address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The staff member.
    pub member: Uuid,
    /// The client's address as the server saw it (`None` off the network: the CLI, tests).
    pub client: Option<IpAddr>,
}

impl Actor {
    pub fn new(member: Uuid, client: Option<IpAddr>) -> Actor {
        Actor { member, client }
    }
}

macro_rules! codes {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $code:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stored (and API) code.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code,)* }
            }

            /// The value of a stored code.
            pub fn parse(code: &str) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    /// What a staff member did.
    pub enum Action {
        PaymentConfirmed => "PAYMENT_CONFIRMED",
        OrderShipped => "ORDER_SHIPPED",
        OrderLineRefunded => "ORDER_LINE_REFUNDED",
        SettlementRun => "SETTLEMENT_RUN",
        WithdrawalApproved => "WITHDRAWAL_APPROVED",
        WithdrawalRejected => "WITHDRAWAL_REJECTED",
        MemberFrozen => "MEMBER_FROZEN",
        MemberUnfrozen => "MEMBER_UNFROZEN",
        PartnerApproved => "PARTNER_APPROVED",
        PartnerRejected => "PARTNER_REJECTED",
        MemberRebound => "MEMBER_REBOUND",
        BindingsExpired => "BINDINGS_EXPIRED",
        BrandCreated => "BRAND_CREATED",
        ProductSubmitted => "PRODUCT_SUBMITTED",
        ProductResubmitted => "PRODUCT_RESUBMITTED",
        CurationStageRecorded => "CURATION_STAGE_RECORDED",
        ProductScored => "PRODUCT_SCORED",
        ProductPublished => "PRODUCT_PUBLISHED",
        ProductUnpublished => "PRODUCT_UNPUBLISHED",
        ShippingRuleSet => "SHIPPING_RULE_SET",
        RefundRequested => "REFUND_REQUESTED",
        RefundRetried => "REFUND_RETRIED",
        RefundSynced => "REFUND_SYNCED",
        PayoutMarkedPaid => "PAYOUT_MARKED_PAID",
        PayoutMarkedFailed => "PAYOUT_MARKED_FAILED",
        PayoutSynced => "PAYOUT_SYNCED",
        PayoutAccountRevealed => "PAYOUT_ACCOUNT_REVEALED",
        AfterSaleRequested => "AFTER_SALE_REQUESTED",
        AfterSaleApproved => "AFTER_SALE_APPROVED",
        AfterSaleRejected => "AFTER_SALE_REJECTED",
        AfterSaleReturnShipped => "AFTER_SALE_RETURN_SHIPPED",
        AfterSaleReturnReceived => "AFTER_SALE_RETURN_RECEIVED",
        AfterSaleClosed => "AFTER_SALE_CLOSED",
        NoteApproved => "NOTE_APPROVED",
        NoteRejected => "NOTE_REJECTED",
        CategoryCreated => "CATEGORY_CREATED",
        CategoryUpdated => "CATEGORY_UPDATED",
        CategoryMoved => "CATEGORY_MOVED",
        CategoryArchived => "CATEGORY_ARCHIVED",
        MerchantCreated => "MERCHANT_CREATED",
        MerchantUserLinked => "MERCHANT_USER_LINKED",
        BrandAssigned => "BRAND_ASSIGNED",
        CouponTemplateCreated => "COUPON_TEMPLATE_CREATED",
        CouponTemplateEnabledSet => "COUPON_TEMPLATE_ENABLED_SET",
        WebhookEndpointCreated => "WEBHOOK_ENDPOINT_CREATED",
        WebhookEndpointUpdated => "WEBHOOK_ENDPOINT_UPDATED",
        WebhookSecretRotated => "WEBHOOK_SECRET_ROTATED",
        WebhookRedelivered => "WEBHOOK_REDELIVERED",
        LevelCreated => "LEVEL_CREATED",
        LevelUpdated => "LEVEL_UPDATED",
        MemberLevelChanged => "MEMBER_LEVEL_CHANGED",
        LevelEvaluationRun => "LEVEL_EVALUATION_RUN",
        PrivilegeRuleCreated => "PRIVILEGE_RULE_CREATED",
        PrivilegeGranted => "PRIVILEGE_GRANTED",
        PrivilegeRevoked => "PRIVILEGE_REVOKED",
        PrizeShipped => "PRIZE_SHIPPED",
        CategoryServiceFeeSet => "CATEGORY_SERVICE_FEE_SET",
        ProductEdited => "PRODUCT_EDITED",
        ProductDraftSubmitted => "PRODUCT_DRAFT_SUBMITTED",
        ProductDraftApproved => "PRODUCT_DRAFT_APPROVED",
        ProductDraftRejected => "PRODUCT_DRAFT_REJECTED",
        SkuStockChanged => "SKU_STOCK_CHANGED",
        SkuPriceChanged => "SKU_PRICE_CHANGED",
        ImageUploaded => "IMAGE_UPLOADED",
    }
}

codes! {
    /// What kind of thing an action was on.
    pub enum TargetType {
        Order => "ORDER",
        OrderLine => "ORDER_LINE",
        Withdrawal => "WITHDRAWAL",
        Member => "MEMBER",
        Product => "PRODUCT",
        Brand => "BRAND",
        Merchant => "MERCHANT",
        Note => "NOTE",
        Category => "CATEGORY",
        CouponTemplate => "COUPON_TEMPLATE",
        WebhookEndpoint => "WEBHOOK_ENDPOINT",
        WebhookDelivery => "WEBHOOK_DELIVERY",
        Level => "LEVEL",
        PrivilegeRule => "PRIVILEGE_RULE",
        Privilege => "PRIVILEGE",
        Image => "IMAGE",
    }
}

/// The entry for an action, to insert in the action's transaction (with [`record`], or in
/// the action's batch of writes).
pub fn entry(
    actor: &Actor,
    action: Action,
    target: Option<(TargetType, Uuid)>,
    arguments: Value,
    at: DateTime<Utc>,
) -> audit_entry::ActiveModel {
    audit_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        actor_id: Set(Some(actor.member)),
        action: Set(action.as_str().to_owned()),
        target_type: Set(target.map(|(t, _)| t.as_str().to_owned())),
        target_id: Set(target.map(|(_, id)| id)),
        arguments: Set(arguments.to_string()),
        client_addr: Set(actor.client.map(|a| a.to_string())),
        at: Set(at),
    }
}

/// The entry for an action of the server itself (no actor, no client address): a level
/// reached or lost, a privilege granted or revoked by the evaluation.
pub fn system_entry(
    action: Action,
    target: Option<(TargetType, Uuid)>,
    arguments: Value,
    at: DateTime<Utc>,
) -> audit_entry::ActiveModel {
    audit_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        actor_id: Set(None),
        action: Set(action.as_str().to_owned()),
        target_type: Set(target.map(|(t, _)| t.as_str().to_owned())),
        target_id: Set(target.map(|(_, id)| id)),
        arguments: Set(arguments.to_string()),
        client_addr: Set(None),
        at: Set(at),
    }
}

/// Writes the entry for an action of `actor`, or of the server itself (`None`); call it
/// inside the action's transaction.
pub async fn record_by(
    db: &impl ConnectionTrait,
    actor: Option<&Actor>,
    action: Action,
    target: Option<(TargetType, Uuid)>,
    arguments: Value,
    at: DateTime<Utc>,
) -> Result<()> {
    let e = match actor {
        Some(a) => entry(a, action, target, arguments, at),
        None => system_entry(action, target, arguments, at),
    };
    audit_entry::Entity::insert(e)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Writes the entry for an action; call it inside the action's transaction, after the
/// action's own writes succeeded.
pub async fn record(
    db: &impl ConnectionTrait,
    actor: &Actor,
    action: Action,
    target: Option<(TargetType, Uuid)>,
    arguments: Value,
    at: DateTime<Utc>,
) -> Result<()> {
    audit_entry::Entity::insert(entry(actor, action, target, arguments, at))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Which entries to list: every given condition must hold.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    pub actor: Option<Uuid>,
    pub action: Option<Action>,
    pub target: Option<Uuid>,
}

/// Entries newest first (by time, then id), narrowed by `filter`.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: Filter,
    after: Option<&NewestCursor>,
    first: u64,
) -> Result<Page<audit_entry::Model>> {
    let mut q = audit_entry::Entity::find();
    if let Some(actor) = filter.actor {
        q = q.filter(audit_entry::Column::ActorId.eq(actor));
    }
    if let Some(action) = filter.action {
        q = q.filter(audit_entry::Column::Action.eq(action.as_str()));
    }
    if let Some(target) = filter.target {
        q = q.filter(audit_entry::Column::TargetId.eq(target));
    }
    newest_first(
        db,
        q,
        audit_entry::Column::At,
        audit_entry::Column::Id,
        after,
        first,
    )
    .await
}

/// The stored arguments of an entry, as JSON (an object; `{}` if unreadable, which only a
/// hand-written row could be).
pub fn arguments_of(row: &audit_entry::Model) -> Value {
    serde_json::from_str(&row.arguments).unwrap_or_else(|e| {
        tracing::warn!(error = %e, entry = %row.id, "audit entry arguments are not JSON");
        Value::Object(Default::default())
    })
}

/// The action of a stored row (a code this build does not know is an internal error: the
/// codes are only ever written by [`entry`]).
pub fn action_of(row: &audit_entry::Model) -> Result<Action> {
    Action::parse(&row.action)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("unknown audit action {}", row.action)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
        }
        for t in TargetType::ALL {
            assert_eq!(TargetType::parse(t.as_str()), Some(*t));
        }
        assert_eq!(Action::parse("NOPE"), None);
    }
}
