//! Share codes and the funnel behind them (issue #30, items 2, 4 and 6).
//!
//! # Two kinds of share code
//! A push-hand's share link to a product has a 10-symbol code ([`SHARE_CODE_LEN`]); a
//! note has its own 12-symbol code ([`NOTE_CODE_LEN`]), made when the note is written, which
//! credits the note's author on the products the note's public version links. The lengths
//! tell them apart, so one code never names two things. Both fit a WeChat mini-program
//! `scene` (≤ 32 characters). A note's code counts only while the note is public and for the
//! products its public version links; the money rules are the share link's (`PROMOTION` to
//! the author, `TEAM_REBATE` to the author's upline), and the earning's explanation names the
//! note ([`Codes`]).
//!
//! # Visits
//! `GET /s/{code}` ([`visit`]) records at most one visit per code, target and visitor per
//! UTC day: the primary key of `share_visits` is those four columns, so a visitor
//! hammering the link — even concurrently, from many instances — counts once. The funnel
//! reads the visits per code, target and day from `share_visit_counts`: on SQLite a table a
//! trigger keeps as the visits are written (migration 33), on PostgreSQL a view counting the
//! visit rows through their `(owner_id, day, …)` index (migration 35, where the trigger cost
//! as much as the visit). Either way a count is the rows' count. The visitor is
//! `SHA-256(secret, day, client address, User-Agent)` cut to 128 bits: the salt changes
//! every day and is derived from the server's secret, so the stored value cannot be joined
//! across days nor reversed to an address by anyone without the secret; no cookie is set and
//! nothing else about the visitor is stored. The price: two people behind one address with
//! the same browser count once, and one person switching networks counts twice.
//!
//! # The funnel
//! [`funnel`] answers, per share link and per note of a push-hand, over a period: visits,
//! registrations through the code (`register`'s `shareCode`, [`record_signup`]), first
//! orders (of those registrants, how many have placed an order), paid orders through the code
//! (distinct orders with a line bought through it, paid in the period), the push-hand's net
//! earnings on those lines, and the registrants who never bought (no paid order yet).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use entity::{Money, member, note, note_product, order_line, share_link};
use entity::{share_signup, share_visit};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::cart::Credit;
use super::earnings::Referral;
use super::members::normalise_code;
use super::orders::SHARE_CODE_LEN;
use crate::error::{Error, Result};

/// A note's share code: 12 symbols (60 bits), two more than a share link's.
pub const NOTE_CODE_LEN: usize = 12;

/// A new note's share code.
pub fn new_note_code() -> String {
    super::members::random_code(NOTE_CODE_LEN)
}

/// A share code as typed or scanned, normalised (upper case, look-alikes mapped); `None`
/// when it can be neither kind.
pub fn normalise(raw: &str) -> Option<String> {
    normalise_code(raw, SHARE_CODE_LEN).or_else(|| normalise_code(raw, NOTE_CODE_LEN))
}

/// What a code names for a product: whose it is, and the note when it is a note's.
#[derive(Clone, Debug)]
pub struct Via {
    pub referral: Referral,
    /// The note's public title.
    pub note_title: Option<String>,
    /// The code as stored.
    pub code: String,
}

/// Share links and public notes named by a set of codes, read at once: one statement for
/// the links, and for notes two (the notes, their public products).
#[derive(Default)]
pub struct Codes {
    pub links: HashMap<String, share_link::Model>,
    /// Public notes by code, with the products their public version links.
    pub notes: HashMap<String, (note::Model, Vec<Uuid>)>,
}

/// Normalised codes split by kind — (share links', notes') — each sorted, without repeats.
fn by_kind(codes: impl IntoIterator<Item = String>) -> (Vec<String>, Vec<String>) {
    let (mut links, mut notes): (Vec<String>, Vec<String>) =
        codes.into_iter().partition(|c| c.len() != NOTE_CODE_LEN);
    for v in [&mut links, &mut notes] {
        v.sort_unstable();
        v.dedup();
    }
    (links, notes)
}

impl Codes {
    /// Reads what `codes` (normalised) name.
    pub async fn read(
        db: &impl ConnectionTrait,
        codes: impl IntoIterator<Item = String>,
    ) -> Result<Codes> {
        let (links, notes) = by_kind(codes);
        let mut out = Codes::default();
        if !links.is_empty() {
            out.links = share_link::Entity::find()
                .filter(share_link::Column::Code.is_in(links))
                .all(db)
                .await?
                .into_iter()
                .map(|l| (l.code.clone(), l))
                .collect();
        }
        if !notes.is_empty() {
            // By the unique code alone, public ones kept here: with `is_public = true` in the
            // statement, SQLite (no statistics) searched the public-feed index on
            // `is_public` for a list of several codes — every public note — instead of the
            // code's index.
            let found: Vec<note::Model> = note::Entity::find()
                .filter(note::Column::ShareCode.is_in(notes))
                .all(db)
                .await?
                .into_iter()
                .filter(|n| n.is_public)
                .collect();
            if !found.is_empty() {
                let mut products: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
                for np in note_product::Entity::find()
                    .filter(super::one_of(
                        db,
                        note_product::Column::NoteId,
                        found.iter().map(|n| n.id),
                    ))
                    .all(db)
                    .await?
                {
                    products.entry(np.note_id).or_default().push(np.product_id);
                }
                for n in found {
                    if let Some(code) = n.share_code.clone() {
                        let ps = products.remove(&n.id).unwrap_or_default();
                        out.notes.insert(code, (n, ps));
                    }
                }
            }
        }
        Ok(out)
    }

    /// What `code` (normalised) names for `product`: `None` when it names nothing, or
    /// something not about that product.
    pub fn for_product(&self, code: &str, product: Uuid) -> Option<Via> {
        if let Some(l) = self.links.get(code) {
            return (l.product_id == product).then(|| Via {
                referral: Referral::link(l),
                note_title: None,
                code: l.code.clone(),
            });
        }
        let (n, products) = self.notes.get(code)?;
        products.contains(&product).then(|| Via {
            referral: Referral {
                member_id: n.author_id,
                share_link: None,
                note: Some(n.id),
            },
            note_title: n.published_title.clone(),
            code: code.to_owned(),
        })
    }

    /// What an order line (of an order worked out from these codes) was bought through: its
    /// share link or note.
    pub fn of_line(&self, line: &order_line::Model) -> Option<Via> {
        let code = if let Some(id) = line.share_link_id {
            &self.links.values().find(|l| l.id == id)?.code
        } else {
            let id = line.note_id?;
            self.notes.iter().find(|(_, (n, _))| n.id == id)?.0
        };
        self.for_product(code, line.product_id)
    }

    /// The codes of the share links and notes, by the link's or the note's id.
    pub fn by_id(&self) -> HashMap<Uuid, String> {
        self.links
            .values()
            .map(|l| (l.id, l.code.clone()))
            .chain(self.notes.iter().map(|(c, (n, _))| (n.id, c.clone())))
            .collect()
    }

    /// Whose the code is: a link's or a note's owner.
    pub fn owner(&self, code: &str) -> Option<Uuid> {
        self.links
            .get(code)
            .map(|l| l.member_id)
            .or_else(|| self.notes.get(code).map(|(n, _)| n.author_id))
    }

    /// The members the codes credit.
    pub fn owners(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .links
            .values()
            .map(|l| l.member_id)
            .chain(self.notes.values().map(|(n, _)| n.author_id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// What `creditPreview` answers: who would be credited for the product bought now, and why.
#[derive(Clone, Debug)]
pub struct CreditPreview {
    /// The rule, the earner and the words — the cart's, from the same function.
    pub credit: Credit,
    /// The buyer's active binding, when it has one (whether it decides or not).
    pub binding: Option<entity::binding::Model>,
    /// The note the code names, when it names one and it counts.
    pub note: Option<Uuid>,
}

/// Who would be credited if `buyer` bought `product_id` now through `share_code` (if any):
/// the rule of SPEC §2.4 as the payment applies it ([`super::earnings::attribution_of`],
/// through the cart's [`super::cart::Credits`]). A product not on sale is `NOT_FOUND`; a
/// code that names no share link or public note about the product is `VALIDATION` on
/// `shareCode`, as `placeOrder` says.
pub async fn credit_preview(
    db: &impl ConnectionTrait,
    buyer: &member::Model,
    product_id: Uuid,
    share_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<CreditPreview> {
    let product = entity::product::Entity::find_by_id(product_id)
        .one(db)
        .await?
        .filter(|p| p.status == entity::product::Status::Published)
        .ok_or_else(|| Error::not_found("product"))?;
    let via = match share_code.map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => {
            let code = normalise(raw)
                .ok_or_else(|| Error::validation("shareCode", "unknown share code"))?;
            let codes = Codes::read(db, [code.clone()]).await?;
            Some(codes.for_product(&code, product.id).ok_or_else(|| {
                Error::validation("shareCode", "unknown share code for this product")
            })?)
        }
    };
    let owners = via.iter().map(|v| v.referral.member_id);
    let credits = super::cart::Credits::load(db, buyer, owners, now).await?;
    let credit = credits.of(via.as_ref(), product.membership_activity);
    let binding = match credits.upline() {
        Some((_, b)) => Some(b.clone()),
        // A push-hand's own purchase reads no binding: read it to say it stays.
        None if buyer.upline_id.is_some() => {
            super::hierarchy::active_binding(db, buyer.id, now).await?
        }
        None => None,
    };
    let note = match credit.attribution {
        super::earnings::Attribution::Promotion { note, .. } => note,
        _ => None,
    };
    Ok(CreditPreview {
        credit,
        binding,
        note,
    })
}

/// The visitor as stored: `SHA-256(secret, day, address, User-Agent)`, 128 bits in hex — a
/// value that changes every day and means nothing without the server's secret.
pub fn visitor_hash(secret: &[u8], day: &str, address: &str, user_agent: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        secret,
        day.as_bytes(),
        address.as_bytes(),
        user_agent.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The UTC day of `now`, `YYYY-MM-DD`.
pub fn day(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%d").to_string()
}

/// Records a visit of `/s/{raw}` (with `product`: a click on one of a note's products) by
/// `visitor` (see [`visitor_hash`]), once per code, target and visitor per UTC day, and
/// answers the code as stored — `None` when it names nothing (no share link, no public note;
/// nothing is recorded). A product that is not one of the note's counts as a visit of the note
/// itself. Publishes the owner's change after a visit that counted. One visit alone; the
/// short link records through a [`Visits`] queue, which groups concurrent visits.
pub async fn visit(
    db: &DatabaseConnection,
    events: &crate::events::Events,
    raw: &str,
    product: Option<Uuid>,
    visitor: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let Some(v) = Visit::new(raw, product, visitor, now) else {
        return Ok(None);
    };
    Ok(record_visits(db, events, std::slice::from_ref(&v))
        .await?
        .pop()
        .flatten())
}

/// One visit to record: the code normalised, the product clicked, the visitor, when.
#[derive(Clone, Debug)]
pub struct Visit {
    code: String,
    product: Option<Uuid>,
    visitor: String,
    now: DateTime<Utc>,
}

impl Visit {
    /// `None` when `raw` cannot be a code (over 32 characters, or neither kind).
    pub fn new(
        raw: &str,
        product: Option<Uuid>,
        visitor: &str,
        now: DateTime<Utc>,
    ) -> Option<Visit> {
        if raw.len() > 32 {
            return None;
        }
        Some(Visit {
            code: normalise(raw)?,
            product,
            visitor: visitor.to_owned(),
            now,
        })
    }
}

/// What the codes of a group of visits name — only what a visit row holds: a share link's
/// id and owner, a public note's id and author, and the note's public products only for the
/// codes visited with a product (`?p=`). [`Codes::read`] reads whole links and notes (a
/// note's texts too) and always the products, for checkouts that need them; a group of
/// visits asked for one note's text per code and one statement more than it used (S15 on
/// PostgreSQL spent 15 % of the database's time sending rows back).
#[derive(Default)]
struct VisitCodes {
    /// Code → (share link, owner).
    links: HashMap<String, (Uuid, Uuid)>,
    /// Code → (public note, author, its public products when read).
    notes: HashMap<String, (Uuid, Uuid, Vec<Uuid>)>,
}

impl VisitCodes {
    async fn read(db: &DatabaseConnection, visits: &[Visit]) -> Result<VisitCodes> {
        use sea_orm::QuerySelect;
        let (links, notes) = by_kind(visits.iter().map(|v| v.code.clone()));
        let backend = db.get_database_backend();
        let mut out = VisitCodes::default();
        if !links.is_empty() {
            out.links = share_link::Entity::find()
                .select_only()
                .columns([
                    share_link::Column::Code,
                    share_link::Column::Id,
                    share_link::Column::MemberId,
                ])
                .filter(codes_in(backend, share_link::Column::Code, links))
                .into_tuple::<(String, Uuid, Uuid)>()
                .all(db)
                .await?
                .into_iter()
                .map(|(code, id, owner)| (code, (id, owner)))
                .collect();
        }
        if !notes.is_empty() {
            // By the code's index alone, public ones kept here (see `Codes::read`).
            out.notes = note::Entity::find()
                .select_only()
                .columns([
                    note::Column::ShareCode,
                    note::Column::Id,
                    note::Column::AuthorId,
                    note::Column::IsPublic,
                ])
                .filter(codes_in(backend, note::Column::ShareCode, notes))
                .into_tuple::<(Option<String>, Uuid, Uuid, bool)>()
                .all(db)
                .await?
                .into_iter()
                .filter_map(|(code, id, author, public)| {
                    Some((code.filter(|_| public)?, (id, author, Vec::new())))
                })
                .collect();
            let clicked: std::collections::BTreeSet<Uuid> = visits
                .iter()
                .filter(|v| v.product.is_some())
                .filter_map(|v| out.notes.get(&v.code).map(|n| n.0))
                .collect();
            if !clicked.is_empty() {
                let by_id: HashMap<Uuid, String> = out
                    .notes
                    .iter()
                    .map(|(code, n)| (n.0, code.clone()))
                    .collect();
                for (note_id, product_id) in note_product::Entity::find()
                    .select_only()
                    .columns([
                        note_product::Column::NoteId,
                        note_product::Column::ProductId,
                    ])
                    .filter(super::one_of(db, note_product::Column::NoteId, clicked))
                    .into_tuple::<(Uuid, Uuid)>()
                    .all(db)
                    .await?
                {
                    if let Some(n) = by_id.get(&note_id).and_then(|c| out.notes.get_mut(c)) {
                        n.2.push(product_id);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `col IN (codes)`; on PostgreSQL `col = ANY($1)`, one array, so that a group's look-up has
/// one text whatever its number of codes. Listed, each group size was a statement of its own,
/// parsed and planned again on every connection (60 texts each for the look-up and the insert
/// in 6 s of S15, 3,035 plans for 15,953 runs: docs/performance.md, "Session of 2026-12-06
/// (2)").
fn codes_in(
    backend: DbBackend,
    col: impl ColumnTrait,
    codes: Vec<String>,
) -> sea_orm::sea_query::Expr {
    if backend == DbBackend::Postgres {
        col.eq_any(codes)
    } else {
        col.is_in(codes)
    }
}

/// Records `visits` together — what their codes name read at once, the new rows written by
/// one statement — and answers each one's code as stored (`None`: it names nothing), in
/// order. Publishes the owners' change when a row was written.
pub async fn record_visits(
    db: &DatabaseConnection,
    events: &crate::events::Events,
    visits: &[Visit],
) -> Result<Vec<Option<String>>> {
    let backend = db.get_database_backend();
    let codes = VisitCodes::read(db, visits).await?;
    let mut out = Vec::with_capacity(visits.len());
    let mut rows: Vec<share_visit::Model> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for v in visits {
        let (owner, share_link_id, note_id, target) =
            match (codes.links.get(&v.code), codes.notes.get(&v.code)) {
                (Some(&(link, owner)), _) => (owner, Some(link), None, String::new()),
                (None, Some((note, author, products))) => {
                    let target = v
                        .product
                        .filter(|p| products.contains(p))
                        .map(|p| p.to_string())
                        .unwrap_or_default();
                    (*author, None, Some(*note), target)
                }
                (None, None) => {
                    out.push(None);
                    continue;
                }
            };
        out.push(Some(v.code.clone()));
        let day = day(v.now);
        // One row per (code, target, visitor, day) in a statement, as the index wants.
        if seen.insert((
            v.code.clone(),
            target.clone(),
            v.visitor.clone(),
            day.clone(),
        )) {
            rows.push(share_visit::Model {
                code: v.code.clone(),
                target,
                visitor: v.visitor.clone(),
                day,
                owner_id: owner,
                share_link_id,
                note_id,
            });
        }
    }
    if rows.is_empty() {
        return Ok(out);
    }
    let mut owners: Vec<Uuid> = rows.iter().map(|r| r.owner_id).collect();
    owners.sort_unstable();
    owners.dedup();
    let once_a_day = OnConflict::columns([
        share_visit::Column::Code,
        share_visit::Column::Target,
        share_visit::Column::Visitor,
        share_visit::Column::Day,
    ])
    .do_nothing()
    .to_owned();
    let done = if backend == DbBackend::Postgres {
        // One JSON parameter: the same text for any number of rows (see `codes_in`).
        let mut insert = super::batch::insert_json(&rows)?;
        insert.on_conflict(once_a_day);
        db.execute_raw(backend.build(&insert))
            .await?
            .rows_affected()
    } else {
        share_visit::Entity::insert_many(rows.into_iter().map(share_visit::ActiveModel::from))
            .on_conflict(once_a_day)
            .exec_without_returning(db)
            .await?
    };
    if done > 0 {
        events
            .publish(
                owners
                    .into_iter()
                    .map(|o| crate::events::Event::new(o, crate::events::Kind::OwnChanged, o))
                    .collect(),
            )
            .await;
    }
    Ok(out)
}

/// Most visits one statement records.
const MAX_VISIT_GROUP: usize = 256;

/// Groups being written at once: a group's statements are round trips on PostgreSQL (and
/// its events a Redis round trip), so the next group starts while one is out.
pub const GROUPS_IN_FLIGHT: usize = 4;

/// The short link's visits, recorded in groups: a visit waits until the group it joined is
/// written (so it is recorded before its redirect answers, as [`visit`] alone would — on
/// PostgreSQL committed without waiting for the log's flush, see
/// [`crate::db::connect_visit_recorder`]), and
/// the visits that arrive while groups are being written make the next one; at most
/// [`GROUPS_IN_FLIGHT`] are written at once.
///
/// Why not a statement set per visit: S15 (`pushhand-bench --only S15`, a new visitor every
/// request, 64 connections) recorded 2,960 visits/s on SQLite and 3,618 on PostgreSQL that
/// way — 1/8.6 and 1/11.9 of S0 against #30's target of 1/3 — each visit paying its own code
/// look-up (two statements for a note's code) and its own write transaction, which on SQLite
/// queue on the one writer. Grouped, the look-ups and the write are paid once per group.
#[derive(Clone)]
pub struct Visits {
    tx: tokio::sync::mpsc::Sender<(Visit, tokio::sync::oneshot::Sender<Option<Option<String>>>)>,
}

impl Visits {
    /// Starts the recording task (on the current Tokio runtime); it ends when the last
    /// handle is dropped.
    pub fn start(db: DatabaseConnection, events: crate::events::Events) -> Visits {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(
            Visit,
            tokio::sync::oneshot::Sender<Option<Option<String>>>,
        )>(4 * MAX_VISIT_GROUP);
        let in_flight = Arc::new(tokio::sync::Semaphore::new(GROUPS_IN_FLIGHT));
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(MAX_VISIT_GROUP);
            loop {
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    return;
                };
                if rx.recv_many(&mut group, MAX_VISIT_GROUP).await == 0 {
                    return;
                }
                let (visits, replies): (Vec<Visit>, Vec<_>) = group.drain(..).unzip();
                let (db, events) = (db.clone(), events.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match record_visits(&db, &events, &visits).await {
                        Ok(found) => {
                            for (reply, code) in replies.into_iter().zip(found) {
                                let _ = reply.send(Some(code));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = ?e, visits = visits.len(), "share link visits not recorded");
                            for reply in replies {
                                let _ = reply.send(None);
                            }
                        }
                    }
                });
            }
        });
        Visits { tx }
    }

    /// Records a visit as [`visit`] does, with the visits arriving meanwhile; `Err` when it
    /// could not be recorded (the database failed: the caller still redirects).
    pub async fn visit(
        &self,
        raw: &str,
        product: Option<Uuid>,
        visitor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let Some(v) = Visit::new(raw, product, visitor, now) else {
            return Ok(None);
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let lost = || Error::internal(anyhow::anyhow!("the visit was not recorded"));
        self.tx.send((v, reply)).await.map_err(|_| lost())?;
        answer.await.ok().flatten().ok_or_else(lost)
    }
}

/// Records, in the registration's transaction, that `member` registered through `code`
/// (normalised) and answers whose code it is; a code that names nothing is ignored (`None`):
/// the link may have been taken down since it was scanned, and a registration never fails
/// for it.
pub async fn record_signup(
    db: &impl ConnectionTrait,
    member: Uuid,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>> {
    let codes = Codes::read(db, [code.to_owned()]).await?;
    let Some(owner) = codes.owner(code) else {
        return Ok(None);
    };
    let row = share_signup::Model {
        member_id: member,
        code: code.to_owned(),
        owner_id: owner,
        share_link_id: codes.links.get(code).map(|l| l.id),
        note_id: codes.notes.get(code).map(|(n, _)| n.id),
        created_at: now,
    };
    share_signup::Entity::insert(share_signup::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(Some(owner))
}

/// A period of the funnel: `[from, to)`.
#[derive(Clone, Copy, Debug)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Period {
    /// All time (up to the year 9999).
    pub fn all() -> Period {
        Period {
            from: DateTime::<Utc>::UNIX_EPOCH,
            to: NaiveDate::from_ymd_opt(9999, 12, 31)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(DateTime::<Utc>::MAX_UTC, |d| d.and_utc()),
        }
    }
}

/// One share link's or note's counts over a period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Visitor-days of the short link itself.
    pub visits: i64,
    /// Visitor-days of a note's product links (`/s/{code}?p=…`).
    pub product_clicks: i64,
    /// Members who registered through the code in the period.
    pub registrations: i64,
    /// Of those, members who have placed an order (paid or not).
    pub first_orders: i64,
    /// Of those, members without a paid order.
    pub registered_never_bought: i64,
    /// Distinct orders paid in the period with a line bought through the code.
    pub paid_orders: i64,
    /// The owner's earnings booked in the period on lines bought through the code, net of
    /// reversals and adjustments.
    pub earnings: Money,
}

/// A row of the funnel: a share link or a note, and its counts.
#[derive(Clone, Debug)]
pub struct FunnelRow {
    pub share_link: Option<share_link::Model>,
    pub note: Option<note::Model>,
    pub counts: Counts,
}

#[derive(sea_orm::FromQueryResult)]
struct CountRow {
    share_link_id: Option<Uuid>,
    note_id: Option<Uuid>,
    a: i64,
    b: Option<i64>,
    c: Option<i64>,
}

type Key = (Option<Uuid>, Option<Uuid>);

/// Runs `sql` (parameters: owner, from, to, and the note when `note` is given; written for
/// PostgreSQL) and folds its rows into `out` with `put`.
#[allow(clippy::too_many_arguments)]
async fn fold(
    db: &impl ConnectionTrait,
    sql: &str,
    owner: Uuid,
    period: Period,
    note: Option<Uuid>,
    from_is_day: bool,
    out: &mut HashMap<Key, Counts>,
    put: impl Fn(&mut Counts, &CountRow),
) -> Result<()> {
    use sea_orm::FromQueryResult;
    let backend = db.get_database_backend();
    let sql = if backend == sea_orm::DbBackend::Sqlite {
        sql.replace('$', "?")
    } else {
        sql.to_owned()
    };
    let mut values: Vec<sea_orm::Value> = vec![owner.into()];
    if from_is_day {
        values.push(day(period.from).into());
        values.push(day(period.to).into());
    } else {
        values.push(period.from.into());
        values.push(period.to.into());
    }
    if let Some(n) = note {
        values.push(n.into());
    }
    let rows = CountRow::find_by_statement(sea_orm::Statement::from_sql_and_values(
        backend, sql, values,
    ))
    .all(db)
    .await?;
    for r in rows {
        put(out.entry((r.share_link_id, r.note_id)).or_default(), &r);
    }
    Ok(())
}

/// Counts per share link and note of `owner` over `period` (of one note only with `note`):
/// four statements, whatever the number of links and notes.
async fn counts(
    db: &impl ConnectionTrait,
    owner: Uuid,
    period: Period,
    note: Option<Uuid>,
) -> Result<HashMap<Key, Counts>> {
    let only = |col: &str| match note {
        Some(_) => format!(" AND {col} = $4"),
        None => String::new(),
    };
    let mut out = HashMap::new();
    // Visits: by whole UTC days, `from`'s to `to`'s, both included; the daily counts of
    // `share_visits` (a table its trigger keeps on SQLite, a view on PostgreSQL).
    let sql = format!(
        "SELECT v.share_link_id, v.note_id, \
         CAST(SUM(CASE WHEN v.target = '' THEN v.visits ELSE 0 END) AS BIGINT) AS a, \
         CAST(SUM(CASE WHEN v.target = '' THEN 0 ELSE v.visits END) AS BIGINT) AS b, \
         CAST(NULL AS BIGINT) AS c \
         FROM share_visit_counts v WHERE v.owner_id = $1 AND v.day >= $2 AND v.day <= $3{} \
         GROUP BY v.share_link_id, v.note_id",
        only("v.note_id")
    );
    fold(db, &sql, owner, period, note, true, &mut out, |c, r| {
        c.visits = r.a;
        c.product_clicks = r.b.unwrap_or(0);
    })
    .await?;
    let sql = format!(
        "SELECT s.share_link_id, s.note_id, COUNT(*) AS a, \
         SUM(CASE WHEN EXISTS (SELECT 1 FROM orders o WHERE o.buyer_id = s.member_id) \
             THEN 1 ELSE 0 END) AS b, \
         SUM(CASE WHEN EXISTS (SELECT 1 FROM orders o WHERE o.buyer_id = s.member_id \
             AND o.paid_at IS NOT NULL) THEN 0 ELSE 1 END) AS c \
         FROM share_signups s WHERE s.owner_id = $1 AND s.created_at >= $2 \
         AND s.created_at < $3{} GROUP BY s.share_link_id, s.note_id",
        only("s.note_id")
    );
    fold(db, &sql, owner, period, note, false, &mut out, |c, r| {
        c.registrations = r.a;
        c.first_orders = r.b.unwrap_or(0);
        c.registered_never_bought = r.c.unwrap_or(0);
    })
    .await?;
    // Lines through the owner's links and notes (not a downline's, on which the owner may
    // earn a team rebate).
    let through = "LEFT JOIN share_links sl ON sl.id = l.share_link_id \
         LEFT JOIN notes n ON n.id = l.note_id \
         WHERE (sl.member_id = $1 OR n.author_id = $1)";
    let sql = format!(
        "SELECT l.share_link_id, l.note_id, COUNT(DISTINCT l.order_id) AS a, \
         CAST(NULL AS BIGINT) AS b, CAST(NULL AS BIGINT) AS c \
         FROM order_lines l JOIN orders o ON o.id = l.order_id {through} \
         AND o.paid_at >= $2 AND o.paid_at < $3{} GROUP BY l.share_link_id, l.note_id",
        only("l.note_id")
    );
    fold(db, &sql, owner, period, note, false, &mut out, |c, r| {
        c.paid_orders = r.a;
    })
    .await?;
    let sql = format!(
        "SELECT l.share_link_id, l.note_id, CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) AS a, \
         CAST(NULL AS BIGINT) AS b, CAST(NULL AS BIGINT) AS c \
         FROM earnings e JOIN order_lines l ON l.id = e.order_line_id {through} \
         AND e.member_id = $1 AND e.status <> 'REVERSED' \
         AND e.created_at >= $2 AND e.created_at < $3{} GROUP BY l.share_link_id, l.note_id",
        only("l.note_id")
    );
    fold(db, &sql, owner, period, note, false, &mut out, |c, r| {
        c.earnings = Money::from_fen(r.a);
    })
    .await?;
    out.retain(|(l, n), _| l.is_some() || n.is_some());
    Ok(out)
}

/// The funnel of `owner`'s share links and notes over `period`: one row per link or note
/// with any count in it, notes first, then links, each newest first (by id).
pub async fn funnel(
    db: &impl ConnectionTrait,
    owner: Uuid,
    period: Period,
) -> Result<Vec<FunnelRow>> {
    let counts = counts(db, owner, period, None).await?;
    let links: Vec<Uuid> = counts.keys().filter_map(|(l, _)| *l).collect();
    let notes: Vec<Uuid> = counts.keys().filter_map(|(_, n)| *n).collect();
    let links: HashMap<Uuid, share_link::Model> = if links.is_empty() {
        HashMap::new()
    } else {
        share_link::Entity::find()
            .filter(super::one_of(db, share_link::Column::Id, links))
            .all(db)
            .await?
            .into_iter()
            .map(|l| (l.id, l))
            .collect()
    };
    let notes: HashMap<Uuid, note::Model> = if notes.is_empty() {
        HashMap::new()
    } else {
        note::Entity::find()
            .filter(super::one_of(db, note::Column::Id, notes))
            .all(db)
            .await?
            .into_iter()
            .map(|n| (n.id, n))
            .collect()
    };
    let mut rows: Vec<FunnelRow> = counts
        .into_iter()
        .map(|((l, n), counts)| FunnelRow {
            share_link: l.and_then(|id| links.get(&id).cloned()),
            note: n.and_then(|id| notes.get(&id).cloned()),
            counts,
        })
        .filter(|r| r.share_link.is_some() || r.note.is_some())
        .collect();
    rows.sort_by_key(|r| {
        (
            r.note.is_none(),
            std::cmp::Reverse(r.note.as_ref().map(|n| n.id)),
            std::cmp::Reverse(r.share_link.as_ref().map(|l| l.id)),
        )
    });
    Ok(rows)
}

/// A note's numbers for its author, all time: visits of its short link (views), clicks on
/// its products, paid orders through its code, and the author's net earnings on them.
pub async fn note_stats(db: &impl ConnectionTrait, n: &note::Model) -> Result<Counts> {
    let counts = counts(db, n.author_id, Period::all(), Some(n.id)).await?;
    Ok(counts
        .into_iter()
        .filter(|((_, id), _)| *id == Some(n.id))
        .map(|(_, c)| c)
        .next()
        .unwrap_or_default())
}
