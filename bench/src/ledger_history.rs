//! The earner of S4: a push-hand with 50,000 earnings over 18 months, each booked and (unless
//! recent) settled — 100,000 ledger entries — with the balance row their exact sum, as the
//! ledger service would have left them (`ledgerCheck` agrees).

use chrono::Duration;
use entity::Money;
use pushhand::service::earnings::Explanation;
use pushhand::service::members::{self, CliRole};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::bulk::{Format, Loader, Rows, at, id_at, random_times};

pub const EMAIL: &str = "earner@bench.example";
pub const PASSWORD: &str = "bench-password-1";

/// What was written.
pub struct History {
    pub earnings: usize,
    pub entries: usize,
}

pub async fn generate(db: &DatabaseConnection, earnings: usize) -> anyhow::Result<History> {
    let now = pushhand::service::now();
    let m = members::create_user(db, EMAIL, PASSWORD, CliRole::PushHand, None, now)
        .await
        .map_err(anyhow::Error::from)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_4EDE_2026);
    let times = random_times(
        &mut rng,
        earnings,
        now - Duration::days(540),
        now - Duration::hours(1),
    );

    let (mut loader, format) = Loader::begin(db).await?;
    let mut earning_rows = Rows::new(
        "earnings",
        "id, member_id, kind, level, amount, status, explanation, created_at, settle_after, settled_at",
        format,
    );
    let mut entry_rows = Rows::new(
        "ledger_entries",
        "id, member_id, event, earning_id, pending_delta, available_delta, reserved_delta, withdrawn_delta, lifetime_delta, created_at",
        format,
    );
    let (mut pending, mut available, mut entries) = (0i64, 0i64, 0usize);
    // Net earnings per month (UTC), as the ledger keeps them in `ledger_months`.
    let mut months: std::collections::BTreeMap<String, i64> = Default::default();
    let window = Duration::days(7);
    for (i, ms) in times.into_iter().enumerate() {
        let created = at(ms);
        let base = Money::from_fen(rng.random_range(1_000..100_000));
        let amount = Money::from_fen(base.fen() * 15 / 100);
        let settles = created + Duration::days(10);
        let settled = settles <= now;
        let explanation = Explanation {
            rule: "SELF_PURCHASE".into(),
            level: 1,
            base_amount: base.to_decimal(),
            rate: Some(Decimal::new(15, 2)),
            fixed_per_unit: None,
            units: None,
            uncapped_amount: None,
            share_link_id: None,
            binding_id: None,
            adjusts_earning_id: None,
            policy_version: "2026-11".into(),
            list_amount: None,
            coupon_share: None,
            note_id: None,
            note_title: None,
            base_refunded: None,
        };
        let id = id_at(ms, &mut rng);
        let row = earning_rows
            .row()
            .uuid(id)
            .uuid(m.id)
            .text("SELF_PURCHASE")
            .int(1)
            .int(amount.fen())
            .text(if settled { "SETTLED" } else { "PENDING" })
            .text(&serde_json::to_string(&explanation)?)
            .time(created)
            .time(created + window);
        if settled {
            row.time(settles)
        } else {
            row.null()
        }
        .end();
        let a = amount.fen();
        entry_rows
            .row()
            .uuid(id_at(ms, &mut rng))
            .uuid(m.id)
            .text("EARNED")
            .uuid(id)
            .int(a)
            .int(0)
            .int(0)
            .int(0)
            .int(a)
            .time(created)
            .end();
        entries += 1;
        *months
            .entry(pushhand::service::hierarchy::period(created))
            .or_default() += a;
        if settled {
            entry_rows
                .row()
                .uuid(id_at(settles.timestamp_millis(), &mut rng))
                .uuid(m.id)
                .text("SETTLED")
                .uuid(id)
                .int(-a)
                .int(a)
                .int(0)
                .int(0)
                .int(0)
                .time(settles)
                .end();
            entries += 1;
            available += a;
        } else {
            pending += a;
        }
        if earning_rows.rows >= format.chunk() || i + 1 == earnings {
            loader.flush(&mut earning_rows).await?;
            loader.flush(&mut entry_rows).await?;
        }
    }
    let mut month_rows = Rows::new("ledger_months", "member_id, period, lifetime", format);
    for (period, total) in &months {
        month_rows.row().uuid(m.id).text(period).int(*total).end();
    }
    loader.flush(&mut month_rows).await?;
    loader.commit().await?;
    let sql = format!(
        "UPDATE balances SET pending = {pending}, available = {available}, lifetime = {} WHERE member_id = {}",
        pending + available,
        match format {
            Format::SqliteValues => format!("X'{}'", m.id.simple()),
            Format::PostgresCopy => format!("'{}'", m.id.hyphenated()),
        }
    );
    let updated = db.execute_unprepared(&sql).await?;
    if updated.rows_affected() == 0 {
        let sql = format!(
            "INSERT INTO balances (member_id, pending, available, reserved, withdrawn, lifetime, updated_at) VALUES ({}, {pending}, {available}, 0, 0, {}, '{}')",
            match format {
                Format::SqliteValues => format!("X'{}'", m.id.simple()),
                Format::PostgresCopy => format!("'{}'", m.id.hyphenated()),
            },
            pending + available,
            now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
        );
        db.execute_unprepared(&sql).await?;
    }
    if format == Format::PostgresCopy {
        db.execute_unprepared("ANALYZE").await?;
    }
    Ok(History { earnings, entries })
}
