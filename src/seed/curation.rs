//! Demo curation records: every published demo product gets its five passed stages, a
//! scoring and its quality passport; products still in curation sit at every stage, a few
//! rejected with the curator's notes, so the demo shows the whole pipeline.
//!
//! Deterministic like the rest of the seed; written with multi-row inserts.

use chrono::{DateTime, Duration, Utc};
use entity::{curation_stage_record, curation_summary, member, product};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::error::Result;
use crate::service::catalog::insert_chunks;
use crate::service::curation::{STAGES, ScoreEntry, Scores, StageEntry, Summary};

const SEED: u64 = 0x00C0_2A7E_5EED_2026;

const REJECTIONS: [&str; 4] = [
    "质检报告缺少第三方检测机构盖章 / the inspection report lacks the lab's seal",
    "工厂无法提供原材料溯源记录 / the factory could not trace its raw materials",
    "场景测试中续航低于标称值 15% / battery life 15% below the rated figure in use",
    "包装跌落测试破损 / packaging failed the drop test",
];

/// Writes the demo curation data for every product that has none yet. Returns how many
/// products got records.
pub async fn run(txn: &impl ConnectionTrait) -> Result<usize> {
    if curation_summary::Entity::find().one(txn).await?.is_some() {
        return Ok(0);
    }
    let Some(curator) = member::Entity::find()
        .filter(member::Column::Email.eq("curator@pushhand.example"))
        .one(txn)
        .await?
    else {
        return Ok(0);
    };
    let products = product::Entity::find()
        .order_by_asc(product::Column::Id)
        .all(txn)
        .await?;
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let id = |at: DateTime<Utc>, rng: &mut ChaCha8Rng| {
        let mut random = [0u8; 10];
        rng.fill(&mut random);
        uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis().max(0) as u64, &random)
            .into_uuid()
    };
    let (mut records, mut scores, mut summaries) = (Vec::new(), Vec::new(), Vec::new());
    let mut progress: Vec<(Uuid, i16, bool)> = Vec::new(); // in-curation products: stages passed, rejected
    let mut waiting = 0usize;
    for p in &products {
        let start = p.created_at + Duration::hours(2);
        let (passed, failed_note) = match p.status {
            product::Status::Published | product::Status::Unpublished => (5usize, None),
            product::Status::InCuration | product::Status::Rejected => {
                waiting += 1;
                let passed = waiting % 5;
                let note = (waiting % 4 == 3).then(|| REJECTIONS[waiting % REJECTIONS.len()]);
                progress.push((p.id, passed as i16, note.is_some()));
                (passed, note)
            }
        };
        let mut stages = Vec::new();
        let mut at = start;
        for stage in STAGES.iter().take(passed) {
            at += Duration::hours(rng.random_range(6..72));
            stages.push(StageEntry {
                stage: *stage,
                passed: true,
                recorded_at: at,
                reviewer_id: curator.id,
                notes: Some(format!("{} 通过 / passed", stage.as_str())),
                evidence_urls: vec![format!(
                    "https://evidence.pushhand.example/{}/{}.pdf",
                    p.id,
                    stage.as_str().to_lowercase()
                )],
            });
        }
        if let Some(note) = failed_note
            && let Some(stage) = STAGES.get(passed)
        {
            at += Duration::hours(rng.random_range(6..72));
            stages.push(StageEntry {
                stage: *stage,
                passed: false,
                recorded_at: at,
                reviewer_id: curator.id,
                notes: Some(note.to_owned()),
                evidence_urls: Vec::new(),
            });
        }
        for e in &stages {
            records.push(curation_stage_record::ActiveModel {
                id: Set(id(e.recorded_at, &mut rng)),
                product_id: Set(p.id),
                stage: Set(e.stage.as_str().to_owned()),
                result: Set(if e.passed { "PASS" } else { "FAIL" }.to_owned()),
                reviewer_id: Set(curator.id),
                notes: Set(e.notes.clone()),
                evidence_urls: Set(
                    serde_json::to_string(&e.evidence_urls).unwrap_or_else(|_| "[]".into())
                ),
                recorded_at: Set(e.recorded_at),
            });
        }
        let score = (passed == 5).then(|| {
            let mut s = || rng.random_range(3..=5i16);
            ScoreEntry {
                scores: Scores {
                    essential_need: s(),
                    new_pain_point: s(),
                    longevity: s(),
                    quality_and_supply: s(),
                    high_quality: rng.random_bool(0.8),
                    high_design: rng.random_bool(0.7),
                    high_value: rng.random_bool(0.75),
                    eu_export_grade: rng.random_bool(0.4),
                },
                reviewer_id: curator.id,
                recorded_at: at + Duration::hours(1),
            }
        });
        if let Some(s) = &score {
            let row_id = id(s.recorded_at, &mut rng);
            scores.push(s.scores.row(row_id, p.id, curator.id, s.recorded_at));
        }
        let summary = Summary { stages, score };
        summaries.push(curation_summary::ActiveModel {
            product_id: Set(p.id),
            summary: Set(serde_json::to_string(&summary).unwrap_or_default()),
            updated_at: Set(at),
        });
    }
    let count = summaries.len();
    insert_chunks(txn, records).await?;
    insert_chunks(txn, scores).await?;
    insert_chunks(txn, summaries).await?;
    for (pid, passed, rejected) in progress {
        let status = if rejected {
            product::Status::Rejected
        } else {
            product::Status::InCuration
        };
        product::Entity::update_many()
            .col_expr(product::Column::StagesPassed, Expr::value(passed))
            .col_expr(product::Column::Status, Expr::value(status))
            .filter(product::Column::Id.eq(pid))
            .exec(txn)
            .await?;
    }
    Ok(count)
}
