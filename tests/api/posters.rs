//! Share posters (issue #30, item 3): `sharePoster` draws the product's name (escaped), price
//! and picture, the push-hand's display name and a QR code that a QR reader decodes to the
//! short link; the PNG at `pngUrl` is a valid PNG of the stated size; the code on it leads
//! through `/s/{code}` to a visit credited to the push-hand; anonymous, other members' notes,
//! buyers and what is not public are refused with stable codes; a second request comes from
//! the cache, and a change of what the poster shows makes a new one.

use entity::{member, product, product_image, share_visit};
use pushhand::graphql::ids::Kind;
use pushhand::service::members::CliRole;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures::{self, Listing, gid};
use crate::helpers::{TestApp, error_code};

const POSTER: &str = "mutation($p: ID, $n: ID, $t: PosterTemplate) {
  sharePoster(productId: $p, noteId: $n, template: $t) {
    svg pngUrl shortUrl code width height template } }";

/// A product name with everything that must be escaped in SVG.
const NAME: &str = "<b>净水器</b> & \"滤芯\"";
const ESCAPED: &str = "&lt;b&gt;净水器&lt;/b&gt; &amp; &quot;滤芯&quot;";
/// `PUSHHAND_PUBLIC_URL`'s default.
const PUBLIC_URL: &str = "http://127.0.0.1:8000";

async fn poster(
    app: &TestApp,
    token: Option<&str>,
    product: Option<Uuid>,
    note: Option<&str>,
    template: &str,
) -> Value {
    let vars = json!({ "p": product.map(|p| gid(Kind::Product, p)), "n": note, "t": template });
    match token {
        Some(t) => app.gql_as(t, POSTER, vars).await,
        None => app.gql(POSTER, vars).await,
    }
}

/// `sharePoster`, which must succeed.
async fn made(app: &TestApp, token: &str, product: Option<Uuid>, note: Option<&str>) -> Value {
    let resp = poster(app, Some(token), product, note, "CLASSIC").await;
    assert!(resp.get("errors").is_none(), "unexpected errors: {resp:#}");
    resp["data"]["sharePoster"].clone()
}

/// The path of a URL under `PUSHHAND_PUBLIC_URL`, to ask of the app under test.
fn path_of(url: &Value) -> String {
    url.as_str()
        .and_then(|u| u.strip_prefix(PUBLIC_URL))
        .expect("a URL under PUSHHAND_PUBLIC_URL")
        .to_owned()
}

/// GETs `path` without following redirects.
async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(app.url(path))
        .send()
        .await
        .expect("sent")
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A PNG's size and the contents of the QR codes a reader finds in it.
fn read_png(png: &[u8]) -> (u32, u32, Vec<String>) {
    let pixmap = resvg::tiny_skia::Pixmap::decode_png(png).expect("a valid PNG");
    let (w, h) = (pixmap.width() as usize, pixmap.height() as usize);
    let data = pixmap.data();
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let i = (y * w + x) * 4;
        let (r, g, b) = (
            u32::from(data[i]),
            u32::from(data[i + 1]),
            u32::from(data[i + 2]),
        );
        ((r * 299 + g * 587 + b * 114) / 1000) as u8
    });
    let found = img
        .detect_grids()
        .iter()
        .filter_map(|g| g.decode().ok())
        .map(|(_, content)| content)
        .collect();
    (w as u32, h as u32, found)
}

async fn rename_member(app: &TestApp, id: Uuid, name: &str) {
    let mut row = member::Entity::find_by_id(id)
        .one(app.db())
        .await
        .expect("query")
        .expect("member")
        .into_active_model();
    row.display_name = Set(name.to_owned());
    row.update(app.db()).await.expect("renamed");
}

async fn change_product(app: &TestApp, id: Uuid, change: impl FnOnce(&mut product::ActiveModel)) {
    let mut row = product::Entity::find_by_id(id)
        .one(app.db())
        .await
        .expect("query")
        .expect("product")
        .into_active_model();
    change(&mut row);
    row.update(app.db()).await.expect("changed");
}

/// A published product named `name` at 199.00, with a picture.
async fn listed(app: &TestApp, f: &fixtures::Fixture, name: &str) -> Uuid {
    let (id, _) = fixtures::listed_product(
        app,
        f,
        Listing {
            name: name.to_owned(),
            ..Listing::usual(f, 10)
        },
    )
    .await;
    product_image::ActiveModel {
        id: Set(Uuid::now_v7()),
        product_id: Set(id),
        url: Set("https://img.example/p.jpg?w=600&h=600".into()),
        alt: Set(None),
        position: Set(0),
    }
    .insert(app.db())
    .await
    .expect("image");
    id
}

/// A note by `author` linking `products`; approved by `curator` when given. Its ID.
async fn note(app: &TestApp, author: &str, curator: Option<&str>, products: &[Uuid]) -> String {
    let d = app
        .data_as(
            author,
            "mutation($i: NoteInput!) { createNote(input: $i) { id } }",
            json!({ "i": { "title": "一个月的<体验>", "body": "好用",
                "imageUrls": ["https://img.example/note.jpg"],
                "productIds": products.iter().map(|p| gid(Kind::Product, *p)).collect::<Vec<_>>() } }),
        )
        .await;
    let id = d["createNote"]["id"].as_str().expect("id").to_owned();
    if let Some(curator) = curator {
        app.data_as(
            author,
            "mutation($id: ID!) { submitNote(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
        app.data_as(
            curator,
            "mutation($id: ID!) { reviewNote(id: $id, approve: true) { id } }",
            json!({ "id": id }),
        )
        .await;
    }
    id
}

#[tokio::test]
async fn a_poster_shows_the_product_and_its_qr_code_leads_to_a_credited_visit() {
    let app = TestApp::spawn().await;
    let (token, me) = app.user("pushhand@example.com", CliRole::PushHand).await;
    rename_member(&app, me.id, "小王 <推手>").await;
    let f = fixtures::catalog(app.db(), 0).await;
    let product_id = listed(&app, &f, NAME).await;

    let p = made(&app, &token, Some(product_id), None).await;
    let code = p["code"].as_str().expect("code").to_owned();
    // The code is the member's own share link to the product.
    let link = app
        .data_as(
            &token,
            "mutation($p: ID!) { createShareLink(productId: $p) { code } }",
            json!({ "p": gid(Kind::Product, product_id) }),
        )
        .await;
    assert_eq!(link["createShareLink"]["code"], json!(code));
    assert!(code.len() <= 32);
    let short_url = format!("{PUBLIC_URL}/s/{code}");
    assert_eq!(p["shortUrl"], json!(short_url));
    assert_eq!(
        (&p["width"], &p["height"], &p["template"]),
        (&json!(600), &json!(1000), &json!("CLASSIC"))
    );

    // The SVG: the name escaped, the price, the display name, the picture by URL.
    let svg = p["svg"].as_str().expect("svg");
    assert!(svg.starts_with("<svg "), "{svg}");
    assert!(svg.contains(ESCAPED), "{svg}");
    assert!(!svg.contains("<b>"));
    assert!(svg.contains("¥199.00"));
    assert!(svg.contains("小王 &lt;推手&gt;"));
    assert!(svg.contains(r#"href="https://img.example/p.jpg?w=600&amp;h=600""#));
    // Its QR code reads as the short link (the SVG as the server rasterises it).
    let png = pushhand::service::posters::render_png(svg, 600, 1000).expect("renders");
    assert_eq!(read_png(&png).2, vec![short_url.clone()]);

    // The PNG: valid, of the stated size, the same QR code; cacheable for good.
    let resp = get(&app, &path_of(&p["pngUrl"])).await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), Some("image/png"));
    assert_eq!(
        header(&resp, "cache-control"),
        Some("public, max-age=86400, immutable")
    );
    let png = resp.bytes().await.expect("body");
    assert_eq!(read_png(&png), (600, 1000, vec![short_url.clone()]));

    // Scanned: the short link records a visit credited to the member.
    let resp = get(&app, &format!("/s/{code}")).await;
    assert_eq!(resp.status(), reqwest::StatusCode::FOUND);
    let visits = share_visit::Entity::find()
        .filter(share_visit::Column::Code.eq(code.as_str()))
        .all(app.db())
        .await
        .expect("query");
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0].owner_id, me.id);
    let funnel = app
        .data_as(
            &token,
            "{ me { funnel(period: ALL_TIME) { rows { code counts { visits } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        funnel["me"]["funnel"]["rows"],
        json!([{ "code": code, "counts": { "visits": 1 } }])
    );
}

#[tokio::test]
async fn a_note_poster_carries_the_notes_code_and_its_product() {
    let app = TestApp::spawn().await;
    let (author, _) = app.user("author@example.com", CliRole::PushHand).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let product_id = listed(&app, &f, "米家净水器").await;
    let id = note(&app, &author, Some(&curator), &[product_id]).await;
    let share_code = app
        .data_as(
            &author,
            "query($id: ID!) { note(id: $id) { shareCode } }",
            json!({ "id": id }),
        )
        .await["note"]["shareCode"]
        .clone();

    let p = made(&app, &author, None, Some(&id)).await;
    assert_eq!(p["code"], share_code);
    assert_eq!(p["code"].as_str().map(str::len), Some(12));
    let svg = p["svg"].as_str().expect("svg");
    assert!(svg.contains("一个月的&lt;体验&gt;"), "{svg}");
    assert!(svg.contains("米家净水器"));
    assert!(svg.contains("¥199.00"));
    assert!(svg.contains(r#"href="https://img.example/note.jpg""#));
    let png = get(&app, &path_of(&p["pngUrl"])).await;
    assert_eq!(png.status(), reqwest::StatusCode::OK);
    let short_url = format!("{PUBLIC_URL}/s/{}", p["code"].as_str().unwrap_or_default());
    assert_eq!(
        read_png(&png.bytes().await.expect("body")),
        (600, 1000, vec![short_url])
    );
}

#[tokio::test]
async fn posters_are_refused_to_anonymous_to_others_and_for_what_is_not_public() {
    let app = TestApp::spawn().await;
    let (author, _) = app.user("author@example.com", CliRole::PushHand).await;
    let (other, _) = app.user("other@example.com", CliRole::PushHand).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let buyer = app.register("buyer@example.com", None, None).await["data"]["register"]["token"]
        .as_str()
        .expect("buyer token")
        .to_owned();
    let f = fixtures::catalog(app.db(), 0).await;
    let product_id = listed(&app, &f, "米家净水器").await;

    let code = |resp: Value| error_code(&resp).map(str::to_owned);
    // Anonymous.
    let resp = poster(&app, None, Some(product_id), None, "CLASSIC").await;
    assert_eq!(code(resp).as_deref(), Some("UNAUTHENTICATED"));
    // Products not on sale.
    for id in [f.unpublished, f.draft] {
        let resp = poster(&app, Some(&author), Some(id), None, "CLASSIC").await;
        assert_eq!(code(resp).as_deref(), Some("NOT_FOUND"));
    }
    // Neither or both.
    let resp = poster(&app, Some(&author), None, None, "CLASSIC").await;
    assert_eq!(code(resp).as_deref(), Some("VALIDATION"));
    let draft = note(&app, &author, None, &[product_id]).await;
    let resp = poster(
        &app,
        Some(&author),
        Some(product_id),
        Some(&draft),
        "CLASSIC",
    )
    .await;
    assert_eq!(code(resp).as_deref(), Some("VALIDATION"));
    // A note that is not public, even to its author.
    let resp = poster(&app, Some(&author), None, Some(&draft), "CLASSIC").await;
    assert_eq!(code(resp).as_deref(), Some("NOT_FOUND"));
    // Another member's note: the poster would carry the author's code.
    let public = note(&app, &author, Some(&curator), &[product_id]).await;
    let resp = poster(&app, Some(&other), None, Some(&public), "CLASSIC").await;
    assert_eq!(code(resp).as_deref(), Some("FORBIDDEN"));
    // Buyers have no share code.
    let resp = poster(&app, Some(&buyer), Some(product_id), None, "CLASSIC").await;
    assert_eq!(code(resp).as_deref(), Some("FORBIDDEN"));

    // PNG keys the server did not make, and keys of a product taken off sale: 404.
    let p = made(&app, &other, Some(product_id), None).await;
    let path = path_of(&p["pngUrl"]);
    assert_eq!(get(&app, &path).await.status(), reqwest::StatusCode::OK);
    let forged = path.replacen("/posters/C", "/posters/M", 1);
    assert_eq!(
        get(&app, &forged).await.status(),
        reqwest::StatusCode::NOT_FOUND
    );
    let other_code = format!(
        "/posters/C{}{}",
        "0".repeat(10),
        &path["/posters/C".len() + 10..]
    );
    assert_eq!(
        get(&app, &other_code).await.status(),
        reqwest::StatusCode::NOT_FOUND
    );
    change_product(&app, product_id, |p| {
        p.status = Set(product::Status::Unpublished);
    })
    .await;
    assert_eq!(
        get(&app, &path).await.status(),
        reqwest::StatusCode::NOT_FOUND
    );
    let resp = poster(&app, Some(&other), Some(product_id), None, "CLASSIC").await;
    assert_eq!(code(resp).as_deref(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn the_same_poster_comes_from_the_cache_until_what_it_shows_changes() {
    let app = TestApp::spawn().await;
    let (token, me) = app.user("pushhand@example.com", CliRole::PushHand).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let product_id = listed(&app, &f, "米家净水器").await;
    let svg_hits = r#"pushhand_posters_total{form="svg",outcome="hit"}"#;
    let png_hits = r#"pushhand_posters_total{form="png",outcome="hit"}"#;
    let png_misses = r#"pushhand_posters_total{form="png",outcome="miss"}"#;

    let first = made(&app, &token, Some(product_id), None).await;
    assert_eq!(app.metric(svg_hits).await, 0.0);
    let second = made(&app, &token, Some(product_id), None).await;
    assert_eq!(first, second);
    assert_eq!(app.metric(svg_hits).await, 1.0);

    let path = path_of(&first["pngUrl"]);
    let a = get(&app, &path).await.bytes().await.expect("body");
    let b = get(&app, &path).await.bytes().await.expect("body");
    assert_eq!(a, b);
    assert_eq!(app.metric(png_misses).await, 1.0);
    assert_eq!(app.metric(png_hits).await, 1.0);

    // A new name: a new poster at a new URL; the old URL leads to it.
    change_product(&app, product_id, |p| {
        p.name = Set("米家净水器 Pro".to_owned());
    })
    .await;
    let renamed = made(&app, &token, Some(product_id), None).await;
    assert!(
        renamed["svg"]
            .as_str()
            .is_some_and(|s| s.contains("米家净水器 Pro"))
    );
    assert_ne!(renamed["pngUrl"], first["pngUrl"]);
    let moved = get(&app, &path).await;
    assert_eq!(moved.status(), reqwest::StatusCode::FOUND);
    assert_eq!(
        header(&moved, "location").map(str::to_owned),
        Some(path_of(&renamed["pngUrl"]))
    );
    // A new price, a new display name: new posters too.
    change_product(&app, product_id, |p| {
        p.min_price = Set(entity::Money::from_fen(9_900));
        p.max_price = Set(entity::Money::from_fen(19_900));
    })
    .await;
    let cheaper = made(&app, &token, Some(product_id), None).await;
    assert!(
        cheaper["svg"]
            .as_str()
            .is_some_and(|s| s.contains("¥99.00 起"))
    );
    rename_member(&app, me.id, "小王").await;
    let renamed_me = made(&app, &token, Some(product_id), None).await;
    assert!(
        renamed_me["svg"]
            .as_str()
            .is_some_and(|s| s.contains("小王"))
    );
    assert_ne!(renamed_me["pngUrl"], cheaper["pngUrl"]);
    assert_eq!(app.metric(svg_hits).await, 1.0);

    // The other template: its own size.
    let resp = poster(&app, Some(&token), Some(product_id), None, "MINIMAL").await;
    let minimal = &resp["data"]["sharePoster"];
    assert_eq!(
        (&minimal["width"], &minimal["height"]),
        (&json!(600), &json!(800))
    );
    let png = get(&app, &path_of(&minimal["pngUrl"])).await;
    let (w, h, qr) = read_png(&png.bytes().await.expect("body"));
    assert_eq!((w, h), (600, 800));
    assert_eq!(
        qr,
        vec![minimal["shortUrl"].as_str().unwrap_or_default().to_owned()]
    );
}
