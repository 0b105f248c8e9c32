//! The team of S5: one push-hand with a million descendants (√n at level 1, a few hundred
//! at level 3, the rest at level 2, joining over 18 months), with their bindings, closure rows
//! and monthly counters exactly as the hierarchy service keeps them. Every member's password
//! is [`PASSWORD`]; the root signs in as `m0000000@bench.example`.

use std::collections::HashMap;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use pushhand::service::{auth, hierarchy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::bulk::{Format, Loader, MEMBER_COLUMNS, Rows, invite_code};

pub const PASSWORD: &str = "bench-password-1";
pub const ROOT_EMAIL: &str = "m0000000@bench.example";

/// The generated tree, for checking answers.
pub struct Tree {
    /// Members at levels 1, 2 and 3 below the root.
    pub levels: [usize; 3],
    pub closure_rows: usize,
    pub counters: usize,
    /// Every member written, root first, in joining (and id) order: S14's board members.
    pub members: Vec<Uuid>,
    /// Where the load's time went: writing each table, and committing.
    pub spent: Vec<(&'static str, StdDuration)>,
}

/// One generated member: when it joined, its upline (an index) and its level below the root.
struct Node {
    id: Uuid,
    at: DateTime<Utc>,
    upline: u32,
    level: u8,
}

/// Writes the root and its descendants with their bindings, closure rows and counters.
pub async fn generate(db: &DatabaseConnection, descendants: usize) -> anyhow::Result<Tree> {
    let now = pushhand::service::now();
    let mut rng = ChaCha8Rng::seed_from_u64(0xBE7C_47EA_2026);
    let l1 = ((descendants as f64).sqrt().round() as usize).clamp(1, descendants);
    let l3 = ((descendants - l1) / 10).min(300);
    let start = now - Duration::days(540);
    let millis = |t: DateTime<Utc>| t.timestamp_millis();
    let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or(now);

    // Joining times by level: the first level in the first two months, the second over the
    // rest of the 18 months (more of them lately), the third in the last month.
    let mut joins: Vec<(i64, u8)> = Vec::with_capacity(descendants);
    let (l1_from, l1_to) = (millis(start), millis(start + Duration::days(60)));
    let (l2_from, l2_to) = (l1_to, millis(now - Duration::hours(1)));
    let (l3_from, l3_to) = (millis(now - Duration::days(30)), l2_to);
    for i in 0..descendants {
        let (level, ms) = if i < l1 {
            (1, rng.random_range(l1_from..l1_to))
        } else if i < l1 + l3 {
            (3, rng.random_range(l3_from..l3_to))
        } else {
            let u: f64 = rng.random();
            (2, l2_from + ((l2_to - l2_from) as f64 * u.sqrt()) as i64)
        };
        joins.push((ms, level));
    }
    // Joining order is also id order (UUIDv7), so most index insertions append.
    joins.sort_unstable();

    let id_at = |ms: i64, rng: &mut ChaCha8Rng| {
        let mut random = [0u8; 10];
        rng.fill(&mut random);
        uuid::Builder::from_unix_timestamp_millis(ms as u64, &random).into_uuid()
    };
    let mut nodes = Vec::with_capacity(descendants + 1);
    let root_at = start - Duration::days(1);
    nodes.push(Node {
        id: id_at(millis(root_at), &mut rng),
        at: root_at,
        upline: 0,
        level: 0,
    });
    let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
    for (ms, level) in joins {
        let upline = match level {
            1 => 0,
            2 => firsts[seconds.len() % firsts.len()],
            // A member of the second level who joined earlier (the first level if none has).
            _ if !seconds.is_empty() => seconds[rng.random_range(0..seconds.len())],
            _ => firsts[rng.random_range(0..firsts.len())],
        };
        let index = nodes.len() as u32;
        let level = nodes[upline as usize].level + 1;
        match level {
            1 => firsts.push(index),
            2 => seconds.push(index),
            _ => {}
        }
        nodes.push(Node {
            id: id_at(ms, &mut rng),
            at: at(ms),
            upline,
            level,
        });
    }

    let password_hash = auth::hash_password(PASSWORD.into()).await?;
    let (mut loader, format) = Loader::begin(db).await?;
    let mut member_rows = Rows::new("members", MEMBER_COLUMNS, format);
    let mut binding_rows = Rows::new(
        "bindings",
        "id, member_id, upline_id, kind, starts_at",
        format,
    );
    let mut closure_rows = Rows::new(
        "member_ancestors",
        "ancestor_id, depth, descendant_id, since",
        format,
    );
    let mut counts: HashMap<(u32, i16, String), i64> = HashMap::new();
    let mut tree = Tree {
        levels: [0; 3],
        closure_rows: 0,
        counters: 0,
        members: Vec::new(),
        spent: Vec::new(),
    };
    for (i, node) in nodes.iter().enumerate() {
        let upline = (i > 0).then(|| nodes[node.upline as usize].id);
        let row = member_rows
            .row()
            .uuid(node.id)
            .text(&format!("m{i:07}@bench.example"))
            .text(&password_hash)
            .text(&format!("Member {i}"))
            .text("PUSH_HAND")
            .text(&invite_code(i as u64));
        match upline {
            Some(id) => row.uuid(id),
            None => row.null(),
        }
        .int(0)
        .time(node.at)
        .end();

        if let Some(upline) = upline {
            tree.levels[usize::from(node.level) - 1] += 1;
            binding_rows
                .row()
                .uuid(id_at(millis(node.at), &mut rng))
                .uuid(node.id)
                .uuid(upline)
                .text("INVITE_CODE")
                .time(node.at)
                .end();

            // One closure row per ancestor within reach, since the binding started.
            let mut ancestor = node.upline;
            for depth in 1..=hierarchy::MAX_DEPTH {
                closure_rows
                    .row()
                    .uuid(nodes[ancestor as usize].id)
                    .int(i64::from(depth))
                    .uuid(node.id)
                    .time(node.at)
                    .end();
                tree.closure_rows += 1;
                *counts
                    .entry((ancestor, depth, hierarchy::period(node.at)))
                    .or_default() += 1;
                if ancestor == 0 {
                    break;
                }
                ancestor = nodes[ancestor as usize].upline;
            }
        }
        if member_rows.rows >= format.chunk() || i + 1 == nodes.len() {
            // Members before the bindings that reference them.
            loader.flush(&mut member_rows).await?;
            loader.flush(&mut binding_rows).await?;
            loader.flush(&mut closure_rows).await?;
        }
    }
    let mut counters: Vec<_> = counts.into_iter().collect();
    counters.sort_unstable();
    tree.counters = counters.len();
    let mut counter_rows = Rows::new(
        "team_counters",
        "ancestor_id, depth, period, members",
        format,
    );
    for ((ancestor, depth, period), n) in counters {
        counter_rows
            .row()
            .uuid(nodes[ancestor as usize].id)
            .int(i64::from(depth))
            .text(&period)
            .int(n)
            .end();
        if counter_rows.rows >= format.chunk() {
            loader.flush(&mut counter_rows).await?;
        }
    }
    loader.flush(&mut counter_rows).await?;
    let committing = Instant::now();
    loader.commit().await?;
    if format == Format::PostgresCopy {
        // Planner statistics, as autovacuum would gather them after a load this size.
        db.execute_unprepared("ANALYZE").await?;
    }
    let finishing = committing.elapsed();
    tree.spent = [member_rows, binding_rows, closure_rows, counter_rows]
        .into_iter()
        .map(|r| (r.table, r.spent))
        .chain([(
            if format == Format::PostgresCopy {
                "commit and ANALYZE"
            } else {
                "commit"
            },
            finishing,
        )])
        .collect();
    tree.members = nodes.iter().map(|n| n.id).collect();
    Ok(tree)
}
