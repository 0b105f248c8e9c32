//! S13's and S15's data (#30): `notes` public 种草 notes by `authors` push-hands, each linking
//! one to three of the demo catalog's published products, with likes spread unevenly (most
//! notes a few, some many) and first publications over the last 90 days, so the HOT feed's
//! index holds notes of every score. Rows are written as the app would leave an approved
//! note: the public version beside the working copy, `hot_rank` from
//! `service::notes::hot_rank`, a unique 12-symbol share code.
//!
//! S13 reads the HOT feed's first page; S15 visits `/s/{code}` of the first
//! [`VISITED_CODES`] notes' codes.

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::bulk::{Loader, MEMBER_COLUMNS, Rows, at, id_at, push_hand};

/// How many notes' codes S15 visits (spread over the connections).
pub const VISITED_CODES: usize = 1_000;

/// What S13 and S15 use.
pub struct Notes {
    pub notes: usize,
    pub links: usize,
    /// Share codes of the first [`VISITED_CODES`] notes.
    pub codes: Vec<String>,
}

/// The `n`-th note's share code: 12 symbols of the codes' alphabet, in the order of `n`,
/// from a range no random code is likely to take (the first symbol `Z`).
fn note_code(n: u64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut code = String::from("Z");
    code.extend(
        (0..11)
            .rev()
            .map(|i| ALPHABET[((n >> (5 * i)) & 31) as usize] as char),
    );
    code
}

pub async fn generate(
    db: &DatabaseConnection,
    notes: usize,
    authors: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<Notes> {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let products: Vec<Uuid> = entity::product::Entity::find()
        .select_only()
        .column(entity::product::Column::Id)
        .filter(entity::product::Column::Status.eq(entity::product::Status::Published))
        .into_tuple()
        .all(db)
        .await?;
    anyhow::ensure!(!products.is_empty(), "no published product to link");
    let password_hash = pushhand::service::auth::hash_password(crate::PASSWORD.into()).await?;
    let (mut loader, format) = Loader::begin(db).await?;
    let mut members = Rows::new("members", MEMBER_COLUMNS, format);
    let authors = authors.max(1);
    let mut author_ids = Vec::with_capacity(authors);
    for i in 0..authors {
        let id = Uuid::now_v7();
        author_ids.push(id);
        // Beyond the team tree's codes (from 0), the carts' shoppers' (from 2^39) and
        // S12's claimers' (from 3 × 2^38); codes are 40 bits.
        push_hand(
            &mut members,
            id,
            &format!("author{i}@bench.example"),
            &password_hash,
            &format!("种草达人{i}"),
            (7 << 37) + i as u64,
            now,
        );
        if members.rows >= format.chunk() {
            loader.flush(&mut members).await?;
        }
    }
    loader.flush(&mut members).await?;

    let mut rows = Rows::new(
        "notes",
        "id, author_id, title, body, image_urls, product_ids, status, review_reason, \
         published_title, published_body, published_image_urls, first_published_at, \
         published_at, hidden_at, is_public, report_count, like_count, hot_rank, created_at, \
         updated_at, share_code, published_product_ids",
        format,
    );
    let mut links = Rows::new("note_products", "note_id, product_id, position", format);
    let from = now - Duration::days(90);
    let span = (now - from).num_milliseconds();
    let mut codes = Vec::with_capacity(VISITED_CODES);
    let mut linked = 0;
    for n in 0..notes {
        let published = at(from.timestamp_millis() + rng.random_range(0..span));
        let id = id_at(published.timestamp_millis(), &mut rng);
        // Likes: most notes a few, one in a hundred up to 5,000.
        let likes: i32 = if rng.random_range(0..100) == 0 {
            rng.random_range(100..5_000)
        } else {
            rng.random_range(0..30)
        };
        let k = rng.random_range(1..=3usize);
        let mut mine: Vec<Uuid> = Vec::with_capacity(k);
        while mine.len() < k.min(products.len()) {
            let p = products[rng.random_range(0..products.len())];
            if !mine.contains(&p) {
                mine.push(p);
            }
        }
        let ids_json = format!(
            "[{}]",
            mine.iter()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let title = format!("好物分享第{n}篇");
        let body = "用了一个月，做工扎实，推荐给大家。";
        let images = format!("[\"https://img.example.com/notes/{n}.jpg\"]");
        let code = note_code(n as u64);
        if codes.len() < VISITED_CODES {
            codes.push(code.clone());
        }
        rows.row()
            .uuid(id)
            .uuid(author_ids[n % authors])
            .text(&title)
            .text(body)
            .text(&images)
            .text(&ids_json)
            .text("APPROVED")
            .null()
            .text(&title)
            .text(body)
            .text(&images)
            .time(published)
            .time(published)
            .null()
            .bool(true)
            .int(0)
            .int(i64::from(likes))
            .int(pushhand::service::notes::hot_rank(likes, published))
            .time(published)
            .time(published)
            .text(&code)
            .text(&ids_json)
            .end();
        for (pos, p) in mine.iter().enumerate() {
            links.row().uuid(id).uuid(*p).int(pos as i64).end();
            linked += 1;
        }
        // Links after their notes (the foreign key is checked at once on SQLite).
        if rows.rows >= format.chunk() || links.rows >= format.chunk() {
            loader.flush(&mut rows).await?;
            loader.flush(&mut links).await?;
        }
    }
    loader.flush(&mut rows).await?;
    loader.flush(&mut links).await?;
    loader.commit().await?;
    Ok(Notes {
        notes,
        links: linked,
        codes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_codes_are_distinct_twelve_symbols_that_normalise_to_themselves() {
        let a = note_code(0);
        let b = note_code(99_999);
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
        assert_eq!(
            pushhand::service::funnel::normalise(&b).as_deref(),
            Some(&*b)
        );
    }
}
