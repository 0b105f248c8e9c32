//! Quality curation (品控): merchants submit products and brands, curators walk a product
//! through the five stages in order and score it, and `publish` lets it through the listing
//! gate only when every stage passed, every criterion scores at least the minimum, and the
//! leaf category's brand cap allows it.
//!
//! Stage and score records are appended, never edited; after every change the product's
//! quality passport ([`Summary`]) is rebuilt in `curation_summaries` within the same
//! transaction. Every write publishes what it changed once the transaction has committed
//! ([`Kind::PassportChanged`] for curation records and publishing, [`Kind::CatalogChanged`]
//! for brands and submissions); [`CurationStore`] hears it and drops the passport's cache
//! entry, as the response cache drops its catalog answers.
//!
//! [`Kind::PassportChanged`]: crate::events::Kind::PassportChanged
//! [`Kind::CatalogChanged`]: crate::events::Kind::CatalogChanged

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{
    Money, Rate, brand, category, curation_score, curation_stage_record, curation_summary, member,
    product,
};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use super::catalog::{NewProduct, NewSku, ProductRows};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::events::{Event, Events, Kind};
use crate::metrics::{CacheCallLabels, CacheLabels, Metrics};

/// The five stages, in the order a product must pass them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Stage {
    /// 产品资质审核
    QualificationReview,
    /// 质检报告收集
    InspectionReport,
    /// 实地工厂验证
    FactoryAudit,
    /// 场景测试
    ScenarioTest,
    /// 内部测试
    InternalTest,
}

pub const STAGES: [Stage; 5] = [
    Stage::QualificationReview,
    Stage::InspectionReport,
    Stage::FactoryAudit,
    Stage::ScenarioTest,
    Stage::InternalTest,
];

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::QualificationReview => "QUALIFICATION_REVIEW",
            Stage::InspectionReport => "INSPECTION_REPORT",
            Stage::FactoryAudit => "FACTORY_AUDIT",
            Stage::ScenarioTest => "SCENARIO_TEST",
            Stage::InternalTest => "INTERNAL_TEST",
        }
    }
    fn index(self) -> usize {
        STAGES.iter().position(|s| *s == self).unwrap_or_default()
    }
    fn parse(s: &str) -> Option<Stage> {
        STAGES.into_iter().find(|st| st.as_str() == s)
    }
}

/// The latest result of one stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageEntry {
    pub stage: Stage,
    pub passed: bool,
    pub recorded_at: DateTime<Utc>,
    pub reviewer_id: Uuid,
    pub notes: Option<String>,
    pub evidence_urls: Vec<String>,
}

/// A curator's scores: the four selection criteria (1–5 each) and the badges' flags. `N` is
/// the criteria's number type: `i32` as asked for ([`ScoreInput`]), `i16` once checked
/// ([`Scores::check`]) and recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scores<N = i16> {
    pub essential_need: N,
    pub new_pain_point: N,
    pub longevity: N,
    pub quality_and_supply: N,
    pub high_quality: bool,
    pub high_design: bool,
    pub high_value: bool,
    pub eu_export_grade: bool,
}

impl<N: Copy> Scores<N> {
    /// The criteria in their fixed order, with their names.
    pub fn criteria(&self) -> [(&'static str, N); 4] {
        [
            ("ESSENTIAL_NEED", self.essential_need),
            ("NEW_PAIN_POINT", self.new_pain_point),
            ("LONGEVITY", self.longevity),
            ("QUALITY_AND_SUPPLY", self.quality_and_supply),
        ]
    }

    /// The same flags with the criteria mapped by `f`.
    fn map<M>(&self, mut f: impl FnMut(N) -> M) -> Scores<M> {
        Scores {
            essential_need: f(self.essential_need),
            new_pain_point: f(self.new_pain_point),
            longevity: f(self.longevity),
            quality_and_supply: f(self.quality_and_supply),
            high_quality: self.high_quality,
            high_design: self.high_design,
            high_value: self.high_value,
            eu_export_grade: self.eu_export_grade,
        }
    }
}

impl Scores<i32> {
    /// Scores as asked for, checked: every criterion 1 to 5 (`VALIDATION` on the first that
    /// is not, named as the input field).
    pub fn check(&self) -> Result<Scores> {
        const FIELDS: [&str; 4] = [
            "essentialNeed",
            "newPainPoint",
            "longevity",
            "qualityAndSupply",
        ];
        for (field, (_, v)) in FIELDS.into_iter().zip(self.criteria()) {
            if !(1..=5).contains(&v) {
                return Err(Error::validation(field, "must be 1 to 5"));
            }
        }
        // In range, so each fits.
        Ok(self.map(|v| i16::try_from(v).unwrap_or_default()))
    }
}

impl Scores {
    /// As the API shows them.
    pub fn widened(&self) -> Scores<i32> {
        self.map(i32::from)
    }

    /// The row recording these scores.
    pub fn row(
        &self,
        id: Uuid,
        product_id: Uuid,
        reviewer_id: Uuid,
        recorded_at: DateTime<Utc>,
    ) -> curation_score::ActiveModel {
        curation_score::ActiveModel {
            id: Set(id),
            product_id: Set(product_id),
            essential_need: Set(self.essential_need),
            new_pain_point: Set(self.new_pain_point),
            longevity: Set(self.longevity),
            quality_and_supply: Set(self.quality_and_supply),
            high_quality: Set(self.high_quality),
            high_design: Set(self.high_design),
            high_value: Set(self.high_value),
            eu_export_grade: Set(self.eu_export_grade),
            reviewer_id: Set(reviewer_id),
            recorded_at: Set(recorded_at),
        }
    }
}

impl From<&curation_score::Model> for Scores {
    fn from(r: &curation_score::Model) -> Scores {
        Scores {
            essential_need: r.essential_need,
            new_pain_point: r.new_pain_point,
            longevity: r.longevity,
            quality_and_supply: r.quality_and_supply,
            high_quality: r.high_quality,
            high_design: r.high_design,
            high_value: r.high_value,
            eu_export_grade: r.eu_export_grade,
        }
    }
}

/// The latest scoring (stored flat, as one JSON object with the scores' fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreEntry {
    #[serde(flatten)]
    pub scores: Scores,
    pub reviewer_id: Uuid,
    pub recorded_at: DateTime<Utc>,
}

/// A product's quality passport: the latest result of each recorded stage (in stage order)
/// and the latest scores. This is what the cache holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub stages: Vec<StageEntry>,
    pub score: Option<ScoreEntry>,
}

/// Badges a passport can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Badge {
    /// Passed all five stages.
    FiveStagesPassed,
    /// 高品质 + 高颜值 + 高性价比.
    ThreeHighs,
    /// Meets the export-to-EU quality bar (小米标准).
    EuGrade,
}

impl Summary {
    pub fn all_stages_passed(&self) -> bool {
        STAGES
            .iter()
            .all(|s| self.stages.iter().any(|e| e.stage == *s && e.passed))
    }

    /// Whether the gate's curation conditions hold (the brand cap is checked at publish).
    pub fn passed(&self, min_score: u8) -> bool {
        self.all_stages_passed()
            && self.score.as_ref().is_some_and(|s| {
                s.scores
                    .criteria()
                    .iter()
                    .all(|(_, v)| *v >= i16::from(min_score))
            })
    }

    pub fn badges(&self) -> Vec<Badge> {
        let mut out = Vec::new();
        if self.all_stages_passed() {
            out.push(Badge::FiveStagesPassed);
        }
        if let Some(ScoreEntry { scores: s, .. }) = &self.score {
            if s.high_quality && s.high_design && s.high_value {
                out.push(Badge::ThreeHighs);
            }
            if s.eu_export_grade {
                out.push(Badge::EuGrade);
            }
        }
        out
    }
}

/// Rebuilds and stores a product's passport from its records. Call inside the transaction
/// that changed them.
pub async fn rebuild_summary(
    txn: &impl ConnectionTrait,
    product_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Summary> {
    let records = curation_stage_record::Entity::find()
        .filter(curation_stage_record::Column::ProductId.eq(product_id))
        .order_by_asc(curation_stage_record::Column::RecordedAt)
        .order_by_asc(curation_stage_record::Column::Id)
        .all(txn)
        .await?;
    let mut latest: HashMap<Stage, StageEntry> = HashMap::new();
    for r in records {
        let Some(stage) = Stage::parse(&r.stage) else {
            continue;
        };
        latest.insert(
            stage,
            StageEntry {
                stage,
                passed: r.result == "PASS",
                recorded_at: r.recorded_at,
                reviewer_id: r.reviewer_id,
                notes: r.notes,
                evidence_urls: serde_json::from_str(&r.evidence_urls).unwrap_or_default(),
            },
        );
    }
    let mut stages: Vec<StageEntry> = latest.into_values().collect();
    stages.sort_by_key(|e| e.stage.index());
    let score = curation_score::Entity::find()
        .filter(curation_score::Column::ProductId.eq(product_id))
        .order_by_desc(curation_score::Column::RecordedAt)
        .order_by_desc(curation_score::Column::Id)
        .one(txn)
        .await?
        .map(|s| ScoreEntry {
            scores: Scores::from(&s),
            reviewer_id: s.reviewer_id,
            recorded_at: s.recorded_at,
        });
    let summary = Summary { stages, score };
    store_summary(txn, product_id, &summary, now).await?;
    Ok(summary)
}

/// Writes a passport row (insert or replace).
pub async fn store_summary(
    txn: &impl ConnectionTrait,
    product_id: Uuid,
    summary: &Summary,
    now: DateTime<Utc>,
) -> Result<()> {
    let text = serde_json::to_string(summary).map_err(Error::internal)?;
    curation_summary::Entity::insert(curation_summary::ActiveModel {
        product_id: Set(product_id),
        summary: Set(text),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(curation_summary::Column::ProductId)
            .update_columns([
                curation_summary::Column::Summary,
                curation_summary::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Passports by product id, straight from the database (one statement). Products without a
/// row get an empty passport.
pub async fn summaries_by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Summary>> {
    let rows = curation_summary::Entity::find()
        .filter(super::one_of(
            db,
            curation_summary::Column::ProductId,
            ids.iter().copied(),
        ))
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Summary> = ids.iter().map(|id| (*id, Summary::default())).collect();
    for r in rows {
        out.insert(
            r.product_id,
            serde_json::from_str(&r.summary).map_err(Error::internal)?,
        );
    }
    Ok(out)
}

// ---- The cached read path. ----

/// Cache key of a passport. The version names the text's shape (a tag, then the JSON of
/// [`Summary`]): bump it when either changes, and old entries are simply never read again.
pub fn cache_key(product_id: Uuid) -> String {
    format!("curation:v2:{product_id}")
}

/// Hex digits of the tag that starts a cached passport's text.
const TAG_LEN: usize = 32;

/// A passport's cached text: the tag of its JSON (32 hex digits), then the JSON. A page
/// reads the tags alone and the whole text only of passports whose tag it has not decoded.
fn tagged(json: &str) -> String {
    format!("{:032x}{json}", tag_of(json))
}

/// A 128-bit digest of a passport's JSON (two SipHash runs with different seeds): two
/// different passports of one product never share a tag in practice.
fn tag_of(json: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let digest = |seed: u64| {
        let mut h = std::hash::DefaultHasher::new();
        (seed, json).hash(&mut h);
        h.finish()
    };
    (u128::from(digest(0x7061_7373)) << 64) | u128::from(digest(0x706f_7274))
}

/// The tag and the rest of a cached text (or of its head alone); None if it has no tag.
fn split_tag(text: &[u8]) -> Option<(u128, &[u8])> {
    let head = std::str::from_utf8(text.get(..TAG_LEN)?).ok()?;
    if !head.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((u128::from_str_radix(head, 16).ok()?, &text[TAG_LEN..]))
}

type Loaded = std::result::Result<Arc<HashMap<Uuid, Summary>>, Arc<Error>>;

/// Reads passports through the cache: one round trip for a whole page, the database for the
/// misses (one statement), and concurrent misses for the same product loaded once.
pub struct CurationStore {
    cache: Arc<dyn Cache>,
    metrics: Arc<Metrics>,
    ttl: Duration,
    /// Loads in flight, by product: a request that misses a product another request is
    /// already loading waits for that load instead of starting its own. A std Mutex: held
    /// only to look up or insert.
    in_flight: Mutex<HashMap<Uuid, Shared<BoxFuture<'static, Loaded>>>>,
    /// Passports decoded before, with the tag of the text they came from: a page reads the
    /// tags of its passports ([`Cache::get_heads`]), and only those whose tag changed are
    /// read whole and decoded again (decoding was a tenth of a page's time, and reading the
    /// ~1.7 KB texts of 50 passports a twelfth on PostgreSQL + Redis). The cache stays the
    /// truth: a different tag is read, decoded and remembered anew.
    decoded: moka::sync::Cache<Uuid, (u128, Arc<Summary>)>,
}

/// Decoded passports remembered (the least used go first beyond this).
const DECODED_CAPACITY: u64 = 10_000;

impl CurationStore {
    pub fn new(cache: Arc<dyn Cache>, metrics: Arc<Metrics>, ttl: Duration) -> CurationStore {
        CurationStore {
            cache,
            metrics,
            ttl,
            in_flight: Mutex::new(HashMap::new()),
            decoded: moka::sync::Cache::new(DECODED_CAPACITY),
        }
    }

    /// The passport cached as `text` (tagged) for `id`, decoded and remembered with its tag.
    fn decode(&self, id: Uuid, text: &str) -> Option<Arc<Summary>> {
        let (tag, json) = split_tag(text.as_bytes())?;
        let summary = Arc::new(serde_json::from_slice::<Summary>(json).ok()?);
        self.remember(id, tag, summary.clone());
        Some(summary)
    }

    fn remember(&self, id: Uuid, tag: u128, summary: Arc<Summary>) {
        self.decoded.insert(id, (tag, summary));
    }

    /// The passport remembered for `id`, if it was decoded from a text tagged `tag`.
    fn remembered(&self, id: Uuid, tag: u128) -> Option<Arc<Summary>> {
        self.decoded
            .get(&id)
            .filter(|(known, _)| *known == tag)
            .map(|(_, summary)| summary)
    }

    /// A cache read that failed: logged and counted; the database answers instead.
    fn read_failed(&self, e: &crate::cache::CacheError) {
        tracing::warn!(error = %e, backend = self.cache.backend(), "cache read failed; using the database");
        self.count("error", 1);
    }

    fn call(&self, op: &'static str) {
        let labels = CacheCallLabels {
            backend: self.cache.backend(),
            op,
        };
        self.metrics.cache_calls.get_or_create(&labels).inc();
    }

    fn count(&self, outcome: &'static str, n: usize) {
        if n > 0 {
            let labels = CacheLabels {
                backend: self.cache.backend(),
                outcome,
            };
            self.metrics
                .cache_requests
                .get_or_create(&labels)
                .inc_by(n as u64);
        }
    }

    /// Passports of `ids`. Never fails because of the cache: cache errors are logged and
    /// counted and the database answers instead.
    pub async fn load_many(
        self: &Arc<Self>,
        db: &DatabaseConnection,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Arc<Summary>>> {
        let keys: Vec<String> = ids.iter().map(|id| cache_key(*id)).collect();
        let mut out = HashMap::new();
        let mut misses = Vec::new();
        self.call("get");
        match self.cache.get_heads(&keys, TAG_LEN).await {
            Ok(heads) => {
                // Passports whose tag was not decoded here before: read whole.
                let mut unread = Vec::new();
                for (id, head) in ids.iter().zip(heads) {
                    match head.as_deref().and_then(split_tag) {
                        Some((tag, _)) => match self.remembered(*id, tag) {
                            Some(s) => {
                                out.insert(*id, s);
                            }
                            None => unread.push(*id),
                        },
                        None => misses.push(*id),
                    }
                }
                if !unread.is_empty() {
                    let keys: Vec<String> = unread.iter().map(|id| cache_key(*id)).collect();
                    self.call("get");
                    match self.cache.get_many(&keys).await {
                        Ok(values) => {
                            for (id, value) in unread.into_iter().zip(values) {
                                match value.and_then(|v| self.decode(id, &v)) {
                                    Some(s) => {
                                        out.insert(id, s);
                                    }
                                    None => misses.push(id),
                                }
                            }
                        }
                        Err(e) => {
                            self.read_failed(&e);
                            misses.extend(unread);
                        }
                    }
                }
                self.count("hit", out.len());
                self.count("miss", misses.len());
            }
            Err(e) => {
                self.read_failed(&e);
                misses = ids.to_vec();
            }
        }
        if misses.is_empty() {
            return Ok(out);
        }

        // Join loads already in flight; start one load for the rest.
        let mut waits = Vec::new();
        let mut mine = Vec::new();
        {
            let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            for id in &misses {
                match in_flight.get(id) {
                    Some(f) => waits.push(f.clone()),
                    None => mine.push(*id),
                }
            }
        }
        if !mine.is_empty() {
            let store = self.clone();
            let db = db.clone();
            let ids = mine.clone();
            let load: Shared<BoxFuture<'static, Loaded>> = async move {
                let loaded = summaries_by_ids(&db, &ids).await.map_err(Arc::new)?;
                let mut entries: Vec<(String, String)> = Vec::with_capacity(loaded.len());
                for (id, s) in &loaded {
                    if let Ok(json) = serde_json::to_string(s) {
                        store.remember(*id, tag_of(&json), Arc::new(s.clone()));
                        entries.push((cache_key(*id), tagged(&json)));
                    }
                }
                store.call("set");
                if let Err(e) = store.cache.set_many(&entries, store.ttl).await {
                    tracing::warn!(error = %e, backend = store.cache.backend(), "cache write failed");
                    store.count("error", 1);
                }
                Ok(Arc::new(loaded))
            }
            .boxed()
            .shared();
            {
                let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                for id in &mine {
                    in_flight.insert(*id, load.clone());
                }
            }
            let result = load.await;
            {
                let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                for id in &mine {
                    in_flight.remove(id);
                }
            }
            let loaded =
                result.map_err(|e| Error::internal(anyhow::anyhow!("loading passports: {e:?}")))?;
            for id in &mine {
                out.insert(*id, loaded.get(id).cloned().unwrap_or_default().into());
            }
        }
        for wait in waits {
            let loaded = wait
                .await
                .map_err(|e| Error::internal(anyhow::anyhow!("loading passports: {e:?}")))?;
            for id in &misses {
                if let Some(s) = loaded.get(id) {
                    out.entry(*id).or_insert_with(|| Arc::new(s.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Drops the cached passports of `products` (after the transaction that changed them
    /// committed), in one round trip. A failure is logged and counted; the entries then
    /// expire with their TTL.
    async fn forget(&self, products: &[Uuid]) {
        let keys: Vec<String> = products.iter().map(|id| cache_key(*id)).collect();
        self.call("delete");
        if let Err(e) = self.cache.delete(&keys).await {
            tracing::warn!(error = %e, backend = self.cache.backend(), ?products, "cache invalidation failed");
            self.count("error", 1);
        }
    }
}

/// Hears every published batch ([`crate::events::Events::publish`]): the passports of the
/// products it says changed ([`Kind::PassportChanged`]) go, before the response cache drops
/// its catalog answers (a catalog answer computed after that drop must not read the old
/// passport back from this cache).
#[async_trait::async_trait]
impl crate::events::Listener for CurationStore {
    async fn published(&self, batch: &[Event]) {
        let mut products: Vec<Uuid> = batch
            .iter()
            .filter(|e| e.kind == Kind::PassportChanged)
            .map(|e| e.subject)
            .collect();
        products.sort_unstable();
        products.dedup();
        if !products.is_empty() {
            self.forget(&products).await;
        }
    }
}

// ---- Writes. ----

fn merchant_of(m: &member::Model) -> Result<Uuid> {
    m.merchant_id
        .ok_or_else(|| Error::Forbidden("this account acts for no merchant".into()))
}

/// A merchant creates a brand of its own, or an admin one for merchant `for_merchant`
/// (`NOT_FOUND` when there is no such merchant). Brand names are unique platform-wide.
/// Audited.
pub async fn create_brand(
    db: &DatabaseConnection,
    events: &Events,
    merchant: &member::Model,
    for_merchant: Option<Uuid>,
    actor: &Actor,
    name: &str,
    now: DateTime<Utc>,
) -> Result<brand::Model> {
    let merchant_id = match for_merchant {
        Some(m) if merchant.merchant_id == Some(m) => m,
        Some(m) if merchant.staff_role == Some(member::StaffRole::Admin) => {
            super::catalog::merchant(db, m).await?.id
        }
        Some(_) => {
            return Err(Error::Forbidden(
                "a merchant creates brands of its own only".into(),
            ));
        }
        None => merchant_of(merchant)?,
    };
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(Error::validation("name", "must be 1 to 120 characters"));
    }
    let txn = crate::db::begin_write(db).await?;
    let brand = super::catalog::create_brand(&txn, merchant_id, name).await?;
    audit::record(
        &txn,
        actor,
        Action::BrandCreated,
        Some((TargetType::Brand, brand.id)),
        json!({ "name": brand.name }),
        now,
    )
    .await?;
    txn.commit().await?;
    events.publish(vec![Event::catalog(None)]).await;
    Ok(brand)
}

/// What a merchant submits.
pub struct Submission {
    pub brand_id: Uuid,
    pub category_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub skus: Vec<(String, rust_decimal::Decimal, i32)>,
    pub rebate_rate: rust_decimal::Decimal,
    pub team_rebate_rate: rust_decimal::Decimal,
    pub membership_activity: bool,
}

const MAX_RATE_BP: i32 = 3_000;

fn name_of(raw: &str, field: &'static str) -> Result<String> {
    let s = raw.trim();
    match s.chars().count() {
        1..=120 => Ok(s.to_owned()),
        _ => Err(Error::validation(field, "must be 1 to 120 characters")),
    }
}

fn rate_of(d: rust_decimal::Decimal, field: &'static str) -> Result<Rate> {
    Rate::from_decimal(d)
        .filter(|r| r.bp() <= MAX_RATE_BP)
        .ok_or_else(|| {
            Error::validation(
                field,
                "must be between 0 and 0.30 with at most 4 decimal places",
            )
        })
}

/// A merchant submits a product of one of its brands into curation (`IN_CURATION`). Audited.
pub async fn submit_product(
    db: &DatabaseConnection,
    events: &Events,
    merchant: &member::Model,
    actor: &Actor,
    s: Submission,
    now: DateTime<Utc>,
) -> Result<product::Model> {
    let merchant_id = merchant_of(merchant)?;
    let name = name_of(&s.name, "name")?;
    let rebate_rate = rate_of(s.rebate_rate, "rebateRate")?;
    let team_rebate_rate = rate_of(s.team_rebate_rate, "teamRebateRate")?;
    if rebate_rate.bp() + team_rebate_rate.bp() > MAX_RATE_BP {
        return Err(Error::validation(
            "teamRebateRate",
            "rebateRate + teamRebateRate must not exceed 0.30",
        ));
    }
    if s.skus.is_empty() {
        return Err(Error::validation("skus", "at least one SKU is required"));
    }
    if s.skus.len() > 50 {
        return Err(Error::validation("skus", "at most 50 SKUs"));
    }
    let mut skus = Vec::with_capacity(s.skus.len());
    for (i, (sku_name, price, stock)) in s.skus.into_iter().enumerate() {
        let sku_name = name_of(&sku_name, "skus.name").map_err(|_| {
            Error::validation(format!("skus[{i}].name"), "must be 1 to 120 characters")
        })?;
        let price = Money::from_decimal(price)
            .filter(|m| m.fen() > 0 && m.fen() <= 100_000_000)
            .ok_or_else(|| {
                Error::validation(
                    format!("skus[{i}].price"),
                    "must be above 0 with at most 2 decimal places",
                )
            })?;
        if stock < 0 {
            return Err(Error::validation(
                format!("skus[{i}].stock"),
                "must not be negative",
            ));
        }
        skus.push(NewSku {
            name: sku_name,
            price,
            stock,
        });
    }
    if let Some(d) = &s.description
        && d.chars().count() > 5_000
    {
        return Err(Error::validation("description", "at most 5000 characters"));
    }
    let brand = brand::Entity::find_by_id(s.brand_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("brand"))?;
    if brand.merchant_id != merchant_id {
        return Err(Error::Forbidden(
            "this brand belongs to another merchant".into(),
        ));
    }
    let category = category::Entity::find_by_id(s.category_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("category"))?;
    if category.parent_id.is_none() {
        return Err(Error::validation(
            "categoryId",
            "products are listed in leaf categories, not top-level ones",
        ));
    }
    let audited_name = name.clone();
    let p = NewProduct {
        id: Uuid::now_v7(),
        merchant_id,
        brand_id: brand.id,
        category_id: category.id,
        name,
        name_en: None,
        description: s
            .description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty()),
        status: product::Status::InCuration,
        rebate_rate,
        team_rebate_rate,
        membership_activity: s.membership_activity,
        sales_count: 0,
        created_at: now,
        published_at: None,
        skus,
        images: Vec::new(),
        tags: Vec::new(),
    };
    let id = p.id;
    let mut rows = ProductRows::default();
    rows.push(p, Uuid::now_v7)?;
    let txn = crate::db::begin_write(db).await?;
    // Read again, shared, in the transaction: a brand given to another merchant
    // (`service::catalog_admin::assign_brand`) or a category archived meanwhile.
    let brand_now = brand::Entity::find_by_id(brand.id)
        .lock_shared()
        .one(&txn)
        .await?;
    if brand_now.is_none_or(|b| b.merchant_id != merchant_id) {
        return Err(Error::Forbidden(
            "this brand belongs to another merchant".into(),
        ));
    }
    let category_now = category::Entity::find_by_id(category.id)
        .lock_shared()
        .one(&txn)
        .await?;
    if category_now.is_none_or(|c| c.archived_at.is_some()) {
        return Err(Error::rule("CATEGORY_ARCHIVED", "the category is archived"));
    }
    rows.insert(&txn).await?;
    store_summary(&txn, id, &Summary::default(), now).await?;
    audit::record(
        &txn,
        actor,
        Action::ProductSubmitted,
        Some((TargetType::Product, id)),
        json!({ "name": audited_name, "brandId": brand.id, "categoryId": category.id }),
        now,
    )
    .await?;
    txn.commit().await?;
    events.publish(vec![Event::catalog(Some(id))]).await;
    product::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("product"))
}

async fn product_for_update(txn: &impl ConnectionTrait, id: Uuid) -> Result<product::Model> {
    product::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or_else(|| Error::not_found("product"))
}

/// A merchant sends a rejected product back into curation; it resumes at the failed stage.
/// Audited.
pub async fn resubmit_product(
    db: &DatabaseConnection,
    events: &Events,
    merchant: &member::Model,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<product::Model> {
    let merchant_id = merchant_of(merchant)?;
    let txn = crate::db::begin_write(db).await?;
    let p = product_for_update(&txn, id).await?;
    if p.merchant_id != merchant_id {
        return Err(Error::not_found("product"));
    }
    let updated = product::Entity::update_many()
        .col_expr(
            product::Column::Status,
            Expr::value(product::Status::InCuration),
        )
        .filter(product::Column::Id.eq(id))
        .filter(product::Column::Status.eq(product::Status::Rejected))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(Error::rule(
            "NOT_REJECTED",
            "only a rejected product can be resubmitted",
        ));
    }
    audit::record(
        &txn,
        actor,
        Action::ProductResubmitted,
        Some((TargetType::Product, id)),
        json!({}),
        now,
    )
    .await?;
    let p = product_for_update(&txn, id).await?;
    txn.commit().await?;
    events.publish(vec![Event::catalog(Some(id))]).await;
    Ok(p)
}

/// A stage result to record.
pub struct StageInput {
    pub product_id: Uuid,
    pub stage: Stage,
    pub passed: bool,
    pub notes: Option<String>,
    pub evidence_urls: Vec<String>,
}

/// A curator records the next stage's result. Stages go strictly in order
/// (`CURATION_OUT_OF_ORDER`); a FAIL rejects the product back to its merchant.
pub async fn record_stage(
    db: &DatabaseConnection,
    events: &Events,
    curator: &member::Model,
    actor: &Actor,
    input: StageInput,
    now: DateTime<Utc>,
) -> Result<(product::Model, Summary)> {
    for (i, url) in input.evidence_urls.iter().enumerate() {
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() <= 2_000
            && !url.chars().any(char::is_whitespace);
        if !ok {
            return Err(Error::validation(
                format!("evidenceUrls[{i}]"),
                "must be an http or https URL",
            ));
        }
    }
    if input.evidence_urls.len() > 20 {
        return Err(Error::validation("evidenceUrls", "at most 20 URLs"));
    }
    let notes = input
        .notes
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if notes.as_ref().is_some_and(|n| n.chars().count() > 5_000) {
        return Err(Error::validation("notes", "at most 5000 characters"));
    }
    let txn = crate::db::begin_write(db).await?;
    let p = product_for_update(&txn, input.product_id).await?;
    if p.status != product::Status::InCuration {
        return Err(Error::rule(
            "NOT_IN_CURATION",
            format!("the product is {:?}, not in curation", p.status).to_uppercase(),
        ));
    }
    let expected = STAGES.get(p.stages_passed as usize).copied();
    if expected != Some(input.stage) {
        let msg = match expected {
            Some(next) => format!(
                "the next stage is {}, not {}",
                next.as_str(),
                input.stage.as_str()
            ),
            None => "all five stages have passed already".to_owned(),
        };
        return Err(Error::rule("CURATION_OUT_OF_ORDER", msg));
    }
    // Conditional on the progress read above: of two curators recording the same stage at
    // once, exactly one moves the product on.
    let mut update = product::Entity::update_many()
        .col_expr(product::Column::UpdatedAt, Expr::value(now))
        .filter(product::Column::Id.eq(p.id))
        .filter(product::Column::StagesPassed.eq(p.stages_passed))
        .filter(product::Column::Status.eq(product::Status::InCuration));
    update = if input.passed {
        update.col_expr(
            product::Column::StagesPassed,
            Expr::col(product::Column::StagesPassed).add(1),
        )
    } else {
        update.col_expr(
            product::Column::Status,
            Expr::value(product::Status::Rejected),
        )
    };
    if update.exec(&txn).await?.rows_affected == 0 {
        return Err(Error::rule(
            "CURATION_OUT_OF_ORDER",
            "the product moved on meanwhile; reload it",
        ));
    }
    curation_stage_record::Entity::insert(curation_stage_record::ActiveModel {
        id: Set(Uuid::now_v7()),
        product_id: Set(p.id),
        stage: Set(input.stage.as_str().to_owned()),
        result: Set(if input.passed { "PASS" } else { "FAIL" }.to_owned()),
        reviewer_id: Set(curator.id),
        notes: Set(notes),
        evidence_urls: Set(serde_json::to_string(&input.evidence_urls).map_err(Error::internal)?),
        recorded_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    let summary = rebuild_summary(&txn, p.id, now).await?;
    audit::record(
        &txn,
        actor,
        Action::CurationStageRecorded,
        Some((TargetType::Product, p.id)),
        json!({
            "stage": input.stage.as_str(),
            "result": if input.passed { "PASS" } else { "FAIL" },
            "evidenceUrls": input.evidence_urls.len(),
        }),
        now,
    )
    .await?;
    let p = product_for_update(&txn, p.id).await?;
    txn.commit().await?;
    events.publish(vec![Event::passport(p.id)]).await;
    Ok((p, summary))
}

/// Scores to record for a product, as asked for.
pub struct ScoreInput {
    pub product_id: Uuid,
    pub scores: Scores<i32>,
}

/// A curator scores the selection criteria (1–5 each) and the badges' flags.
pub async fn score_product(
    db: &DatabaseConnection,
    events: &Events,
    curator: &member::Model,
    actor: &Actor,
    s: ScoreInput,
    now: DateTime<Utc>,
) -> Result<(product::Model, Summary)> {
    let scores = s.scores.check()?;
    let txn = crate::db::begin_write(db).await?;
    let p = product_for_update(&txn, s.product_id).await?;
    if p.status == product::Status::Published {
        return Err(Error::rule(
            "ALREADY_PUBLISHED",
            "unpublish the product before re-scoring it",
        ));
    }
    curation_score::Entity::insert(scores.row(Uuid::now_v7(), p.id, curator.id, now))
        .exec_without_returning(&txn)
        .await?;
    let summary = rebuild_summary(&txn, p.id, now).await?;
    audit::record(
        &txn,
        actor,
        Action::ProductScored,
        Some((TargetType::Product, p.id)),
        json!({
            "essentialNeed": scores.essential_need,
            "newPainPoint": scores.new_pain_point,
            "longevity": scores.longevity,
            "qualityAndSupply": scores.quality_and_supply,
            "highQuality": scores.high_quality,
            "highDesign": scores.high_design,
            "highValue": scores.high_value,
            "euExportGrade": scores.eu_export_grade,
        }),
        now,
    )
    .await?;
    txn.commit().await?;
    events.publish(vec![Event::passport(p.id)]).await;
    Ok((p, summary))
}

/// Publishes (上架) a product that passed the gate: all five stages in order, every
/// criterion at least `min_score`, and room under the leaf category's brand cap.
pub async fn publish_product(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    id: Uuid,
    min_score: u8,
    max_brands: u32,
    now: DateTime<Utc>,
) -> Result<product::Model> {
    let txn = crate::db::begin_write(db).await?;
    // Serialises publications, so two brands cannot both take the last place under the cap.
    txn.execute_unprepared(
        "UPDATE write_locks SET version = version + 1 WHERE name = 'publishing'",
    )
    .await?;
    let p = product_for_update(&txn, id).await?;
    match p.status {
        product::Status::Published => {
            return Err(Error::rule(
                "ALREADY_PUBLISHED",
                "the product is already published",
            ));
        }
        product::Status::Rejected => {
            return Err(Error::rule(
                "CURATION_INCOMPLETE",
                "the product was rejected and must be resubmitted",
            ));
        }
        product::Status::InCuration | product::Status::Unpublished => {}
    }
    let summary = summaries_by_ids(&txn, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    if let Some(missing) = STAGES
        .iter()
        .find(|s| !summary.stages.iter().any(|e| e.stage == **s && e.passed))
    {
        return Err(Error::rule(
            "CURATION_INCOMPLETE",
            format!("stage {} has not passed", missing.as_str()),
        ));
    }
    let Some(score) = &summary.score else {
        return Err(Error::rule(
            "CURATION_INCOMPLETE",
            "the product has not been scored",
        ));
    };
    if let Some((name, v)) = score
        .scores
        .criteria()
        .into_iter()
        .find(|(_, v)| *v < i16::from(min_score))
    {
        return Err(Error::rule(
            "CURATION_INCOMPLETE",
            format!("{name} scored {v}, at least {min_score} is required"),
        ));
    }
    // Archiving takes the publishing lock too: the category read here stays as it is.
    let archived = category::Entity::find_by_id(p.category_id)
        .one(&txn)
        .await?
        .is_none_or(|c| c.archived_at.is_some());
    if archived {
        return Err(Error::rule(
            "CATEGORY_ARCHIVED",
            "the product's category is archived",
        ));
    }
    let listed: Vec<Uuid> = product::Entity::find()
        .select_only()
        .column(product::Column::BrandId)
        .distinct()
        .filter(product::Column::CategoryId.eq(p.category_id))
        .filter(product::Column::Status.eq(product::Status::Published))
        .into_tuple()
        .all(&txn)
        .await?;
    if !listed.contains(&p.brand_id) && listed.len() as u32 >= max_brands {
        return Err(Error::rule(
            "BRAND_CAP_EXCEEDED",
            format!(
                "{} brands are already listed in this category (the cap is {max_brands})",
                listed.len()
            ),
        ));
    }
    product::Entity::update_many()
        .col_expr(
            product::Column::Status,
            Expr::value(product::Status::Published),
        )
        .col_expr(product::Column::PublishedAt, Expr::value(now))
        .col_expr(product::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            product::Column::UnpublishedReason,
            Expr::value(Option::<String>::None),
        )
        .filter(product::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        Action::ProductPublished,
        Some((TargetType::Product, id)),
        json!({}),
        now,
    )
    .await?;
    let p = product_for_update(&txn, id).await?;
    super::webhooks::record(
        &txn,
        "product.published",
        json!({
            "product": {
                "id": super::webhooks::node_id("Product", p.id),
                "name": p.name,
                "merchantId": super::webhooks::node_id("Merchant", p.merchant_id),
                "brandId": super::webhooks::node_id("Brand", p.brand_id),
                "categoryId": super::webhooks::node_id("Category", p.category_id),
                "minPrice": super::webhooks::money(p.min_price),
                "maxPrice": super::webhooks::money(p.max_price),
                "publishedAt": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            }
        }),
        now,
    )
    .await?;
    txn.commit().await?;
    events.publish(vec![Event::passport(id)]).await;
    Ok(p)
}

/// Delists (下架) a published product, with a reason.
pub async fn unpublish_product(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<product::Model> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Error::validation(
            "reason",
            "give a reason of 1 to 500 characters",
        ));
    }
    let txn = crate::db::begin_write(db).await?;
    let updated = product::Entity::update_many()
        .col_expr(
            product::Column::Status,
            Expr::value(product::Status::Unpublished),
        )
        .col_expr(product::Column::UnpublishedReason, Expr::value(reason))
        .col_expr(product::Column::UpdatedAt, Expr::value(now))
        .filter(product::Column::Id.eq(id))
        .filter(product::Column::Status.eq(product::Status::Published))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        product_for_update(&txn, id).await?;
        return Err(Error::rule(
            "NOT_PUBLISHED",
            "only a published product can be unpublished",
        ));
    }
    audit::record(
        &txn,
        actor,
        Action::ProductUnpublished,
        Some((TargetType::Product, id)),
        json!({ "reason": reason }),
        now,
    )
    .await?;
    let p = product_for_update(&txn, id).await?;
    txn.commit().await?;
    events.publish(vec![Event::passport(id)]).await;
    Ok(p)
}

/// Every stage record of a product, oldest first (the audit trail).
pub async fn history(
    db: &impl ConnectionTrait,
    product_id: Uuid,
) -> Result<Vec<curation_stage_record::Model>> {
    Ok(curation_stage_record::Entity::find()
        .filter(curation_stage_record::Column::ProductId.eq(product_id))
        .order_by_asc(curation_stage_record::Column::RecordedAt)
        .order_by_asc(curation_stage_record::Column::Id)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;

    fn summary(notes: &str) -> Summary {
        Summary {
            stages: vec![StageEntry {
                stage: STAGES[0],
                passed: true,
                notes: Some(notes.into()),
                evidence_urls: vec![],
                reviewer_id: Uuid::nil(),
                recorded_at: Utc::now(),
            }],
            score: None,
        }
    }

    fn gets(metrics: &Metrics) -> u64 {
        let labels = CacheCallLabels {
            backend: "memory",
            op: "get",
        };
        metrics.cache_calls.get_or_create(&labels).get()
    }

    /// A page reads its passports' tags, and a passport's whole text only when its tag is
    /// new here; nothing at all from the database (this one is not even connected).
    #[tokio::test]
    async fn known_tags_are_not_read_again() {
        let cache = Arc::new(MemoryCache::new(10, Duration::from_secs(60)));
        let metrics = Metrics::new();
        let store = Arc::new(CurationStore::new(
            cache.clone(),
            metrics.clone(),
            Duration::from_secs(60),
        ));
        let db = DatabaseConnection::default();
        let id = Uuid::now_v7();
        let put = |s: &Summary| {
            let entry = (
                cache_key(id),
                tagged(&serde_json::to_string(s).expect("json")),
            );
            let cache = cache.clone();
            async move {
                cache
                    .set_many(&[entry], Duration::from_secs(60))
                    .await
                    .expect("stored")
            }
        };
        put(&summary("first")).await;
        let first = store.load_many(&db, &[id]).await.expect("cached")[&id].clone();
        assert_eq!(first.stages[0].notes.as_deref(), Some("first"));
        assert_eq!(gets(&metrics), 2, "the tag, then the text");
        let again = store.load_many(&db, &[id]).await.expect("cached")[&id].clone();
        assert!(Arc::ptr_eq(&first, &again), "not decoded again");
        assert_eq!(gets(&metrics), 3, "the tag alone");
        put(&summary("second")).await;
        let changed = store.load_many(&db, &[id]).await.expect("cached")[&id].clone();
        assert_eq!(changed.stages[0].notes.as_deref(), Some("second"));
        assert_eq!(gets(&metrics), 5, "a new tag: its text read");
    }

    #[test]
    fn a_tag_names_its_text() {
        let (a, b) = (
            serde_json::to_string(&summary("a")).expect("json"),
            serde_json::to_string(&summary("b")).expect("json"),
        );
        let text = tagged(&a);
        let (tag, json) = split_tag(text.as_bytes()).expect("tagged");
        assert_eq!((tag, json), (tag_of(&a), a.as_bytes()));
        assert_ne!(tag_of(&a), tag_of(&b));
        assert_eq!(
            split_tag(&text.as_bytes()[..TAG_LEN]).map(|(t, _)| t),
            Some(tag)
        );
        // Untagged texts (the JSON alone, a damaged head, a short one) are misses.
        assert!(split_tag(a.as_bytes()).is_none());
        assert!(split_tag(format!("+{}", &text[1..]).as_bytes()).is_none());
        assert!(split_tag(&text.as_bytes()[..TAG_LEN - 1]).is_none());
    }
}
