//! 种草 notes: push-hands and partners write notes (a title, text, up to
//! [`MAX_IMAGES`] image URLs, up to [`MAX_PRODUCTS`] linked published products); curators
//! review the ones that link products before the public reads them; members like and report
//! them.
//!
//! # Two versions in one row
//! A note row holds the author's working copy (`title`, `body`, `image_urls`, `product_ids`,
//! its review `status`) and the approved public version (`published_*`; the linked
//! products both as `published_product_ids`, which pages of notes read, and as rows of
//! `note_products`, which the filters by product and category find notes by — written
//! together). [`update`] changes the working copy only and makes it a
//! `DRAFT` again; [`submit`] sends it to review (`PENDING`), or publishes it at once when it
//! links no product; [`review`] copies an approved working copy over the public version. So
//! an edit of a published note goes back to review while the last approved version stays
//! what everyone reads.
//!
//! # Who sees what
//! A note is *public* (`is_public`) once approved, until reports hide it or a curator takes
//! it down. The public listings ([`list`]) and [`visible`] show public notes to anyone; the
//! author and curators (and admins) also see the author's drafts, hidden notes and the
//! working copy. To anyone else a note that is not public is `NOT_FOUND`, exactly like one
//! that does not exist.
//!
//! # Likes
//! One row per note and member (`note_likes`' primary key), so a like counts once. The count
//! is kept in the note's row, moved in the like's transaction while the like holds the
//! note's row, so concurrent likes and unlikes by many members leave the exact count. Likes
//! of frozen members do not count: a frozen member cannot like or unlike, and a freeze or
//! an unfreeze recounts the notes the member liked in its own transaction
//! ([`recount_likes_of`]) — from the likes of members who are not frozen, so a repeated or
//! concurrent freeze cannot count twice. Lock order: the liker's member row (shared), then
//! the note; a freeze takes the member's row, then the notes it liked in id order.
//!
//! # HOT
//! `HOT` orders by a score fixed at each like, not by a formula of the current time:
//!
//! `score = log2(1 + likes) + t / 24`, `t` = the note's first publication, in hours since
//! 1970-01-01 UTC.
//!
//! At any moment `now` this orders notes exactly as `(1 + likes) / 2^(age_hours / 24)` does
//! (subtract `now / 24` from every score): likes decay by half every 24 hours of a note's
//! age. Ties go to the greater id. Because the score does not move with the clock it is
//! stored (`hot_rank`, in millionths) and indexed: a HOT page is a keyset scan of an index,
//! and its cursor (score, id) is stable. The price: exponential rather than polynomial
//! decay, and a note whose likes change between two pages may cross the cursor (be missed
//! or shown twice); no other note moves.
//!
//! # Reports
//! One per note and member (`note_reports`' primary key): a report flood from one member
//! counts once. The report that brings the count to `note_report_threshold` hides the note
//! in the same transaction (the report holds the note's row), so of many concurrent reports
//! exactly one hides it. A curator then approves (shown again, its reports cleared) or
//! rejects (taken down) it with [`review`].
//!
//! # Events
//! Every write that changes what the public reads publishes [`Kind::NoteChanged`] after its
//! commit (approval, hiding, a take-down, deletion of a public note, likes), which drops the
//! cached anonymous answers; writes to the working copy publish the author's
//! [`Kind::OwnChanged`].

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{member, note, note_like, note_product, note_report, product};
use sea_orm::sea_query::{Expr, ExprTrait, LockType, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use super::auth::Viewer;
use super::page::{NewestCursor, Page, newest_first};
use super::rows::ByPosition;
use super::text;
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, Events, Kind};
use crate::media::Media;

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 60;
/// Longest text, in characters.
pub const MAX_BODY_CHARS: usize = 5_000;
/// Most images on a note.
pub const MAX_IMAGES: usize = 9;
/// Most products a note links.
pub const MAX_PRODUCTS: usize = 9;
/// Longest image URL, in bytes.
pub const MAX_URL_LEN: usize = 2_000;
/// Longest review or report reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// A note as its author sends it (`createNote`, `updateNote`).
#[derive(Clone, Debug, Default)]
pub struct NoteInput {
    pub title: String,
    pub body: String,
    pub image_urls: Vec<String>,
    /// Images the author uploaded for notes (`uploadImage(purpose: NOTE)`), shown after
    /// `image_urls` (their URLs are stored with them); `None` for an argument that is not
    /// an image's ID.
    pub image_ids: Vec<Option<Uuid>>,
    /// The linked products; `None` for an argument that is not a product's ID (reported
    /// with the other bad fields).
    pub product_ids: Vec<Option<Uuid>>,
}

/// An input whose every field passed.
struct Checked {
    title: String,
    body: String,
    image_urls: Vec<String>,
    product_ids: Vec<Uuid>,
}

/// A note's text: 1 to [`MAX_BODY_CHARS`] characters after trimming; line breaks and tabs
/// are kept, any other character that [hides text](text::hides_text) is refused. Stored as
/// typed (`<script>` is text, never rendered as markup by us); `\r\n` becomes `\n`.
fn body(field: &'static str, raw: &str) -> Result<String> {
    let s = raw.replace("\r\n", "\n");
    let s = s.trim();
    let count = s.chars().count();
    if count == 0 {
        return Err(Error::validation(field, "must not be empty"));
    }
    if count > MAX_BODY_CHARS {
        return Err(Error::validation(
            field,
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
    if s.chars()
        .any(|c| c != '\n' && c != '\t' && text::hides_text(c))
    {
        return Err(Error::validation(
            field,
            "must not contain control, bidirectional or zero-width characters",
        ));
    }
    Ok(s.to_owned())
}

/// An absolute http(s) URL with a host, at most [`MAX_URL_LEN`] bytes, without whitespace
/// or control characters (as curation evidence links are checked).
fn image_url(field: String, raw: &str) -> Result<String> {
    let url = raw.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !host.starts_with(':')
    });
    if !host_ok
        || url.len() > MAX_URL_LEN
        || url
            .chars()
            .any(|c| c.is_whitespace() || text::hides_text(c))
    {
        return Err(Error::validation(
            field,
            format!("must be an absolute http(s) URL of at most {MAX_URL_LEN} bytes"),
        ));
    }
    Ok(url.to_owned())
}

/// Checks every field of `input`, reporting every bad one at once; linked products must
/// exist and be published.
async fn check(
    db: &impl ConnectionTrait,
    media: Option<&Media>,
    author: Uuid,
    input: &NoteInput,
) -> Result<Checked> {
    let mut errors = FieldErrors::default();
    let title = errors.check(text::name("input.title", &input.title, MAX_TITLE_CHARS));
    let body = errors.check(body("input.body", &input.body));
    let mut image_urls = Vec::new();
    if input.image_urls.len() + input.image_ids.len() > MAX_IMAGES {
        let field = if input.image_ids.is_empty() {
            "input.imageUrls"
        } else {
            "input.imageIds"
        };
        errors.push(
            field,
            format!("at most {MAX_IMAGES} images (URLs and IDs together)"),
        );
    }
    for (i, url) in input.image_urls.iter().enumerate() {
        if let Some(url) = errors.check(image_url(format!("input.imageUrls[{i}]"), url)) {
            image_urls.push(url);
        }
    }
    if let (false, Some(media)) = (input.image_ids.is_empty(), media) {
        image_urls.extend(
            super::images::urls_of(
                db,
                media,
                author,
                entity::image::Purpose::Note,
                &input.image_ids,
                "input.imageIds",
                &mut errors,
            )
            .await?,
        );
    }
    if input.product_ids.len() > MAX_PRODUCTS {
        errors.push(
            "input.productIds",
            format!("at most {MAX_PRODUCTS} products"),
        );
    }
    let wanted: Vec<Uuid> = input.product_ids.iter().flatten().copied().collect();
    let published: HashSet<Uuid> = if wanted.is_empty() {
        HashSet::new()
    } else {
        product::Entity::find()
            .select_only()
            .column(product::Column::Id)
            .filter(super::one_of(db, product::Column::Id, wanted))
            .filter(product::Column::Status.eq(product::Status::Published))
            .into_tuple::<Uuid>()
            .all(db)
            .await?
            .into_iter()
            .collect()
    };
    let mut product_ids = Vec::new();
    let mut seen = HashSet::new();
    for (i, id) in input.product_ids.iter().enumerate() {
        let field = format!("input.productIds[{i}]");
        match id {
            None => errors.push(field, "not the ID of a product"),
            Some(id) if !published.contains(id) => errors.push(field, "not a published product"),
            Some(id) if !seen.insert(*id) => errors.push(field, "listed twice"),
            Some(id) => product_ids.push(*id),
        }
    }
    errors.finish()?;
    match (title, body) {
        (Some(title), Some(body)) => Ok(Checked {
            title,
            body,
            image_urls,
            product_ids,
        }),
        _ => Err(Error::internal(anyhow::anyhow!(
            "a failed check went unreported"
        ))),
    }
}

/// Only push-hands and partners write notes.
fn writer(m: &member::Model) -> Result<()> {
    match m.tier {
        member::Tier::PushHand | member::Tier::Partner => Ok(()),
        member::Tier::Buyer => Err(Error::Forbidden(
            "only push-hands and partners write notes".into(),
        )),
    }
}

/// Curators (and admins) review notes.
fn reviewer(m: &member::Model) -> bool {
    matches!(
        m.staff_role,
        Some(member::StaffRole::Curator | member::StaffRole::Admin)
    )
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(Error::internal)
}

/// The image URLs stored in a JSON column.
pub fn urls(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The working copy's product ids.
pub fn working_products(n: &note::Model) -> Vec<Uuid> {
    serde_json::from_str(&n.product_ids).unwrap_or_default()
}

/// The public version's product ids, in display order (none without a public version).
pub fn public_products(n: &note::Model) -> Vec<Uuid> {
    n.published_product_ids
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// The HOT score of a note with `likes` likes first published at `first_published`, in
/// millionths: `log2(1 + likes) + hours since the epoch / 24` (see the module docs).
pub fn hot_rank(likes: i32, first_published: DateTime<Utc>) -> i64 {
    let hours = first_published.timestamp_millis() as f64 / 3_600_000.0;
    let score = (1.0 + f64::from(Ord::max(likes, 0))).log2() + hours / 24.0;
    (score * 1_000_000.0).round() as i64
}

/// The author's note `id`, locked for the rest of the transaction; `NOT_FOUND` for anyone
/// else's.
async fn own_locked(db: &impl ConnectionTrait, author: Uuid, id: Uuid) -> Result<note::Model> {
    note::Entity::find_by_id(id)
        .filter(note::Column::AuthorId.eq(author))
        .lock(LockType::Update)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("note"))
}

async fn locked(db: &impl ConnectionTrait, id: Uuid) -> Result<note::Model> {
    note::Entity::find_by_id(id)
        .lock(LockType::Update)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("note"))
}

async fn own_changed(events: &Events, author: Uuid) {
    events
        .publish(vec![Event::new(author, Kind::OwnChanged, author)])
        .await;
}

async fn note_changed(events: &Events, author: Uuid, note: Uuid) {
    events
        .publish(vec![
            Event::note(Some(note)),
            Event::new(author, Kind::OwnChanged, author),
        ])
        .await;
}

/// Writes a new note as a `DRAFT` (nobody but its author and curators sees it).
pub async fn create(
    db: &DatabaseConnection,
    events: &Events,
    media: &Media,
    author: &member::Model,
    input: &NoteInput,
    now: DateTime<Utc>,
) -> Result<note::Model> {
    writer(author)?;
    let c = check(db, Some(media), author.id, input).await?;
    let row = note::ActiveModel {
        id: Set(Uuid::now_v7()),
        author_id: Set(author.id),
        title: Set(c.title),
        body: Set(c.body),
        image_urls: Set(to_json(&c.image_urls)?),
        product_ids: Set(to_json(&c.product_ids)?),
        status: Set(note::Status::Draft),
        review_reason: Set(None),
        published_title: Set(None),
        published_body: Set(None),
        published_image_urls: Set(None),
        first_published_at: Set(None),
        published_at: Set(None),
        hidden_at: Set(None),
        is_public: Set(false),
        report_count: Set(0),
        like_count: Set(0),
        hot_rank: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        share_code: Set(Some(super::funnel::new_note_code())),
        published_product_ids: Set(None),
    }
    .insert(db)
    .await?;
    own_changed(events, author.id).await;
    Ok(row)
}

/// Replaces the working copy of the author's note `id`: it becomes a `DRAFT` again (submit
/// it to send it to review). A published note's public version is untouched until the edit
/// is approved.
#[allow(clippy::too_many_arguments)]
pub async fn update(
    db: &DatabaseConnection,
    events: &Events,
    media: &Media,
    author: &member::Model,
    id: Uuid,
    input: &NoteInput,
    now: DateTime<Utc>,
) -> Result<note::Model> {
    writer(author)?;
    let c = check(db, Some(media), author.id, input).await?;
    let txn = crate::db::begin_write(db).await?;
    let row = own_locked(&txn, author.id, id).await?;
    let mut model: note::ActiveModel = row.into();
    model.title = Set(c.title);
    model.body = Set(c.body);
    model.image_urls = Set(to_json(&c.image_urls)?);
    model.product_ids = Set(to_json(&c.product_ids)?);
    model.status = Set(note::Status::Draft);
    model.review_reason = Set(None);
    model.updated_at = Set(now);
    let row = model.update(&txn).await?;
    txn.commit().await?;
    own_changed(events, author.id).await;
    Ok(row)
}

/// Deletes the author's note `id` with its likes and reports. Afterwards it is `NOT_FOUND`
/// to everyone, and likes of it are refused.
pub async fn delete(
    db: &DatabaseConnection,
    events: &Events,
    author: &member::Model,
    id: Uuid,
) -> Result<()> {
    writer(author)?;
    let txn = crate::db::begin_write(db).await?;
    let row = own_locked(&txn, author.id, id).await?;
    note_like::Entity::delete_many()
        .filter(note_like::Column::NoteId.eq(id))
        .exec(&txn)
        .await?;
    note_report::Entity::delete_many()
        .filter(note_report::Column::NoteId.eq(id))
        .exec(&txn)
        .await?;
    note_product::Entity::delete_many()
        .filter(note_product::Column::NoteId.eq(id))
        .exec(&txn)
        .await?;
    note::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    if row.first_published_at.is_some() {
        note_changed(events, author.id, id).await;
    } else {
        own_changed(events, author.id).await;
    }
    Ok(())
}

/// Sends the working copy of the author's note `id` to review (`PENDING`); a note that
/// links no product needs no review and is published at once. The linked products are
/// checked again (one may have been delisted since). Submitting a `PENDING` note again
/// changes nothing; an `APPROVED` one (nothing new to review) is `NOTE_UNCHANGED`.
pub async fn submit(
    db: &DatabaseConnection,
    events: &Events,
    author: &member::Model,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<note::Model> {
    writer(author)?;
    let txn = crate::db::begin_write(db).await?;
    let row = own_locked(&txn, author.id, id).await?;
    match row.status {
        note::Status::Pending => return Ok(row),
        note::Status::Approved => {
            return Err(Error::rule(
                "NOTE_UNCHANGED",
                "the note is published as it is: edit it before submitting again",
            ));
        }
        note::Status::Draft | note::Status::Rejected => {}
    }
    let input = NoteInput {
        title: row.title.clone(),
        body: row.body.clone(),
        image_urls: urls(&row.image_urls),
        image_ids: Vec::new(),
        product_ids: working_products(&row).into_iter().map(Some).collect(),
    };
    let c = check(&txn, None, author.id, &input).await?;
    let row = if c.product_ids.is_empty() {
        publish(&txn, row, now).await?
    } else {
        let mut model: note::ActiveModel = row.into();
        model.status = Set(note::Status::Pending);
        model.review_reason = Set(None);
        model.updated_at = Set(now);
        model.update(&txn).await?
    };
    txn.commit().await?;
    if row.is_public {
        note_changed(events, author.id, row.id).await;
    } else {
        own_changed(events, author.id).await;
    }
    Ok(row)
}

/// Makes the working copy of `row` its public version (shown again if reports had hidden
/// it, its reports then cleared).
async fn publish(
    db: &impl ConnectionTrait,
    row: note::Model,
    now: DateTime<Utc>,
) -> Result<note::Model> {
    let products = working_products(&row);
    note_product::Entity::delete_many()
        .filter(note_product::Column::NoteId.eq(row.id))
        .exec(db)
        .await?;
    if !products.is_empty() {
        note_product::Entity::insert_many(products.iter().enumerate().map(|(i, p)| {
            note_product::ActiveModel {
                note_id: Set(row.id),
                product_id: Set(*p),
                position: Set(i as i16),
            }
        }))
        .exec_without_returning(db)
        .await?;
    }
    let was_hidden = row.hidden_at.is_some();
    if was_hidden {
        note_report::Entity::delete_many()
            .filter(note_report::Column::NoteId.eq(row.id))
            .exec(db)
            .await?;
    }
    let first = row.first_published_at.unwrap_or(now);
    let likes = row.like_count;
    let mut model: note::ActiveModel = row.clone().into();
    model.published_title = Set(Some(row.title.clone()));
    model.published_body = Set(Some(row.body.clone()));
    model.published_image_urls = Set(Some(row.image_urls.clone()));
    model.published_product_ids = Set(Some(to_json(&products)?));
    model.first_published_at = Set(Some(first));
    model.published_at = Set(Some(now));
    model.hidden_at = Set(None);
    if was_hidden {
        model.report_count = Set(0);
    }
    model.is_public = Set(true);
    model.hot_rank = Set(hot_rank(likes, first));
    model.status = Set(note::Status::Approved);
    model.review_reason = Set(None);
    model.updated_at = Set(now);
    Ok(model.update(db).await?)
}

/// CURATOR: reviews note `id`. What is under review, in this order:
/// - a submitted working copy (`PENDING`): approving publishes it (replacing the public
///   version, and showing the note again if reports had hidden it); rejecting leaves the
///   public version as it was and the working copy `REJECTED` with the reason;
/// - otherwise a note hidden by reports: approving shows it again (its reports cleared);
///   rejecting takes it down (no public version any more; the working copy `REJECTED`).
///
/// Anything else is `NOTE_NOT_UNDER_REVIEW`. A rejection needs a reason (1–500 characters).
/// Audited in the review's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn review(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    curator: &member::Model,
    id: Uuid,
    approve: bool,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<note::Model> {
    if !reviewer(curator) {
        return Err(Error::Forbidden("requires the CURATOR role".into()));
    }
    let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(text::name("reason", r, MAX_REASON_CHARS)?),
        None if !approve => {
            return Err(Error::validation(
                "reason",
                "give a reason of 1 to 500 characters",
            ));
        }
        None => None,
    };
    let txn = crate::db::begin_write(db).await?;
    let row = locked(&txn, id).await?;
    let was_public = row.is_public;
    let (subject, row) = match (row.status, row.hidden_at.is_some(), approve) {
        (note::Status::Pending, _, true) => ("EDIT", publish(&txn, row, now).await?),
        (note::Status::Pending, _, false) => {
            let mut model: note::ActiveModel = row.into();
            model.status = Set(note::Status::Rejected);
            model.review_reason = Set(reason.clone());
            model.updated_at = Set(now);
            ("EDIT", model.update(&txn).await?)
        }
        (_, true, true) => {
            note_report::Entity::delete_many()
                .filter(note_report::Column::NoteId.eq(row.id))
                .exec(&txn)
                .await?;
            let mut model: note::ActiveModel = row.into();
            model.hidden_at = Set(None);
            model.report_count = Set(0);
            model.is_public = Set(true);
            model.updated_at = Set(now);
            ("REPORTS", model.update(&txn).await?)
        }
        (_, true, false) => {
            note_product::Entity::delete_many()
                .filter(note_product::Column::NoteId.eq(row.id))
                .exec(&txn)
                .await?;
            let mut model: note::ActiveModel = row.into();
            model.published_title = Set(None);
            model.published_body = Set(None);
            model.published_image_urls = Set(None);
            model.published_product_ids = Set(None);
            model.published_at = Set(None);
            model.is_public = Set(false);
            model.status = Set(note::Status::Rejected);
            model.review_reason = Set(reason.clone());
            model.updated_at = Set(now);
            ("REPORTS", model.update(&txn).await?)
        }
        _ => {
            return Err(Error::rule(
                "NOTE_NOT_UNDER_REVIEW",
                "the note has no submitted edit and is not hidden by reports",
            ));
        }
    };
    let action = if approve {
        Action::NoteApproved
    } else {
        Action::NoteRejected
    };
    audit::record(
        &txn,
        actor,
        action,
        Some((TargetType::Note, row.id)),
        json!({ "under_review": subject, "reason": reason, "author": row.author_id }),
        now,
    )
    .await?;
    txn.commit().await?;
    if was_public || row.is_public {
        note_changed(events, row.author_id, row.id).await;
    } else {
        own_changed(events, row.author_id).await;
    }
    Ok(row)
}

/// Reads the liker's member row for the rest of the transaction (shared: a freeze of the
/// member waits for the like, and the like for a freeze); a frozen member is `FORBIDDEN`.
async fn liker(db: &impl ConnectionTrait, member: Uuid) -> Result<()> {
    let frozen = member::Entity::find_by_id(member)
        .select_only()
        .column(member::Column::FrozenAt)
        .lock(LockType::Share)
        .into_tuple::<Option<DateTime<Utc>>>()
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    if frozen.is_some() {
        return Err(Error::Forbidden("a frozen member cannot like notes".into()));
    }
    Ok(())
}

/// The public note `id`, locked; `NOT_FOUND` when it is not public (deleted, hidden, never
/// approved).
async fn public_locked(db: &impl ConnectionTrait, id: Uuid) -> Result<note::Model> {
    let row = locked(db, id).await?;
    if row.is_public {
        Ok(row)
    } else {
        Err(Error::not_found("note"))
    }
}

/// `member` likes the public note `id` (once: liking again changes nothing). Returns the
/// note as it is after the like.
pub async fn like(
    db: &DatabaseConnection,
    events: &Events,
    member: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<note::Model> {
    let txn = crate::db::begin_write(db).await?;
    liker(&txn, member).await?;
    let row = public_locked(&txn, id).await?;
    let added = note_like::Entity::insert(note_like::ActiveModel {
        note_id: Set(id),
        member_id: Set(member),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([note_like::Column::NoteId, note_like::Column::MemberId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    let row = if added > 0 {
        set_likes(&txn, row, 1).await?
    } else {
        row
    };
    txn.commit().await?;
    if added > 0 {
        events.publish(vec![Event::note(Some(id))]).await;
    }
    Ok(row)
}

/// `member` takes back its like of the public note `id` (nothing happens when it had none).
pub async fn unlike(
    db: &DatabaseConnection,
    events: &Events,
    member: Uuid,
    id: Uuid,
) -> Result<note::Model> {
    let txn = crate::db::begin_write(db).await?;
    liker(&txn, member).await?;
    let row = public_locked(&txn, id).await?;
    let removed = note_like::Entity::delete_many()
        .filter(note_like::Column::NoteId.eq(id))
        .filter(note_like::Column::MemberId.eq(member))
        .exec(&txn)
        .await?
        .rows_affected;
    let row = if removed > 0 {
        set_likes(&txn, row, -1).await?
    } else {
        row
    };
    txn.commit().await?;
    if removed > 0 {
        events.publish(vec![Event::note(Some(id))]).await;
    }
    Ok(row)
}

/// Moves the like count of the locked note `row` by `by`, and its HOT score with it.
async fn set_likes(db: &impl ConnectionTrait, row: note::Model, by: i32) -> Result<note::Model> {
    let likes = Ord::max(row.like_count + by, 0);
    set_count(db, row, likes).await
}

async fn set_count(db: &impl ConnectionTrait, row: note::Model, likes: i32) -> Result<note::Model> {
    let rank = row
        .first_published_at
        .map(|t| hot_rank(likes, t))
        .unwrap_or(row.hot_rank);
    let mut model: note::ActiveModel = row.into();
    model.like_count = Set(likes);
    model.hot_rank = Set(rank);
    Ok(model.update(db).await?)
}

/// Recounts the likes of every note `member` liked, from the likes of members who are not
/// frozen: called by a freeze or an unfreeze in its transaction, after it changed the
/// member's row (which it then holds). Takes the notes in id order. Returns their ids.
pub async fn recount_likes_of(db: &impl ConnectionTrait, member: Uuid) -> Result<Vec<Uuid>> {
    let notes: Vec<Uuid> = note_like::Entity::find()
        .select_only()
        .column(note_like::Column::NoteId)
        .filter(note_like::Column::MemberId.eq(member))
        .order_by_asc(note_like::Column::NoteId)
        .into_tuple::<Uuid>()
        .all(db)
        .await?;
    for id in &notes {
        let row = locked(db, *id).await?;
        let likes: i64 = note_like::Entity::find()
            .select_only()
            .column_as(note_like::Column::MemberId.count(), "n")
            .filter(note_like::Column::NoteId.eq(*id))
            .filter(
                note_like::Column::MemberId.in_subquery(
                    Query::select()
                        .column(member::Column::Id)
                        .from(member::Entity)
                        .and_where(member::Column::FrozenAt.is_null())
                        .to_owned(),
                ),
            )
            .into_tuple::<i64>()
            .one(db)
            .await?
            .unwrap_or(0);
        set_count(db, row, i32::try_from(likes).unwrap_or(i32::MAX)).await?;
    }
    Ok(notes)
}

/// What a report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    /// The first report by this member, below the threshold.
    Counted,
    /// This member had reported the note already: nothing changed.
    AlreadyReported,
    /// This report reached the threshold: the note is hidden pending review.
    Hidden,
}

/// `member` reports the public note `id` (its author cannot). A member's reports of a note
/// count once; the report that brings the count to `threshold` hides the note in the same
/// transaction.
pub async fn report(
    db: &DatabaseConnection,
    events: &Events,
    member: Uuid,
    id: Uuid,
    reason: Option<&str>,
    threshold: u32,
    now: DateTime<Utc>,
) -> Result<Reported> {
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| body("reason", r))
        .transpose()?;
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(Error::validation(
            "reason",
            format!("must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    let txn = crate::db::begin_write(db).await?;
    let row = public_locked(&txn, id).await?;
    if row.author_id == member {
        return Err(Error::Forbidden("you cannot report your own note".into()));
    }
    let added = note_report::Entity::insert(note_report::ActiveModel {
        note_id: Set(id),
        member_id: Set(member),
        created_at: Set(now),
        reason: Set(reason),
    })
    .on_conflict(
        OnConflict::columns([note_report::Column::NoteId, note_report::Column::MemberId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    if added == 0 {
        return Ok(Reported::AlreadyReported);
    }
    let count = row.report_count + 1;
    let hide = i64::from(count) >= i64::from(threshold);
    let author = row.author_id;
    let mut model: note::ActiveModel = row.into();
    model.report_count = Set(count);
    if hide {
        model.hidden_at = Set(Some(now));
        model.is_public = Set(false);
    }
    model.update(&txn).await?;
    txn.commit().await?;
    if hide {
        note_changed(events, author, id).await;
        Ok(Reported::Hidden)
    } else {
        Ok(Reported::Counted)
    }
}

/// Whether `viewer` may see `n` beyond its public version (its author, curators, admins).
pub fn is_insider(viewer: &Viewer, n: &note::Model) -> bool {
    viewer
        .member()
        .is_ok_and(|m| m.id == n.author_id || reviewer(m))
}

/// Note `id` as `viewer` may see it: a public note to anyone; any note to its author,
/// curators and admins; `NOT_FOUND` otherwise.
pub async fn visible(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> Result<note::Model> {
    note::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|n| n.is_public || is_insider(viewer, n))
        .ok_or_else(|| Error::not_found("note"))
}

/// How the public feed is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Feed {
    /// Newest first publication first.
    #[serde(rename = "L")]
    Latest,
    /// Highest HOT score first (see the module docs).
    #[serde(rename = "H")]
    Hot,
}

/// Position after the last note of a feed page: the feed, its key there (the first
/// publication in milliseconds, or the HOT score) and the id (the tie-breaker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteCursor {
    #[serde(rename = "f")]
    pub feed: Feed,
    #[serde(rename = "k")]
    pub key: i64,
    #[serde(rename = "i")]
    pub id: Uuid,
}

impl NoteCursor {
    /// The position just after `n` in `feed`.
    pub fn of(feed: Feed, n: &note::Model) -> NoteCursor {
        let key = match feed {
            Feed::Latest => n
                .first_published_at
                .map(|t| t.timestamp_millis())
                .unwrap_or_default(),
            Feed::Hot => n.hot_rank,
        };
        NoteCursor {
            feed,
            key,
            id: n.id,
        }
    }
}

/// Which public notes a feed shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    /// Only notes linking a product of this category (or of its subcategories).
    pub category: Option<Uuid>,
    /// Only notes linking this product.
    pub product: Option<Uuid>,
    /// Only this member's notes.
    pub author: Option<Uuid>,
}

/// A note's author as the public sees them: display name and tier (the badge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    pub id: Uuid,
    pub display_name: String,
    pub tier: member::Tier,
}

/// The columns of `members` an [`Author`] is read from, in the order it reads them.
const AUTHOR_COLUMNS: [member::Column; 3] = [
    member::Column::Id,
    member::Column::DisplayName,
    member::Column::Tier,
];

/// A page of public notes in `feed` order, after `after`, each with its author (read in the
/// same statement: a feed shows who wrote each note).
pub async fn list(
    db: &impl ConnectionTrait,
    feed: Feed,
    filter: Filter,
    after: Option<&NoteCursor>,
    first: u64,
) -> Result<Page<(note::Model, Author)>> {
    if after.is_some_and(|c| c.feed != feed) {
        return Err(Error::validation("after", "a cursor of another feed"));
    }
    let mut q = note::Entity::find().filter(note::Column::IsPublic.eq(true));
    if let Some(author) = filter.author {
        q = q.filter(note::Column::AuthorId.eq(author));
    }
    if let Some(product) = filter.product {
        q = q.filter(
            note::Column::Id.in_subquery(
                Query::select()
                    .column(note_product::Column::NoteId)
                    .from(note_product::Entity)
                    .and_where(note_product::Column::ProductId.eq(product))
                    .to_owned(),
            ),
        );
    }
    if let Some(category) = filter.category {
        use entity::category as cat;
        q = q.filter(
            note::Column::Id.in_subquery(
                Query::select()
                    .column((note_product::Entity, note_product::Column::NoteId))
                    .from(note_product::Entity)
                    .inner_join(
                        product::Entity,
                        Expr::col((product::Entity, product::Column::Id))
                            .equals((note_product::Entity, note_product::Column::ProductId)),
                    )
                    .inner_join(
                        cat::Entity,
                        Expr::col((cat::Entity, cat::Column::Id))
                            .equals((product::Entity, product::Column::CategoryId)),
                    )
                    .cond_where(
                        Condition::any()
                            .add(Expr::col((cat::Entity, cat::Column::Id)).eq(category))
                            .add(Expr::col((cat::Entity, cat::Column::ParentId)).eq(category)),
                    )
                    .to_owned(),
            ),
        );
    }
    match feed {
        Feed::Latest => {
            let col = note::Column::FirstPublishedAt;
            if let Some(c) = after {
                let at = DateTime::<Utc>::from_timestamp_millis(c.key)
                    .ok_or_else(|| Error::validation("after", "not a valid cursor"))?;
                q = q.filter(
                    Condition::any().add(col.lt(at)).add(
                        Condition::all()
                            .add(col.eq(at))
                            .add(note::Column::Id.lt(c.id)),
                    ),
                );
            }
            q = q.order_by_desc(col);
        }
        Feed::Hot => {
            let col = note::Column::HotRank;
            if let Some(c) = after {
                q = q.filter(
                    Condition::any().add(col.lt(c.key)).add(
                        Condition::all()
                            .add(col.eq(c.key))
                            .add(note::Column::Id.lt(c.id)),
                    ),
                );
            }
            q = q.order_by_desc(col);
        }
    }
    let q = q
        .order_by_desc(note::Column::Id)
        .join(
            sea_orm::JoinType::InnerJoin,
            note::Entity::belongs_to(member::Entity)
                .from(note::Column::AuthorId)
                .to(member::Column::Id)
                .into(),
        )
        .columns(AUTHOR_COLUMNS);
    let items = super::page::rows_of_page_as::<ByPosition<(note::Model, Author)>, _>(
        db.get_database_backend(),
        q,
        first,
    )
    .all(db)
    .await?;
    Ok(Page::of(
        items.into_iter().map(|ByPosition(r)| r).collect(),
        first,
    ))
}

/// The author's own notes, every status, newest first.
pub async fn of_author(
    db: &impl ConnectionTrait,
    author: Uuid,
    after: Option<&NewestCursor>,
    first: u64,
) -> Result<Page<note::Model>> {
    newest_first(
        db,
        note::Entity::find().filter(note::Column::AuthorId.eq(author)),
        note::Column::CreatedAt,
        note::Column::Id,
        after,
        first,
    )
    .await
}

/// CURATOR: what waits for review — submitted working copies and notes hidden by reports —
/// most recently changed first.
pub async fn review_queue(
    db: &impl ConnectionTrait,
    curator: &member::Model,
    after: Option<&NewestCursor>,
    first: u64,
) -> Result<Page<note::Model>> {
    if !reviewer(curator) {
        return Err(Error::Forbidden("requires the CURATOR role".into()));
    }
    newest_first(
        db,
        note::Entity::find().filter(
            Condition::any()
                .add(note::Column::Status.eq(note::Status::Pending))
                .add(note::Column::HiddenAt.is_not_null()),
        ),
        note::Column::UpdatedAt,
        note::Column::Id,
        after,
        first,
    )
    .await
}

/// Notes' authors by id (what the public sees of them).
pub async fn authors_by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Author>> {
    Ok(member::Entity::find()
        .select_only()
        .columns(AUTHOR_COLUMNS)
        .filter(super::one_of(db, member::Column::Id, ids.iter().copied()))
        .into_model::<ByPosition<Author>>()
        .all(db)
        .await?
        .into_iter()
        .map(|ByPosition(a)| (a.id, a))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_rank_decays_by_half_a_day() {
        let t = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        // A note a day older needs twice the (1 + likes) to tie: 1 + 3 = 2 × (1 + 1).
        let older = hot_rank(3, t);
        let newer = hot_rank(1, t + chrono::Duration::hours(24));
        assert_eq!(older, newer);
        assert!(hot_rank(0, t + chrono::Duration::hours(1)) > hot_rank(0, t));
        assert!(hot_rank(5, t) > hot_rank(4, t));
    }

    #[test]
    fn image_urls_must_be_absolute_http() {
        for good in ["https://img.example/a.jpg", "http://x.cn/p?q=1"] {
            assert!(image_url("u".into(), good).is_ok(), "{good}");
        }
        for bad in [
            "ftp://x/a.jpg",
            "//x/a.jpg",
            "https://",
            "https:///a",
            "javascript:alert(1)",
            "https://x/a b.jpg",
            "/a.jpg",
        ] {
            assert!(image_url("u".into(), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_keep_line_breaks_and_refuse_hidden_characters() {
        assert_eq!(body("b", " a\r\nb\tc ").ok().as_deref(), Some("a\nb\tc"));
        assert!(body("b", "a\u{202E}b").is_err());
        assert!(body("b", "  ").is_err());
        assert!(body("b", &"x".repeat(MAX_BODY_CHARS + 1)).is_err());
    }
}
