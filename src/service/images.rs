//! Uploaded product and note images: who may upload which, the upload rate limit, the
//! `images` rows, presigned uploads, and the thumbnails served from the media store. The
//! rules of what an image must be — type, size, dimensions, EXIF stripped — are
//! [`crate::media`]'s.
//!
//! Who uploads: a `PRODUCT` image, a merchant's user; a `NOTE` image, a push-hand or a
//! partner (who write notes); admins, either. Anyone else signed in is `FORBIDDEN`, anyone
//! signed out `UNAUTHENTICATED`.
//!
//! # The hourly limit
//! A member uploads at most `PUSHHAND_MEDIA_UPLOADS_PER_HOUR` images in any hour
//! (`RATE_LIMITED`), counted from the rows, so across instances. The count that decides is
//! made in the transaction that inserts the image, after an update of the member's row in
//! `image_upload_quotas` ([`hold_quota`]): on PostgreSQL the update holds that row's lock
//! until the commit, on SQLite the transaction holds the database's write lock
//! (`BEGIN IMMEDIATE`), so two uploads of one member are never counted side by side and
//! `N` simultaneous uploads over a limit of `k` give exactly `k` images. A cheaper count
//! before the bytes are decoded refuses most excess uploads without the work; it decides
//! nothing. Open presigned uploads count too when one more is asked for, so that a client
//! cannot collect more staging URLs than it may complete.
//!
//! # Presigned uploads
//! Where the store signs URLs (S3, OSS), `createImageUpload` ([`create_upload`]) records an
//! `image_uploads` row and answers a `PUT` URL to the staging key `uploads/<upload id>`
//! (valid `PUSHHAND_MEDIA_UPLOAD_URL_SECONDS`); the client sends the bytes there, then
//! `completeImageUpload` ([`complete_upload`]) reads them back (their size first, from a
//! `HEAD`: an oversized object is never read) and holds them to exactly the rules of a
//! multipart upload. The image is stored re-encoded under its own key, the staging object
//! and the row are deleted; a refused upload (`IMAGE_TOO_LARGE`, `UNSUPPORTED_IMAGE_TYPE`,
//! `IMAGE_DIMENSIONS_TOO_LARGE`, `IMAGE_UNREADABLE`, `RATE_LIMITED`, `UPLOAD_EXPIRED`)
//! leaves nothing behind either. Nothing sent yet is `UPLOAD_MISSING`, and the upload stays
//! open (the URL may still be used). Another member's upload id is `NOT_FOUND`. On the local
//! filesystem `createImageUpload` is `UNSUPPORTED`: uploads there are GraphQL multipart
//! requests. An upload never completed is cleared by the server's periodic job
//! ([`clear_abandoned`]) once it can no longer be completed (an hour after its URL
//! expired): its staging object first, then its row, so a failure leaves the row to try
//! again and never an object no row names. A bucket lifecycle rule on `uploads/` (a day)
//! is a sensible second net, not needed.
//!
//! # Writes
//! An upload is stored before its row is written: a crash between the two leaves an object
//! no row names (harmless, never served under another id), never a row without its bytes;
//! a refusal in the transaction deletes the object again. A staff member's upload (a
//! merchant's user, an admin) writes `IMAGE_UPLOADED` to the audit log in the row's
//! transaction. No cached answer shows images, so an upload publishes no event.

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use entity::{image, image_upload, image_upload_quota, member};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use crate::error::{Error, FieldErrors, Result};
use crate::media::{Format, Key, Media, Processed};

/// How long after its URL expired an upload may still be completed (a client that sent
/// the bytes just in time needs a moment to say so).
const COMPLETE_GRACE: Duration = Duration::hours(1);

/// Whether `m` may upload an image for `purpose`.
fn may_upload(m: &member::Model, purpose: image::Purpose) -> Result<()> {
    if m.staff_role == Some(member::StaffRole::Admin) {
        return Ok(());
    }
    match purpose {
        image::Purpose::Product
            if m.staff_role == Some(member::StaffRole::Merchant) && m.merchant_id.is_some() =>
        {
            Ok(())
        }
        image::Purpose::Product => Err(Error::Forbidden(
            "product images are uploaded by merchants' users and admins".into(),
        )),
        image::Purpose::Note
            if matches!(m.tier, member::Tier::PushHand | member::Tier::Partner) =>
        {
            Ok(())
        }
        image::Purpose::Note => Err(Error::Forbidden(
            "note images are uploaded by push-hands, partners and admins".into(),
        )),
    }
}

fn rate_limited(per_hour: u32) -> Error {
    Error::rule(
        "RATE_LIMITED",
        format!("at most {per_hour} images an hour; try again later"),
    )
}

/// `member`'s images (and, with `with_open_uploads`, presigned uploads still open) of the
/// hour before `now`.
async fn recent_uploads(
    db: &impl ConnectionTrait,
    member: Uuid,
    now: DateTime<Utc>,
    with_open_uploads: bool,
) -> Result<u64> {
    let since = now - Duration::hours(1);
    let mut n = image::Entity::find()
        .filter(image::Column::OwnerId.eq(member))
        .filter(image::Column::CreatedAt.gt(since))
        .count(db)
        .await?;
    if with_open_uploads {
        n += image_upload::Entity::find()
            .filter(image_upload::Column::OwnerId.eq(member))
            .filter(image_upload::Column::CreatedAt.gt(since))
            .filter(image_upload::Column::ExpiresAt.gt(now))
            .count(db)
            .await?;
    }
    Ok(n)
}

/// In an upload's transaction: takes `member`'s quota row (created on the first upload)
/// with an update, which holds it until the commit, then counts the last hour's uploads;
/// `RATE_LIMITED` at `per_hour`. See [the module's notes](self#the-hourly-limit).
async fn hold_quota(
    txn: &impl ConnectionTrait,
    member: Uuid,
    per_hour: u32,
    now: DateTime<Utc>,
    with_open_uploads: bool,
) -> Result<()> {
    image_upload_quota::Entity::insert(image_upload_quota::ActiveModel {
        member_id: Set(member),
        uploads: Set(0),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(image_upload_quota::Column::MemberId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    image_upload_quota::Entity::update_many()
        .col_expr(
            image_upload_quota::Column::Uploads,
            Expr::col(image_upload_quota::Column::Uploads).add(1),
        )
        .col_expr(image_upload_quota::Column::UpdatedAt, Expr::value(now))
        .filter(image_upload_quota::Column::MemberId.eq(member))
        .exec(txn)
        .await?;
    if recent_uploads(txn, member, now, with_open_uploads).await? >= u64::from(per_hour) {
        return Err(rate_limited(per_hour));
    }
    Ok(())
}

/// Checks, re-encodes and stores `bytes` as a new image of `uploader`'s for `purpose`.
/// Errors: `FORBIDDEN`, `RATE_LIMITED`, and the media rules' `IMAGE_TOO_LARGE`,
/// `UNSUPPORTED_IMAGE_TYPE`, `IMAGE_DIMENSIONS_TOO_LARGE`, `IMAGE_UNREADABLE`.
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    db: &DatabaseConnection,
    media: &Media,
    uploader: &member::Model,
    actor: &Actor,
    purpose: image::Purpose,
    bytes: Bytes,
    per_hour: u32,
    now: DateTime<Utc>,
) -> Result<image::Model> {
    may_upload(uploader, purpose)?;
    // Not the count that decides (that is `hold_quota`'s): it spares the decoding.
    if recent_uploads(db, uploader.id, now, false).await? >= u64::from(per_hour) {
        return Err(rate_limited(per_hour));
    }
    let processed = media.process(bytes).await?;
    store(
        db, media, uploader, actor, purpose, processed, None, per_hour, now,
    )
    .await
}

/// Stores an accepted upload under its key and writes its row (with its quota and audit
/// entry, and — for a presigned upload — the deletion of the upload's row); the object is
/// deleted again when the transaction refuses it. `NOT_FOUND` when `upload` was completed
/// meanwhile by another request.
#[allow(clippy::too_many_arguments)]
async fn store(
    db: &DatabaseConnection,
    media: &Media,
    uploader: &member::Model,
    actor: &Actor,
    purpose: image::Purpose,
    processed: Processed,
    upload: Option<Uuid>,
    per_hour: u32,
    now: DateTime<Utc>,
) -> Result<image::Model> {
    let id = Uuid::now_v7();
    let key = Key::Original {
        id,
        format: processed.format,
    };
    let size = processed.bytes.len();
    media.put(&key, processed.bytes).await?;
    let row = image::ActiveModel {
        id: Set(id),
        owner_id: Set(uploader.id),
        purpose: Set(purpose),
        store_key: Set(key.path()),
        content_type: Set(processed.format.content_type().to_owned()),
        bytes: Set(i64::try_from(size).map_err(Error::internal)?),
        width: Set(i32::try_from(processed.width).map_err(Error::internal)?),
        height: Set(i32::try_from(processed.height).map_err(Error::internal)?),
        created_at: Set(now),
    };
    let written = async {
        let txn = crate::db::begin_write(db).await?;
        if let Some(upload) = upload {
            let gone = image_upload::Entity::delete_many()
                .filter(image_upload::Column::Id.eq(upload))
                .exec(&txn)
                .await?;
            if gone.rows_affected == 0 {
                return Err(Error::not_found("no such image upload"));
            }
        }
        hold_quota(&txn, uploader.id, per_hour, now, false).await?;
        let row = row.insert(&txn).await?;
        if uploader.staff_role.is_some() {
            audit::record(
                &txn,
                actor,
                Action::ImageUploaded,
                Some((TargetType::Image, id)),
                json!({ "purpose": purpose_code(purpose), "bytes": size,
                        "width": row.width, "height": row.height }),
                now,
            )
            .await?;
        }
        txn.commit().await?;
        Ok::<image::Model, Error>(row)
    }
    .await;
    if written.is_err()
        && let Err(e) = media.delete_path(&key.path()).await
    {
        tracing::warn!(image = %id, error = ?e, "a refused image's object was not deleted");
    }
    written
}

fn purpose_code(p: image::Purpose) -> &'static str {
    match p {
        image::Purpose::Product => "PRODUCT",
        image::Purpose::Note => "NOTE",
    }
}

/// The staging key of a presigned upload.
pub fn staging_path(upload: Uuid) -> String {
    format!("uploads/{upload}")
}

/// A presigned upload's answer: where and how to send the bytes.
#[derive(Debug)]
pub struct PresignedUpload {
    pub upload: image_upload::Model,
    pub url: String,
    pub method: &'static str,
    /// Headers the client sends with the `PUT`.
    pub headers: Vec<(&'static str, String)>,
}

/// Opens a presigned upload of an image of `uploader`'s for `purpose`, declared as
/// `content_type` (`image/jpeg`, `image/png`, `image/webp`) of `bytes` bytes. Errors:
/// `UNSUPPORTED` (the store signs no URLs), `FORBIDDEN`, `VALIDATION` (every bad field),
/// `IMAGE_TOO_LARGE`, `RATE_LIMITED`.
#[allow(clippy::too_many_arguments)]
pub async fn create_upload(
    db: &DatabaseConnection,
    media: &Media,
    uploader: &member::Model,
    purpose: image::Purpose,
    content_type: &str,
    bytes: i64,
    per_hour: u32,
    valid_for: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<PresignedUpload> {
    may_upload(uploader, purpose)?;
    if !media.presigns() {
        return Err(Error::rule(
            "UNSUPPORTED",
            "this server's media store (the local filesystem) takes no presigned uploads:              send the image with uploadImage as a GraphQL multipart request",
        ));
    }
    let mut errors = FieldErrors::default();
    let format = Format::from_content_type(content_type);
    if format.is_none() {
        errors.push("contentType", "must be image/jpeg, image/png or image/webp");
    }
    if bytes < 1 {
        errors.push("bytes", "must be at least 1");
    }
    errors.finish()?;
    let max = media.limits().max_bytes;
    if u64::try_from(bytes).unwrap_or(u64::MAX) > max as u64 {
        return Err(Error::rule(
            "IMAGE_TOO_LARGE",
            format!("the file is {bytes} bytes; at most {max} are accepted"),
        ));
    }
    let id = Uuid::now_v7();
    let valid = Duration::from_std(valid_for).map_err(Error::internal)?;
    let txn = crate::db::begin_write(db).await?;
    hold_quota(&txn, uploader.id, per_hour, now, true).await?;
    let upload = image_upload::ActiveModel {
        id: Set(id),
        owner_id: Set(uploader.id),
        purpose: Set(purpose),
        content_type: Set(content_type.to_owned()),
        bytes: Set(bytes),
        expires_at: Set(now + valid),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    let url = media
        .presign_put(&staging_path(id), valid_for)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("the store stopped signing")))?;
    Ok(PresignedUpload {
        upload,
        url,
        method: "PUT",
        headers: vec![("Content-Type", content_type.to_owned())],
    })
}

/// Ends a presigned upload: deletes its row and staging object (a refusal).
async fn drop_upload(db: &DatabaseConnection, media: &Media, upload: Uuid) -> Result<()> {
    image_upload::Entity::delete_by_id(upload).exec(db).await?;
    media.delete_path(&staging_path(upload)).await
}

/// How many abandoned uploads [`clear_abandoned`] clears per statement.
const CLEAR_BATCH: u64 = 100;

/// Clears presigned uploads that can no longer be completed (their URL expired more than
/// an hour before `now`): each one's staging object, then its row. Returns how many were
/// cleared. Safe beside completions and on several instances at once: such an upload is
/// only ever refused, and deleting what another instance deleted is no error.
pub async fn clear_abandoned(
    db: &DatabaseConnection,
    media: &Media,
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut cleared = 0;
    loop {
        let ids: Vec<Uuid> = image_upload::Entity::find()
            .select_only()
            .column(image_upload::Column::Id)
            .filter(image_upload::Column::ExpiresAt.lt(now - COMPLETE_GRACE))
            .order_by_asc(image_upload::Column::ExpiresAt)
            .limit(CLEAR_BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok(cleared);
        }
        for id in &ids {
            media.delete_path(&staging_path(*id)).await?;
        }
        image_upload::Entity::delete_many()
            .filter(image_upload::Column::Id.is_in(ids.iter().copied()))
            .exec(db)
            .await?;
        cleared += ids.len();
        if (ids.len() as u64) < CLEAR_BATCH {
            return Ok(cleared);
        }
    }
}

/// Completes `uploader`'s presigned upload `upload`: the bytes sent are held to the rules of
/// [`upload`], stored as an image, and the staging object deleted; see [the module's
/// notes](self#presigned-uploads) for the errors.
#[allow(clippy::too_many_arguments)]
pub async fn complete_upload(
    db: &DatabaseConnection,
    media: &Media,
    uploader: &member::Model,
    actor: &Actor,
    upload: Uuid,
    per_hour: u32,
    now: DateTime<Utc>,
) -> Result<image::Model> {
    let row = image_upload::Entity::find_by_id(upload)
        .filter(image_upload::Column::OwnerId.eq(uploader.id))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("no such image upload"))?;
    let refuse = |e: Error| async move {
        drop_upload(db, media, upload).await?;
        Err::<image::Model, Error>(e)
    };
    if now > row.expires_at + COMPLETE_GRACE {
        return refuse(Error::rule(
            "UPLOAD_EXPIRED",
            "the upload was not completed in time; ask for a new one",
        ))
        .await;
    }
    if let Err(e) = may_upload(uploader, row.purpose) {
        return refuse(e).await;
    }
    let path = staging_path(upload);
    let Some(size) = media.size_of(&path).await? else {
        return Err(Error::rule(
            "UPLOAD_MISSING",
            "nothing was sent to the upload's URL yet",
        ));
    };
    let max = media.limits().max_bytes;
    if size > max as u64 {
        return refuse(Error::rule(
            "IMAGE_TOO_LARGE",
            format!("the file is {size} bytes; at most {max} are accepted"),
        ))
        .await;
    }
    let Some(bytes) = media.get_path(&path).await? else {
        return Err(Error::rule(
            "UPLOAD_MISSING",
            "nothing was sent to the upload's URL yet",
        ));
    };
    let processed = match media.process(bytes).await {
        Ok(p) => p,
        Err(e) => return refuse(e).await,
    };
    match store(
        db,
        media,
        uploader,
        actor,
        row.purpose,
        processed,
        Some(upload),
        per_hour,
        now,
    )
    .await
    {
        Ok(image) => {
            if let Err(e) = media.delete_path(&path).await {
                tracing::warn!(upload = %upload, error = ?e, "a staging object was not deleted");
            }
            Ok(image)
        }
        Err(e @ Error::NotFound(_)) => Err(e),
        Err(e) if e.code() == "RATE_LIMITED" => refuse(e).await,
        Err(e) => Err(e),
    }
}

/// The URLs (absolute, as image URL fields hold them) of images `ids`, in order, which
/// `owner` must have uploaded for `purpose`: a product's or a note's `imageIds`. An entry
/// that is no image ID, an image of another purpose and one listed twice are noted in
/// `errors` under `<field>[i]` (reported with the input's other bad fields); an image that
/// is not `owner`'s — someone else's, or none — is `NOT_FOUND`, naming every such entry.
pub async fn urls_of(
    db: &impl ConnectionTrait,
    media: &Media,
    owner: Uuid,
    purpose: image::Purpose,
    ids: &[Option<Uuid>],
    field: &str,
    errors: &mut FieldErrors,
) -> Result<Vec<String>> {
    let wanted: Vec<Uuid> = ids.iter().flatten().copied().collect();
    let rows: std::collections::HashMap<Uuid, image::Model> = if wanted.is_empty() {
        Default::default()
    } else {
        image::Entity::find()
            .filter(super::one_of(db, image::Column::Id, wanted))
            .filter(image::Column::OwnerId.eq(owner))
            .all(db)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect()
    };
    let mut missing = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut urls = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match id {
            None => errors.push(at, "not the ID of an image"),
            Some(id) => match rows.get(id) {
                None => missing.push(at),
                Some(row) if row.purpose != purpose => errors.push(
                    at,
                    format!(
                        "an image uploaded for {}, not {}",
                        purpose_code(row.purpose),
                        purpose_code(purpose)
                    ),
                ),
                Some(_) if !seen.insert(*id) => errors.push(at, "listed twice"),
                Some(row) => urls.push(media.absolute_url(&original_key(row)?)),
            },
        }
    }
    if !missing.is_empty() {
        return Err(Error::not_found(format!(
            "no such image of yours: {}",
            missing.join(", ")
        )));
    }
    Ok(urls)
}

/// The stored original's key of `row`.
pub fn original_key(row: &image::Model) -> Result<Key> {
    let format = Format::from_content_type(&row.content_type)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("image {} has no known type", row.id)))?;
    Ok(Key::Original { id: row.id, format })
}

/// The bytes `key` names, for `GET /media/<key>`: from the store; a thumbnail or conversion
/// missing there is made from its image's original, stored, and returned (once: later
/// requests find it stored). `None` when there is no such image.
pub async fn serve(db: &DatabaseConnection, media: &Media, key: &Key) -> Result<Option<Bytes>> {
    if let Some(bytes) = media.get(key).await? {
        return Ok(Some(bytes));
    }
    let Key::Derived { id, width, format } = *key else {
        return Ok(None);
    };
    let Some(row) = image::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let original = original_key(&row)?;
    let Key::Original { format: from, .. } = original else {
        return Ok(None);
    };
    let Some(source) = media.get(&original).await? else {
        tracing::warn!(image = %id, "an image's original is missing from the media store");
        return Ok(None);
    };
    let made = media.derive(source, from, width, format).await?;
    media.put(key, made.clone()).await?;
    Ok(Some(Bytes::from(made)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(
        tier: member::Tier,
        role: Option<member::StaffRole>,
        merchant: bool,
    ) -> member::Model {
        member::Model {
            id: Uuid::now_v7(),
            email: None,
            phone: None,
            password_hash: String::new(),
            display_name: "m".into(),
            tier,
            staff_role: role,
            invite_code: None,
            partner_link_code: None,
            partner_application: None,
            upline_id: None,
            frozen_at: None,
            frozen_reason: None,
            token_version: 0,
            created_at: Utc::now(),
            merchant_id: merchant.then(Uuid::now_v7),
        }
    }

    #[test]
    fn who_uploads_what() {
        use entity::image::Purpose::{Note, Product};
        use member::{StaffRole as R, Tier as T};
        let merchant = member(T::Buyer, Some(R::Merchant), true);
        let admin = member(T::Buyer, Some(R::Admin), false);
        let push_hand = member(T::PushHand, None, false);
        let partner = member(T::Partner, None, false);
        let buyer = member(T::Buyer, None, false);
        let curator = member(T::Buyer, Some(R::Curator), false);
        assert!(may_upload(&merchant, Product).is_ok());
        assert!(may_upload(&merchant, Note).is_err());
        assert!(may_upload(&admin, Product).is_ok() && may_upload(&admin, Note).is_ok());
        assert!(may_upload(&push_hand, Note).is_ok() && may_upload(&partner, Note).is_ok());
        assert!(may_upload(&push_hand, Product).is_err());
        assert!(may_upload(&buyer, Note).is_err() && may_upload(&buyer, Product).is_err());
        assert!(may_upload(&curator, Product).is_err());
    }
}
