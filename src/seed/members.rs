//! The demo member hierarchy that `pushhand seed` writes beside the catalog:
//!
//! - staff: `admin@pushhand.example` (ADMIN), `curator@pushhand.example` (CURATOR) and
//!   `merchant@pushhand.example` (MERCHANT);
//! - five founding push-hands, `founder1@pushhand.example` … `founder5@pushhand.example`,
//!   with nobody above them;
//! - 3,000 push-hands under them, each bound permanently by an invite code, up to six levels
//!   deep, joining over the 18 months before 2026-01-01 (so that `teamStats` has history);
//! - three partners, `partner1@pushhand.example` … `partner3@pushhand.example` (early
//!   push-hands admitted as partners), with buyers bound through their partner links: most
//!   bound within the last year and still active (relative to the real time of the seed run),
//!   some lapsed long ago (ended `EXPIRED`, no upline), and a few of those since bound to
//!   another partner, so that binding histories have more than one entry.
//!
//! **Every demo account's password is `pushhand-demo-1`** ([`DEMO_PASSWORD`]). This is demo
//! data for development only: a production instance never seeds (`PUSHHAND_ENV=production`),
//! and `pushhand seed` must never be run against a real deployment.
//!
//! Deterministic (ids, codes, names and the tree come from a fixed random seed; only the
//! active partner bindings are placed relative to the current time, and the password hash has
//! a fresh salt), idempotent (nothing is written when any of the named demo accounts exists),
//! and fast: the password is hashed once and the PHC string shared, and every row — members,
//! bindings, the closure table `member_ancestors` (depth 1 to 3) and `team_counters` — is
//! built in memory, exactly as [`crate::service::hierarchy::attach`] would have written it
//! binding by binding, then written with multi-row inserts in one transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use entity::{binding, member, member_ancestor, team_counter};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use uuid::Uuid;

use crate::error::Result;
use crate::service::auth::hash_password;
use crate::service::catalog::insert_chunks;
use crate::service::hierarchy::{self, MAX_DEPTH, period};
use crate::service::members::{INVITE_CODE_LEN, PARTNER_LINK_LEN};

/// The password of every demo account. Development only.
pub const DEMO_PASSWORD: &str = "pushhand-demo-1";

const SEED: u64 = 0x005E_ED0F_4E4D_2026;
/// Crockford's base32, the alphabet of invite and partner-link codes.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const FOUNDERS: usize = 5;
const PARTNERS: usize = 3;
/// Push-hands below the founders (the partners included).
const PUSH_HANDS: usize = 3_000;
/// Levels below a founder.
const MAX_LEVEL: usize = 6;
/// How long the demo programme has been running before [`epoch`].
const HISTORY_DAYS: i64 = 548;
/// Lifetime of a partner-link binding (the `PUSHHAND_PARTNER_BINDING_DAYS` default).
const PARTNER_BINDING_DAYS: i64 = 365;
const ACTIVE_BUYERS_PER_PARTNER: std::ops::RangeInclusive<usize> = 30..=50;
const LAPSED_BUYERS_PER_PARTNER: std::ops::RangeInclusive<usize> = 12..=20;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "高", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
];
const GIVEN_NAMES: &[&str] = &[
    "子涵", "浩然", "欣怡", "宇轩", "梓萱", "一诺", "思远", "雨桐", "俊杰", "佳怡", "晨曦", "明轩",
    "诗琪", "嘉懿", "若曦", "天佑", "可馨", "博文", "静怡", "志强", "秀英", "建华", "丽娟", "伟",
    "芳", "磊", "婷", "洋", "敏", "杰", "慧", "军", "晓东", "海燕", "文博",
];

/// 2026-01-01T00:00:00Z, the catalog seed's reference instant.
fn epoch() -> DateTime<Utc> {
    super::epoch()
}

/// Everything a demo member needs beyond the shared defaults.
struct NewMember {
    email: Option<String>,
    phone: Option<String>,
    display_name: String,
    tier: member::Tier,
    staff_role: Option<member::StaffRole>,
    created_at: DateTime<Utc>,
}

/// The rows of the demo hierarchy, built in memory.
struct Builder {
    rng: ChaCha8Rng,
    password_hash: String,
    codes: HashSet<String>,
    members: Vec<member::Model>,
    index: HashMap<Uuid, usize>,
    bindings: Vec<binding::Model>,
}

impl Builder {
    /// A UUIDv7 carrying `t` as its timestamp and seeded randomness.
    fn id_at(&mut self, t: DateTime<Utc>) -> Uuid {
        let mut random = [0u8; 10];
        self.rng.fill(&mut random);
        let millis = u64::try_from(t.timestamp_millis()).unwrap_or_default();
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }

    /// A code of `len` Crockford symbols that no other demo member has.
    fn code(&mut self, len: usize) -> String {
        loop {
            let code: String = (0..len)
                .map(|_| CODE_ALPHABET[self.rng.random_range(0..32)] as char)
                .collect();
            if self.codes.insert(code.clone()) {
                return code;
            }
        }
    }

    fn display_name(&mut self) -> String {
        let surname = SURNAMES.choose(&mut self.rng).copied().unwrap_or("王");
        let given = GIVEN_NAMES.choose(&mut self.rng).copied().unwrap_or("伟");
        format!("{surname}{given}")
    }

    fn add(&mut self, m: NewMember) -> Uuid {
        let id = self.id_at(m.created_at);
        let invite_code = (m.tier != member::Tier::Buyer).then(|| self.code(INVITE_CODE_LEN));
        self.index.insert(id, self.members.len());
        self.members.push(member::Model {
            id,
            email: m.email,
            phone: m.phone,
            password_hash: self.password_hash.clone(),
            display_name: m.display_name,
            tier: m.tier,
            staff_role: m.staff_role,
            invite_code,
            partner_link_code: None,
            partner_application: None,
            upline_id: None,
            frozen_at: None,
            frozen_reason: None,
            token_version: 0,
            created_at: m.created_at,
            merchant_id: None,
        });
        id
    }

    fn member_mut(&mut self, id: Uuid) -> &mut member::Model {
        let at = self.index[&id];
        &mut self.members[at]
    }

    /// Records a binding; an open one (no `ended`) also becomes the member's upline.
    fn bind(
        &mut self,
        member: Uuid,
        upline: Uuid,
        kind: binding::Kind,
        starts_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        ended: Option<(DateTime<Utc>, binding::EndReason)>,
    ) {
        let id = self.id_at(starts_at);
        if ended.is_none() {
            self.member_mut(member).upline_id = Some(upline);
        }
        self.bindings.push(binding::Model {
            id,
            member_id: member,
            upline_id: upline,
            kind,
            starts_at,
            expires_at,
            ended_at: ended.map(|(at, _)| at),
            end_reason: ended.map(|(_, reason)| reason),
            created_by: None,
        });
    }
}

/// The demo accounts with fixed emails; if any exists, the hierarchy is not written again.
fn named_emails() -> Vec<String> {
    let mut emails: Vec<String> = ["admin", "curator", "merchant"]
        .iter()
        .map(|n| format!("{n}@pushhand.example"))
        .collect();
    emails.extend((1..=FOUNDERS).map(|i| format!("founder{i}@pushhand.example")));
    emails.extend((1..=PARTNERS).map(|i| format!("partner{i}@pushhand.example")));
    emails
}

/// Writes the demo hierarchy unless it is already there; returns the members written (0 when
/// it was there).
pub(super) async fn run(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<usize> {
    let exists = member::Entity::find()
        .filter(member::Column::Email.is_in(named_emails()))
        .one(db)
        .await?
        .is_some();
    if exists {
        return Ok(0);
    }
    let b = build(hash_password(DEMO_PASSWORD.to_owned()).await?, now);
    let (ancestors, counters) = closure(&b);
    let written = b.members.len();

    let txn = db.begin().await?;
    hierarchy::lock(&txn).await?;
    // Uplines first: `members.upline_id` references `members`.
    let mut members = b.members;
    members.sort_by_key(|m| (m.created_at, m.id));
    insert_chunks(
        &txn,
        members.into_iter().map(member::ActiveModel::from).collect(),
    )
    .await?;
    insert_chunks(
        &txn,
        b.bindings
            .into_iter()
            .map(binding::ActiveModel::from)
            .collect(),
    )
    .await?;
    insert_chunks(&txn, ancestors).await?;
    insert_chunks(&txn, counters).await?;
    txn.commit().await?;
    Ok(written)
}

/// Builds every member and binding of the demo hierarchy.
fn build(password_hash: String, now: DateTime<Utc>) -> Builder {
    let mut b = Builder {
        rng: ChaCha8Rng::seed_from_u64(SEED),
        password_hash,
        codes: HashSet::new(),
        members: Vec::new(),
        index: HashMap::new(),
        bindings: Vec::new(),
    };
    let start = epoch() - Duration::days(HISTORY_DAYS);

    for (name, role) in [
        ("admin", member::StaffRole::Admin),
        ("curator", member::StaffRole::Curator),
        ("merchant", member::StaffRole::Merchant),
    ] {
        b.add(NewMember {
            email: Some(format!("{name}@pushhand.example")),
            phone: None,
            display_name: format!("Demo {}{}", name[..1].to_uppercase(), &name[1..]),
            tier: member::Tier::Buyer,
            staff_role: Some(role),
            created_at: start - Duration::days(30),
        });
    }

    // The founders, and then push-hands in the order they joined, each under a push-hand who
    // joined before. `tree[i]` is (member, level below its founder, index of its upline).
    let mut tree: Vec<(Uuid, usize, Option<usize>)> = Vec::new();
    for i in 1..=FOUNDERS {
        let display_name = b.display_name();
        let id = b.add(NewMember {
            email: Some(format!("founder{i}@pushhand.example")),
            phone: Some(format!("+861390000{i:04}")),
            display_name,
            tier: member::Tier::PushHand,
            staff_role: None,
            created_at: start + Duration::hours(i as i64),
        });
        tree.push((id, 0, None));
    }
    // Joining times: denser towards the present, as a programme grows. The partners join
    // first, in the first fortnight, so that they have long histories.
    let span = (HISTORY_DAYS - 14) * 24 * 60;
    let mut joins: Vec<i64> = (0..PUSH_HANDS - PARTNERS)
        .map(|_| {
            let u: f64 = b.rng.random();
            // Demo data only: the float picks a minute within the history.
            14 * 24 * 60 + (span as f64 * u.sqrt()) as i64
        })
        .collect();
    joins.sort_unstable();
    let partner_joins = (0..PARTNERS).map(|p| (p as i64 + 1) * 3 * 24 * 60);
    let mut partners = Vec::new();
    for (n, minute) in partner_joins.chain(joins).enumerate() {
        let created_at = start + Duration::minutes(minute);
        let is_partner = n < PARTNERS;
        let upline = if is_partner {
            n // under founder n + 1
        } else if tree.len() > FOUNDERS && b.rng.random_bool(0.45) {
            // The upline of a random push-hand: people who recruit well recruit more.
            let at = b.rng.random_range(FOUNDERS..tree.len());
            tree[at].2.unwrap_or(at)
        } else {
            b.rng.random_range(0..tree.len())
        };
        // Six levels at most: too deep, and the member joins its would-be upline's upline.
        let upline = if tree[upline].1 >= MAX_LEVEL {
            tree[upline].2.unwrap_or(upline)
        } else {
            upline
        };
        let (email, phone) = if is_partner {
            (Some(format!("partner{}@pushhand.example", n + 1)), None)
        } else {
            let email = format!("member{n:04}@pushhand.example");
            let phone = format!("+86138{n:08}");
            match b.rng.random_range(0..10) {
                0 => (None, Some(phone)),
                1 | 2 => (Some(email), Some(phone)),
                _ => (Some(email), None),
            }
        };
        let display_name = b.display_name();
        let id = b.add(NewMember {
            email,
            phone,
            display_name,
            tier: member::Tier::PushHand,
            staff_role: None,
            created_at,
        });
        let upline_id = tree[upline].0;
        b.bind(
            id,
            upline_id,
            binding::Kind::InviteCode,
            created_at,
            None,
            None,
        );
        tree.push((id, tree[upline].1 + 1, Some(upline)));
        if is_partner {
            let link = b.code(PARTNER_LINK_LEN);
            let m = b.member_mut(id);
            m.tier = member::Tier::Partner;
            m.partner_application = Some(member::PartnerApplication::Approved);
            m.partner_link_code = Some(link);
            partners.push((id, created_at));
        }
    }

    // Buyers bound through the partners' links.
    let binding_period = Duration::days(PARTNER_BINDING_DAYS);
    let mut buyer = 0;
    let mut next_buyer = |b: &mut Builder, created_at: DateTime<Utc>| {
        buyer += 1;
        let display_name = b.display_name();
        b.add(NewMember {
            email: Some(format!("buyer{buyer:04}@pushhand.example")),
            phone: None,
            display_name,
            tier: member::Tier::Buyer,
            staff_role: None,
            created_at,
        })
    };
    // Whole minutes before the current time; every active binding started within the last
    // 300 days, so it runs for more than two months yet.
    let recent = |b: &mut Builder| now - Duration::minutes(b.rng.random_range(1..300 * 24 * 60));
    for (p, &(partner, partner_joined)) in partners.iter().enumerate() {
        for _ in 0..b.rng.random_range(ACTIVE_BUYERS_PER_PARTNER) {
            let starts = recent(&mut b);
            let id = next_buyer(&mut b, starts);
            let until = starts + binding_period;
            b.bind(
                id,
                partner,
                binding::Kind::PartnerLink,
                starts,
                Some(until),
                None,
            );
        }
        // Lapsed: bound in the programme's first months, expired before 2026.
        let last_start = epoch() - Duration::days(PARTNER_BINDING_DAYS + 35);
        let window = (last_start - partner_joined).num_minutes().max(2);
        for _ in 0..b.rng.random_range(LAPSED_BUYERS_PER_PARTNER) {
            let starts = partner_joined + Duration::minutes(b.rng.random_range(1..window));
            let id = next_buyer(&mut b, starts);
            let until = starts + binding_period;
            b.bind(
                id,
                partner,
                binding::Kind::PartnerLink,
                starts,
                Some(until),
                Some((until, binding::EndReason::Expired)),
            );
            // One in four later followed another partner's link.
            if b.rng.random_bool(0.25) {
                let (other, _) = partners[(p + 1) % partners.len()];
                let again = recent(&mut b).max(until + Duration::minutes(1));
                b.bind(
                    id,
                    other,
                    binding::Kind::PartnerLink,
                    again,
                    Some(again + binding_period),
                    None,
                );
            }
        }
    }
    b
}

/// The closure rows (depth 1 to [`MAX_DEPTH`]) and team counters of the active hierarchy:
/// for each open binding, one row per ancestor within reach, entering the team when the
/// binding started — what `hierarchy::attach` writes for a member without a downline, which
/// every demo member was when it bound.
fn closure(
    b: &Builder,
) -> (
    Vec<member_ancestor::ActiveModel>,
    Vec<team_counter::ActiveModel>,
) {
    let upline: HashMap<Uuid, Uuid> = b
        .members
        .iter()
        .filter_map(|m| m.upline_id.map(|u| (m.id, u)))
        .collect();
    let mut rows = Vec::new();
    let mut counts: HashMap<(Uuid, i16, String), i64> = HashMap::new();
    for binding in b.bindings.iter().filter(|x| x.ended_at.is_none()) {
        let since = binding.starts_at;
        let mut ancestor = Some(binding.upline_id);
        for depth in 1..=MAX_DEPTH {
            let Some(a) = ancestor else { break };
            rows.push(member_ancestor::ActiveModel {
                ancestor_id: Set(a),
                depth: Set(depth),
                descendant_id: Set(binding.member_id),
                since: Set(since),
            });
            *counts.entry((a, depth, period(since))).or_default() += 1;
            ancestor = upline.get(&a).copied();
        }
    }
    let mut counters: Vec<_> = counts.into_iter().collect();
    counters.sort();
    let counters = counters
        .into_iter()
        .map(
            |((ancestor, depth, period), members)| team_counter::ActiveModel {
                ancestor_id: Set(ancestor),
                depth: Set(depth),
                period: Set(period),
                members: Set(members),
                sales: Set(0),
            },
        )
        .collect();
    (rows, counters)
}
