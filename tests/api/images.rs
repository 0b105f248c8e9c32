//! Uploaded images (`uploadImage`, GraphQL multipart requests, `GET /media/…`): JPEG, PNG and
//! WebP uploads record their dimensions and are served with their type; EXIF is gone (and
//! its orientation applied); a renamed executable, an oversized file and a decompression
//! bomb are refused, the bomb without decoding; a thumbnail is made once and then served
//! from the store; who may upload what; every refusal has its code.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use pushhand::service::members::CliRole;
use reqwest::StatusCode;
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
async fn uploaded(app: &TestApp, token: &str, purpose: &str, name: &str, bytes: &[u8]) -> Value {
    let (status, resp) = upload(app, Some(token), purpose, name, bytes).await;
    assert_eq!(status, StatusCode::OK, "{resp:#}");
    assert!(resp.get("errors").is_none(), "unexpected errors: {resp:#}");
    resp["data"]["uploadImage"].clone()
}

/// GETs `url` (a path from the server's root); status, content type, cache control, body.
async fn fetch(app: &TestApp, url: &str) -> (StatusCode, String, String, Vec<u8>) {
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

fn encoded(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encodes");
    out.into_inner()
}

fn gradient(w: u32, h: u32) -> RgbaImage {
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
