//! Share posters (issue #30, item 3): an image a push-hand sends to a chat — the product's
//! picture, name and price, the push-hand's display name, and a QR code of the short link
//! `/s/{code}` of the push-hand's own share code.
//!
//! # What a poster shows
//! A poster is made from a share code ([`Content::of_code`]): a share link's (10 symbols;
//! the product it links) or a public note's (12 symbols; the note's title and first image,
//! and the first of its public products that is on sale, with its price). The code is
//! opaque and at most 32 characters, so it also fits a WeChat mini-program `scene`; the QR
//! code holds `PUSHHAND_PUBLIC_URL/s/{code}`, whose visit is counted for the code's owner
//! ([`super::funnel::visit`]). A member makes posters with its own codes only
//! ([`Posters::share`]): its share link for a product (made on first use, as
//! `createShareLink` does), or the share code of a note it wrote. Another member's note is
//! `FORBIDDEN`; a product not on sale or a note that is not public is `NOT_FOUND`.
//!
//! # SVG and PNG
//! The SVG is composed here as text ([`compose`]): every text from the database (product
//! names, note titles, display names, picture URLs) is escaped, and characters XML cannot
//! hold are dropped. The QR code is drawn from [`qrcode`]'s matrix, one path of squares,
//! with a quiet zone of four modules. The PNG is the same composition rasterised by
//! `resvg`, with the fonts embedded in the binary (`assets/fonts`: Roboto for Latin,
//! Droid Sans Fallback for Chinese, both Apache-2.0), parsed once on the first PNG.
//!
//! Pictures are external http(s) URLs and the server never fetches them while rendering (no
//! request of ours may be steered to an address by a product's data, and a slow image host
//! must not slow a poster): the SVG references the picture by URL (`<image href>`), which
//! the client's renderer loads; the PNG draws a neutral placeholder in its place. (Once
//! pictures can be local media files, the PNG may embed those; no such files exist yet.)
//!
//! # The cache
//! Both forms are kept in an in-process cache ([`Posters`]) under the SHA-256 of everything
//! the poster shows ([`Content::digest`]): the template, the code, the short URL, the
//! texts, the price and the picture URL. Each request still reads the rows (three or four
//! primary-key reads) and so always serves the current content; what the cache saves is
//! composing and rasterising. Nothing needs invalidating: when the product's name, price
//! or picture, the note, or the member's display name changes, the content — so the key —
//! changes, and the entry of the old content is never asked for again and leaves by its
//! idle time or the size cap. No event and no resolver is involved, and instances need not
//! share the store (rendering is deterministic: two instances render the same bytes).
//!
//! # The PNG's URL
//! `GET /posters/{key}.png` ([`Posters::png`]), so that mini-programs can download the
//! image instead of decoding base64. The key is `{template}{code}.{version}.{mac}`: the
//! version is the first 8 bytes of the content's digest (hex), the MAC an HMAC-SHA256 of
//! the rest under a key derived from the server's secret (16 bytes, base64url). Only the
//! server makes keys, so the route needs no token and cannot be used to make posters of
//! codes nobody asked a poster for. A key whose content changed since it was made redirects
//! (302) to the current one; the current one is served with `Cache-Control: public,
//! max-age=86400, immutable` (its URL changes with its content).

use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use entity::{Money, member, note, product, product_image};
use hmac::{Hmac, Mac};
use qrcode::{EcLevel, QrCode};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::funnel::{Codes, normalise};
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// The poster's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Template {
    /// 600 × 1000: the picture across the top, name and price below, the push-hand and
    /// the QR code at the bottom.
    Classic,
    /// 600 × 800: the picture framed on white, smaller type.
    Minimal,
}

impl Template {
    /// Width and height, in pixels (the SVG's user units and the PNG's pixels).
    pub fn size(self) -> (u32, u32) {
        match self {
            Template::Classic => (600, 1000),
            Template::Minimal => (600, 800),
        }
    }

    fn letter(self) -> char {
        match self {
            Template::Classic => 'C',
            Template::Minimal => 'M',
        }
    }

    fn of_letter(c: char) -> Option<Template> {
        match c {
            'C' => Some(Template::Classic),
            'M' => Some(Template::Minimal),
            _ => None,
        }
    }
}

/// What a poster is asked for.
#[derive(Clone, Copy, Debug)]
pub enum Subject {
    /// A published product: the viewer's share link to it.
    Product(Uuid),
    /// A public note of the viewer's: the note's share code.
    Note(Uuid),
}

/// Everything a poster shows: its digest is the cache key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    pub template: Template,
    /// The share code, as stored.
    pub code: String,
    /// `PUSHHAND_PUBLIC_URL/s/{code}`: what the QR code holds.
    pub short_url: String,
    /// The product's name, or the note's title.
    pub headline: String,
    /// A note's product's name.
    pub subline: Option<String>,
    /// `¥199.00`, or `¥19.90 起` when the SKUs' prices differ.
    pub price: Option<String>,
    /// The code owner's display name.
    pub author: String,
    /// The picture's URL (external http(s)): referenced by the SVG, never fetched.
    pub picture: Option<String>,
}

/// Bumped whenever [`compose`] draws differently, so that cached posters of an older
/// drawing are not served.
const DRAWING_VERSION: &str = "posters/1";

impl Content {
    /// SHA-256 of everything shown, each part length-prefixed.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let template = self.template.letter().to_string();
        let parts: [&str; 9] = [
            DRAWING_VERSION,
            &template,
            &self.code,
            &self.short_url,
            &self.headline,
            self.subline.as_deref().unwrap_or("\u{0}"),
            self.price.as_deref().unwrap_or("\u{0}"),
            &self.author,
            self.picture.as_deref().unwrap_or("\u{0}"),
        ];
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p.as_bytes());
        }
        h.finalize().into()
    }

    /// What poster the share code `raw` makes with `template`: `NOT_FOUND` when the code
    /// names no share link to a product on sale and no public note.
    pub async fn of_code(
        db: &DatabaseConnection,
        public_url: &str,
        raw: &str,
        template: Template,
    ) -> Result<Content> {
        let gone = || Error::not_found("share code");
        let code = normalise(raw)
            .filter(|_| raw.len() <= 32)
            .ok_or_else(gone)?;
        let codes = Codes::read(db, [code.clone()]).await?;
        let owner = codes.owner(&code).ok_or_else(gone)?;
        let author = member::Entity::find_by_id(owner)
            .one(db)
            .await?
            .ok_or_else(gone)?
            .display_name;
        let short_url = short_url(public_url, &code);
        if let Some(link) = codes.links.get(&code) {
            let p = on_sale(db, link.product_id).await?.ok_or_else(gone)?;
            return Ok(Content {
                template,
                short_url,
                headline: p.name.clone(),
                subline: None,
                price: Some(price_text(p.min_price, p.max_price)),
                author,
                picture: first_image(db, p.id).await?,
                code,
            });
        }
        let (n, _) = codes.notes.get(&code).ok_or_else(gone)?;
        let mut shown = None;
        for id in super::notes::public_products(n) {
            if let Some(p) = on_sale(db, id).await? {
                shown = Some(p);
                break;
            }
        }
        let images = n
            .published_image_urls
            .as_deref()
            .map(super::notes::urls)
            .unwrap_or_default();
        let picture = match (images.into_iter().next(), &shown) {
            (Some(url), _) => Some(url),
            (None, Some(p)) => first_image(db, p.id).await?,
            (None, None) => None,
        };
        Ok(Content {
            template,
            short_url,
            headline: n.published_title.clone().unwrap_or_else(|| n.title.clone()),
            subline: shown.as_ref().map(|p| p.name.clone()),
            price: shown.as_ref().map(|p| price_text(p.min_price, p.max_price)),
            author,
            picture,
            code,
        })
    }
}

/// `base/s/{code}`.
pub fn short_url(public_url: &str, code: &str) -> String {
    format!("{}/s/{code}", public_url.trim().trim_end_matches('/'))
}

/// `¥199.00`, or `¥19.90 起` ("from") when the prices differ.
pub fn price_text(min: Money, max: Money) -> String {
    if min == max {
        format!("¥{min}")
    } else {
        format!("¥{min} 起")
    }
}

async fn on_sale(db: &DatabaseConnection, id: Uuid) -> Result<Option<product::Model>> {
    Ok(product::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|p| p.status == product::Status::Published))
}

async fn first_image(db: &DatabaseConnection, product: Uuid) -> Result<Option<String>> {
    Ok(product_image::Entity::find()
        .filter(product_image::Column::ProductId.eq(product))
        .order_by_asc(product_image::Column::Position)
        .one(db)
        .await?
        .map(|i| i.url))
}

/// A poster as `sharePoster` answers it.
#[derive(Clone, Debug)]
pub struct Poster {
    pub content: Content,
    /// The SVG document.
    pub svg: Bytes,
    /// `PUSHHAND_PUBLIC_URL/posters/{key}.png`.
    pub png_url: String,
}

/// What `GET /posters/{key}.png` answers.
pub enum Png {
    /// The image.
    Image(Bytes),
    /// The content changed since the key was made: the current poster's path.
    Moved(String),
}

/// The two forms kept in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Form {
    Svg,
    Png,
}

impl Form {
    fn label(self) -> &'static str {
        match self {
            Form::Svg => "svg",
            Form::Png => "png",
        }
    }
}

/// Longest time a poster stays in the cache without being asked for.
const IDLE: Duration = Duration::from_secs(3600);
/// Bytes the cache holds at most (SVGs of ~10 KB, PNGs of ~40–80 KB).
const CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// Makes posters and keeps them: the cache of both forms and the key that signs PNG URLs.
pub struct Posters {
    cache: moka::future::Cache<(Form, [u8; 32]), Bytes>,
    /// HMAC key of PNG URLs, derived from the server's secret.
    key: [u8; 32],
    /// `PUSHHAND_PUBLIC_URL`, without a trailing `/`.
    public_url: String,
    metrics: Arc<Metrics>,
}

type HmacSha256 = Hmac<Sha256>;

impl Posters {
    /// Posters under `public_url`, their PNG URLs signed with a key derived from `secret`.
    pub fn new(public_url: &str, secret: &str, metrics: Arc<Metrics>) -> Posters {
        let mut h = Sha256::new();
        h.update(b"pushhand poster url key\0");
        h.update(secret.as_bytes());
        Posters {
            cache: moka::future::Cache::builder()
                .max_capacity(CAPACITY_BYTES)
                .weigher(|_, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
                .time_to_idle(IDLE)
                .build(),
            key: h.finalize().into(),
            public_url: public_url.trim().trim_end_matches('/').to_owned(),
            metrics,
        }
    }

    /// The poster `me` makes of `subject` with `template`: with `me`'s share link to the
    /// product (made on first use; buyers have none: `FORBIDDEN`), or `me`'s note's code
    /// (another member's note: `FORBIDDEN`). A product not on sale or a note that is not
    /// public (even to its author) is `NOT_FOUND`.
    pub async fn share(
        &self,
        db: &DatabaseConnection,
        me: &member::Model,
        subject: Subject,
        template: Template,
        now: DateTime<Utc>,
    ) -> Result<Poster> {
        let code = match subject {
            Subject::Product(id) => super::orders::share_link(db, me, id, now).await?.code,
            Subject::Note(id) => {
                let n = note::Entity::find_by_id(id)
                    .one(db)
                    .await?
                    .filter(|n| n.is_public)
                    .ok_or_else(|| Error::not_found("note"))?;
                if n.author_id != me.id {
                    return Err(Error::Forbidden(
                        "a poster carries its maker's share code: only the note's author makes \
                         posters of it"
                            .into(),
                    ));
                }
                n.share_code.ok_or_else(|| Error::not_found("note"))?
            }
        };
        let content = Content::of_code(db, &self.public_url, &code, template).await?;
        let digest = content.digest();
        let svg = self
            .cached(Form::Svg, digest, async {
                compose(&content, true).map(Bytes::from)
            })
            .await?;
        let png_url = format!("{}{}", self.public_url, self.png_path(&content, &digest));
        Ok(Poster {
            content,
            svg,
            png_url,
        })
    }

    /// The PNG a key names ([`Posters::png_path`]): `NOT_FOUND` for a key the server did not
    /// make, or whose code no longer makes a poster (the product taken off sale, the note
    /// no longer public).
    pub async fn png(&self, db: &DatabaseConnection, key: &str) -> Result<Png> {
        let (template, code, version) =
            self.verify(key).ok_or_else(|| Error::not_found("poster"))?;
        let content = Content::of_code(db, &self.public_url, &code, template).await?;
        let digest = content.digest();
        if hex(&digest[..8]) != version {
            return Ok(Png::Moved(self.png_path(&content, &digest)));
        }
        let png = self
            .cached(Form::Png, digest, async {
                let svg = compose(&content, false)?;
                let (w, h) = content.template.size();
                tokio::task::spawn_blocking(move || render_png(&svg, w, h))
                    .await
                    .map_err(Error::internal)?
                    .map(Bytes::from)
            })
            .await?;
        Ok(Png::Image(png))
    }

    /// `/posters/{template}{code}.{version}.{mac}.png`.
    pub fn png_path(&self, content: &Content, digest: &[u8; 32]) -> String {
        let signed = format!(
            "{}{}.{}",
            content.template.letter(),
            content.code,
            hex(&digest[..8])
        );
        let mac = URL_SAFE_NO_PAD.encode(&self.mac(&signed)[..16]);
        format!("/posters/{signed}.{mac}.png")
    }

    fn mac(&self, signed: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any size");
        mac.update(b"poster\0");
        mac.update(signed.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The template, code and version of a key this server made (`{key}` of
    /// `/posters/{key}.png`, with or without `.png`); `None` for anything else.
    fn verify(&self, key: &str) -> Option<(Template, String, String)> {
        let key = key.strip_suffix(".png").unwrap_or(key);
        let (signed, mac) = key.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = self.mac(signed);
        // Constant time: the tag is compared whole, whatever differs first.
        let same = tag.len() == 16
            && tag
                .iter()
                .zip(&expected[..16])
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return None;
        }
        let (head, version) = signed.split_once('.')?;
        let mut chars = head.chars();
        let template = Template::of_letter(chars.next()?)?;
        Some((template, chars.as_str().to_owned(), version.to_owned()))
    }

    /// The cached `form` of the content `digest`, made by `make` on a miss (concurrent
    /// misses of one key make it once).
    async fn cached(
        &self,
        form: Form,
        digest: [u8; 32],
        make: impl Future<Output = Result<Bytes>>,
    ) -> Result<Bytes> {
        let entry = self
            .cache
            .entry((form, digest))
            .or_try_insert_with(make)
            .await
            .map_err(|e| Error::internal(anyhow::anyhow!("poster not made: {e:?}")))?;
        let outcome = if entry.is_fresh() { "miss" } else { "hit" };
        self.metrics.count_poster(form.label(), outcome);
        Ok(entry.into_value())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text as SVG character data or attribute value: `&<>"'` escaped, characters XML 1.0
/// cannot hold (most C0 controls, U+FFFE, U+FFFF) dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Roboto first; what it lacks (Chinese) from Droid Sans Fallback; the viewer's fonts for
/// the SVG elsewhere.
const FONT_FAMILY: &str =
    "Roboto, 'Droid Sans Fallback', 'PingFang SC', 'Microsoft YaHei', sans-serif";

/// The estimated advance of `c` at 1 px: wide (CJK, full-width forms) 1, Latin about half.
fn advance(c: char) -> f32 {
    if (c as u32) >= 0x2E80 {
        1.0
    } else if c.is_ascii_uppercase() || c.is_ascii_digit() {
        0.62
    } else if c == ' ' {
        0.28
    } else {
        0.52
    }
}

/// `text` in lines at most `max_px` wide (estimated) at `font_px`, at most `max_lines`; the
/// last line ends with `…` when text was cut.
pub fn wrap(text: &str, font_px: f32, max_px: f32, max_lines: usize) -> Vec<String> {
    let budget = max_px / font_px;
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut width = 0.0;
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for c in text.chars() {
        let w = advance(c);
        if width + w > budget && !line.is_empty() {
            if lines.len() + 1 == max_lines {
                // The last line: cut it so that the ellipsis fits.
                let ellipsis = advance('…');
                while width + ellipsis > budget {
                    match line.pop() {
                        Some(d) => width -= advance(d),
                        None => break,
                    }
                }
                line.push('…');
                lines.push(line.trim_end().to_owned());
                return lines;
            }
            lines.push(line.trim_end().to_owned());
            line = String::new();
            width = 0.0;
            if c == ' ' {
                continue;
            }
        }
        line.push(c);
        width += w;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Where the parts of a template go.
struct Layout {
    picture: (u32, u32, u32, u32),
    left: u32,
    right: u32,
    headline_px: u32,
    headline_first: u32,
    headline_step: u32,
    subline_px: u32,
    price_px: u32,
    divider: Option<u32>,
    /// The QR code's square: its left, top and largest side.
    qr: (u32, u32, u32),
    author_px: u32,
    author_y: u32,
    hint: &'static str,
    hint_px: u32,
    hint_y: u32,
    code_px: u32,
    code_y: u32,
}

fn layout(t: Template) -> Layout {
    match t {
        Template::Classic => Layout {
            picture: (0, 0, 600, 600),
            left: 32,
            right: 568,
            headline_px: 32,
            headline_first: 648,
            headline_step: 42,
            subline_px: 24,
            price_px: 40,
            divider: Some(800),
            qr: (392, 816, 176),
            author_px: 28,
            author_y: 868,
            hint: "长按识别二维码",
            hint_px: 22,
            hint_y: 910,
            code_px: 18,
            code_y: 950,
        },
        Template::Minimal => Layout {
            picture: (32, 32, 536, 402),
            left: 32,
            right: 568,
            headline_px: 28,
            headline_first: 482,
            headline_step: 38,
            subline_px: 22,
            price_px: 36,
            divider: None,
            qr: (408, 608, 160),
            author_px: 24,
            author_y: 660,
            hint: "扫码查看",
            hint_px: 20,
            hint_y: 700,
            code_px: 16,
            code_y: 736,
        },
    }
}

fn text(s: &mut String, x: u32, y: u32, px: u32, fill: &str, content: &str) {
    let _ = write!(
        s,
        r#"<text x="{x}" y="{y}" font-size="{px}" fill="{fill}">{}</text>"#,
        escape(content)
    );
}

/// The poster's SVG document. `with_picture`: the picture by URL (`<image href>`, over the
/// placeholder, which shows while it loads or if it cannot); without, the placeholder alone
/// (the PNG's drawing: the server fetches nothing).
pub fn compose(c: &Content, with_picture: bool) -> Result<String> {
    let (w, h) = c.template.size();
    let l = layout(c.template);
    let qr = QrCode::with_error_correction_level(c.short_url.as_bytes(), EcLevel::M)
        .map_err(|e| Error::internal(anyhow::anyhow!("QR code of the short link: {e:?}")))?;
    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT_FAMILY}">"#
    );
    let _ = write!(s, "<title>{}</title>", escape(&c.headline));
    let mut desc = vec![c.headline.clone()];
    desc.extend(c.subline.iter().cloned());
    desc.extend(c.price.iter().cloned());
    desc.push(c.author.clone());
    desc.push(c.short_url.clone());
    let _ = write!(s, "<desc>{}</desc>", escape(&desc.join(" · ")));
    let _ = write!(s, r##"<rect width="{w}" height="{h}" fill="#ffffff"/>"##);

    // The picture, over its placeholder.
    let (px, py, pw, ph) = l.picture;
    placeholder(&mut s, px, py, pw, ph);
    if let (true, Some(url)) = (with_picture, &c.picture) {
        let url = escape(url);
        let _ = write!(
            s,
            r#"<image x="{px}" y="{py}" width="{pw}" height="{ph}" preserveAspectRatio="xMidYMid slice" href="{url}" xlink:href="{url}"/>"#
        );
    }

    // Name, the note's product, the price.
    let width = (l.right - l.left) as f32;
    let mut y = l.headline_first;
    let lines = wrap(&c.headline, l.headline_px as f32, width, 2);
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            y += l.headline_step;
        }
        text(&mut s, l.left, y, l.headline_px, "#222222", line);
    }
    if let Some(sub) = &c.subline {
        y += l.subline_px + 10;
        let line = wrap(sub, l.subline_px as f32, width, 1);
        text(&mut s, l.left, y, l.subline_px, "#666666", &line.concat());
    }
    if let Some(price) = &c.price {
        y += l.price_px + 14;
        text(&mut s, l.left, y, l.price_px, "#e4393c", price);
    }
    if let Some(d) = l.divider {
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{d}" x2="{}" y2="{d}" stroke="#eeeeee" stroke-width="2"/>"##,
            l.left, l.right
        );
    }

    // The push-hand, the hint, the code; the QR code beside them.
    let (qx, qy, qside) = l.qr;
    let beside = (qx - l.left - 16) as f32;
    let author = wrap(&c.author, l.author_px as f32, beside, 1).concat();
    text(&mut s, l.left, l.author_y, l.author_px, "#333333", &author);
    text(&mut s, l.left, l.hint_y, l.hint_px, "#999999", l.hint);
    text(
        &mut s,
        l.left,
        l.code_y,
        l.code_px,
        "#bbbbbb",
        &format!("分享码 {}", c.code),
    );
    qr_path(&mut s, &qr, qx, qy, qside);
    s.push_str("</svg>");
    Ok(s)
}

/// A light grey frame with a picture sign (a sun over two hills).
fn placeholder(s: &mut String, x: u32, y: u32, w: u32, h: u32) {
    let f = |base: u32, len: u32, part: f32| base as f32 + len as f32 * part;
    let _ = write!(
        s,
        r##"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#f2f2f2"/><g fill="#dddddd"><circle cx="{:.1}" cy="{:.1}" r="{:.1}"/><path d="M{:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z"/></g>"##,
        f(x, w, 0.62),
        f(y, h, 0.36),
        h as f32 * 0.07,
        f(x, w, 0.25),
        f(y, h, 0.68),
        f(x, w, 0.42),
        f(y, h, 0.44),
        f(x, w, 0.54),
        f(y, h, 0.58),
        f(x, w, 0.63),
        f(y, h, 0.50),
        f(x, w, 0.78),
        f(y, h, 0.68),
    );
}

/// The QR code's modules as one path of squares, centred in the square at (`x`, `y`) of
/// side `side`, with a white quiet zone of 4 modules; whole pixels per module, edges crisp.
fn qr_path(s: &mut String, qr: &QrCode, x: u32, y: u32, side: u32) {
    let n = qr.width() as u32;
    let modules = n + 8;
    let m = (side / modules).max(2);
    let size = m * modules;
    let x = x + side.saturating_sub(size) / 2;
    let y = y + side.saturating_sub(size) / 2;
    let _ = write!(
        s,
        r##"<rect x="{x}" y="{y}" width="{size}" height="{size}" fill="#ffffff"/><path fill="#000000" shape-rendering="crispEdges" d=""##
    );
    for (i, c) in qr.to_colors().iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let i = i as u32;
            let cx = x + (4 + i % n) * m;
            let cy = y + (4 + i / n) * m;
            let _ = write!(s, "M{cx} {cy}h{m}v{m}h-{m}z");
        }
    }
    s.push_str(r#""/>"#);
}

static ROBOTO: &[u8] = include_bytes!("../../assets/fonts/Roboto-Regular.ttf");
static DROID_SANS_FALLBACK: &[u8] = include_bytes!("../../assets/fonts/DroidSansFallback.ttf");

/// The fonts of the PNG, parsed once.
static FONTS: LazyLock<Arc<resvg::usvg::fontdb::Database>> = LazyLock::new(|| {
    let mut db = resvg::usvg::fontdb::Database::new();
    db.load_font_data(ROBOTO.to_vec());
    db.load_font_data(DROID_SANS_FALLBACK.to_vec());
    Arc::new(db)
});

/// Rasterises a poster's SVG ([`compose`] without the picture) of `width` × `height` to PNG.
pub fn render_png(svg: &str, width: u32, height: u32) -> Result<Vec<u8>> {
    let opt = resvg::usvg::Options {
        font_family: "Roboto".to_owned(),
        fontdb: FONTS.clone(),
        ..Default::default()
    };
    let tree = resvg::usvg::Tree::from_str(svg, &opt)
        .map_err(|e| Error::internal(anyhow::anyhow!("poster SVG: {e}")))?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("poster of no size")))?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| Error::internal(anyhow::anyhow!("poster PNG: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> Content {
        Content {
            template: Template::Classic,
            code: "ABCDEFGHJK".into(),
            short_url: "https://api.example/s/ABCDEFGHJK".into(),
            headline: "<b>净水器</b> & \"滤芯\"".into(),
            subline: None,
            price: Some("¥199.00".into()),
            author: "小王's shop".into(),
            picture: Some("https://img.example/a.jpg?w=1&h=2".into()),
        }
    }

    #[test]
    fn text_is_escaped_and_xml_safe() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>\u{1}\u{FFFF}"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let svg = compose(&content(), true).expect("svg");
        assert!(svg.contains("&lt;b&gt;净水器&lt;/b&gt; &amp; &quot;滤芯&quot;"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains(r#"href="https://img.example/a.jpg?w=1&amp;h=2""#));
        assert!(svg.contains("小王&#39;s shop"));
        let without = compose(&content(), false).expect("svg");
        assert!(!without.contains("<image"));
    }

    #[test]
    fn long_names_wrap_and_end_with_an_ellipsis() {
        let lines = wrap(&"很长的商品名称".repeat(10), 32.0, 536.0, 2);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].ends_with('…'));
        assert_eq!(wrap("短名", 32.0, 536.0, 2), vec!["短名".to_owned()]);
    }

    #[test]
    fn the_digest_follows_every_part_shown() {
        let a = content();
        let mut b = content();
        b.price = Some("¥198.00".into());
        let mut c = content();
        c.author = "小李".into();
        let mut d = content();
        d.template = Template::Minimal;
        assert_ne!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
        assert_ne!(a.digest(), d.digest());
        assert_eq!(a.digest(), content().digest());
    }

    #[test]
    fn png_keys_are_signed() {
        let posters = Posters::new("https://api.example/", "secret", Metrics::new());
        let c = content();
        let path = posters.png_path(&c, &c.digest());
        let key = path
            .strip_prefix("/posters/")
            .and_then(|k| k.strip_suffix(".png"))
            .expect("shape");
        let (t, code, version) = posters.verify(key).expect("valid");
        assert_eq!((t, code.as_str()), (Template::Classic, "ABCDEFGHJK"));
        assert_eq!(version, hex(&c.digest()[..8]));
        // Another code, template or version under the same tag is refused.
        assert!(posters.verify(&key.replacen('C', "M", 1)).is_none());
        assert!(posters.verify(&key.replacen("ABC", "ABD", 1)).is_none());
        let other = Posters::new("https://api.example/", "other secret", Metrics::new());
        assert!(other.verify(key).is_none());
    }
}
