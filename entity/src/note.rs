//! Table `notes`: 种草 notes by push-hands and partners. A row holds the author's working
//! copy and, once approved, the public version beside it (`published_*`), so that an edit
//! under review leaves the approved version readable.

use sea_orm::entity::prelude::*;

/// Where the working copy stands in review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    /// Being written (new, or edited since the last submission).
    #[sea_orm(string_value = "DRAFT")]
    Draft,
    /// Submitted; waiting for a curator.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// The working copy is the public version.
    #[sea_orm(string_value = "APPROVED")]
    Approved,
    /// A curator refused the working copy (`review_reason` says why).
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub author_id: Uuid,
    pub title: String,
    pub body: String,
    /// JSON array of absolute http(s) URLs.
    pub image_urls: String,
    /// JSON array of product ids (the working copy's links).
    pub product_ids: String,
    pub status: Status,
    pub review_reason: Option<String>,
    pub published_title: Option<String>,
    pub published_body: Option<String>,
    /// JSON array, as `image_urls`.
    pub published_image_urls: Option<String>,
    /// The first approval: the LATEST feed's key and the HOT score's time.
    pub first_published_at: Option<DateTimeUtc>,
    /// The last approval.
    pub published_at: Option<DateTimeUtc>,
    /// Hidden by reports, pending a curator's review.
    pub hidden_at: Option<DateTimeUtc>,
    /// Published and not hidden: what the public reads.
    pub is_public: bool,
    pub report_count: i32,
    /// Likes of members who are not frozen.
    pub like_count: i32,
    /// The HOT score in millionths (`service::notes::hot_rank`).
    pub hot_rank: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The note's share code (12 characters, unique): a line bought through it credits the
    /// author on the note's products.
    pub share_code: Option<String>,
    /// The public version's products: a JSON array of ids as `product_ids`, written with
    /// `note_products` (the rows filters find notes by) whenever that is; null while there
    /// is no public version. What a page of notes reads, so that it needs no statement of
    /// links (migration 36).
    pub published_product_ids: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
