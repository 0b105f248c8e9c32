//! Uploaded product and note images: who may upload which, the upload rate limit, the
//! `images` rows, and the thumbnails served from the media store. The rules of what an image
//! must be — type, size, dimensions, EXIF stripped — are [`crate::media`]'s.
//!
//! Who uploads: a `PRODUCT` image, a merchant's user; a `NOTE` image, a push-hand or a
//! partner (who write notes); admins, either. Anyone else signed in is `FORBIDDEN`, anyone
//! signed out `UNAUTHENTICATED`. A member uploads at most `PUSHHAND_MEDIA_UPLOADS_PER_HOUR`
//! images in any hour (`RATE_LIMITED`), counted from the rows, so across instances.
//!
//! An upload is stored before its row is written: a crash between the two leaves an object
//! no row names (harmless, never served under another id), never a row without its bytes.
//! No cached answer shows images, so an upload publishes no event.

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use entity::{image, member};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter,
};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::media::{Format, Key, Media};

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

/// Checks, re-encodes and stores `bytes` as a new image of `uploader`'s for `purpose`.
/// Errors: `FORBIDDEN`, `RATE_LIMITED`, and the media rules' `IMAGE_TOO_LARGE`,
/// `UNSUPPORTED_IMAGE_TYPE`, `IMAGE_DIMENSIONS_TOO_LARGE`, `IMAGE_UNREADABLE`.
pub async fn upload(
    db: &DatabaseConnection,
    media: &Media,
    uploader: &member::Model,
    purpose: image::Purpose,
    bytes: Bytes,
    per_hour: u32,
    now: DateTime<Utc>,
) -> Result<image::Model> {
    may_upload(uploader, purpose)?;
    let recent = image::Entity::find()
        .filter(image::Column::OwnerId.eq(uploader.id))
        .filter(image::Column::CreatedAt.gt(now - Duration::hours(1)))
        .count(db)
        .await?;
    if recent >= u64::from(per_hour) {
        return Err(Error::rule(
            "RATE_LIMITED",
            format!("at most {per_hour} images an hour; try again later"),
        ));
    }
    let processed = media.process(bytes).await?;
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
    }
    .insert(db)
    .await?;
    Ok(row)
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
