//! Uploaded images (`uploadImage`, GraphQL multipart requests, `GET /media/…`): JPEG, PNG and
//! WebP uploads record their dimensions and are served with their type; EXIF is gone (and
//! its orientation applied); a renamed executable, an oversized file and a decompression
//! bomb are refused, the bomb without decoding; a thumbnail is made once and then served
//! from the store; who may upload what; every refusal has its code.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use pushhand::service::members::CliRole;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

const UPLOAD: &str = "mutation($file: Upload!, $purpose: ImagePurpose!) {
  uploadImage(file: $file, purpose: $purpose) {
    id url width height contentType bytes purpose
  }
}";

/// A GraphQL multipart request body (the spec's `operations`, `map`, then the file as part
/// `0`), and its content type.
fn multipart_body(query: &str, purpose: &str, name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "pushhand-test-boundary-7MA4YWxkTrZu0gW";
    let operations = json!({ "query": query, "variables": { "file": null, "purpose": purpose } });
    let map = json!({ "0": ["variables.file"] });
    let mut body = Vec::new();
    for (field, value) in [("operations", operations), ("map", map)] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\
                 Content-Type: application/json\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"{name}\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads `bytes` as `name` for `purpose` with `token` (none: no `Authorization`); the
/// status and the JSON answer.
async fn upload(
    app: &TestApp,
    token: Option<&str>,
    purpose: &str,
    name: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let (content_type, body) = multipart_body(UPLOAD, purpose, name, bytes);
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    (status, resp.json().await.expect("JSON answer"))
}

/// Uploads that must succeed; the `Image`.
pub(crate) async fn uploaded(
    app: &TestApp,
    token: &str,
    purpose: &str,
    name: &str,
    bytes: &[u8],
) -> Value {
    let (status, resp) = upload(app, Some(token), purpose, name, bytes).await;
    assert_eq!(status, StatusCode::OK, "{resp:#}");
    assert!(resp.get("errors").is_none(), "unexpected errors: {resp:#}");
    resp["data"]["uploadImage"].clone()
}

/// GETs `url` (a path from the server's root); status, content type, cache control, body.
pub(crate) async fn fetch(app: &TestApp, url: &str) -> (StatusCode, String, String, Vec<u8>) {
    let resp = app.client.get(app.url(url)).send().await.expect("GET");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, content_type, cache) = (
        resp.status(),
        header("content-type"),
        header("cache-control"),
    );
    let body = resp.bytes().await.expect("body").to_vec();
    (status, content_type, cache, body)
}

pub(crate) fn encoded(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encodes");
    out.into_inner()
}

pub(crate) fn gradient(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        Rgba([(x * 7 % 256) as u8, (y * 5 % 256) as u8, 120, 255])
    })
}

/// Pixels no compressor can shrink (a fixed pseudo-random sequence).
fn noise(w: u32, h: u32) -> RgbImage {
    let mut state: u32 = 0x2545_f491;
    RgbImage::from_fn(w, h, |_, _| {
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        };
        Rgb([next(), next(), next()])
    })
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("the served bytes decode");
    (img.width(), img.height())
}

async fn merchant(app: &TestApp) -> String {
    app.user("merchant@example.com", CliRole::Merchant).await.0
}

#[tokio::test]
async fn jpeg_png_and_webp_uploads_record_their_size_and_are_served_with_their_type() {
    let app = TestApp::spawn().await;
    let token = merchant(&app).await;
    let cases = [
        (
            "photo.jpg",
            encoded(DynamicImage::ImageRgb8(noise(64, 48)), ImageFormat::Jpeg),
            "image/jpeg",
            (64, 48),
        ),
        (
            "drawing.png",
            encoded(DynamicImage::ImageRgba8(gradient(40, 30)), ImageFormat::Png),
            "image/png",
            (40, 30),
        ),
        (
            // The name says nothing: the type is read from the bytes.
            "drawing.bin",
            encoded(
                DynamicImage::ImageRgba8(gradient(33, 17)),
                ImageFormat::WebP,
            ),
            "image/webp",
            (33, 17),
        ),
    ];
    for (name, bytes, content_type, (w, h)) in cases {
        let image = uploaded(&app, &token, "PRODUCT", name, &bytes).await;
        assert_eq!(image["contentType"], json!(content_type), "{name}");
        assert_eq!(
            (image["width"].clone(), image["height"].clone()),
            (json!(w), json!(h))
        );
        assert_eq!(image["purpose"], json!("PRODUCT"));
        let url = image["url"].as_str().expect("url");
        assert!(url.starts_with("/media/images/"), "{url}");
        let (status, served_type, cache, body) = fetch(&app, url).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(served_type, content_type, "{name}");
        assert!(
            cache.contains("immutable") && cache.contains("max-age=31536000"),
            "{cache}"
        );
        assert_eq!(
            image["bytes"],
            json!(body.len()),
            "{name}: bytes is the stored size"
        );
        assert_eq!(dimensions(&body), (w, h), "{name}");
    }
    let (status, _, _, _) = fetch(&app, "/media/images/not-an-image.png").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _, _) = fetch(&app, "/media/../pushhand.db").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// An `APP1` segment (`Exif\0\0` and a little-endian TIFF header) whose one IFD entry is
/// the orientation `orientation`, followed by a marker text standing for the GPS position.
fn exif_segment(orientation: u16, marker: &[u8]) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    tiff.extend_from_slice(marker);
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(
        &u16::try_from(payload.len() + 2)
            .expect("small")
            .to_be_bytes(),
    );
    segment.extend_from_slice(&payload);
    segment
}

#[tokio::test]
async fn exif_is_stripped_and_its_orientation_applied() {
    let app = TestApp::spawn().await;
    let (token, _) = app.user("author@example.com", CliRole::PushHand).await;
    let marker = b"GPS 31.2304N 121.4737E secret";
    let jpeg = encoded(DynamicImage::ImageRgb8(noise(64, 48)), ImageFormat::Jpeg);
    // Right after the SOI marker.
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend_from_slice(&exif_segment(6, marker));
    with_exif.extend_from_slice(&jpeg[2..]);
    assert!(with_exif.windows(marker.len()).any(|w| w == marker));

    let image = uploaded(&app, &token, "NOTE", "IMG_0001.JPG", &with_exif).await;
    // Orientation 6: the camera was turned; the stored image is upright.
    assert_eq!(
        (image["width"].clone(), image["height"].clone()),
        (json!(48), json!(64))
    );
    let (status, content_type, _, body) = fetch(&app, image["url"].as_str().expect("url")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "image/jpeg")
    );
    assert!(
        !body.windows(marker.len()).any(|w| w == marker),
        "the EXIF data is gone"
    );
    assert!(
        !body.windows(6).any(|w| w == b"Exif\0\0"),
        "no EXIF segment at all"
    );
    assert_eq!(dimensions(&body), (48, 64));
}

#[tokio::test]
async fn a_renamed_executable_is_refused() {
    let app = TestApp::spawn().await;
    let token = merchant(&app).await;
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
    elf.resize(4096, 0x90);
    let (status, resp) = upload(&app, Some(&token), "PRODUCT", "x.jpg", &elf).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        error_code(&resp),
        Some("UNSUPPORTED_IMAGE_TYPE"),
        "{resp:#}"
    );
    // A GIF is an image, but not one of the three.
    let gif = encoded(DynamicImage::ImageRgba8(gradient(4, 4)), ImageFormat::Png);
    let mut not_png = b"GIF89a".to_vec();
    not_png.extend_from_slice(&gif[6..]);
    let (_, resp) = upload(&app, Some(&token), "PRODUCT", "x.png", &not_png).await;
    assert_eq!(
        error_code(&resp),
        Some("UNSUPPORTED_IMAGE_TYPE"),
        "{resp:#}"
    );
    // A JPEG signature over garbage is no image either.
    let (_, resp) = upload(
        &app,
        Some(&token),
        "PRODUCT",
        "x.jpg",
        b"\xFF\xD8\xFF\xE0garbage",
    )
    .await;
    assert_eq!(error_code(&resp), Some("IMAGE_UNREADABLE"), "{resp:#}");
}

#[tokio::test]
async fn an_oversized_file_is_refused() {
    let app = TestApp::spawn_with(&["--media-max-bytes", "20000"]).await;
    let token = merchant(&app).await;
    let big = encoded(DynamicImage::ImageRgb8(noise(120, 120)), ImageFormat::Png);
    assert!(big.len() > 20_000 && big.len() < 100_000, "{}", big.len());
    let (status, resp) = upload(&app, Some(&token), "PRODUCT", "big.png", &big).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(error_code(&resp), Some("IMAGE_TOO_LARGE"), "{resp:#}");
    // Beyond the media limit plus the body limit, the body is not even read whole.
    let huge = vec![0u8; 20_000 + 256 * 1024 + 1];
    let (status, resp) = upload(&app, Some(&token), "PRODUCT", "huge.png", &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&resp), Some("REQUEST_TOO_LARGE"), "{resp:#}");
}

/// A PNG chunk: length, type, data, CRC-32 of type and data.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_without_decoding() {
    let app = TestApp::spawn().await;
    let (token, _) = app.user("partner@example.com", CliRole::Partner).await;
    // 100000 × 100000 RGBA: 40 GB of pixels declared by a file of under a hundred bytes.
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut zlib, &[0u8; 1024]).expect("compresses");
    let idat = zlib.finish().expect("compressed");
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    bomb.extend_from_slice(&chunk(b"IHDR", &ihdr));
    bomb.extend_from_slice(&chunk(b"IDAT", &idat));
    bomb.extend_from_slice(&chunk(b"IEND", &[]));
    let started = std::time::Instant::now();
    let (status, resp) = upload(&app, Some(&token), "NOTE", "bomb.png", &bomb).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        error_code(&resp),
        Some("IMAGE_DIMENSIONS_TOO_LARGE"),
        "{resp:#}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused from the header, not after a decode"
    );
    // Within the pixel limit but over the side limit.
    let app = TestApp::spawn_with(&["--media-max-side", "50"]).await;
    let (token, _) = app.user("partner@example.com", CliRole::Partner).await;
    let wide = encoded(DynamicImage::ImageRgba8(gradient(60, 10)), ImageFormat::Png);
    let (_, resp) = upload(&app, Some(&token), "NOTE", "wide.png", &wide).await;
    assert_eq!(
        error_code(&resp),
        Some("IMAGE_DIMENSIONS_TOO_LARGE"),
        "{resp:#}"
    );
}

#[tokio::test]
async fn a_thumbnail_is_made_once_then_served_from_the_store() {
    let app = TestApp::spawn().await;
    let token = merchant(&app).await;
    let png = encoded(
        DynamicImage::ImageRgba8(gradient(400, 300)),
        ImageFormat::Png,
    );
    let (_, resp) = {
        let q = "mutation($file: Upload!, $purpose: ImagePurpose!) {
          uploadImage(file: $file, purpose: $purpose) {
            id url
            thumb: url(width: 160, format: WEBP)
            small: url(width: 320)
            jpeg: url(format: JPEG)
            same: url(format: PNG)
            wide: url(width: 1280)
          }
        }";
        let (content_type, body) = multipart_body(q, "PRODUCT", "p.png", &png);
        let resp = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("sent");
        (resp.status(), resp.json::<Value>().await.expect("JSON"))
    };
    assert!(resp.get("errors").is_none(), "{resp:#}");
    let image = &resp["data"]["uploadImage"];
    let url = |k: &str| image[k].as_str().expect("url").to_owned();
    assert_eq!(
        url("same"),
        url("url"),
        "the original's own format is the original"
    );
    assert!(url("thumb").ends_with("/160.webp"), "{}", url("thumb"));
    assert!(url("jpeg").ends_with("/full.jpg"), "{}", url("jpeg"));

    let media_dir = app.state.config.media.dir(&app.state.config.data_dir);
    let stored = |url: &str| media_dir.join(url.trim_start_matches("/media/"));
    assert!(
        !stored(&url("thumb")).exists(),
        "made on first request, not before"
    );
    let (status, content_type, cache, body) = fetch(&app, &url("thumb")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "image/webp")
    );
    assert!(cache.contains("immutable"), "{cache}");
    assert_eq!(dimensions(&body), (160, 120));
    assert!(stored(&url("thumb")).exists(), "kept in the store");

    let (_, content_type, _, body) = fetch(&app, &url("jpeg")).await;
    assert_eq!(content_type, "image/jpeg");
    assert_eq!(dimensions(&body), (400, 300));
    // Never enlarged.
    let (_, _, _, body) = fetch(&app, &url("wide")).await;
    assert_eq!(dimensions(&body), (400, 300));

    // With the original gone, the kept thumbnail is still served (from the store, not
    // made again); one never requested cannot be made any more.
    std::fs::remove_file(stored(&url("url"))).expect("original removed");
    let (status, _, _, again) = fetch(&app, &url("thumb")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dimensions(&again), (160, 120));
    let (status, _, _, _) = fetch(&app, &url("small")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A width off the list is refused, and not served either.
    let id = image["id"].as_str().expect("id");
    let resp = app
        .gql_as(
            &token,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        resp["data"]["node"],
        Value::Null,
        "images are no nodes: {resp:#}"
    );
    let odd = url("thumb").replace("/160.webp", "/161.webp");
    let (status, _, _, _) = fetch(&app, &odd).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_width_off_the_list_is_a_validation_error() {
    let app = TestApp::spawn().await;
    let token = merchant(&app).await;
    let png = encoded(DynamicImage::ImageRgba8(gradient(10, 10)), ImageFormat::Png);
    let q = "mutation($file: Upload!, $purpose: ImagePurpose!) {
      uploadImage(file: $file, purpose: $purpose) { url(width: 100) }
    }";
    let (content_type, body) = multipart_body(q, "PRODUCT", "p.png", &png);
    let resp: Value = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp:#}");
    assert_eq!(resp["errors"][0]["extensions"]["field"], json!("width"));
}

#[tokio::test]
async fn who_may_upload_what() {
    let app = TestApp::spawn().await;
    let png = encoded(DynamicImage::ImageRgba8(gradient(8, 8)), ImageFormat::Png);
    let merchant = merchant(&app).await;
    let (push_hand, _) = app.user("ph@example.com", CliRole::PushHand).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let buyer = app.register("buyer@example.com", None, None).await["data"]["register"]["token"]
        .as_str()
        .expect("token")
        .to_owned();

    for (token, purpose) in [
        (&merchant, "PRODUCT"),
        (&push_hand, "NOTE"),
        (&admin, "PRODUCT"),
        (&admin, "NOTE"),
    ] {
        uploaded(&app, token, purpose, "ok.png", &png).await;
    }
    for (token, purpose) in [
        (&merchant, "NOTE"),
        (&push_hand, "PRODUCT"),
        (&curator, "PRODUCT"),
        (&curator, "NOTE"),
        (&buyer, "NOTE"),
        (&buyer, "PRODUCT"),
    ] {
        let (_, resp) = upload(&app, Some(token), purpose, "no.png", &png).await;
        assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{purpose}: {resp:#}");
    }
    // Signed out: no upload without an `Authorization` header.
    let (status, resp) = upload(&app, None, "NOTE", "anon.png", &png).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"), "{resp:#}");
    let (_, resp) = upload(&app, Some("not-a-token"), "NOTE", "anon.png", &png).await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"), "{resp:#}");
    // A JSON request has no file to give; nor may it forge the multipart parser's marker
    // (the `Upload` scalar would trust it), in its variables or its document.
    let resp = app
        .gql_as(
            &merchant,
            UPLOAD,
            json!({ "file": "x", "purpose": "PRODUCT" }),
        )
        .await;
    assert_eq!(
        error_code(&resp),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{resp:#}"
    );
    for marker in ["#__graphql_file__:0", "#__graphql_file__:zz"] {
        let resp = app
            .gql_as(
                &merchant,
                UPLOAD,
                json!({ "file": marker, "purpose": "PRODUCT" }),
            )
            .await;
        assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp:#}");
        let inline =
            format!("mutation {{ uploadImage(file: \"{marker}\", purpose: PRODUCT) {{ id }} }}");
        let resp = app.gql_as(&merchant, &inline, json!({})).await;
        assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp:#}");
    }
}

#[tokio::test]
async fn uploads_are_rate_limited_per_member_and_urls_use_the_public_base() {
    let app = TestApp::spawn_with(&[
        "--media-uploads-per-hour",
        "2",
        "--media-public-url",
        "https://cdn.example.com/media/",
    ])
    .await;
    let token = merchant(&app).await;
    let (other, _) = app.user("ph@example.com", CliRole::PushHand).await;
    let png = encoded(DynamicImage::ImageRgba8(gradient(8, 8)), ImageFormat::Png);
    for _ in 0..2 {
        let image = uploaded(&app, &token, "PRODUCT", "p.png", &png).await;
        let url = image["url"].as_str().expect("url");
        assert!(
            url.starts_with("https://cdn.example.com/media/images/"),
            "{url}"
        );
    }
    let (_, resp) = upload(&app, Some(&token), "PRODUCT", "p.png", &png).await;
    assert_eq!(error_code(&resp), Some("RATE_LIMITED"), "{resp:#}");
    uploaded(&app, &other, "NOTE", "mine.png", &png).await;
    app.clock.advance(chrono::Duration::minutes(61));
    uploaded(&app, &token, "PRODUCT", "p.png", &png).await;
}

#[test]
fn bad_media_settings_name_their_setting() {
    let check = |args: &[&str]| {
        let mut all = vec!["pushhand"];
        all.extend_from_slice(args);
        let config = pushhand::config::from_args(all).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())
    };
    let err = check(&["--media-public-url", "ftp://x"]).expect_err("refused");
    assert!(err.contains("PUSHHAND_MEDIA_PUBLIC_URL"), "{err}");
    let err = check(&["--media-max-bytes", "10"]).expect_err("refused");
    assert!(err.contains("PUSHHAND_MEDIA_MAX_BYTES"), "{err}");
    let err = check(&["--media-uploads-per-hour", "0"]).expect_err("refused");
    assert!(err.contains("PUSHHAND_MEDIA_UPLOADS_PER_HOUR"), "{err}");
    let err = check(&["--media-max-side", "x"]).expect_err("refused");
    assert!(err.contains("media-max-side"), "{err}");
    assert!(check(&["--media-public-url", "https://cdn.example.com/media"]).is_ok());
}

/// A fake S3-compatible server on `127.0.0.1:0`, for the `s3` media store and its presigned
/// uploads, written from AWS's documentation (Signature Version 4: "Create a signed AWS API
/// request", "Authenticating requests: using query parameters"), not from the signing code
/// the server uses. Path-style: `/<bucket>/<key>`. It implements what the server uses —
/// `PUT`, `GET`, `HEAD` and `DELETE` of an object, `POST /<bucket>?delete`
/// (DeleteObjects, how `object_store` deletes) — and answers `403` to any request whose
/// signature, header-signed or presigned, does not verify with the test's keys, or whose
/// presigned URL has expired. Nothing leaves the machine.
mod fake_s3 {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
    use axum::response::{IntoResponse, Response};
    use chrono::{NaiveDateTime, Utc};
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    pub const KEY_ID: &str = "AKIDFAKETEST0000001";
    pub const SECRET: &str = "fake/secret+key/for/the/tests/only000000";
    pub const REGION: &str = "cn-test-1";
    pub const BUCKET: &str = "pushhand-media";

    pub struct Fake {
        pub addr: SocketAddr,
        pub state: Arc<Shared>,
    }

    #[derive(Default)]
    pub struct Shared {
        pub objects: Mutex<BTreeMap<String, Vec<u8>>>,
        /// Seconds added to the fake's clock (to expire presigned URLs without waiting).
        pub skew: AtomicI64,
        /// `(method, key, status, presigned)` of every request.
        pub log: Mutex<Vec<(String, String, u16, bool)>>,
    }

    impl Fake {
        pub async fn start() -> Fake {
            let state = Arc::new(Shared::default());
            let app = axum::Router::new()
                .fallback(handle)
                .with_state(state.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, app).await });
            Fake { addr, state }
        }

        pub fn endpoint(&self) -> String {
            format!("http://{}", self.addr)
        }

        /// The settings of an app using this fake.
        pub fn args(&self) -> Vec<String> {
            [
                "--media-store",
                "s3",
                "--media-bucket",
                BUCKET,
                "--media-region",
                REGION,
                "--media-endpoint",
                &self.endpoint(),
                "--media-access-key-id",
                KEY_ID,
                "--media-secret-access-key",
                SECRET,
            ]
            .map(str::to_owned)
            .to_vec()
        }

        pub fn keys(&self) -> Vec<String> {
            self.state.objects.lock().unwrap().keys().cloned().collect()
        }

        pub fn object(&self, key: &str) -> Option<Vec<u8>> {
            self.state.objects.lock().unwrap().get(key).cloned()
        }

        /// Statuses of the requests made so far: `(presigned, status)`.
        pub fn statuses(&self) -> Vec<(bool, u16)> {
            let log = self.state.log.lock().unwrap();
            log.iter().map(|(_, _, s, p)| (*p, *s)).collect()
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// `UriEncode` of the documentation: every byte but `A-Z a-z 0-9 - . _ ~` as `%XX`
    /// (upper-case hex); `/` kept when `keep_slash` (an object key in the path).
    fn uri_encode(s: &str, keep_slash: bool) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    out.push(b as char)
                }
                b'/' if keep_slash => out.push('/'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    fn percent_decode(s: &str) -> Option<String> {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let h = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }

    /// The query's parameters, decoded, in their order.
    fn query_params(uri: &Uri) -> Option<Vec<(String, String)>> {
        let Some(q) = uri.query() else {
            return Some(Vec::new());
        };
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Some((percent_decode(k)?, percent_decode(v)?))
            })
            .collect()
    }

    fn amz_time(s: &str) -> Option<chrono::DateTime<Utc>> {
        NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
            .ok()
            .map(|t| t.and_utc())
    }

    /// The request as the signer saw it, and the signature it must carry: `Err` with why
    /// it is refused.
    fn verify(
        shared: &Shared,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<bool, String> {
        let now = Utc::now() + chrono::Duration::seconds(shared.skew.load(Ordering::SeqCst));
        let params = query_params(uri).ok_or("bad query")?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let presigned = get("X-Amz-Algorithm").is_some();
        let (credential, signed_headers, signature, amz_date, payload_hash) = if presigned {
            if get("X-Amz-Algorithm").as_deref() != Some("AWS4-HMAC-SHA256") {
                return Err("algorithm".into());
            }
            let date = get("X-Amz-Date").ok_or("no X-Amz-Date")?;
            let expires: i64 = get("X-Amz-Expires")
                .and_then(|e| e.parse().ok())
                .ok_or("no X-Amz-Expires")?;
            if !(1..=604_800).contains(&expires) {
                return Err("X-Amz-Expires out of range".into());
            }
            let signed_at = amz_time(&date).ok_or("bad X-Amz-Date")?;
            if now > signed_at + chrono::Duration::seconds(expires) {
                return Err("Request has expired".into());
            }
            if signed_at > now + chrono::Duration::minutes(15) {
                return Err("signed in the future".into());
            }
            (
                get("X-Amz-Credential").ok_or("no credential")?,
                get("X-Amz-SignedHeaders").ok_or("no signed headers")?,
                get("X-Amz-Signature").ok_or("no signature")?,
                date,
                "UNSIGNED-PAYLOAD".to_owned(),
            )
        } else {
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .ok_or("no Authorization")?;
            let rest = auth
                .strip_prefix("AWS4-HMAC-SHA256 ")
                .ok_or("not AWS4-HMAC-SHA256")?;
            let mut fields = BTreeMap::new();
            for part in rest.split(',') {
                let (k, v) = part.trim().split_once('=').ok_or("bad Authorization")?;
                fields.insert(k.to_owned(), v.to_owned());
            }
            let date = headers
                .get("x-amz-date")
                .and_then(|v| v.to_str().ok())
                .ok_or("no x-amz-date")?
                .to_owned();
            let signed_at = amz_time(&date).ok_or("bad x-amz-date")?;
            if (now - signed_at).num_minutes().abs() > 15 {
                return Err("RequestTimeTooSkewed".into());
            }
            let payload = headers
                .get("x-amz-content-sha256")
                .and_then(|v| v.to_str().ok())
                .ok_or("no x-amz-content-sha256")?
                .to_owned();
            if payload != "UNSIGNED-PAYLOAD" && payload != sha256_hex(body) {
                return Err("XAmzContentSHA256Mismatch".into());
            }
            (
                fields.remove("Credential").ok_or("no Credential")?,
                fields.remove("SignedHeaders").ok_or("no SignedHeaders")?,
                fields.remove("Signature").ok_or("no Signature")?,
                date,
                payload,
            )
        };
        // <key id>/<yyyymmdd>/<region>/s3/aws4_request
        let parts: Vec<&str> = credential.split('/').collect();
        let [key_id, day, region, service, terminal] = parts[..] else {
            return Err("bad credential scope".into());
        };
        if key_id != KEY_ID {
            return Err("InvalidAccessKeyId".into());
        }
        if region != REGION || service != "s3" || terminal != "aws4_request" {
            return Err("bad credential scope".into());
        }
        if !amz_date.starts_with(day) {
            return Err("scope date is not the request's".into());
        }
        let signed: Vec<&str> = signed_headers.split(';').collect();
        if !signed.contains(&"host") {
            return Err("host is not signed".into());
        }
        let mut canonical_headers = String::new();
        for name in &signed {
            let values: Vec<String> = headers
                .get_all(*name)
                .iter()
                .map(|v| {
                    let v = v.to_str().unwrap_or_default();
                    v.split_whitespace().collect::<Vec<_>>().join(" ")
                })
                .collect();
            if values.is_empty() {
                return Err(format!("signed header {name} missing"));
            }
            canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
        }
        let path = percent_decode(uri.path()).ok_or("bad path")?;
        let canonical_uri = uri_encode(&path, true);
        let mut query: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "X-Amz-Signature")
            .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
            .collect();
        query.sort();
        let canonical_query = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let canonical_request = format!(
            "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
        );
        let scope = format!("{day}/{region}/s3/aws4_request");
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(canonical_request.as_bytes())
        );
        let k_date = hmac(format!("AWS4{SECRET}").as_bytes(), day.as_bytes());
        let k_region = hmac(&k_date, region.as_bytes());
        let k_service = hmac(&k_region, b"s3");
        let k_signing = hmac(&k_service, b"aws4_request");
        let expected = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
        if expected != signature {
            return Err("SignatureDoesNotMatch".into());
        }
        Ok(presigned)
    }

    fn error(status: StatusCode, code: &str) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
        );
        (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
    }

    fn object_headers(len: usize, body: &[u8]) -> [(header::HeaderName, String); 4] {
        [
            (header::CONTENT_LENGTH, len.to_string()),
            (header::ETAG, format!("\"{}\"", &sha256_hex(body)[..32])),
            (
                header::LAST_MODIFIED,
                "Thu, 03 Dec 2026 00:00:00 GMT".to_owned(),
            ),
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        ]
    }

    async fn handle(
        State(shared): State<Arc<Shared>>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let path = percent_decode(uri.path()).unwrap_or_default();
        let key = path
            .strip_prefix(&format!("/{BUCKET}/"))
            .unwrap_or_default()
            .to_owned();
        let verified = verify(&shared, &method, &uri, &headers, &body);
        let presigned = matches!(verified, Ok(true));
        let resp = match verified {
            Err(why) => error(StatusCode::FORBIDDEN, &why),
            Ok(_) => answer(&shared, &method, &uri, &path, &key, &body),
        };
        shared.log.lock().unwrap().push((
            method.to_string(),
            key,
            resp.status().as_u16(),
            presigned,
        ));
        resp
    }

    fn answer(
        shared: &Shared,
        method: &Method,
        uri: &Uri,
        path: &str,
        key: &str,
        body: &[u8],
    ) -> Response {
        let mut objects = shared.objects.lock().unwrap();
        if *method == Method::POST && path == format!("/{BUCKET}") && uri.query() == Some("delete")
        {
            // DeleteObjects: <Delete><Object><Key>k</Key></Object>…</Delete>
            let text = String::from_utf8_lossy(body);
            let mut deleted = String::new();
            for piece in text.split("<Key>").skip(1) {
                let k = piece.split("</Key>").next().unwrap_or_default();
                objects.remove(k);
                deleted.push_str(&format!("<Deleted><Key>{k}</Key></Deleted>"));
            }
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DeleteResult>{deleted}</DeleteResult>"
            );
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/xml")],
                xml,
            )
                .into_response();
        }
        if key.is_empty() {
            return error(StatusCode::BAD_REQUEST, "InvalidRequest");
        }
        match *method {
            Method::PUT => {
                let etag = format!("\"{}\"", &sha256_hex(body)[..32]);
                objects.insert(key.to_owned(), body.to_vec());
                (StatusCode::OK, [(header::ETAG, etag)]).into_response()
            }
            Method::GET => match objects.get(key) {
                Some(bytes) => (
                    StatusCode::OK,
                    object_headers(bytes.len(), bytes),
                    bytes.clone(),
                )
                    .into_response(),
                None => error(StatusCode::NOT_FOUND, "NoSuchKey"),
            },
            Method::HEAD => match objects.get(key) {
                Some(bytes) => (StatusCode::OK, object_headers(bytes.len(), bytes)).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            },
            Method::DELETE => {
                objects.remove(key);
                StatusCode::NO_CONTENT.into_response()
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
        }
    }
}

const CREATE_UPLOAD: &str = "mutation($p: ImagePurpose!, $t: String!, $b: Int!) {
  createImageUpload(purpose: $p, contentType: $t, bytes: $b) {
    uploadId url method headers { name value } expiresAt
  }
}";

const COMPLETE_UPLOAD: &str = "mutation($id: ID!) {
  completeImageUpload(uploadId: $id) { id url width height contentType bytes purpose }
}";

/// An app on the fake S3 store, with `extra` settings.
async fn on_fake_s3(fake: &fake_s3::Fake, extra: &[&str]) -> TestApp {
    let mut args: Vec<String> = fake.args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestApp::spawn_with(&args).await
}

/// Opens a presigned upload of `bytes` as `content_type`; the answer.
async fn create_upload(app: &TestApp, token: &str, purpose: &str, len: usize) -> Value {
    app.gql_as(
        token,
        CREATE_UPLOAD,
        json!({ "p": purpose, "t": "image/png", "b": len }),
    )
    .await
}

/// Sends `bytes` as the upload answered by `createImageUpload`; the store's status.
async fn put_to(app: &TestApp, upload: &Value, url: &str, bytes: &[u8]) -> StatusCode {
    let mut req = app.client.put(url).body(bytes.to_vec());
    for h in upload["headers"].as_array().expect("headers") {
        req = req.header(
            h["name"].as_str().expect("name"),
            h["value"].as_str().expect("value"),
        );
    }
    req.send().await.expect("PUT sent").status()
}

/// Opens a presigned upload of `bytes` (a PNG) and sends them to its URL; the upload.
async fn sent_upload(app: &TestApp, token: &str, bytes: &[u8]) -> Value {
    let resp = create_upload(app, token, "PRODUCT", bytes.len()).await;
    let upload = resp["data"]["createImageUpload"].clone();
    let url = upload["url"].as_str().expect("url").to_owned();
    assert_eq!(put_to(app, &upload, &url, bytes).await, StatusCode::OK);
    upload
}

#[tokio::test]
async fn the_s3_store_keeps_and_serves_uploads_with_signed_requests() {
    let fake = fake_s3::Fake::start().await;
    let app = on_fake_s3(&fake, &[]).await;
    let token = merchant(&app).await;
    let png = encoded(
        DynamicImage::ImageRgba8(gradient(400, 300)),
        ImageFormat::Png,
    );
    let image = uploaded(&app, &token, "PRODUCT", "p.png", &png).await;
    let url = image["url"].as_str().expect("url").to_owned();
    let key = url.strip_prefix("/media/").expect("served by the server");
    assert!(fake.object(key).is_some(), "{:?}", fake.keys());
    let (status, content_type, _, body) = fetch(&app, &url).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "image/png")
    );
    assert_eq!(dimensions(&body), (400, 300));
    // A thumbnail is made from the bucket's original and kept there.
    let thumb = url.replace(".png", "/160.webp");
    let (status, content_type, _, body) = fetch(&app, &thumb).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "image/webp")
    );
    assert_eq!(dimensions(&body), (160, 120));
    assert!(
        fake.object(thumb.strip_prefix("/media/").unwrap())
            .is_some()
    );
    // Every request the server made was header-signed and verified.
    let statuses = fake.statuses();
    assert!(!statuses.is_empty());
    assert!(
        statuses
            .iter()
            .all(|(presigned, s)| !presigned && *s < 400 || *s == 404),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_presigned_upload_is_checked_like_a_multipart_one_and_leaves_only_the_image() {
    let fake = fake_s3::Fake::start().await;
    let app = on_fake_s3(&fake, &[]).await;
    let (token, m) = app.user("merchant@example.com", CliRole::Merchant).await;
    // EXIF carrying a marker, as in the multipart test: it must not survive.
    let jpeg = encoded(DynamicImage::ImageRgb8(noise(64, 48)), ImageFormat::Jpeg);
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend(exif_segment(1, b"GPS-MARKER-31"));
    with_exif.extend_from_slice(&jpeg[2..]);
    let resp = app
        .gql_as(
            &token,
            CREATE_UPLOAD,
            json!({ "p": "PRODUCT", "t": "image/jpeg", "b": with_exif.len() }),
        )
        .await;
    let upload = resp["data"]["createImageUpload"].clone();
    assert!(resp.get("errors").is_none(), "{resp:#}");
    assert_eq!(upload["method"], json!("PUT"));
    let url = upload["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with(&fake.endpoint()), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert_eq!(
        put_to(&app, &upload, &url, &with_exif).await,
        StatusCode::OK
    );
    let staging: Vec<String> = fake.keys();
    assert_eq!(staging.len(), 1, "{staging:?}");
    assert!(staging[0].starts_with("uploads/"), "{staging:?}");

    let done = app
        .data_as(&token, COMPLETE_UPLOAD, json!({ "id": upload["uploadId"] }))
        .await;
    let image = &done["completeImageUpload"];
    assert_eq!(
        (&image["width"], &image["height"], &image["contentType"]),
        (&json!(64), &json!(48), &json!("image/jpeg"))
    );
    // The staging object is gone; the stored original is re-encoded, without the EXIF.
    let keys = fake.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("images/") && keys[0].ends_with(".jpg"));
    let stored = fake.object(&keys[0]).expect("stored");
    assert!(
        !stored
            .windows(b"GPS-MARKER-31".len())
            .any(|w| w == b"GPS-MARKER-31")
    );
    assert!(!stored.windows(4).any(|w| w == b"Exif"));
    // Completing twice: the upload is no more.
    let again = app
        .gql_as(&token, COMPLETE_UPLOAD, json!({ "id": upload["uploadId"] }))
        .await;
    assert_eq!(error_code(&again), Some("NOT_FOUND"), "{again:#}");
    // A staff member's upload is in the audit log, from the same transaction.
    let entries = entity::audit_entry::Entity::find()
        .filter(entity::audit_entry::Column::ActorId.eq(m.id))
        .all(app.db())
        .await
        .expect("audit");
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.action == "IMAGE_UPLOADED")
            .count(),
        1,
        "{entries:?}"
    );
    // Presigned PUT and the server's own requests, all verified.
    assert!(fake.statuses().contains(&(true, 200)));
}

#[tokio::test]
async fn tampered_and_expired_upload_urls_are_refused_by_the_store() {
    let fake = fake_s3::Fake::start().await;
    let app = on_fake_s3(&fake, &[]).await;
    let token = merchant(&app).await;
    let png = encoded(DynamicImage::ImageRgba8(gradient(8, 8)), ImageFormat::Png);
    let resp = create_upload(&app, &token, "PRODUCT", png.len()).await;
    let upload = resp["data"]["createImageUpload"].clone();
    let url = upload["url"].as_str().expect("url").to_owned();
    // Another key under the same signature; a longer life; another signature.
    let other_key = url.replacen("/uploads/", "/images/", 1);
    assert_eq!(
        put_to(&app, &upload, &other_key, &png).await,
        StatusCode::FORBIDDEN
    );
    let longer = url.replacen("X-Amz-Expires=", "X-Amz-Expires=9", 1);
    assert_eq!(
        put_to(&app, &upload, &longer, &png).await,
        StatusCode::FORBIDDEN
    );
    let sig_at = url.find("X-Amz-Signature=").expect("signature") + "X-Amz-Signature=".len();
    let mut forged = url.clone();
    let flipped = if &url[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    forged.replace_range(sig_at..sig_at + 1, flipped);
    assert_eq!(
        put_to(&app, &upload, &forged, &png).await,
        StatusCode::FORBIDDEN
    );
    // Past its expiry (the store's clock moved on).
    fake.state
        .skew
        .store(3600, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        put_to(&app, &upload, &url, &png).await,
        StatusCode::FORBIDDEN
    );
    fake.state
        .skew
        .store(0, std::sync::atomic::Ordering::SeqCst);
    assert!(fake.keys().is_empty(), "{:?}", fake.keys());
    // Nothing was sent: the upload stays open, and the real URL still works.
    let resp = app
        .gql_as(&token, COMPLETE_UPLOAD, json!({ "id": upload["uploadId"] }))
        .await;
    assert_eq!(error_code(&resp), Some("UPLOAD_MISSING"), "{resp:#}");
    assert_eq!(put_to(&app, &upload, &url, &png).await, StatusCode::OK);
    app.data_as(&token, COMPLETE_UPLOAD, json!({ "id": upload["uploadId"] }))
        .await;
}

#[tokio::test]
async fn a_refused_presigned_upload_leaves_nothing_behind() {
    let fake = fake_s3::Fake::start().await;
    let app = on_fake_s3(&fake, &["--media-max-bytes", "20000"]).await;
    let token = merchant(&app).await;
    let (other, _) = app.user("other@example.com", CliRole::Merchant).await;
    let elf = {
        let mut b = b"\x7fELF\x02\x01\x01\0".to_vec();
        b.resize(4096, 0x90);
        b
    };
    let big = noise(200, 200).into_raw(); // 120000 bytes of no image at all
    let bomb = {
        // A PNG declaring 100000 × 100000 pixels in under a hundred bytes.
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut zlib, &[0u8; 1024]).expect("compresses");
        png.extend_from_slice(&chunk(b"IHDR", &ihdr));
        png.extend_from_slice(&chunk(b"IDAT", &zlib.finish().expect("compressed")));
        png.extend_from_slice(&chunk(b"IEND", &[]));
        png
    };
    for (bytes, code) in [
        (&elf, "UNSUPPORTED_IMAGE_TYPE"),
        (&big, "IMAGE_TOO_LARGE"),
        (&bomb, "IMAGE_DIMENSIONS_TOO_LARGE"),
    ] {
        // The declared size is the client's word: the stored object is what counts.
        let resp = create_upload(&app, &token, "PRODUCT", 1000).await;
        let upload = resp["data"]["createImageUpload"].clone();
        let url = upload["url"].as_str().expect("url").to_owned();
        assert_eq!(put_to(&app, &upload, &url, bytes).await, StatusCode::OK);
        // Someone else's upload id is no upload of theirs.
        let resp = app
            .gql_as(&other, COMPLETE_UPLOAD, json!({ "id": upload["uploadId"] }))
            .await;
        assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp:#}");
        let resp = app
            .gql_as(&token, COMPLETE_UPLOAD, json!({ "id": upload["uploadId"] }))
            .await;
        assert_eq!(error_code(&resp), Some(code), "{resp:#}");
        assert!(fake.keys().is_empty(), "{code}: {:?}", fake.keys());
        let resp = app
            .gql_as(&token, COMPLETE_UPLOAD, json!({ "id": upload["uploadId"] }))
            .await;
        assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp:#}");
    }
    assert_eq!(
        entity::image::Entity::find().count(app.db()).await.unwrap(),
        0
    );
    assert_eq!(
        entity::image_upload::Entity::find()
            .count(app.db())
            .await
            .unwrap(),
        0
    );
    // Asking: a declared size over the limit, a type not accepted, no size.
    let resp = create_upload(&app, &token, "PRODUCT", 20001).await;
    assert_eq!(error_code(&resp), Some("IMAGE_TOO_LARGE"), "{resp:#}");
    let resp = app
        .gql_as(
            &token,
            CREATE_UPLOAD,
            json!({ "p": "PRODUCT", "t": "application/x-msdownload", "b": 0 }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp:#}");
    let fields = resp["errors"][0]["extensions"]["fields"].to_string();
    assert!(
        fields.contains("contentType") && fields.contains("bytes"),
        "{resp:#}"
    );
    // Who may upload what holds here too.
    let (ph, _) = app.user("ph@example.com", CliRole::PushHand).await;
    let resp = create_upload(&app, &ph, "PRODUCT", 100).await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp:#}");
}

#[tokio::test]
async fn abandoned_presigned_uploads_are_cleared_once_they_cannot_be_completed() {
    use pushhand::service::images::clear_abandoned;
    let fake = fake_s3::Fake::start().await;
    let app = on_fake_s3(&fake, &[]).await;
    let token = merchant(&app).await;
    let png = encoded(DynamicImage::ImageRgba8(gradient(8, 8)), ImageFormat::Png);
    // One sent but never completed, one never sent at all.
    let sent = sent_upload(&app, &token, &png).await;
    let unsent = create_upload(&app, &token, "PRODUCT", png.len()).await;
    let unsent = unsent["data"]["createImageUpload"].clone();
    assert!(unsent["uploadId"].is_string(), "{unsent:#}");
    let uploads = || async {
        entity::image_upload::Entity::find()
            .count(app.db())
            .await
            .expect("count")
    };
    let clear = || async {
        clear_abandoned(app.db(), &app.state.media, app.clock_now())
            .await
            .expect("clears")
    };
    // Still completable (within the hour after the URL expires): nothing cleared.
    assert_eq!(clear().await, 0);
    assert_eq!(uploads().await, 2);
    assert_eq!(fake.keys().len(), 1);
    // Past the grace, a third upload opened (and sent) now stays.
    app.clock.advance(chrono::Duration::hours(2));
    let fresh = sent_upload(&app, &token, &png).await;
    assert_eq!(clear().await, 2);
    assert_eq!(uploads().await, 1);
    let fresh_id = fresh["uploadId"].as_str().expect("id");
    let keys = fake.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("uploads/"), "{keys:?}");
    // A second pass (or another instance) finds nothing more.
    assert_eq!(clear().await, 0);
    let gone = app
        .gql_as(&token, COMPLETE_UPLOAD, json!({ "id": sent["uploadId"] }))
        .await;
    assert_eq!(error_code(&gone), Some("NOT_FOUND"), "{gone:#}");
    let done = app
        .data_as(&token, COMPLETE_UPLOAD, json!({ "id": fresh_id }))
        .await;
    assert_eq!(done["completeImageUpload"]["width"], json!(8));
    assert_eq!(uploads().await, 0);
    assert!(
        fake.keys().iter().all(|k| k.starts_with("images/")),
        "{:?}",
        fake.keys()
    );
}

#[tokio::test]
async fn the_local_store_takes_no_presigned_uploads() {
    let app = TestApp::spawn().await;
    let token = merchant(&app).await;
    let resp = create_upload(&app, &token, "PRODUCT", 100).await;
    assert_eq!(error_code(&resp), Some("UNSUPPORTED"), "{resp:#}");
    let message = resp["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("multipart"), "{message}");
}

#[tokio::test]
async fn simultaneous_uploads_by_one_member_stop_exactly_at_the_limit() {
    let app = TestApp::spawn_with(&["--media-uploads-per-hour", "3"]).await;
    let token = merchant(&app).await;
    let png = encoded(DynamicImage::ImageRgba8(gradient(16, 16)), ImageFormat::Png);
    let attempts = (0..12).map(|_| upload(&app, Some(&token), "PRODUCT", "p.png", &png));
    let answers = futures_util::future::join_all(attempts).await;
    let mut ok = 0;
    for (status, resp) in &answers {
        assert_eq!(*status, StatusCode::OK);
        match error_code(resp) {
            None => ok += 1,
            Some("RATE_LIMITED") => {}
            other => panic!("unexpected {other:?}: {resp:#}"),
        }
    }
    assert_eq!(ok, 3, "{answers:#?}");
    assert_eq!(
        entity::image::Entity::find().count(app.db()).await.unwrap(),
        3
    );
    // The refused ones left no file behind: three originals in the store.
    let media_dir = app.state.config.media.dir(&app.state.config.data_dir);
    let stored = std::fs::read_dir(media_dir.join("images"))
        .expect("images dir")
        .count();
    assert_eq!(stored, 3);
}

#[test]
fn bad_bucket_settings_name_their_setting() {
    let check = |args: &[&str]| {
        let mut all = vec!["pushhand"];
        all.extend_from_slice(args);
        let config = pushhand::config::from_args(all).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())
    };
    let s3 = ["--media-store", "s3"];
    let err = check(&s3).expect_err("refused");
    assert!(err.contains("PUSHHAND_MEDIA_BUCKET"), "{err}");
    let err = check(&[&s3[..], &["--media-bucket", "b"]].concat()).expect_err("refused");
    assert!(err.contains("PUSHHAND_MEDIA_ACCESS_KEY_ID"), "{err}");
    let keys = [
        "--media-bucket",
        "b",
        "--media-access-key-id",
        "k",
        "--media-secret-access-key",
        "s",
    ];
    assert!(check(&[&s3[..], &keys[..]].concat()).is_ok());
    let err = check(&[&["--media-store", "oss"][..], &keys[..]].concat()).expect_err("refused");
    assert!(err.contains("PUSHHAND_MEDIA_REGION"), "{err}");
    let err = check(&[&s3[..], &keys[..], &["--media-endpoint", "minio:9000"]].concat())
        .expect_err("refused");
    assert!(err.contains("PUSHHAND_MEDIA_ENDPOINT"), "{err}");
    let err = check(&["--media-store", "gcs"]).expect_err("refused");
    assert!(err.contains("media-store"), "{err}");
}

/// An image row of `owner`'s for `purpose`, written straight into the database (a
/// push-hand cannot upload a product image through the API).
async fn image_row(app: &TestApp, owner: uuid::Uuid, purpose: entity::image::Purpose) -> String {
    use sea_orm::ActiveModelTrait;
    use sea_orm::ActiveValue::Set;
    let id = uuid::Uuid::now_v7();
    entity::image::ActiveModel {
        id: Set(id),
        owner_id: Set(owner),
        purpose: Set(purpose),
        store_key: Set(format!("images/{id}.png")),
        content_type: Set("image/png".into()),
        bytes: Set(10),
        width: Set(1),
        height: Set(1),
        created_at: Set(app.clock_now()),
    }
    .insert(app.db())
    .await
    .expect("image row");
    crate::fixtures::gid(pushhand::graphql::ids::Kind::Image, id)
}

#[tokio::test]
async fn notes_take_the_authors_own_note_images_by_id() {
    let app = TestApp::spawn().await;
    let (author, me) = app.user("author@example.com", CliRole::PushHand).await;
    let (other, _) = app.user("other@example.com", CliRole::PushHand).await;
    let png = encoded(DynamicImage::ImageRgba8(gradient(8, 8)), ImageFormat::Png);
    let mine = uploaded(&app, &author, "NOTE", "a.png", &png).await;
    let theirs = uploaded(&app, &other, "NOTE", "b.png", &png).await;
    let product_image = image_row(&app, me.id, entity::image::Purpose::Product).await;
    let create = "mutation($i: NoteInput!) { createNote(input: $i) { id imageUrls } }";
    let note = app
        .data_as(
            &author,
            create,
            json!({ "i": { "title": "图", "body": "正文",
                           "imageUrls": ["https://img.example/n.jpg"],
                           "imageIds": [mine["id"]] } }),
        )
        .await;
    let urls = note["createNote"]["imageUrls"].clone();
    let own = format!(
        "{}{}",
        app.state.config.public_url.trim_end_matches('/'),
        mine["url"].as_str().expect("url")
    );
    assert_eq!(urls, json!(["https://img.example/n.jpg", own]), "{note:#}");
    let path = mine["url"].as_str().expect("url");
    assert_eq!(fetch(&app, path).await.0, StatusCode::OK);
    // Someone else's image: NOT_FOUND.
    let resp = app
        .gql_as(
            &author,
            create,
            json!({ "i": { "title": "图", "body": "正文", "imageIds": [theirs["id"]] } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp:#}");
    // A product image, an ID of something else and an empty title: every field at once.
    let resp = app
        .gql_as(
            &author,
            create,
            json!({ "i": { "title": "", "body": "正文",
                           "imageIds": [product_image, gid_of_note(&note)] } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp:#}");
    let fields: Vec<&str> = resp["errors"][0]["extensions"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["input.title", "input.imageIds[0]", "input.imageIds[1]"],
        "{resp:#}"
    );
    // An update takes IDs too.
    let updated = app
        .data_as(
            &author,
            "mutation($id: ID!, $i: NoteInput!) { updateNote(id: $id, input: $i) { imageUrls } }",
            json!({ "id": note["createNote"]["id"],
                    "i": { "title": "图", "body": "正文", "imageIds": [mine["id"]] } }),
        )
        .await;
    assert_eq!(updated["updateNote"]["imageUrls"], json!([own]));
}

fn gid_of_note(note: &Value) -> Value {
    note["createNote"]["id"].clone()
}

/// An image's `url` (a path) as image URL fields hold it: under the public URL.
fn absolute_url(app: &TestApp, img: &Value) -> String {
    format!(
        "{}{}",
        app.state.config.public_url.trim_end_matches('/'),
        img["url"].as_str().expect("url")
    )
}

/// A product of merchant user `m`'s merchant in `status` (published: now), one SKU, with
/// `images` (URLs); its id.
async fn product_of(
    app: &TestApp,
    m: &entity::member::Model,
    f: &crate::fixtures::Fixture,
    status: entity::product::Status,
    images: Vec<String>,
) -> uuid::Uuid {
    use entity::{Money, Rate, product};
    use pushhand::service::catalog::{self as catalog_svc, NewProduct, NewSku};
    catalog_svc::create_product(
        app.db(),
        NewProduct {
            id: uuid::Uuid::now_v7(),
            merchant_id: m.merchant_id.expect("a merchant's user"),
            brand_id: f.brands[0].id,
            category_id: f.leaves[0].id,
            name: "商品".into(),
            name_en: None,
            description: None,
            published_at: (status == product::Status::Published).then(|| app.clock_now()),
            status,
            rebate_rate: Rate::from_bp(1000),
            team_rebate_rate: Rate::from_bp(500),
            membership_activity: false,
            sales_count: 0,
            created_at: app.clock_now(),
            skus: vec![NewSku {
                name: "标准".into(),
                price: Money::from_fen(1000),
                stock: 1,
            }],
            images,
            tags: vec![],
        },
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("product")
}

#[tokio::test]
async fn a_merchant_sets_a_products_images_from_its_own_uploads() {
    use entity::{product, product_image};
    use pushhand::graphql::ids::Kind;
    use sea_orm::QueryOrder;
    let app = TestApp::spawn().await;
    let (token, m) = app.user("merchant@example.com", CliRole::Merchant).await;
    let (other, _) = app.user("other@example.com", CliRole::Merchant).await;
    let f = crate::fixtures::catalog(app.db(), 0).await;
    let product = product_of(&app, &m, &f, product::Status::InCuration, vec![]).await;
    let pid = crate::fixtures::gid(Kind::Product, product);
    let png = encoded(DynamicImage::ImageRgba8(gradient(8, 8)), ImageFormat::Png);
    let first = uploaded(&app, &token, "PRODUCT", "1.png", &png).await;
    let second = uploaded(&app, &token, "PRODUCT", "2.png", &png).await;
    let theirs = uploaded(&app, &other, "PRODUCT", "3.png", &png).await;
    let note_image = image_row(&app, m.id, entity::image::Purpose::Note).await;
    let edit = "mutation($i: UpdateProductDraftInput!) {
      updateProductDraft(input: $i) { product { id } draft { status } } }";
    let resp = app
        .gql_as(
            &token,
            edit,
            json!({ "i": { "productId": pid, "imageIds": [theirs["id"]] } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp:#}");
    let resp = app
        .gql_as(
            &token,
            edit,
            json!({ "i": { "productId": pid, "name": "", "imageIds": [note_image] } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp:#}");
    let fields = resp["errors"][0]["extensions"]["fields"].to_string();
    assert!(
        fields.contains("input.name") && fields.contains("input.imageIds[0]"),
        "{resp:#}"
    );
    // Not listed yet: changed at once, in the order given.
    app.data_as(
        &token,
        edit,
        json!({ "i": { "productId": pid, "imageIds": [second["id"], first["id"]] } }),
    )
    .await;
    let urls: Vec<String> = product_image::Entity::find()
        .filter(product_image::Column::ProductId.eq(product))
        .order_by_asc(product_image::Column::Position)
        .all(app.db())
        .await
        .expect("images")
        .into_iter()
        .map(|i| i.url)
        .collect();
    let absolute = |img: &Value| absolute_url(&app, img);
    assert_eq!(urls, [absolute(&second), absolute(&first)]);
}

#[tokio::test]
async fn a_listed_products_new_images_wait_for_the_curator() {
    use entity::product;
    use pushhand::graphql::ids::Kind;
    let app = TestApp::spawn().await;
    let (token, m) = app.user("merchant@example.com", CliRole::Merchant).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let f = crate::fixtures::catalog(app.db(), 0).await;
    let listed = "https://img.example.com/listed.jpg";
    let product = product_of(
        &app,
        &m,
        &f,
        product::Status::Published,
        vec![listed.into()],
    )
    .await;
    let pid = crate::fixtures::gid(Kind::Product, product);
    let png = encoded(DynamicImage::ImageRgba8(gradient(8, 8)), ImageFormat::Png);
    let first = uploaded(&app, &token, "PRODUCT", "1.png", &png).await;
    let second = uploaded(&app, &token, "PRODUCT", "2.png", &png).await;
    let absolute = |img: &Value| absolute_url(&app, img);
    let public = "query($id: ID!) { product(id: $id) { images { url } } }";
    let shown = |v: &Value| -> Vec<String> {
        v["product"]["images"]
            .as_array()
            .expect("images")
            .iter()
            .map(|i| i["url"].as_str().expect("url").to_owned())
            .collect()
    };
    // A name-only edit leaves the images as listed: the copy says so with null.
    let edit = "mutation($i: UpdateProductDraftInput!) {
      updateProductDraft(input: $i) { product { images { url } } draft { status imageUrls } } }";
    let named = app
        .data_as(
            &token,
            edit,
            json!({ "i": { "productId": pid, "name": "新名" } }),
        )
        .await;
    assert_eq!(
        named["updateProductDraft"]["draft"],
        json!({ "status": "PENDING", "imageUrls": null })
    );
    // New images: on the working copy, in the order given; the listing keeps its own.
    let edited = app
        .data_as(
            &token,
            edit,
            json!({ "i": { "productId": pid, "imageIds": [second["id"], first["id"]] } }),
        )
        .await;
    let d = &edited["updateProductDraft"];
    assert_eq!(
        d["draft"]["imageUrls"],
        json!([absolute(&second), absolute(&first)]),
        "{d:#}"
    );
    assert_eq!(shown(d), [listed]);
    assert_eq!(
        shown(&app.data(public, json!({ "id": pid })).await),
        [listed]
    );
    // The merchant's own list of working copies shows them too.
    let mine = app
        .data_as(
            &token,
            "query($p: ID!) { myMerchant { productDraft(productId: $p) { imageUrls } } }",
            json!({ "p": pid }),
        )
        .await;
    assert_eq!(
        mine["myMerchant"]["productDraft"]["imageUrls"],
        json!([absolute(&second), absolute(&first)])
    );
    // Approved: the listing shows the new images.
    app.data_as(
        &curator,
        "mutation($p: ID!) { reviewProductDraft(productId: $p, approve: true) { draft { status } } }",
        json!({ "p": pid }),
    )
    .await;
    assert_eq!(
        shown(&app.data(public, json!({ "id": pid })).await),
        [absolute(&second), absolute(&first)]
    );
}
