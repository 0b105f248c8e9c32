//! Curation in GraphQL: the `CurationReport` quality passport on every product, the
//! merchant's mutations (brands, submissions, resubmission), the curator's (stages, scores,
//! publish, unpublish), and the staff listings (`myProducts`, `curationQueue`).

use std::sync::Arc;

use async_graphql::connection::{ConnectionNameType, EdgeNameType};
use async_graphql::{Context, Enum, ID, InputObject, Object, OutputType, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{member, product};

use super::catalog::{Brand, Product, ProductStatus};
use crate::error::Error;
use crate::graphql::context::{actor, state, viewer};
use crate::graphql::ids::{self, GlobalId, Kind};
use crate::graphql::pagination::{CountedOf, PageArgs, wants_total};
use crate::graphql::scalars::Dec;
use crate::graphql::transport::plain::{self, plain_enums, plain_object};
use crate::service::catalog as catalog_svc;
use crate::service::curation::{self as svc, Badge, Stage, Summary};

/// The five stages of the listing gate, in the order a product passes them.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CurationStage {
    /// 产品资质审核: qualification review.
    QualificationReview,
    /// 质检报告收集: inspection reports collected.
    InspectionReport,
    /// 实地工厂验证: on-site factory audit.
    FactoryAudit,
    /// 场景测试: scenario testing.
    ScenarioTest,
    /// 内部测试: internal testing.
    InternalTest,
}

impl From<CurationStage> for Stage {
    fn from(s: CurationStage) -> Stage {
        match s {
            CurationStage::QualificationReview => Stage::QualificationReview,
            CurationStage::InspectionReport => Stage::InspectionReport,
            CurationStage::FactoryAudit => Stage::FactoryAudit,
            CurationStage::ScenarioTest => Stage::ScenarioTest,
            CurationStage::InternalTest => Stage::InternalTest,
        }
    }
}

impl From<Stage> for CurationStage {
    fn from(s: Stage) -> CurationStage {
        match s {
            Stage::QualificationReview => CurationStage::QualificationReview,
            Stage::InspectionReport => CurationStage::InspectionReport,
            Stage::FactoryAudit => CurationStage::FactoryAudit,
            Stage::ScenarioTest => CurationStage::ScenarioTest,
            Stage::InternalTest => CurationStage::InternalTest,
        }
    }
}

/// A curator's verdict on one stage.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CurationResult {
    /// The stage passed: the product moves on to the next stage.
    Pass,
    /// The stage failed: the product is REJECTED back to its merchant, who may resubmit it.
    Fail,
}

/// Marks of quality on the passport.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CurationBadge {
    /// Passed all five stages.
    FiveStagesPassed,
    /// 三高: high quality, high design, high value.
    ThreeHighs,
    /// Meets the export-to-EU quality bar (小米标准).
    EuGrade,
}

/// One stage's line on a passport, as the viewer may see it.
pub struct CurationStageStatus {
    stage: CurationStage,
    result: Option<CurationResult>,
    recorded_at: Option<DateTime<Utc>>,
    notes: Option<String>,
    evidence_urls: Option<Vec<String>>,
    reviewer_id: Option<GlobalId>,
}

plain_object! {
    /// One stage on the passport: its latest result, if it has been recorded.
    impl CurationStageStatus => CurationStageStatus as "CurationStageStatus" {
        |this| this;
        |r, e|
        /// Which of the five stages this line is.
        stage "stage": CurationStage = r.stage;
        /// Null while the stage has not been recorded.
        result "result": Option<CurationResult> = r.result;
        /// When the latest result was recorded; null while the stage has not been.
        recorded_at "recordedAt": Option<DateTime<Utc>> = r.recorded_at;
        /// Reviewer's notes; curators, admins and the product's merchant only (null otherwise).
        notes "notes": Option<&str> = r.notes.as_deref();
        /// Evidence links; curators, admins and the product's merchant only (null otherwise).
        evidence_urls "evidenceUrls": Option<&Vec<String>> = r.evidence_urls.as_ref();
        /// The reviewing curator; curators, admins and the product's merchant only.
        reviewer_id "reviewerId": Option<GlobalId> = r.reviewer_id;
    }
    plain |s, field, out| {}
    resolvers {}
}

/// The four selection criteria (1–5) and the badges' flags.
#[derive(SimpleObject)]
pub struct CurationScores {
    /// 刚需
    pub essential_need: i32,
    /// 解决新的痛点
    pub new_pain_point: i32,
    /// 产品生命力
    pub longevity: i32,
    /// 品质与供应链
    pub quality_and_supply: i32,
    /// 高品质
    pub high_quality: bool,
    /// 高颜值
    pub high_design: bool,
    /// 高性价比
    pub high_value: bool,
    /// 小米标准: meets the export-to-EU quality bar.
    pub eu_export_grade: bool,
    /// When these scores were recorded (a new scoring replaces the previous one).
    pub recorded_at: DateTime<Utc>,
}

impl CurationScores {
    fn of(entry: &svc::ScoreEntry) -> CurationScores {
        let s = entry.scores.widened();
        CurationScores {
            essential_need: s.essential_need,
            new_pain_point: s.new_pain_point,
            longevity: s.longevity,
            quality_and_supply: s.quality_and_supply,
            high_quality: s.high_quality,
            high_design: s.high_design,
            high_value: s.high_value,
            eu_export_grade: s.eu_export_grade,
            recorded_at: entry.recorded_at,
        }
    }
}

/// A product's quality passport.
pub struct CurationReport {
    product_id: uuid::Uuid,
    summary: Arc<Summary>,
    insider: bool,
    min_score: u8,
    published_at: Option<DateTime<Utc>>,
}

impl CurationReport {
    pub fn new(
        p: &product::Model,
        summary: Arc<Summary>,
        insider: bool,
        min_score: u8,
    ) -> CurationReport {
        CurationReport {
            product_id: p.id,
            summary,
            insider,
            min_score,
            published_at: p.published_at,
        }
    }

    fn badge_list(&self) -> Vec<CurationBadge> {
        self.summary
            .badges()
            .into_iter()
            .map(|b| match b {
                Badge::FiveStagesPassed => CurationBadge::FiveStagesPassed,
                Badge::ThreeHighs => CurationBadge::ThreeHighs,
                Badge::EuGrade => CurationBadge::EuGrade,
            })
            .collect()
    }

    /// All five stages in order, with their latest results as the viewer may see them.
    fn stage_list(&self) -> Vec<CurationStageStatus> {
        svc::STAGES
            .iter()
            .map(|stage| {
                let entry = self.summary.stages.iter().find(|e| e.stage == *stage);
                let inside = entry.filter(|_| self.insider);
                CurationStageStatus {
                    stage: (*stage).into(),
                    result: entry.map(|e| {
                        if e.passed {
                            CurationResult::Pass
                        } else {
                            CurationResult::Fail
                        }
                    }),
                    recorded_at: entry.map(|e| e.recorded_at),
                    notes: inside.and_then(|e| e.notes.clone()),
                    evidence_urls: inside.map(|e| e.evidence_urls.clone()),
                    reviewer_id: inside.map(|e| GlobalId(Kind::Member, e.reviewer_id)),
                }
            })
            .collect()
    }

    fn next(&self) -> Option<CurationStage> {
        svc::STAGES
            .iter()
            .find(|s| {
                !self
                    .summary
                    .stages
                    .iter()
                    .any(|e| e.stage == **s && e.passed)
            })
            .map(|s| (*s).into())
    }
}

plain_enums!(CurationBadge, CurationStage, CurationResult);

plain_object! {
    /// The quality passport (品控报告) of a product: how it went through the five-stage gate.
    impl CurationReport => CurationReport as "CurationReport" {
        |this| this;
        |r, e|
        /// The badges earned so far, for the product card; empty when none.
        badges "badges": Vec<CurationBadge> = r.badge_list();
        /// True when every stage passed and every criterion scores at least the configured
        /// minimum (the brand cap is checked when publishing).
        passed "passed": bool = r.summary.passed(r.min_score);
        /// The stage a curator records next; null once all five passed.
        next_stage "nextStage": Option<CurationStage> = r.next();
        /// When the product was first listed; null until then.
        published_at "publishedAt": Option<DateTime<Utc>> = r.published_at;
    }
    plain |s, field, out| {
        "stages" => plain::list(&s.stage_list(), e, &field.selection_set.node, out)?,
    }
    resolvers {
        /// All five stages in order, with their latest results.
        async fn stages(&self) -> Vec<CurationStageStatus> {
            self.stage_list()
        }
        /// The latest scores, if the product has been scored.
        async fn scores(&self) -> Option<CurationScores> {
            self.summary.score.as_ref().map(CurationScores::of)
        }
        /// Every stage record, oldest first: the audit trail. Curators, admins and the
        /// product's merchant only (null otherwise).
        async fn history(&self, ctx: &Context<'_>) -> Result<Option<Vec<CurationRecord>>> {
            if !self.insider {
                return Ok(None);
            }
            let rows = svc::history(&state(ctx)?.db, self.product_id).await?;
            Ok(Some(
                rows.into_iter()
                    .map(|r| CurationRecord {
                        stage: svc::STAGES
                            .into_iter()
                            .find(|s| s.as_str() == r.stage)
                            .map(CurationStage::from)
                            .unwrap_or(CurationStage::QualificationReview),
                        result: if r.result == "PASS" {
                            CurationResult::Pass
                        } else {
                            CurationResult::Fail
                        },
                        reviewer_id: ids::encode(Kind::Member, r.reviewer_id),
                        notes: r.notes,
                        evidence_urls: serde_json::from_str(&r.evidence_urls)
                            .unwrap_or_default(),
                        recorded_at: r.recorded_at,
                    })
                    .collect(),
            ))
        }
    }
}

/// One recorded stage result.
#[derive(SimpleObject)]
pub struct CurationRecord {
    /// The stage recorded.
    pub stage: CurationStage,
    /// The curator's verdict.
    pub result: CurationResult,
    /// The curator who recorded it (a `Member` ID).
    pub reviewer_id: ID,
    /// The curator's notes; null when none were given.
    pub notes: Option<String>,
    /// Links to reports, photos and certificates; empty when none were given.
    pub evidence_urls: Vec<String>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// A variant to sell.
#[derive(InputObject)]
pub struct SkuInput {
    /// 1–120 characters.
    pub name: String,
    /// Above 0, at most 2 decimal places.
    pub price: Dec,
    /// 0 or more.
    pub stock: i32,
}

/// A product a merchant submits into curation.
#[derive(InputObject)]
pub struct SubmitProductInput {
    /// One of the merchant's own brands.
    pub brand_id: ID,
    /// A leaf category.
    pub category_id: ID,
    /// 1–120 characters.
    pub name: String,
    /// Plain text, at most 5,000 characters (trimmed; blank is the same as none).
    pub description: Option<String>,
    /// At least one.
    pub skus: Vec<SkuInput>,
    /// Level-1 rate, 0–0.30.
    pub rebate_rate: Dec,
    /// Level-2 rate, 0–0.30; with `rebateRate` at most 0.30.
    pub team_rebate_rate: Dec,
    /// True for a membership product (会员活动商品): a completed order for it makes the
    /// buyer a push-hand. Default false.
    pub membership_activity: Option<bool>,
}

/// A stage result a curator records.
#[derive(InputObject)]
pub struct CurationStageInput {
    /// The product in curation (`NOT_IN_CURATION` when it is not).
    pub product_id: ID,
    /// Must be the product's next stage (`CurationReport.nextStage`), else
    /// `CURATION_OUT_OF_ORDER`.
    pub stage: CurationStage,
    /// PASS moves the product on; FAIL rejects it back to the merchant.
    pub result: CurationResult,
    /// Notes for the merchant and other staff, at most 5,000 characters.
    pub notes: Option<String>,
    /// http(s) links to reports, photos, certificates.
    pub evidence_urls: Option<Vec<String>>,
}

/// A curator's scores.
#[derive(InputObject)]
pub struct CurationScoreInput {
    /// The product to score: not a PUBLISHED one (`ALREADY_PUBLISHED`: unpublish it first).
    /// Scores are needed before publishing.
    pub product_id: ID,
    /// 刚需, 1–5.
    pub essential_need: i32,
    /// 解决新的痛点, 1–5.
    pub new_pain_point: i32,
    /// 产品生命力, 1–5.
    pub longevity: i32,
    /// 品质与供应链, 1–5.
    pub quality_and_supply: i32,
    /// 高品质: high quality (one of the three for the THREE_HIGHS badge).
    pub high_quality: bool,
    /// 高颜值: good-looking design (one of the three for the THREE_HIGHS badge).
    pub high_design: bool,
    /// 高性价比: good value for money (one of the three for the THREE_HIGHS badge).
    pub high_value: bool,
    /// 小米标准: meets the export-to-EU quality bar (the EU_GRADE badge).
    pub eu_export_grade: bool,
}

impl CurationScoreInput {
    /// The scores asked for (checked by the service).
    fn scores(&self) -> svc::Scores<i32> {
        svc::Scores {
            essential_need: self.essential_need,
            new_pain_point: self.new_pain_point,
            longevity: self.longevity,
            quality_and_supply: self.quality_and_supply,
            high_quality: self.high_quality,
            high_design: self.high_design,
            high_value: self.high_value,
            eu_export_grade: self.eu_export_grade,
        }
    }
}

fn product_id(id: &ID, field: &'static str) -> Result<uuid::Uuid, Error> {
    ids::decode_as(id, Kind::Product, field)
}

fn merchant<'a>(ctx: &Context<'a>) -> Result<&'a member::Model> {
    Ok(viewer(ctx)?.staff(member::StaffRole::Merchant)?)
}

fn curator<'a>(ctx: &Context<'a>) -> Result<&'a member::Model> {
    Ok(viewer(ctx)?.staff(member::StaffRole::Curator)?)
}

fn report(ctx: &Context<'_>, p: &product::Model, summary: Summary) -> Result<CurationReport> {
    let min = state(ctx)?.config.policy.min_criterion_score;
    Ok(CurationReport::new(p, Arc::new(summary), true, min))
}

fn status_arg(s: Option<ProductStatus>) -> Option<product::Status> {
    s.map(|s| match s {
        ProductStatus::InCuration => product::Status::InCuration,
        ProductStatus::Rejected => product::Status::Rejected,
        ProductStatus::Published => product::Status::Published,
        ProductStatus::Unpublished => product::Status::Unpublished,
    })
}

/// Names the staff listing's types apart from the public `ProductConnection` (their
/// cursors differ: staff lists run by submission time, in every status).
pub struct StaffProductConnectionName;

impl ConnectionNameType for StaffProductConnectionName {
    fn type_name<T: OutputType>() -> String {
        "StaffProductConnection".into()
    }
}

pub struct StaffProductEdgeName;

impl EdgeNameType for StaffProductEdgeName {
    fn type_name<T: OutputType>() -> String {
        "StaffProductEdge".into()
    }
}

pub type StaffProductConnection = CountedOf<
    catalog_svc::CreatedCursor,
    Product,
    StaffProductConnectionName,
    StaffProductEdgeName,
>;

async fn staff_list(
    ctx: &Context<'_>,
    merchant: Option<uuid::Uuid>,
    status: Option<ProductStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<StaffProductConnection> {
    let args = PageArgs::parse(first, after)?;
    let db = &state(ctx)?.db;
    let status = status_arg(status);
    let page = catalog_svc::list_by_created(db, merchant, status, args.after(), args.first).await?;
    let total = catalog_svc::total_by_created(db, merchant, status, wants_total(ctx)).await?;
    Ok(args.counted(
        page,
        total,
        |p| catalog_svc::CreatedCursor::of(p.created_at, p.id),
        Product::of,
    ))
}

#[derive(Default)]
pub struct CurationQuery;

#[Object]
impl CurationQuery {
    /// MERCHANT: the merchant's own products in every status (or one), newest first.
    async fn my_products(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only products in this status; every status when omitted.")]
        status: Option<ProductStatus>,
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
    ) -> Result<StaffProductConnection> {
        let m = merchant(ctx)?;
        let merchant_id = m
            .merchant_id
            .ok_or_else(|| Error::Forbidden("this account acts for no merchant".into()))?;
        staff_list(ctx, Some(merchant_id), status, first, after).await
    }

    /// CURATOR: products by status (default `IN_CURATION`), newest submissions first.
    async fn curation_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Products in this status (default IN_CURATION, the work queue).")]
        status: Option<ProductStatus>,
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
    ) -> Result<StaffProductConnection> {
        curator(ctx)?;
        staff_list(
            ctx,
            None,
            Some(status.unwrap_or(ProductStatus::InCuration)),
            first,
            after,
        )
        .await
    }
}

#[derive(Default)]
pub struct CurationMutation;

#[Object]
impl CurationMutation {
    /// MERCHANT: creates a brand owned by the merchant; ADMIN: one owned by `merchantId`.
    /// `BRAND_NAME_TAKEN` if the name exists.
    async fn create_brand(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "1–120 characters, trimmed; unique across the platform.")] name: String,
        #[graphql(
            desc = "The owner: required of admins (who act for no merchant); a merchant may                     name only its own (another is `FORBIDDEN`)."
        )]
        merchant_id: Option<ID>,
    ) -> Result<Brand> {
        let m = merchant(ctx)?;
        let st = state(ctx)?;
        let for_merchant = merchant_id
            .map(|id| ids::decode_as(&id, Kind::Merchant, "merchantId"))
            .transpose()?;
        let created = svc::create_brand(
            &st.db,
            &st.events,
            m,
            for_merchant,
            &actor(ctx, m),
            &name,
            st.clock.now(),
        )
        .await?;
        Ok(Brand(created))
    }

    /// MERCHANT: submits a product of one of its brands into curation (`IN_CURATION`).
    async fn submit_product(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The product, its SKUs and its rebate rates; each field's limits \
                          are in `SubmitProductInput`."
        )]
        input: SubmitProductInput,
    ) -> Result<Product> {
        let m = merchant(ctx)?;
        let st = state(ctx)?;
        let submission = svc::Submission {
            brand_id: ids::decode_as(&input.brand_id, Kind::Brand, "brandId")?,
            category_id: ids::decode_as(&input.category_id, Kind::Category, "categoryId")?,
            name: input.name,
            description: input.description,
            skus: input
                .skus
                .into_iter()
                .map(|s| (s.name, s.price.0, s.stock))
                .collect(),
            rebate_rate: input.rebate_rate.0,
            team_rebate_rate: input.team_rebate_rate.0,
            membership_activity: input.membership_activity.unwrap_or(false),
        };
        let submitted = svc::submit_product(
            &st.db,
            &st.events,
            m,
            &actor(ctx, m),
            submission,
            st.clock.now(),
        )
        .await?;
        Ok(Product::of(submitted))
    }

    /// MERCHANT: sends a rejected product back into curation; it resumes at the failed stage.
    async fn resubmit_product(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of the merchant's REJECTED products (`NOT_REJECTED` \
                          otherwise; another merchant's is `NOT_FOUND`).")]
        product_id: ID,
    ) -> Result<Product> {
        let m = merchant(ctx)?;
        let st = state(ctx)?;
        let id = self::product_id(&product_id, "productId")?;
        let resubmitted =
            svc::resubmit_product(&st.db, &st.events, m, &actor(ctx, m), id, st.clock.now())
                .await?;
        Ok(Product::of(resubmitted))
    }

    /// CURATOR: records the next stage's result. Stages go strictly in order
    /// (`CURATION_OUT_OF_ORDER`); a FAIL rejects the product back to its merchant.
    async fn record_curation_stage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The product, the stage, the verdict, notes and evidence.")]
        input: CurationStageInput,
    ) -> Result<CurationReport> {
        let c = curator(ctx)?;
        let st = state(ctx)?;
        let id = product_id(&input.product_id, "productId")?;
        let stage = svc::StageInput {
            product_id: id,
            stage: input.stage.into(),
            passed: input.result == CurationResult::Pass,
            notes: input.notes,
            evidence_urls: input.evidence_urls.unwrap_or_default(),
        };
        let (p, summary) =
            svc::record_stage(&st.db, &st.events, c, &actor(ctx, c), stage, st.clock.now()).await?;
        report(ctx, &p, summary)
    }

    /// CURATOR: scores the four criteria (1–5) and the badges' flags.
    async fn score_product(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The product, its four criterion scores (1–5 each, `VALIDATION` \
                          otherwise) and the badges' flags."
        )]
        input: CurationScoreInput,
    ) -> Result<CurationReport> {
        let c = curator(ctx)?;
        let st = state(ctx)?;
        let id = product_id(&input.product_id, "productId")?;
        let score = svc::ScoreInput {
            product_id: id,
            scores: input.scores(),
        };
        let (p, summary) =
            svc::score_product(&st.db, &st.events, c, &actor(ctx, c), score, st.clock.now())
                .await?;
        report(ctx, &p, summary)
    }

    /// CURATOR: lists (上架) a product that passed the gate. `CURATION_INCOMPLETE` names the
    /// stage or score that is missing; `BRAND_CAP_EXCEEDED` when the leaf category already
    /// lists the maximum number of other brands.
    async fn publish_product(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "An IN_CURATION or UNPUBLISHED product that passed all five \
                          stages and was scored; `ALREADY_PUBLISHED` when listed already.")]
        product_id: ID,
    ) -> Result<Product> {
        let actor = actor(ctx, curator(ctx)?);
        let st = state(ctx)?;
        let id = self::product_id(&product_id, "productId")?;
        let policy = &st.config.policy;
        let published = svc::publish_product(
            &st.db,
            &st.events,
            &actor,
            id,
            policy.min_criterion_score,
            policy.max_brands_per_category,
            st.clock.now(),
        )
        .await?;
        Ok(Product::of(published))
    }

    /// CURATOR: delists (下架) a published product, with a reason.
    async fn unpublish_product(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A PUBLISHED product.")] product_id: ID,
        #[graphql(desc = "Why, 1–500 characters; shown to staff and the merchant as \
                          `unpublishedReason`.")]
        reason: String,
    ) -> Result<Product> {
        let actor = actor(ctx, curator(ctx)?);
        let st = state(ctx)?;
        let id = self::product_id(&product_id, "productId")?;
        let unpublished =
            svc::unpublish_product(&st.db, &st.events, &actor, id, &reason, st.clock.now()).await?;
        Ok(Product::of(unpublished))
    }
}
