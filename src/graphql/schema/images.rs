//! Uploaded images in GraphQL: `uploadImage` (a GraphQL multipart request: the `Upload`
//! scalar) and `Image` with its `url(width, format)` thumbnails. The rules are
//! [`crate::service::images`]' and [`crate::media`]'s.

use std::io::Read as _;

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject, Upload};
use chrono::{DateTime, Utc};
use entity::image;

use crate::error::Error;
use crate::graphql::context::{actor, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::media::{Format, Key, THUMBNAIL_WIDTHS};
use crate::service::images as svc;

/// What an image is uploaded for; it decides who may upload it.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ImagePurpose {
    /// A product's image: merchants' users (MERCHANT) and admins.
    Product,
    /// A 种草 note's image: push-hands, partners and admins.
    Note,
}

impl From<ImagePurpose> for image::Purpose {
    fn from(p: ImagePurpose) -> image::Purpose {
        match p {
            ImagePurpose::Product => image::Purpose::Product,
            ImagePurpose::Note => image::Purpose::Note,
        }
    }
}

impl From<image::Purpose> for ImagePurpose {
    fn from(p: image::Purpose) -> ImagePurpose {
        match p {
            image::Purpose::Product => ImagePurpose::Product,
            image::Purpose::Note => ImagePurpose::Note,
        }
    }
}

/// An image encoding `Image.url` can serve.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// `image/jpeg` (quality 85; transparency is lost).
    Jpeg,
    /// `image/png` (lossless).
    Png,
    /// `image/webp` (lossless).
    Webp,
}

impl From<ImageFormat> for Format {
    fn from(f: ImageFormat) -> Format {
        match f {
            ImageFormat::Jpeg => Format::Jpeg,
            ImageFormat::Png => Format::Png,
            ImageFormat::Webp => Format::WebP,
        }
    }
}

/// An uploaded image: sniffed, held to the size and pixel limits, turned upright and
/// re-encoded without its metadata (EXIF, GPS position, XMP, ICC) when it was uploaded.
pub struct Image(pub image::Model);

/// An uploaded image: sniffed, held to the size and pixel limits, turned upright and
/// re-encoded without its metadata (EXIF, GPS position, XMP, ICC) when it was uploaded.
#[Object]
impl Image {
    /// The image's global ID.
    async fn id(&self) -> ID {
        ids::encode(Kind::Image, self.0.id)
    }

    /// Where to fetch the image (`GET`, served with a year's immutable cache): the original
    /// without arguments; with `width` and/or `format`, a copy made on its first request and
    /// kept. Absolute when the server has `PUSHHAND_MEDIA_PUBLIC_URL` (then usable in a
    /// note's `imageUrls`), else a path from the server's root (`/media/…`). A `width` not in
    /// the list is `VALIDATION` on `width`.
    async fn url(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Width in pixels, one of 96, 160, 320, 480, 640, 960, 1280; the \
                          height follows the aspect ratio, and an image narrower than this \
                          is not enlarged. Default: the original's."
        )]
        width: Option<i32>,
        #[graphql(desc = "The encoding (default: the original's).")] format: Option<ImageFormat>,
    ) -> Result<String> {
        let st = state(ctx)?;
        let original = svc::original_key(&self.0)?;
        let Key::Original { id, format: own } = original else {
            return Err(Error::internal(anyhow::anyhow!("not an original's key")).into());
        };
        let width = match width {
            None => None,
            Some(w) => Some(
                u32::try_from(w)
                    .ok()
                    .filter(|w| THUMBNAIL_WIDTHS.contains(w))
                    .ok_or_else(|| {
                        Error::validation(
                            "width",
                            format!("must be one of {THUMBNAIL_WIDTHS:?} pixels"),
                        )
                    })?,
            ),
        };
        let format = format.map_or(own, Format::from);
        let key = match (width, format == own) {
            (None, true) => original,
            _ => Key::Derived { id, width, format },
        };
        Ok(st.media.url(&key))
    }

    /// Width in pixels, upright (after the EXIF orientation was applied).
    async fn width(&self) -> i32 {
        self.0.width
    }

    /// Height in pixels, upright.
    async fn height(&self) -> i32 {
        self.0.height
    }

    /// The original's media type, sniffed from its bytes: `image/jpeg`, `image/png` or
    /// `image/webp`.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }

    /// Size of the stored original in bytes (as re-encoded, so not always the uploaded
    /// file's).
    async fn bytes(&self) -> i32 {
        i32::try_from(self.0.bytes).unwrap_or(i32::MAX)
    }

    /// What it was uploaded for.
    async fn purpose(&self) -> ImagePurpose {
        self.0.purpose.into()
    }

    /// When it was uploaded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(Default)]
pub struct ImagesMutation;

#[Object]
impl ImagesMutation {
    /// MERCHANT (`PRODUCT`), PUSH_HAND or PARTNER (`NOTE`), or ADMIN: uploads an image,
    /// sent as a GraphQL multipart request (`multipart/form-data`: `operations`, `map`, the
    /// file; with an `Authorization` header). The type is read from the bytes — JPEG, PNG
    /// or WebP — whatever the file is called. Errors: `UNAUTHENTICATED`, `FORBIDDEN`,
    /// `RATE_LIMITED`, `IMAGE_TOO_LARGE` (over `PUSHHAND_MEDIA_MAX_BYTES`),
    /// `UNSUPPORTED_IMAGE_TYPE`, `IMAGE_DIMENSIONS_TOO_LARGE` (the header declares more
    /// pixels than `PUSHHAND_MEDIA_MAX_PIXELS` or a side over `PUSHHAND_MEDIA_MAX_SIDE`;
    /// nothing is decoded), `IMAGE_UNREADABLE`, `VALIDATION` on `file` (no file sent).
    async fn upload_image(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The image file (the multipart request's file part).")] file: Upload,
        #[graphql(desc = "What the image is for.")] purpose: ImagePurpose,
    ) -> Result<Image> {
        let st = state(ctx)?;
        let m = viewer(ctx)?.member()?;
        let missing = || {
            Error::validation(
                "file",
                "no file was sent for this variable: send the request as multipart/form-data \
                 (the GraphQL multipart request spec)",
            )
        };
        let value = file.value(ctx).map_err(|_| missing())?;
        // One more byte than the limit is enough to refuse it.
        let limit = st.media.limits().max_bytes as u64 + 1;
        let mut content = Vec::new();
        value
            .into_read()
            .take(limit)
            .read_to_end(&mut content)
            .map_err(|_| missing())?;
        let row = svc::upload(
            &st.db,
            &st.media,
            m,
            &actor(ctx, m),
            purpose.into(),
            content.into(),
            st.config.media.media_uploads_per_hour,
            st.clock.now(),
        )
        .await?;
        Ok(Image(row))
    }

    /// MERCHANT (`PRODUCT`), PUSH_HAND or PARTNER (`NOTE`), or ADMIN: opens a presigned
    /// upload, for a client that sends the file straight to the media store (S3, OSS): send
    /// it with `method` to `url` with `headers` before `expiresAt`, then call
    /// `completeImageUpload(uploadId)`, which holds it to exactly the rules of
    /// `uploadImage`. Open uploads count towards `PUSHHAND_MEDIA_UPLOADS_PER_HOUR`. Errors:
    /// `UNSUPPORTED` (the local filesystem store: use `uploadImage` as a GraphQL multipart
    /// request there), `UNAUTHENTICATED`, `FORBIDDEN`, `RATE_LIMITED`, `IMAGE_TOO_LARGE`
    /// (`bytes` over the limit), `VALIDATION` on `contentType` and `bytes`.
    async fn create_image_upload(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the image is for.")] purpose: ImagePurpose,
        #[graphql(
            desc = "`image/jpeg`, `image/png` or `image/webp` (the bytes are sniffed \
                          all the same)."
        )]
        content_type: String,
        #[graphql(desc = "The file's size in bytes.")] bytes: i32,
    ) -> Result<ImageUpload> {
        let st = state(ctx)?;
        let m = viewer(ctx)?.member()?;
        let p = svc::create_upload(
            &st.db,
            &st.media,
            m,
            purpose.into(),
            content_type.trim(),
            i64::from(bytes),
            st.config.media.media_uploads_per_hour,
            std::time::Duration::from_secs(st.config.media.media_upload_url_seconds),
            st.clock.now(),
        )
        .await?;
        Ok(ImageUpload {
            upload_id: ids::encode(Kind::ImageUpload, p.upload.id),
            url: p.url,
            method: p.method.to_owned(),
            headers: p
                .headers
                .into_iter()
                .map(|(name, value)| HttpHeader {
                    name: name.to_owned(),
                    value,
                })
                .collect(),
            expires_at: p.upload.expires_at,
        })
    }

    /// The uploader: turns a presigned upload's file into an image (sniffed type, size,
    /// pixel limits, EXIF stripped, re-encoded, as `uploadImage`). The staging object is
    /// deleted whatever the outcome; a refusal leaves nothing behind. Errors: those of
    /// `uploadImage`, `NOT_FOUND` (no such upload of the caller's, or completed already),
    /// `UPLOAD_MISSING` (nothing sent yet: the upload stays open), `UPLOAD_EXPIRED`.
    async fn complete_image_upload(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "`createImageUpload`'s `uploadId`.")] upload_id: ID,
    ) -> Result<Image> {
        let st = state(ctx)?;
        let m = viewer(ctx)?.member()?;
        let id = ids::decode_as(&upload_id, Kind::ImageUpload, "uploadId")?;
        let row = svc::complete_upload(
            &st.db,
            &st.media,
            m,
            &actor(ctx, m),
            id,
            st.config.media.media_uploads_per_hour,
            st.clock.now(),
        )
        .await?;
        Ok(Image(row))
    }
}

/// A presigned upload: send the file with `method` to `url`, with `headers`, before
/// `expiresAt`; then `completeImageUpload(uploadId)`.
#[derive(SimpleObject)]
pub struct ImageUpload {
    /// For `completeImageUpload`.
    pub upload_id: ID,
    /// Where to send the file (a presigned URL of the media store).
    pub url: String,
    /// The HTTP method: `PUT`.
    pub method: String,
    /// Headers to send with the file.
    pub headers: Vec<HttpHeader>,
    /// When `url` stops working.
    pub expires_at: DateTime<Utc>,
}

/// An HTTP header.
#[derive(SimpleObject)]
pub struct HttpHeader {
    /// The header's name (e.g. `Content-Type`).
    pub name: String,
    /// Its value.
    pub value: String,
}
