//! The merchants' side in GraphQL (issue #31, items 2 and 4): `myMerchant` (statements,
//! sales, stock alerts, working copies) for the members who act for a merchant, their
//! `updateProductDraft`, the curators' `productDraftQueue` and `reviewProductDraft`, and the
//! admins' `setCategoryServiceFee` and `merchantStatement`. The rules are the services'
//! ([`crate::service::statements`], [`crate::service::merchant_products`]).

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Duration, Utc};
use entity::{category_service_fee, member, merchant, product_draft};

use super::catalog::{Category, Merchant, Product, Sku};
use crate::error::Error;
use crate::graphql::context::{actor, load_err, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{CategoryKey, Loaders};
use crate::graphql::scalars::{Dec, DecArg};
use crate::service::merchant_products as drafts;
use crate::service::statements::{self as svc, Month, Statement, Totals};

/// Most months `statements` lists.
const MAX_MONTHS: i32 = 36;

fn window(ctx: &Context<'_>) -> Result<Duration> {
    Ok(Duration::days(i64::from(
        state(ctx)?.config.policy.return_window_days,
    )))
}

/// The merchant the viewer acts for: `FORBIDDEN` to anyone who acts for none (admins and
/// curators included: they see statements through `merchantStatement`).
fn own_merchant<'a>(ctx: &Context<'a>) -> Result<(&'a member::Model, uuid::Uuid)> {
    let m = viewer(ctx)?.member()?;
    match (m.staff_role, m.merchant_id) {
        (Some(member::StaffRole::Merchant), Some(id)) => Ok((m, id)),
        _ => Err(Error::Forbidden("requires the MERCHANT role".into()).into()),
    }
}

/// The figures of a statement or of one category in it.
#[derive(SimpleObject)]
pub struct StatementFigures {
    /// Units of the settled lines sold.
    pub units_sold: i64,
    /// What buyers paid for them (after coupons; shipping is never part of it).
    pub sales: Dec,
    /// Units refunded (refunds the provider confirmed).
    pub units_refunded: i64,
    /// What was paid back.
    pub refunds: Dec,
    /// The platform's service fee: the sales' fees less the refunds' (each rounded half up
    /// to the fen, per line).
    pub service_fee: Dec,
    /// What the platform owes the merchant: `sales − refunds − serviceFee` (negative when
    /// refunds outweigh the month's sales; set off against the next).
    pub payable: Dec,
}

impl From<Totals> for StatementFigures {
    fn from(t: Totals) -> Self {
        StatementFigures {
            units_sold: t.units_sold,
            sales: t.sales.into(),
            units_refunded: t.units_refunded,
            refunds: t.refunds.into(),
            service_fee: t.service_fee.into(),
            payable: t.payable.into(),
        }
    }
}

/// A statement's figures for one (leaf) category.
pub struct StatementCategory(svc::CategoryTotals);

/// A statement's figures for one (leaf) category.
#[Object]
impl StatementCategory {
    /// The category of the lines' products.
    async fn category(&self, ctx: &Context<'_>) -> Result<Category> {
        let found = ctx
            .data::<Loaders>()?
            .load_one(CategoryKey(self.0.category_id))
            .await
            .map_err(load_err)?;
        found
            .map(Category)
            .ok_or_else(|| Error::not_found("category").into())
    }
    /// Its figures.
    async fn figures(&self) -> StatementFigures {
        self.0.totals.into()
    }
}

/// A merchant's statement (对账单) of one month: the sales of its completed, settled order
/// lines, their refunds, the platform's service fee and what is payable. Months are
/// Asia/Shanghai calendar months. A line counts once its order completed and the return
/// window passed with no after-sale open on it; its sale is in the month its order
/// completed, a refund in the later of that month and its own. Read-only; every figure is
/// exact to the fen. The fee of each line is its amount × its category's service fee rate
/// (the rate in force when the order was paid: the leaf category's, else its parent's, else
/// 0), rounded half up to the fen per line; a refund gives its fee back the same way. So
/// the CSV's lines add up to the totals exactly.
pub struct MerchantStatement(Statement);

/// A merchant's statement (对账单) of one Asia/Shanghai month: settled sales, refunds, the service fee (per line, half up to the fen) and the payable amount.
#[Object]
impl MerchantStatement {
    /// The month, `YYYY-MM` (Asia/Shanghai).
    async fn period(&self) -> String {
        self.0.month.to_string()
    }
    /// Its first instant (00:00 Asia/Shanghai on the 1st).
    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.month.start()
    }
    /// The first instant of the next month.
    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.month.end()
    }
    /// The merchant.
    async fn merchant_id(&self) -> ID {
        ids::encode(Kind::Merchant, self.0.merchant_id)
    }
    /// The month's figures.
    async fn totals(&self) -> StatementFigures {
        self.0.totals.into()
    }
    /// The figures per category, in category id order.
    async fn categories(&self) -> Vec<StatementCategory> {
        self.0
            .categories
            .iter()
            .cloned()
            .map(StatementCategory)
            .collect()
    }
    /// The statement as CSV text (RFC 4180, UTF-8, CRLF line ends): a header row
    /// (`month,kind,at,order_id,order_line_id,refund_id,product_id,product_name,sku_id,
    /// sku_name,category_id,units,amount,fee_rate,fee,payable`), one row per sale or refund
    /// (`kind` `SALE`/`REFUND`; ids as UUIDs; money in CNY with two decimals; a refund's
    /// units, amount, fee and payable negative; `fee_rate` as a decimal), then a `TOTAL` row
    /// whose `units`, `amount`, `fee` and `payable` are the sums of the rows above, to the
    /// fen. A frontend offers it as a download (a `Blob` saved as
    /// `statement-2026-12.csv`): a field rather than a second, cookie-less HTTP route, so
    /// the token, the roles and the rules stay the API's. Text that a spreadsheet would
    /// read as a formula is prefixed with `'`.
    async fn csv(&self) -> String {
        self.0.csv()
    }
}

/// A SKU running low.
pub struct StockAlert(svc::StockAlert);

/// A SKU of the merchant's running low.
#[Object]
impl StockAlert {
    /// The SKU (its `stock` is what is left).
    async fn sku(&self) -> Sku {
        Sku(self.0.sku.clone())
    }
    /// Its product.
    async fn product(&self) -> Product {
        Product::of(self.0.product.clone())
    }
    /// Units in stock.
    async fn stock(&self) -> i32 {
        self.0.sku.stock
    }
}

/// A new SKU in a working copy.
#[derive(SimpleObject)]
pub struct DraftSku {
    /// Its name.
    pub name: String,
    /// Its price.
    pub price: Dec,
    /// Its stock once approved.
    pub stock: i32,
}

/// A SKU renamed in a working copy.
#[derive(SimpleObject)]
pub struct DraftSkuName {
    /// The SKU.
    pub sku_id: ID,
    /// Its name once approved.
    pub name: String,
}

/// Where a working copy stands.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum ProductDraftStatus {
    /// Waiting for a curator.
    Pending,
    /// Sent back by a curator (`reviewReason`); the next edit makes it pending again.
    Rejected,
}

/// A listed product's working copy: the content and rates it will have once a curator
/// approves it. The listed version stays on sale, unchanged, until then.
pub struct ProductDraft(drafts::DraftRow);

/// A listed product's working copy, waiting for a curator; the listed version stays on sale until it is approved.
#[Object]
impl ProductDraft {
    /// The product (as listed now).
    async fn product_id(&self) -> ID {
        ids::encode(Kind::Product, self.0.row.product_id)
    }
    /// `PENDING` or `REJECTED`.
    async fn status(&self) -> ProductDraftStatus {
        match self.0.row.status {
            product_draft::Status::Pending => ProductDraftStatus::Pending,
            product_draft::Status::Rejected => ProductDraftStatus::Rejected,
        }
    }
    /// The curator's reason, when rejected.
    async fn review_reason(&self) -> Option<&str> {
        self.0.row.review_reason.as_deref()
    }
    /// The product's name once the copy is approved.
    async fn name(&self) -> &str {
        &self.0.draft.name
    }
    /// The product's description once the copy is approved (null: none).
    async fn description(&self) -> Option<&str> {
        self.0.draft.description.as_deref()
    }
    /// Level-1 rebate rate.
    async fn rebate_rate(&self) -> Dec {
        entity::Rate::from_bp(self.0.draft.rebate_rate_bp).into()
    }
    /// Level-2 rebate rate.
    async fn team_rebate_rate(&self) -> Dec {
        entity::Rate::from_bp(self.0.draft.team_rebate_rate_bp).into()
    }
    /// SKUs renamed.
    async fn sku_names(&self) -> Vec<DraftSkuName> {
        self.0
            .draft
            .sku_names
            .iter()
            .map(|(id, name)| DraftSkuName {
                sku_id: ids::encode(Kind::Sku, *id),
                name: name.clone(),
            })
            .collect()
    }
    /// SKUs to add.
    async fn new_skus(&self) -> Vec<DraftSku> {
        self.0
            .draft
            .new_skus
            .iter()
            .map(|s| DraftSku {
                name: s.name.clone(),
                price: entity::Money::from_fen(s.price_fen).into(),
                stock: s.stock,
            })
            .collect()
    }
    /// The product's image URLs once the copy is approved, in display order (absolute, as
    /// `ProductImage.url`); null when the copy leaves the images as listed.
    async fn image_urls(&self) -> Option<Vec<String>> {
        self.0.draft.images.clone()
    }
    /// When it was last edited.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.row.updated_at
    }
}

/// What `updateProductDraft` and `reviewProductDraft` answer.
pub struct ProductDraftPayload(drafts::Edited);

/// What `updateProductDraft` and `reviewProductDraft` answer: the product as listed and its working copy.
#[Object]
impl ProductDraftPayload {
    /// The product as listed (and sold) now.
    async fn product(&self) -> Product {
        Product::of(self.0.product.clone())
    }
    /// Its working copy waiting for review, if any.
    async fn draft(&self) -> Option<ProductDraft> {
        self.0.draft.as_ref().map(|d| {
            ProductDraft(drafts::DraftRow {
                row: d.row.clone(),
                draft: d.draft.clone(),
            })
        })
    }
}

/// The merchant the viewer acts for, and its back office.
pub struct MyMerchant(merchant::Model);

/// The merchant the viewer acts for, and its back office: statements, stock alerts, working copies.
#[Object]
impl MyMerchant {
    /// The merchant.
    async fn merchant(&self) -> Merchant {
        Merchant(self.0.clone())
    }
    /// The statement of one month (`period`: `YYYY-MM`, Asia/Shanghai; `VALIDATION`
    /// otherwise): the settled sales, refunds, service fee and payable amount.
    async fn sales(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The month, `YYYY-MM`.")] period: String,
    ) -> Result<MerchantStatement> {
        let st = state(ctx)?;
        let month = Month::parse("period", &period)?;
        let s = svc::statement(&st.db, self.0.id, month, window(ctx)?, st.clock.now()).await?;
        Ok(MerchantStatement(s))
    }
    /// The statements of the last `months` months (1–36, default 12; none before the
    /// merchant was created), newest first, the current month's included (it grows as its
    /// lines settle).
    async fn statements(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many months, 1–36.", default = 12)] months: i32,
    ) -> Result<Vec<MerchantStatement>> {
        if !(1..=MAX_MONTHS).contains(&months) {
            return Err(Error::validation("months", "must be 1 to 36").into());
        }
        let st = state(ctx)?;
        let now = st.clock.now();
        let (from, to) = svc::recent_months(self.0.created_at, now, months as u32);
        let mut list = svc::statements(&st.db, self.0.id, from, to, window(ctx)?, now).await?;
        list.reverse();
        Ok(list.into_iter().map(MerchantStatement).collect())
    }
    /// SKUs with fewer than `below` units in stock (default 10), of products listed or in
    /// curation, fewest first, at most `first` (1–200, default 50).
    async fn stock_alerts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The threshold: SKUs with fewer units.", default = 10)] below: i32,
        #[graphql(desc = "At most this many, 1–200.", default = 50)] first: i32,
    ) -> Result<Vec<StockAlert>> {
        let mut errors = crate::error::FieldErrors::default();
        if !(1..=1_000_000_000).contains(&below) {
            errors.push("below", "must be 1 to 1000000000");
        }
        if !(1..=200).contains(&first) {
            errors.push("first", "must be 1 to 200");
        }
        errors.finish()?;
        let st = state(ctx)?;
        let list = svc::stock_alerts(&st.db, self.0.id, below, first as u64).await?;
        Ok(list.into_iter().map(StockAlert).collect())
    }
    /// The working copy of one of the merchant's products, if it has one (`NOT_FOUND` for
    /// another merchant's product).
    async fn product_draft(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The product.")] product_id: ID,
    ) -> Result<Option<ProductDraft>> {
        let st = state(ctx)?;
        let id = ids::decode_as(&product_id, Kind::Product, "productId")?;
        let p = crate::service::catalog::products_by_ids(&st.db, &[id])
            .await?
            .into_values()
            .find(|p| p.id == id && p.merchant_id == self.0.id)
            .ok_or_else(|| Error::not_found("product"))?;
        Ok(drafts::draft_of(&st.db, p.id).await?.map(ProductDraft))
    }
}

/// A category's service fee rate from a time on.
pub struct CategoryServiceFee(category_service_fee::Model);

/// A category's platform service fee rate from a time on.
#[Object]
impl CategoryServiceFee {
    /// The category.
    async fn category_id(&self) -> ID {
        ids::encode(Kind::Category, self.0.category_id)
    }
    /// The rate, 0–1 ("0.05" = 5 %).
    async fn rate(&self) -> Dec {
        self.0.rate.into()
    }
    /// Lines of orders paid from this time on pay it.
    async fn effective_from(&self) -> DateTime<Utc> {
        self.0.effective_from
    }
}

#[derive(Default)]
pub struct MerchantQuery;

#[Object]
impl MerchantQuery {
    /// The merchant the signed-in member acts for (members linked by `linkMerchantUser`);
    /// `FORBIDDEN` for anyone else.
    async fn my_merchant(&self, ctx: &Context<'_>) -> Result<MyMerchant> {
        let (_, id) = own_merchant(ctx)?;
        let st = state(ctx)?;
        Ok(MyMerchant(
            crate::service::catalog::merchant(&st.db, id).await?,
        ))
    }

    /// ADMIN: a merchant's statement of a month (as `myMerchant.sales`).
    async fn merchant_statement(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The merchant.")] merchant_id: ID,
        #[graphql(desc = "The month, `YYYY-MM` (Asia/Shanghai).")] period: String,
    ) -> Result<MerchantStatement> {
        viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&merchant_id, Kind::Merchant, "merchantId")?;
        let month = Month::parse("period", &period)?;
        crate::service::catalog::merchant(&st.db, id).await?;
        let s = svc::statement(&st.db, id, month, window(ctx)?, st.clock.now()).await?;
        Ok(MerchantStatement(s))
    }

    /// ADMIN: a category's service fee rate in force now (its own, else its parent's, else
    /// 0).
    async fn category_service_fee(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The category.")] category_id: ID,
    ) -> Result<Dec> {
        viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&category_id, Kind::Category, "categoryId")?;
        Ok(svc::category_fee(&st.db, id, st.clock.now()).await?.into())
    }

    /// CURATOR: working copies of listed products waiting for review, oldest first, at
    /// most `first` (1–100, default 50).
    async fn product_draft_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most this many, 1–100.", default = 50)] first: i32,
    ) -> Result<Vec<ProductDraft>> {
        viewer(ctx)?.staff(member::StaffRole::Curator)?;
        if !(1..=100).contains(&first) {
            return Err(Error::validation("first", "must be 1 to 100").into());
        }
        let st = state(ctx)?;
        Ok(drafts::pending(&st.db, first as u64)
            .await?
            .into_iter()
            .map(ProductDraft)
            .collect())
    }
}

/// A SKU's change in `updateProductDraft`: an existing SKU (`id`) or a new one (no `id`:
/// `name`, `price` and `stock` required).
#[derive(InputObject)]
pub struct SkuDraftInput {
    /// The SKU to change; omit to add one.
    pub id: Option<ID>,
    /// Its name, 1–120 characters (a content change: reviewed on a listed product).
    pub name: Option<String>,
    /// Its price, 0.01–1000000.00 (of an existing SKU: direct and audited).
    pub price: Option<DecArg>,
    /// Its stock, 0–1000000000 (of an existing SKU: set directly and audited).
    pub stock: Option<i64>,
    /// A change of an existing SKU's stock (e.g. +50 received, -3 damaged), applied to the
    /// stock as it is when it commits; a change below zero is `VALIDATION`. Not with
    /// `stock`.
    pub stock_delta: Option<i64>,
}

/// What to change of a product: the fields given.
#[derive(InputObject)]
pub struct UpdateProductDraftInput {
    /// The product (of the merchant the viewer acts for).
    pub product_id: ID,
    /// Its name, 1–120 characters.
    pub name: Option<String>,
    /// Its description, at most 5000 characters ("" clears it).
    pub description: Option<String>,
    /// Level-1 rebate rate, 0–0.30.
    pub rebate_rate: Option<DecArg>,
    /// Level-2 rebate rate, 0–0.30; with `rebateRate` at most 0.30 (the 30 % rule).
    pub team_rebate_rate: Option<DecArg>,
    /// SKUs to change or add (at most 50 SKUs in all).
    #[graphql(default)]
    pub skus: Vec<SkuDraftInput>,
    /// The product's images, replacing its list (at most 20, in display order): `Image`
    /// IDs the viewer uploaded (`uploadImage(purpose: PRODUCT)`), stored as their URLs. Of
    /// a listed product, a content change (curated again). Another member's image is
    /// `NOT_FOUND`; a `NOTE` image is `VALIDATION` on its entry.
    pub image_ids: Option<Vec<ID>>,
}

#[derive(Default)]
pub struct MerchantMutation;

#[Object]
impl MerchantMutation {
    /// ADMIN: sets a category's platform service fee rate (0–1, e.g. "0.05" = 5 %; at most
    /// 4 decimal places; `VALIDATION` otherwise) from now on: lines of orders paid from now
    /// pay it, earlier ones keep theirs. A leaf category without a rate of its own pays its
    /// parent's. Audited.
    async fn set_category_service_fee(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The category.")] category_id: ID,
        #[graphql(desc = "The rate, 0–1.")] rate: DecArg,
    ) -> Result<CategoryServiceFee> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&category_id, Kind::Category, "categoryId")?;
        let rate = rate.decimal("rate")?;
        let row =
            svc::set_category_fee(&st.db, &actor(ctx, admin), id, rate, st.clock.now()).await?;
        Ok(CategoryServiceFee(row))
    }

    /// MERCHANT: changes one of its merchant's products. On a listed product (published, or
    /// delisted after), changes of content or rates — name, description, rebate rates, SKU
    /// names, new SKUs — go into its working copy for a curator's review
    /// (`reviewProductDraft`) while the listed version stays on sale; on a product not
    /// listed yet they apply at once. Price and stock of existing SKUs change at once
    /// whatever the status (audited; every cached catalog answer drops). Every bad field is
    /// named at once (`VALIDATION`); another merchant's product is `NOT_FOUND`.
    async fn update_product_draft(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The product and the fields to change.")] input: UpdateProductDraftInput,
    ) -> Result<ProductDraftPayload> {
        let (m, _) = own_merchant(ctx)?;
        let st = state(ctx)?;
        let id = ids::decode_as(&input.product_id, Kind::Product, "input.productId")?;
        let skus = input
            .skus
            .iter()
            .enumerate()
            .map(|(i, s)| drafts::SkuEdit {
                id: s
                    .id
                    .as_ref()
                    .map(|id| ids::decode_as(id, Kind::Sku, "id").ok()),
                name: s.name.clone(),
                price: s.price.as_ref().map(|p| {
                    p.decimal("price").map_err(|_| {
                        Error::validation(
                            format!("input.skus[{i}].price"),
                            "expected a decimal number as a string, e.g. \"12.30\"",
                        )
                    })
                }),
                stock: s.stock,
                stock_delta: s.stock_delta,
            })
            .collect();
        let edit = drafts::ProductEdit {
            name: input.name,
            description: input.description,
            rebate_rate: input
                .rebate_rate
                .as_ref()
                .map(|d| d.decimal("input.rebateRate")),
            team_rebate_rate: input
                .team_rebate_rate
                .as_ref()
                .map(|d| d.decimal("input.teamRebateRate")),
            skus,
            image_ids: input.image_ids.map(|list| {
                list.iter()
                    .map(|id| ids::decode_as(id, Kind::Image, "input.imageIds").ok())
                    .collect()
            }),
        };
        let out = drafts::update(
            &st.db,
            &st.events,
            &st.media,
            m,
            &actor(ctx, m),
            id,
            edit,
            st.clock.now(),
        )
        .await?;
        Ok(ProductDraftPayload(out))
    }

    /// CURATOR: approves a product's pending working copy (it replaces the listed content
    /// at once; every cached catalog answer drops) or rejects it with a `reason` (required
    /// then). `NOT_FOUND` without a pending copy. Audited.
    async fn review_product_draft(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The product.")] product_id: ID,
        #[graphql(desc = "Approve (true) or reject (false).")] approve: bool,
        #[graphql(desc = "Why, 1–500 characters (required to reject).")] reason: Option<String>,
    ) -> Result<ProductDraftPayload> {
        let curator = viewer(ctx)?.staff(member::StaffRole::Curator)?;
        let st = state(ctx)?;
        let id = ids::decode_as(&product_id, Kind::Product, "productId")?;
        let out = drafts::review(
            &st.db,
            &st.events,
            curator,
            &actor(ctx, curator),
            id,
            approve,
            reason.as_deref(),
            st.clock.now(),
        )
        .await?;
        Ok(ProductDraftPayload(out))
    }
}
