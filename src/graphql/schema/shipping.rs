//! Shipping rules in GraphQL, for admins: `setShippingRule`, `shippingRules`, and
//! `Merchant.shippingRule`. What a rule charges is [`crate::service::shipping`]'s.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::addresses::Region;
use super::catalog::Merchant;
use crate::error::Error;
use crate::graphql::context::{actor, load_err, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{Loaders, MerchantKey, ShippingRuleOf};
use crate::graphql::pagination::{ConnectionOf, PageArgs};
use crate::graphql::scalars::Dec;
use crate::service::page::NewestCursor;
use crate::service::regions::{self, Level};
use crate::service::shipping::{self as svc, RuleInput, SurchargeInput};

/// A merchant's shipping rule: what the platform charges for the parcel of that merchant's
/// lines in an order (one parcel per merchant). The fee of a parcel is the base fee — waived
/// when the subtotal of the merchant's lines reaches `freeThreshold` (满 X 包邮: a subtotal
/// equal to the threshold ships free) — plus the surcharge of the destination province, if the
/// rule names it. The surcharge is charged even when the base fee is waived (包邮，偏远地区除外).
/// A merchant without a rule ships free. Shipping is never part of an earning's base.
pub struct ShippingRule(pub svc::Rule);

/// A merchant's shipping rule: a base fee per parcel, waived from a subtotal, plus
/// surcharges for remote provinces. A merchant without a rule ships free.
#[Object]
impl ShippingRule {
    /// The merchant whose parcels the rule prices.
    async fn merchant(&self, ctx: &Context<'_>) -> Result<Merchant> {
        let id = self.0.row.merchant_id;
        let found = ctx
            .data::<Loaders>()?
            .load_one(MerchantKey(id))
            .await
            .map_err(load_err)?;
        found.map(Merchant).ok_or_else(|| {
            Error::internal(anyhow::anyhow!("shipping rule of missing merchant {id}")).into()
        })
    }
    /// The flat fee per parcel.
    async fn base_fee(&self) -> Dec {
        self.0.row.base_fee.into()
    }
    /// From this subtotal of the merchant's lines on, the base fee is waived; null: never.
    async fn free_threshold(&self) -> Option<Dec> {
        self.0.row.free_threshold.map(Into::into)
    }
    /// Surcharges for parcels to remote provinces, by province code.
    async fn surcharges(&self) -> Vec<ShippingSurcharge> {
        self.0
            .surcharges
            .iter()
            .map(|(code, amount)| ShippingSurcharge {
                province: province(code),
                amount: (*amount).into(),
            })
            .collect()
    }
    /// When the rule was first set.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.row.created_at
    }
    /// When the rule was last replaced (equal to `createdAt` if never).
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.row.updated_at
    }
    /// The admin who set the rule last (a `Member` ID).
    async fn updated_by(&self) -> ID {
        ids::encode(Kind::Member, self.0.row.updated_by)
    }
}

/// The region of a stored province code (the code alone if a later list dropped it).
fn province(code: &str) -> Region {
    regions::find(Level::Province, code).map_or_else(
        || Region {
            code: code.to_owned(),
            name: code.to_owned(),
            level: super::addresses::RegionLevel::Province,
            parent_code: None,
        },
        Region::of,
    )
}

/// What a parcel to one province costs on top of the base fee.
#[derive(SimpleObject)]
pub struct ShippingSurcharge {
    /// The destination province.
    pub province: Region,
    /// Added to each of the merchant's parcels to that province, in yuan (two decimals).
    pub amount: Dec,
}

/// A whole shipping rule; it replaces the merchant's previous rule. Every bad field is
/// reported in one `VALIDATION` error (`extensions.fields`: `input.baseFee`,
/// `input.surcharges[0].provinceCodes[1]`, …).
#[derive(InputObject)]
pub struct ShippingRuleInput {
    /// The flat fee per parcel: 0.00 to 1000.00.
    pub base_fee: Dec,
    /// The subtotal of the merchant's lines from which the base fee is waived: 0.01 to
    /// 1000000.00; null: never waived.
    pub free_threshold: Option<Dec>,
    /// Remote-province surcharges; a province at most once.
    #[graphql(default)]
    pub surcharges: Vec<ShippingSurchargeInput>,
}

/// One surcharge for one or more provinces.
#[derive(InputObject)]
pub struct ShippingSurchargeInput {
    /// Six-digit province codes, e.g. `["650000", "540000"]` (新疆, 西藏).
    pub province_codes: Vec<String>,
    /// 0.01 to 1000.00.
    pub amount: Dec,
}

impl From<ShippingRuleInput> for RuleInput {
    fn from(i: ShippingRuleInput) -> RuleInput {
        RuleInput {
            base_fee: i.base_fee.0,
            free_threshold: i.free_threshold.map(|d| d.0),
            surcharges: i
                .surcharges
                .into_iter()
                .map(|s| SurchargeInput {
                    province_codes: s.province_codes,
                    amount: s.amount.0,
                })
                .collect(),
        }
    }
}

/// `Merchant.shippingRule`: admins only; null when the merchant has none (free shipping).
pub(crate) async fn rule_of(
    ctx: &Context<'_>,
    merchant_id: uuid::Uuid,
) -> Result<Option<ShippingRule>> {
    viewer(ctx)?.admin()?;
    Ok(ctx
        .data::<Loaders>()?
        .load_one(ShippingRuleOf(merchant_id))
        .await
        .map_err(load_err)?
        .map(ShippingRule))
}

pub type ShippingRuleConnection = ConnectionOf<NewestCursor, ShippingRule>;

#[derive(Default)]
pub struct ShippingQuery;

#[Object]
impl ShippingQuery {
    /// ADMIN: every merchant's shipping rule, newest first (by when it was first set).
    /// Merchants without one ship free.
    async fn shipping_rules(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Page size: at most this many edges (default 20, capped at 100; \
                          negative is `VALIDATION`)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "The previous page's last `cursor` (or `pageInfo.endCursor`) to \
                          continue after; omit for the first page. A malformed cursor is \
                          `VALIDATION`."
        )]
        after: Option<String>,
    ) -> Result<ShippingRuleConnection> {
        viewer(ctx)?.admin()?;
        let args = PageArgs::parse(first, after)?;
        let page = svc::list(&state(ctx)?.db, args.after(), args.first).await?;
        Ok(args.connection(
            page,
            |r| NewestCursor {
                created_at: r.row.created_at,
                id: r.row.merchant_id,
            },
            ShippingRule,
        ))
    }
}

#[derive(Default)]
pub struct ShippingMutation;

#[Object]
impl ShippingMutation {
    /// ADMIN: sets a merchant's shipping rule, replacing the one it had. Audited
    /// (`SHIPPING_RULE_SET`, with the rule it replaced). Unknown merchant: `NOT_FOUND`.
    async fn set_shipping_rule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The merchant's `Merchant` ID.")] merchant_id: ID,
        #[graphql(desc = "The whole rule; every bad field is reported at once.")]
        input: ShippingRuleInput,
    ) -> Result<ShippingRule> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let merchant = ids::decode_as(&merchant_id, Kind::Merchant, "merchantId")?;
        let rule = svc::set_rule(
            &st.db,
            &actor(ctx, admin),
            merchant,
            &input.into(),
            st.clock.now(),
        )
        .await?;
        Ok(ShippingRule(rule))
    }
}
