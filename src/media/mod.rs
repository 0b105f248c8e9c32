//! Uploaded images: their bytes in an object store (the `object_store` crate; the local
//! filesystem under `PUSHHAND_MEDIA_DIR`, by default `<data dir>/media`), what an upload
//! must be, and the thumbnails made from it. No database and no GraphQL here: the rows
//! are [`crate::service::images`]', the routes `http::media`'s.
//!
//! An upload ([`Media::process`]) is held, in this order, to:
//! 1. its size (`PUSHHAND_MEDIA_MAX_BYTES`; `IMAGE_TOO_LARGE`);
//! 2. its type, sniffed from its first bytes — JPEG, PNG or WebP, whatever its name or the
//!    client says (`UNSUPPORTED_IMAGE_TYPE`: a renamed executable goes no further);
//! 3. the dimensions its header declares, read without decoding a pixel
//!    (`ImageReader::into_dimensions`; `PUSHHAND_MEDIA_MAX_PIXELS`, `PUSHHAND_MEDIA_MAX_SIDE`;
//!    `IMAGE_DIMENSIONS_TOO_LARGE`): a decompression bomb — a few bytes declaring 100000 ×
//!    100000 pixels — is refused before any allocation;
//! 4. a decode within the same limits (the decoder's own `Limits` as a second guard;
//!    `IMAGE_UNREADABLE` when the bytes are not a whole image);
//!
//! and is then turned the way its EXIF orientation says and re-encoded in its own format
//! from the pixels alone: EXIF (camera, GPS position, time), XMP, ICC and text chunks do not
//! survive. The re-encoded bytes are what is stored and served.
//!
//! Keys: an original is `images/<id>.<ext>`; a thumbnail or conversion of it is
//! `images/<id>/<width>.<ext>` (or `images/<id>/full.<ext>` for a conversion at full size),
//! made on its first request from the original and kept ([`Key`]). Widths come from a fixed
//! list ([`THUMBNAIL_WIDTHS`]) so that clients cannot make the server store one file per
//! pixel. Every key names an image id, so a stored object never changes: served with a year's
//! `immutable` cache.
//!
//! Decoding and encoding run on the blocking pool, at most one per core at a time.
//!
//! # Stores
//! `PUSHHAND_MEDIA_STORE` picks the store ([`Media::from_settings`]):
//! - `fs` (default): `object_store`'s local filesystem under `PUSHHAND_MEDIA_DIR`.
//! - `s3`: an S3-compatible bucket (`object_store`'s `aws` backend: AWS S3, MinIO, R2,
//!   Tencent COS…): `PUSHHAND_MEDIA_BUCKET`, `PUSHHAND_MEDIA_REGION` (default `us-east-1`),
//!   `PUSHHAND_MEDIA_ENDPOINT` (default AWS's), `PUSHHAND_MEDIA_ACCESS_KEY_ID`,
//!   `PUSHHAND_MEDIA_SECRET_ACCESS_KEY`, path-style unless `PUSHHAND_MEDIA_VIRTUAL_HOSTED`.
//! - `oss`: Alibaba Cloud OSS through its S3-compatible API, the same backend: requests
//!   signed with AWS Signature V4 for the region id (`PUSHHAND_MEDIA_REGION=cn-hangzhou`),
//!   sent virtual-hosted style (OSS refuses path style) to
//!   `https://<bucket>.oss-<region>.aliyuncs.com` unless `PUSHHAND_MEDIA_ENDPOINT` names
//!   another (Alibaba's current guide names `https://s3.oss-<region>.aliyuncs.com`; an
//!   internal endpoint `…-internal.aliyuncs.com` from ECS; or the bucket's custom domain,
//!   which OSS requires of new accounts in mainland regions).
//!
//! `PUSHHAND_MEDIA_ENDPOINT` is always the service's URL without the bucket: in
//! virtual-hosted style the bucket is put in front of its host here. The keys come from
//! configuration (the environment or a secret manager), never the repository; a missing
//! one stops the start, naming it. The `aws` backend brings its own HTTPS client (reqwest
//! with rustls and the system's root certificates, which `object_store` enables itself), so
//! a production container needs its CA certificates installed; an `http://` endpoint is
//! allowed for a store on the same machine or network (MinIO, the tests' fake).
//!
//! Whatever the store, images are served by this server under `/media/` (thumbnails are
//! made there); a CDN may sit in front of that, not in front of the bucket. The bucket can
//! stay private.
//!
//! # Presigned uploads
//! Stores that sign URLs (`s3`, `oss`) take uploads straight from the client
//! ([`Media::presign_put`]): a `PUT` to `uploads/<upload id>`, a staging key no image is
//! ever served from, valid `PUSHHAND_MEDIA_UPLOAD_URL_SECONDS`. Completing the upload reads
//! it back and holds it to exactly the rules above; the staging object is deleted either
//! way (`service::images`). The local filesystem signs nothing: there, uploads are GraphQL
//! multipart requests (`uploadImage`), and `createImageUpload` answers `UNSUPPORTED`.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use image::{DynamicImage, ImageDecoder, ImageReader};
use object_store::path::Path as StorePath;
use object_store::signer::Signer;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt as _, PutOptions, PutPayload};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::config::{MediaSettings, MediaStore};
use crate::error::{Error, Result};

/// The widths (pixels) a thumbnail may have: `Image.url(width:)` takes one of these.
pub const THUMBNAIL_WIDTHS: [u32; 7] = [96, 160, 320, 480, 640, 960, 1280];

/// JPEG quality of re-encoded uploads and of JPEG thumbnails.
const JPEG_QUALITY: u8 = 85;

/// The image formats accepted and served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    WebP,
}

impl Format {
    /// The media type served.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::WebP => "image/webp",
        }
    }

    /// The extension of its keys.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::WebP => "webp",
        }
    }

    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext {
            "jpg" => Some(Format::Jpeg),
            "png" => Some(Format::Png),
            "webp" => Some(Format::WebP),
            _ => None,
        }
    }

    pub fn from_content_type(content_type: &str) -> Option<Format> {
        [Format::Jpeg, Format::Png, Format::WebP]
            .into_iter()
            .find(|f| f.content_type() == content_type)
    }

    /// The format `bytes` are in, from their signature alone; `None` for anything but
    /// JPEG (`FF D8 FF`), PNG (its 8-byte signature) and WebP (`RIFF····WEBP`).
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Format::WebP)
        } else {
            None
        }
    }

    fn image_format(self) -> image::ImageFormat {
        match self {
            Format::Jpeg => image::ImageFormat::Jpeg,
            Format::Png => image::ImageFormat::Png,
            Format::WebP => image::ImageFormat::WebP,
        }
    }
}

/// Where an object is in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// An upload as stored: `images/<id>.<ext>`.
    Original { id: Uuid, format: Format },
    /// Made from the original on first request: `images/<id>/<width>.<ext>`, or
    /// `images/<id>/full.<ext>` without a width.
    Derived {
        id: Uuid,
        width: Option<u32>,
        format: Format,
    },
}

impl Key {
    /// The key's text (also its path under `/media/`).
    pub fn path(&self) -> String {
        match self {
            Key::Original { id, format } => format!("images/{id}.{}", format.extension()),
            Key::Derived {
                id,
                width: Some(w),
                format,
            } => format!("images/{id}/{w}.{}", format.extension()),
            Key::Derived {
                id,
                width: None,
                format,
            } => format!("images/{id}/full.{}", format.extension()),
        }
    }

    /// The key `path` names, if it is one this module makes (ids in their hyphenated lower
    /// form, a width from [`THUMBNAIL_WIDTHS`]); anything else is no key (404).
    pub fn parse(path: &str) -> Option<Key> {
        let rest = path.strip_prefix("images/")?;
        let (stem, ext) = rest.rsplit_once('.')?;
        let format = Format::from_extension(ext)?;
        let id_of = |s: &str| {
            Uuid::parse_str(s)
                .ok()
                .filter(|id| id.hyphenated().to_string() == s)
        };
        match stem.split_once('/') {
            None => Some(Key::Original {
                id: id_of(stem)?,
                format,
            }),
            Some((id, size)) => {
                let width = match size {
                    "full" => None,
                    w => Some(
                        w.parse::<u32>()
                            .ok()
                            .filter(|w| THUMBNAIL_WIDTHS.contains(w))
                            .filter(|w| w.to_string() == size)?,
                    ),
                };
                Some(Key::Derived {
                    id: id_of(id)?,
                    width,
                    format,
                })
            }
        }
    }
}

/// What an upload is held to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_pixels: u64,
    pub max_side: u32,
}

/// An accepted upload: re-encoded, without metadata, with its dimensions.
#[derive(Debug)]
pub struct Processed {
    pub format: Format,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// The media store and the rules of what goes into it. One per app.
pub struct Media {
    store: Arc<dyn ObjectStore>,
    /// The same store, when it signs URLs (`s3`, `oss`).
    signer: Option<Arc<dyn Signer>>,
    limits: Limits,
    /// `Image.url`'s prefix, without a trailing `/`.
    base_url: String,
    /// The same, absolute (`PUSHHAND_PUBLIC_URL/media` when `base_url` is a path): what a
    /// product's or note's image URL holds.
    absolute_base: String,
    /// Decodes and encodes running at once (each holds a core).
    work: Arc<Semaphore>,
}

impl Media {
    /// The store the settings name: the local directory (created if missing), or an
    /// S3-compatible or OSS bucket ([the module's notes](self#stores)).
    pub fn from_settings(
        settings: &MediaSettings,
        data_dir: &Path,
        public_url: &str,
    ) -> anyhow::Result<Media> {
        use anyhow::Context as _;
        match settings.media_store {
            MediaStore::Fs => {
                let dir = settings.dir(data_dir);
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {} (PUSHHAND_MEDIA_DIR)", dir.display()))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .with_context(|| format!("opening {} (PUSHHAND_MEDIA_DIR)", dir.display()))?;
                Ok(Media::new(Arc::new(store), None, settings, public_url))
            }
            MediaStore::S3 | MediaStore::Oss => {
                let store = Arc::new(bucket(settings)?);
                Ok(Media::new(store.clone(), Some(store), settings, public_url))
            }
        }
    }

    /// Media kept in `store`, which `signer` (the same store) may sign URLs for, on a
    /// server at `public_url` (`PUSHHAND_PUBLIC_URL`).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        signer: Option<Arc<dyn Signer>>,
        settings: &MediaSettings,
        public_url: &str,
    ) -> Media {
        let base_url = crate::config::text(&settings.media_public_url)
            .unwrap_or("/media")
            .trim_end_matches('/')
            .to_owned();
        let absolute_base = if base_url.starts_with('/') {
            format!("{}{base_url}", public_url.trim().trim_end_matches('/'))
        } else {
            base_url.clone()
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Media {
            store,
            signer,
            limits: Limits {
                max_bytes: settings.media_max_bytes,
                max_pixels: settings.media_max_pixels,
                max_side: settings.media_max_side,
            },
            base_url,
            absolute_base,
            work: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Whether the store takes presigned uploads.
    pub fn presigns(&self) -> bool {
        self.signer.is_some()
    }

    /// A URL that lets its holder `PUT` one object at `path` for `expires_in`; `None` when
    /// the store signs nothing (the local filesystem).
    pub async fn presign_put(
        &self,
        path: &str,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let url = signer
            .signed_url(axum::http::Method::PUT, &StorePath::from(path), expires_in)
            .await
            .map_err(|e| Error::internal(anyhow::Error::new(e).context("media store: sign")))?;
        Ok(Some(url.to_string()))
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Where clients fetch `key`: `PUSHHAND_MEDIA_PUBLIC_URL/<key>`, or `/media/<key>`.
    pub fn url(&self, key: &Key) -> String {
        format!("{}/{}", self.base_url, key.path())
    }

    /// [`Media::url`], always absolute (from `PUSHHAND_PUBLIC_URL` when the media URL is a
    /// path): what a product's or note's image URLs hold.
    pub fn absolute_url(&self, key: &Key) -> String {
        format!("{}/{}", self.absolute_base, key.path())
    }

    /// Checks an upload and re-encodes it ([the module's rules](self)), on the blocking
    /// pool.
    pub async fn process(&self, bytes: Bytes) -> Result<Processed> {
        let limits = self.limits;
        self.blocking(move || process(&bytes, limits)).await
    }

    /// The thumbnail (`width`, never wider than the original) or conversion of an original
    /// stored as `from`, in `to`, on the blocking pool.
    pub async fn derive(
        &self,
        original: Bytes,
        from: Format,
        width: Option<u32>,
        to: Format,
    ) -> Result<Vec<u8>> {
        let limits = self.limits;
        self.blocking(move || derive(&original, from, width, to, limits))
            .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .work
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(Error::internal)?
    }

    /// Stores `bytes` at `key` (replacing what is there: keys name their content, so a
    /// replacement is the same bytes).
    pub async fn put(&self, key: &Key, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put_opts(
                &StorePath::from(key.path()),
                PutPayload::from(bytes),
                PutOptions::default(),
            )
            .await
            .map_err(|e| Error::internal(anyhow::Error::new(e).context("media store: put")))?;
        Ok(())
    }

    /// The bytes at `key`, or `None` when nothing is stored there.
    pub async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.get_path(&key.path()).await
    }

    /// The size of the object at `path` (any key, e.g. a staging one), or `None` when
    /// nothing is stored there.
    pub async fn size_of(&self, path: &str) -> Result<Option<u64>> {
        match self.store.head(&StorePath::from(path)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::internal(
                anyhow::Error::new(e).context("media store: head"),
            )),
        }
    }

    /// Deletes the object at `path`; nothing there is no error.
    pub async fn delete_path(&self, path: &str) -> Result<()> {
        match self.store.delete(&StorePath::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::internal(
                anyhow::Error::new(e).context("media store: delete"),
            )),
        }
    }

    /// The bytes at `path`, or `None` when nothing is stored there.
    pub async fn get_path(&self, path: &str) -> Result<Option<Bytes>> {
        let path = StorePath::from(path);
        let found = match self.store.get_opts(&path, GetOptions::default()).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => {
                return Err(Error::internal(
                    anyhow::Error::new(e).context("media store: get"),
                ));
            }
        };
        match found.bytes().await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::internal(
                anyhow::Error::new(e).context("media store: read"),
            )),
        }
    }
}

/// The S3-compatible (or OSS) bucket the settings name ([the module's notes](self#stores)).
fn bucket(settings: &MediaSettings) -> anyhow::Result<object_store::aws::AmazonS3> {
    use crate::config::text;
    use anyhow::Context as _;
    let oss = settings.media_store == MediaStore::Oss;
    let var = if oss { "oss" } else { "s3" };
    let bucket = text(&settings.media_bucket).with_context(|| {
        format!("PUSHHAND_MEDIA_BUCKET is required when PUSHHAND_MEDIA_STORE={var}")
    })?;
    let region = match (text(&settings.media_region), oss) {
        (Some(r), _) => r.to_owned(),
        (None, false) => "us-east-1".to_owned(),
        (None, true) => {
            anyhow::bail!("PUSHHAND_MEDIA_REGION is required when PUSHHAND_MEDIA_STORE=oss")
        }
    };
    let virtual_hosted = settings.media_virtual_hosted.unwrap_or(oss);
    let endpoint = match text(&settings.media_endpoint) {
        Some(e) => Some(e.trim_end_matches('/').to_owned()),
        None if oss => Some(format!("https://oss-{region}.aliyuncs.com")),
        None => None,
    };
    let mut builder = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&region)
        .with_virtual_hosted_style_request(virtual_hosted)
        .with_access_key_id(text(&settings.media_access_key_id).unwrap_or_default())
        .with_secret_access_key(
            settings
                .media_secret_access_key
                .as_ref()
                .map(|s| s.expose().trim())
                .unwrap_or_default(),
        );
    if let Some(endpoint) = endpoint {
        let (scheme, host) = endpoint.split_once("://").with_context(|| {
            format!("PUSHHAND_MEDIA_ENDPOINT must be an http(s):// URL, got {endpoint:?}")
        })?;
        // The backend takes a virtual-hosted endpoint with the bucket already in it.
        let endpoint = if virtual_hosted {
            format!("{scheme}://{bucket}.{host}")
        } else {
            endpoint.clone()
        };
        builder = builder
            .with_allow_http(scheme == "http")
            .with_endpoint(endpoint);
    }
    builder
        .build()
        .with_context(|| format!("configuring the media store (PUSHHAND_MEDIA_STORE={var})"))
}

fn unreadable(e: image::ImageError) -> Error {
    match e {
        image::ImageError::Limits(_) => too_many_pixels(),
        e => Error::rule(
            "IMAGE_UNREADABLE",
            format!("the file is not a readable image: {e}"),
        ),
    }
}

fn too_many_pixels() -> Error {
    Error::rule(
        "IMAGE_DIMENSIONS_TOO_LARGE",
        "the image declares more pixels than are accepted",
    )
}

/// A reader of `bytes` as `format`, held to `limits` (what the decoder may allocate, the
/// sides it may accept).
fn reader(bytes: &[u8], format: Format, limits: Limits) -> ImageReader<Cursor<&[u8]>> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    // 16-bit RGBA is 8 bytes a pixel; room for the decoder's own buffers besides.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(decoder_limits);
    reader
}

/// The rules of [`Media::process`], synchronously.
pub fn process(bytes: &[u8], limits: Limits) -> Result<Processed> {
    if bytes.len() > limits.max_bytes {
        return Err(Error::rule(
            "IMAGE_TOO_LARGE",
            format!(
                "the file is {} bytes; at most {} are accepted",
                bytes.len(),
                limits.max_bytes
            ),
        ));
    }
    let format = Format::sniff(bytes).ok_or_else(|| {
        Error::rule(
            "UNSUPPORTED_IMAGE_TYPE",
            "the file is not a JPEG, PNG or WebP image (its type is read from its bytes, not \
             its name)",
        )
    })?;
    // The header alone: no pixel is decoded, nothing the size of the image is allocated.
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format.image_format())
        .into_dimensions()
        .map_err(unreadable)?;
    if width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(Error::rule(
            "IMAGE_DIMENSIONS_TOO_LARGE",
            format!(
                "the image is {width}×{height} pixels; at most {} a side and {} in all are \
                 accepted",
                limits.max_side, limits.max_pixels
            ),
        ));
    }
    let mut decoder = reader(bytes, format, limits)
        .into_decoder()
        .map_err(unreadable)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    img.apply_orientation(orientation);
    let bytes = encode(&img, format)?;
    Ok(Processed {
        format,
        bytes,
        width: img.width(),
        height: img.height(),
    })
}

/// The rules of [`Media::derive`], synchronously.
pub fn derive(
    original: &[u8],
    from: Format,
    width: Option<u32>,
    to: Format,
    limits: Limits,
) -> Result<Vec<u8>> {
    let img = reader(original, from, limits)
        .decode()
        .map_err(unreadable)?;
    let img = match width {
        Some(w) if w < img.width() => {
            let h = (u64::from(img.height()) * u64::from(w) + u64::from(img.width()) / 2)
                / u64::from(img.width());
            let h = u32::try_from(h).unwrap_or(u32::MAX).max(1);
            img.resize_exact(w, h, image::imageops::FilterType::Triangle)
        }
        _ => img,
    };
    encode(&img, to)
}

/// `img`'s pixels alone, in `format` (JPEG without alpha; WebP lossless, the encoder the
/// `image` crate has).
fn encode(img: &DynamicImage, format: Format) -> Result<Vec<u8>> {
    use image::codecs::{jpeg::JpegEncoder, png::PngEncoder, webp::WebPEncoder};
    let mut out = Vec::new();
    let written = match format {
        Format::Jpeg => DynamicImage::ImageRgb8(img.to_rgb8())
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)),
        Format::Png => img.write_with_encoder(PngEncoder::new(&mut out)),
        Format::WebP => {
            let eight_bit = if img.color().has_alpha() {
                DynamicImage::ImageRgba8(img.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(img.to_rgb8())
            };
            eight_bit.write_with_encoder(WebPEncoder::new_lossless(&mut out))
        }
    };
    written.map_err(|e| Error::internal(anyhow::Error::new(e).context("encoding an image")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_nothing_else_is_a_key() {
        let id = Uuid::now_v7();
        for key in [
            Key::Original {
                id,
                format: Format::Png,
            },
            Key::Derived {
                id,
                width: Some(320),
                format: Format::WebP,
            },
            Key::Derived {
                id,
                width: None,
                format: Format::Jpeg,
            },
        ] {
            assert_eq!(Key::parse(&key.path()), Some(key));
        }
        for bad in [
            format!("images/{id}/321.png"),
            format!("images/{id}/0320.png"),
            format!("images/{id}.gif"),
            format!("images/{id}/../x.png"),
            format!("other/{id}.png"),
            format!("images/{}.png", id.simple()),
            "images/.png".to_owned(),
        ] {
            assert_eq!(Key::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn types_are_sniffed_from_the_bytes() {
        assert_eq!(Format::sniff(b"\xFF\xD8\xFF\xE0rest"), Some(Format::Jpeg));
        assert_eq!(Format::sniff(b"\x89PNG\r\n\x1a\nrest"), Some(Format::Png));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::WebP));
        assert_eq!(Format::sniff(b"\x7fELF\x02\x01\x01"), None);
        assert_eq!(Format::sniff(b"GIF89a"), None);
        assert_eq!(Format::sniff(b""), None);
    }
}
