//! The audit log in GraphQL: `auditLog`, for admins only, newest first. There is no
//! mutation: entries are written by the staff actions themselves, in their transactions
//! ([`crate::service::audit`]).

use async_graphql::{Context, Enum, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::audit_entry;

use crate::graphql::context::{state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{ConnectionOf, PageArgs};
use crate::graphql::scalars::JsonValue;
use crate::service::audit::{self as svc, Action, TargetType};
use crate::service::page::NewestCursor;

/// What a staff member did. One value per staff mutation (a settlement run and a binding
/// expiry run are each one entry, however many rows they touched).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// `confirmPayment`.
    PaymentConfirmed,
    /// `shipOrder` (arguments: its parcels — carrier, tracking number, lines — and whether
    /// the order has shipped whole).
    OrderShipped,
    /// `refundOrderLine`.
    OrderLineRefunded,
    /// `runSettlement` (arguments: `asOf`, and what it settled).
    SettlementRun,
    /// `reviewWithdrawal(approve: true)`.
    WithdrawalApproved,
    /// `reviewWithdrawal(approve: false)`.
    WithdrawalRejected,
    /// `freezeMember` (arguments: the reason).
    MemberFrozen,
    /// `unfreezeMember` (arguments: the freeze it lifted).
    MemberUnfrozen,
    /// `approvePartner`.
    PartnerApproved,
    /// `rejectPartner`.
    PartnerRejected,
    /// `rebindMember` (arguments: the new and the previous upline).
    MemberRebound,
    /// `expireBindings` (arguments: how many ended).
    BindingsExpired,
    /// `createBrand`.
    BrandCreated,
    /// `submitProduct`.
    ProductSubmitted,
    /// `resubmitProduct`.
    ProductResubmitted,
    /// `recordCurationStage`.
    CurationStageRecorded,
    /// `scoreProduct`.
    ProductScored,
    /// `publishProduct`.
    ProductPublished,
    /// `unpublishProduct` (arguments: the reason).
    ProductUnpublished,
    /// `setShippingRule` (arguments: the rule set, and the `previous` one or null).
    ShippingRuleSet,
    /// `refundOrderLine` of an order paid through a provider: a refund requested from it
    /// (target: the line; arguments: the refund, quantity, amount, channel, key).
    RefundRequested,
    /// `retryRefund` (target: the line; arguments: the refund, the attempt).
    RefundRetried,
    /// `syncRefund` that changed the refund (target: the line; arguments: the refund, its
    /// new status).
    RefundSynced,
    /// `markPayoutPaid` (arguments: the bank reference, member, amount).
    PayoutMarkedPaid,
    /// `markPayoutFailed` (arguments: the reason, member, amount).
    PayoutMarkedFailed,
    /// `syncPayout` (arguments: what the provider said, whether the transfer was re-sent).
    PayoutSynced,
    /// `revealPayoutAccount`: an admin read a MANUAL payout's full bank card.
    PayoutAccountRevealed,
    /// `requestAfterSale`, by the buyer (target: the line; arguments: the after-sale, kind,
    /// quantity, key).
    AfterSaleRequested,
    /// `reviewAfterSale(approve: true)` (target: the line; arguments: the after-sale, the
    /// note; for a refund-only request also the refund started).
    AfterSaleApproved,
    /// `reviewAfterSale(approve: false)` (target: the line; arguments: the after-sale, the
    /// note).
    AfterSaleRejected,
    /// `submitReturnShipment`, by the buyer (arguments: the after-sale, carrier, tracking
    /// number).
    AfterSaleReturnShipped,
    /// `receiveReturn` (arguments: the after-sale, the refund started).
    AfterSaleReturnReceived,
    /// The server closed an approved return the buyer did not ship within 7 days (no
    /// actor).
    AfterSaleClosed,
    /// `reviewNote(approve: true)` (target: the note; arguments: what was approved — an
    /// edit, or a note hidden by reports shown again — and the reason, if any).
    NoteApproved,
    /// `reviewNote(approve: false)` (target: the note; arguments: the reason, and whether
    /// an edit was refused or a reported note taken down).
    NoteRejected,
    /// `createCategory` (arguments: the category as created).
    CategoryCreated,
    /// `updateCategory` (arguments: the fields changed, each with its `previous` value).
    CategoryUpdated,
    /// `moveCategory` (arguments: the new and the previous parent and position).
    CategoryMoved,
    /// `archiveCategory`.
    CategoryArchived,
    /// `createMerchant` (arguments: its name).
    MerchantCreated,
    /// `linkMerchantUser` (target: the member; arguments: the merchant and the previous
    /// one, if any).
    MerchantUserLinked,
    /// `assignBrand` (target: the brand; arguments: the new and the previous merchant).
    BrandAssigned,
    /// `createCouponTemplate` (target: the template; arguments: its main terms).
    CouponTemplateCreated,
    /// `setCouponTemplateEnabled` (arguments: `enabled`).
    CouponTemplateEnabledSet,
    /// `createWebhookEndpoint` (target: the endpoint; arguments: its URL and events; never
    /// the secret).
    WebhookEndpointCreated,
    /// `updateWebhookEndpoint` (arguments: the fields changed, each with its `previous`
    /// value).
    WebhookEndpointUpdated,
    /// `rotateWebhookSecret` (arguments: the grace and until when the previous secret signs;
    /// never a secret).
    WebhookSecretRotated,
    /// `redeliver` (target: the delivery; arguments: the event and the previous status).
    WebhookRedelivered,
    /// `createLevel` (target: the level; arguments: its conditions).
    LevelCreated,
    /// `updateLevel` (target: the level; arguments: its new conditions and the previous).
    LevelUpdated,
    /// A member reached or lost a level (target: the member; arguments: the previous and
    /// the new level, the sales that decided it). Written by the server (no actor) when
    /// the evaluation moves a member.
    MemberLevelChanged,
    /// `runLevelEvaluation` (arguments: how many members were evaluated).
    LevelEvaluationRun,
    /// `createPrivilegeRule` (target: the rule; arguments: its terms).
    PrivilegeRuleCreated,
    /// A privilege granted (target: the grant; arguments: rule, member, period, source, and
    /// the coupons of a pack). By `grantPrivilege` (the admin is the actor) or by the
    /// level evaluation (no actor).
    PrivilegeGranted,
    /// A privilege revoked (target: the grant): by `revokePrivilege`, or by the server when
    /// the member lost the level or partner status a badge came with.
    PrivilegeRevoked,
    /// `shipPrize` (target: the prize's grant; arguments: carrier, tracking number).
    PrizeShipped,
    /// `setCategoryServiceFee` (arguments: the rate and the `previous` one or null).
    CategoryServiceFeeSet,
    /// `updateProductDraft` on a product not listed yet: its content changed directly (arguments: the fields).
    ProductEdited,
    /// `updateProductDraft` on a listed product: its working copy, for curation (arguments: the fields).
    ProductDraftSubmitted,
    /// `reviewProductDraft(approve: true)`: the working copy replaced the listed version.
    ProductDraftApproved,
    /// `reviewProductDraft(approve: false)` (arguments: the reason).
    ProductDraftRejected,
    /// `updateProductDraft` changed a SKU's stock directly (arguments: the SKU, the change, the stock before and after).
    SkuStockChanged,
    /// `updateProductDraft` changed a SKU's price directly (arguments: the SKU, the price and the previous one).
    SkuPriceChanged,
    /// A merchant's user or an admin uploaded an image (target: the image; arguments: its purpose, size and dimensions).
    ImageUploaded,
}

impl From<Action> for AuditAction {
    fn from(a: Action) -> Self {
        match a {
            Action::PaymentConfirmed => AuditAction::PaymentConfirmed,
            Action::OrderShipped => AuditAction::OrderShipped,
            Action::OrderLineRefunded => AuditAction::OrderLineRefunded,
            Action::SettlementRun => AuditAction::SettlementRun,
            Action::WithdrawalApproved => AuditAction::WithdrawalApproved,
            Action::WithdrawalRejected => AuditAction::WithdrawalRejected,
            Action::MemberFrozen => AuditAction::MemberFrozen,
            Action::MemberUnfrozen => AuditAction::MemberUnfrozen,
            Action::PartnerApproved => AuditAction::PartnerApproved,
            Action::PartnerRejected => AuditAction::PartnerRejected,
            Action::MemberRebound => AuditAction::MemberRebound,
            Action::BindingsExpired => AuditAction::BindingsExpired,
            Action::BrandCreated => AuditAction::BrandCreated,
            Action::ProductSubmitted => AuditAction::ProductSubmitted,
            Action::ProductResubmitted => AuditAction::ProductResubmitted,
            Action::CurationStageRecorded => AuditAction::CurationStageRecorded,
            Action::ProductScored => AuditAction::ProductScored,
            Action::ProductPublished => AuditAction::ProductPublished,
            Action::ProductUnpublished => AuditAction::ProductUnpublished,
            Action::ShippingRuleSet => AuditAction::ShippingRuleSet,
            Action::RefundRequested => AuditAction::RefundRequested,
            Action::RefundRetried => AuditAction::RefundRetried,
            Action::RefundSynced => AuditAction::RefundSynced,
            Action::PayoutMarkedPaid => AuditAction::PayoutMarkedPaid,
            Action::PayoutMarkedFailed => AuditAction::PayoutMarkedFailed,
            Action::PayoutSynced => AuditAction::PayoutSynced,
            Action::PayoutAccountRevealed => AuditAction::PayoutAccountRevealed,
            Action::AfterSaleRequested => AuditAction::AfterSaleRequested,
            Action::AfterSaleApproved => AuditAction::AfterSaleApproved,
            Action::AfterSaleRejected => AuditAction::AfterSaleRejected,
            Action::AfterSaleReturnShipped => AuditAction::AfterSaleReturnShipped,
            Action::AfterSaleReturnReceived => AuditAction::AfterSaleReturnReceived,
            Action::AfterSaleClosed => AuditAction::AfterSaleClosed,
            Action::NoteApproved => AuditAction::NoteApproved,
            Action::NoteRejected => AuditAction::NoteRejected,
            Action::CategoryCreated => AuditAction::CategoryCreated,
            Action::CategoryUpdated => AuditAction::CategoryUpdated,
            Action::CategoryMoved => AuditAction::CategoryMoved,
            Action::CategoryArchived => AuditAction::CategoryArchived,
            Action::MerchantCreated => AuditAction::MerchantCreated,
            Action::MerchantUserLinked => AuditAction::MerchantUserLinked,
            Action::BrandAssigned => AuditAction::BrandAssigned,
            Action::CouponTemplateCreated => AuditAction::CouponTemplateCreated,
            Action::CouponTemplateEnabledSet => AuditAction::CouponTemplateEnabledSet,
            Action::WebhookEndpointCreated => AuditAction::WebhookEndpointCreated,
            Action::WebhookEndpointUpdated => AuditAction::WebhookEndpointUpdated,
            Action::WebhookSecretRotated => AuditAction::WebhookSecretRotated,
            Action::WebhookRedelivered => AuditAction::WebhookRedelivered,
            Action::LevelCreated => AuditAction::LevelCreated,
            Action::LevelUpdated => AuditAction::LevelUpdated,
            Action::MemberLevelChanged => AuditAction::MemberLevelChanged,
            Action::LevelEvaluationRun => AuditAction::LevelEvaluationRun,
            Action::PrivilegeRuleCreated => AuditAction::PrivilegeRuleCreated,
            Action::PrivilegeGranted => AuditAction::PrivilegeGranted,
            Action::PrivilegeRevoked => AuditAction::PrivilegeRevoked,
            Action::PrizeShipped => AuditAction::PrizeShipped,
            Action::CategoryServiceFeeSet => AuditAction::CategoryServiceFeeSet,
            Action::ProductEdited => AuditAction::ProductEdited,
            Action::ProductDraftSubmitted => AuditAction::ProductDraftSubmitted,
            Action::ProductDraftApproved => AuditAction::ProductDraftApproved,
            Action::ProductDraftRejected => AuditAction::ProductDraftRejected,
            Action::SkuStockChanged => AuditAction::SkuStockChanged,
            Action::SkuPriceChanged => AuditAction::SkuPriceChanged,
            Action::ImageUploaded => AuditAction::ImageUploaded,
        }
    }
}

impl From<AuditAction> for Action {
    fn from(a: AuditAction) -> Self {
        match a {
            AuditAction::PaymentConfirmed => Action::PaymentConfirmed,
            AuditAction::OrderShipped => Action::OrderShipped,
            AuditAction::OrderLineRefunded => Action::OrderLineRefunded,
            AuditAction::SettlementRun => Action::SettlementRun,
            AuditAction::WithdrawalApproved => Action::WithdrawalApproved,
            AuditAction::WithdrawalRejected => Action::WithdrawalRejected,
            AuditAction::MemberFrozen => Action::MemberFrozen,
            AuditAction::MemberUnfrozen => Action::MemberUnfrozen,
            AuditAction::PartnerApproved => Action::PartnerApproved,
            AuditAction::PartnerRejected => Action::PartnerRejected,
            AuditAction::MemberRebound => Action::MemberRebound,
            AuditAction::BindingsExpired => Action::BindingsExpired,
            AuditAction::BrandCreated => Action::BrandCreated,
            AuditAction::ProductSubmitted => Action::ProductSubmitted,
            AuditAction::ProductResubmitted => Action::ProductResubmitted,
            AuditAction::CurationStageRecorded => Action::CurationStageRecorded,
            AuditAction::ProductScored => Action::ProductScored,
            AuditAction::ProductPublished => Action::ProductPublished,
            AuditAction::ProductUnpublished => Action::ProductUnpublished,
            AuditAction::ShippingRuleSet => Action::ShippingRuleSet,
            AuditAction::RefundRequested => Action::RefundRequested,
            AuditAction::RefundRetried => Action::RefundRetried,
            AuditAction::RefundSynced => Action::RefundSynced,
            AuditAction::PayoutMarkedPaid => Action::PayoutMarkedPaid,
            AuditAction::PayoutMarkedFailed => Action::PayoutMarkedFailed,
            AuditAction::PayoutSynced => Action::PayoutSynced,
            AuditAction::PayoutAccountRevealed => Action::PayoutAccountRevealed,
            AuditAction::AfterSaleRequested => Action::AfterSaleRequested,
            AuditAction::AfterSaleApproved => Action::AfterSaleApproved,
            AuditAction::AfterSaleRejected => Action::AfterSaleRejected,
            AuditAction::AfterSaleReturnShipped => Action::AfterSaleReturnShipped,
            AuditAction::AfterSaleReturnReceived => Action::AfterSaleReturnReceived,
            AuditAction::AfterSaleClosed => Action::AfterSaleClosed,
            AuditAction::NoteApproved => Action::NoteApproved,
            AuditAction::NoteRejected => Action::NoteRejected,
            AuditAction::CategoryCreated => Action::CategoryCreated,
            AuditAction::CategoryUpdated => Action::CategoryUpdated,
            AuditAction::CategoryMoved => Action::CategoryMoved,
            AuditAction::CategoryArchived => Action::CategoryArchived,
            AuditAction::MerchantCreated => Action::MerchantCreated,
            AuditAction::MerchantUserLinked => Action::MerchantUserLinked,
            AuditAction::BrandAssigned => Action::BrandAssigned,
            AuditAction::CouponTemplateCreated => Action::CouponTemplateCreated,
            AuditAction::CouponTemplateEnabledSet => Action::CouponTemplateEnabledSet,
            AuditAction::WebhookEndpointCreated => Action::WebhookEndpointCreated,
            AuditAction::WebhookEndpointUpdated => Action::WebhookEndpointUpdated,
            AuditAction::WebhookSecretRotated => Action::WebhookSecretRotated,
            AuditAction::WebhookRedelivered => Action::WebhookRedelivered,
            AuditAction::LevelCreated => Action::LevelCreated,
            AuditAction::LevelUpdated => Action::LevelUpdated,
            AuditAction::MemberLevelChanged => Action::MemberLevelChanged,
            AuditAction::LevelEvaluationRun => Action::LevelEvaluationRun,
            AuditAction::PrivilegeRuleCreated => Action::PrivilegeRuleCreated,
            AuditAction::PrivilegeGranted => Action::PrivilegeGranted,
            AuditAction::PrivilegeRevoked => Action::PrivilegeRevoked,
            AuditAction::PrizeShipped => Action::PrizeShipped,
            AuditAction::CategoryServiceFeeSet => Action::CategoryServiceFeeSet,
            AuditAction::ProductEdited => Action::ProductEdited,
            AuditAction::ProductDraftSubmitted => Action::ProductDraftSubmitted,
            AuditAction::ProductDraftApproved => Action::ProductDraftApproved,
            AuditAction::ProductDraftRejected => Action::ProductDraftRejected,
            AuditAction::SkuStockChanged => Action::SkuStockChanged,
            AuditAction::SkuPriceChanged => Action::SkuPriceChanged,
            AuditAction::ImageUploaded => Action::ImageUploaded,
        }
    }
}

/// The global-ID kind of an audit target.
fn kind_of(t: TargetType) -> Kind {
    match t {
        TargetType::Order => Kind::Order,
        TargetType::OrderLine => Kind::OrderLine,
        TargetType::Withdrawal => Kind::Withdrawal,
        TargetType::Member => Kind::Member,
        TargetType::Product => Kind::Product,
        TargetType::Brand => Kind::Brand,
        TargetType::Merchant => Kind::Merchant,
        TargetType::Note => Kind::Note,
        TargetType::Category => Kind::Category,
        TargetType::CouponTemplate => Kind::CouponTemplate,
        TargetType::WebhookEndpoint => Kind::WebhookEndpoint,
        TargetType::WebhookDelivery => Kind::WebhookDelivery,
        TargetType::Level => Kind::Level,
        TargetType::PrivilegeRule => Kind::PrivilegeRule,
        TargetType::Privilege => Kind::Privilege,
        TargetType::Image => Kind::Image,
    }
}

/// One staff action, as it committed.
pub struct AuditEntry(pub audit_entry::Model);

/// One staff action: who, what, on what, with which arguments, when, from where. Entries
/// are never changed or removed (the database refuses it).
#[Object]
impl AuditEntry {
    /// The entry's own id (entries are not nodes: read them through `auditLog`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The staff member who acted (a `Member` global ID); null for the server itself.
    async fn actor_id(&self) -> Option<ID> {
        self.0.actor_id.map(|id| ids::encode(Kind::Member, id))
    }
    /// What was done (one value per staff mutation).
    async fn action(&self) -> Result<AuditAction> {
        Ok(svc::action_of(&self.0)?.into())
    }
    /// The global ID of what the action was on (an `Order`, `OrderLine`, `Withdrawal`,
    /// `Member`, `Product`, `Brand`, `Merchant` or `Note`: usable with `node(id:)`); null for
    /// `Member`, `Product`, `Brand`, `Merchant` or `Category`: usable with `node(id:)`); null for
    /// actions on no one thing (a settlement run).
    async fn target_id(&self) -> Option<ID> {
        let kind = TargetType::parse(self.0.target_type.as_deref()?)?;
        Some(ids::encode(kind_of(kind), self.0.target_id?))
    }
    /// The arguments that matter, as a JSON object (ids in it are database UUIDs).
    async fn arguments(&self) -> JsonValue {
        JsonValue(svc::arguments_of(&self.0))
    }
    /// The client's address as the server saw it (behind trusted proxies, the forwarded
    /// client's).
    async fn client_address(&self) -> Option<&str> {
        self.0.client_addr.as_deref()
    }
    /// When the action committed (the server's clock).
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}

pub type AuditEntryConnection = ConnectionOf<NewestCursor, AuditEntry>;

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// ADMIN: the audit log of staff actions, newest first, optionally narrowed to one actor
    /// (a `Member` ID), one action, or one target (any global ID an entry's `targetId` can
    /// be). Nobody can change or remove an entry.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
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
        #[graphql(desc = "Only this staff member's actions (a `Member` or `MemberProfile` ID).")]
        actor_id: Option<ID>,
        #[graphql(desc = "Only entries of this action.")] action: Option<AuditAction>,
        #[graphql(desc = "Only entries about this object (any global ID, as entries' \
                          `targetId` give them).")]
        target_id: Option<ID>,
    ) -> Result<AuditEntryConnection> {
        viewer(ctx)?.admin()?;
        let args = PageArgs::parse(first, after)?;
        let filter = svc::Filter {
            actor: actor_id
                .map(|id| ids::decode_member(&id, "actorId"))
                .transpose()?,
            action: action.map(Into::into),
            target: target_id
                .map(|id| ids::decode(&id, "targetId").map(|(_, id)| id))
                .transpose()?,
        };
        let page = svc::list(&state(ctx)?.db, filter, args.after(), args.first).await?;
        Ok(args.connection(page, |e| NewestCursor::of(e.at, e.id), AuditEntry))
    }
}
