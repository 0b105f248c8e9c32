//! 种草 notes in GraphQL: `Note`, its author's public face (`NoteAuthor`) and its review
//! (`NoteReview`, author and curators only); the public feed `notes`, `note`, the curators'
//! `noteReviewQueue`; and the writes `createNote`, `updateNote`, `deleteNote`, `submitNote`,
//! `reviewNote`, `likeNote`, `unlikeNote`, `reportNote`. The rules are
//! [`crate::service::notes`]'.

use async_graphql::connection::{ConnectionNameType, EdgeNameType};
use async_graphql::{Context, Enum, ID, InputObject, Object, OutputType, Result};
use chrono::{DateTime, Utc};
use entity::note;

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::catalog::Product;
use crate::graphql::context::{actor, load_err, state, viewer};
use crate::graphql::ids::GlobalId;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{Loaders, NoteAuthorKey, ProductKey};
use crate::graphql::pagination::{ConnectionOf, PageArgs};
use crate::graphql::transport::plain::{self, Fast, plain_enums, plain_object};
use crate::service::catalog::can_see;
use crate::service::notes::{self as svc, Feed, NoteCursor};
use crate::service::page::NewestCursor;

/// How the public feed is ordered.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum NoteFeed {
    /// Newest first publication first (an approved edit does not move a note up); ties by id.
    Latest,
    /// Most liked with time decay first: `score = log2(1 + likes) + t / 24`, `t` the note's
    /// first publication in hours since 1970-01-01 UTC — at any moment the order of
    /// `(1 + likes) / 2^(ageHours / 24)`, likes decaying by half every 24 hours of age.
    /// Likes of frozen members do not count. Ties by id (greater first). The score does not
    /// move with the clock, so pages are stable; a note whose likes change between two
    /// pages may cross the cursor.
    Hot,
}

impl From<NoteFeed> for Feed {
    fn from(f: NoteFeed) -> Feed {
        match f {
            NoteFeed::Latest => Feed::Latest,
            NoteFeed::Hot => Feed::Hot,
        }
    }
}

/// Where a note's working copy stands in review.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum NoteStatus {
    /// Being written: new, or edited since it was last submitted (`submitNote` sends it).
    Draft,
    /// Submitted; waiting for a curator.
    Pending,
    /// The working copy is the public version.
    Approved,
    /// A curator refused it (`reason` says why); edit and submit again.
    Rejected,
}

impl From<note::Status> for NoteStatus {
    fn from(s: note::Status) -> Self {
        match s {
            note::Status::Draft => NoteStatus::Draft,
            note::Status::Pending => NoteStatus::Pending,
            note::Status::Approved => NoteStatus::Approved,
            note::Status::Rejected => NoteStatus::Rejected,
        }
    }
}

/// What an author shows of their standing.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AuthorBadge {
    /// 推手.
    PushHand,
    /// 合伙人.
    Partner,
}

/// What a report did.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum NoteReportOutcome {
    /// Counted towards hiding the note.
    Counted,
    /// You had reported this note already: a member's reports count once.
    AlreadyReported,
    /// Yours was the report that hid the note until a curator reviews it.
    Hidden,
}

/// A note as its author writes it (`createNote`, `updateNote`). Every bad field is
/// reported at once (`VALIDATION`, each in `extensions.fields`).
#[derive(InputObject)]
pub struct NoteInput {
    /// 1–60 characters, without control, bidirectional or zero-width characters.
    pub title: String,
    /// Plain text, 1–5,000 characters; line breaks kept. Stored as typed: markup is text,
    /// never rendered by the server.
    pub body: String,
    /// Up to 9 absolute http(s) image URLs (each at most 2,000 bytes), in display order.
    #[graphql(default)]
    pub image_urls: Vec<String>,
    /// Images the author uploaded for notes (`uploadImage(purpose: NOTE)`, `Image` IDs),
    /// shown after `imageUrls` (at most 9 images in all); stored as their URLs. Another
    /// member's image is `NOT_FOUND`; a `PRODUCT` image is `VALIDATION` on its entry.
    #[graphql(default)]
    pub image_ids: Vec<ID>,
    /// Up to 9 published products (`Product` IDs), in display order. A note that links a
    /// product is reviewed by a curator before it is public.
    #[graphql(default)]
    pub product_ids: Vec<ID>,
}

impl NoteInput {
    fn into_service(self) -> svc::NoteInput {
        svc::NoteInput {
            title: self.title,
            body: self.body,
            image_urls: self.image_urls,
            image_ids: self
                .image_ids
                .iter()
                .map(|id| ids::decode_as(id, Kind::Image, "imageIds").ok())
                .collect(),
            product_ids: self
                .product_ids
                .iter()
                .map(|id| ids::decode_as(id, Kind::Product, "productIds").ok())
                .collect(),
        }
    }
}

/// A 种草 note, with its page's authors and products when it came in a page of public
/// notes (answered then without a future per field, [`plain`]).
pub struct Note(pub note::Model, pub Option<Arc<NotePage>>);

/// What a page of public notes reads for all its notes at once: the authors and the products
/// (each with the rows its selection needs, as a product listing's page) the page's
/// selection asks for.
#[derive(Default)]
pub struct NotePage {
    authors: HashMap<Uuid, svc::Author>,
    /// The products each note shows, by note id, in display order.
    products: HashMap<Uuid, Vec<Product>>,
}

impl Note {
    /// A note without page rows (its relations load through the DataLoaders).
    pub fn of(row: note::Model) -> Note {
        Note(row, None)
    }

    fn page(&self) -> Option<&NotePage> {
        self.1.as_deref()
    }

    /// The version shown: the public one once there is one, else the working copy (seen by
    /// its author and curators only).
    fn shown(&self) -> (&str, &str, &str) {
        let n = &self.0;
        match (
            &n.published_title,
            &n.published_body,
            &n.published_image_urls,
        ) {
            (Some(t), Some(b), Some(i)) => (t, b, i),
            _ => (&n.title, &n.body, &n.image_urls),
        }
    }
}

/// Loads `ids`' products and keeps those `ctx`'s viewer may see, in order.
async fn products(ctx: &Context<'_>, ids: Vec<uuid::Uuid>) -> Result<Vec<Product>> {
    let loaders = ctx.data::<Loaders>()?;
    let found = loaders
        .load_many(ids.iter().map(|id| ProductKey(*id)))
        .await
        .map_err(load_err)?;
    let v = viewer(ctx)?;
    Ok(ids
        .iter()
        .filter_map(|id| found.get(&ProductKey(*id)))
        .filter(|p| can_see(v, p))
        .cloned()
        .map(Product::of)
        .collect())
}

plain_object! {
    /// A 种草 note: a push-hand's or partner's title, text, images and the products it
    /// recommends. Everyone reads public notes; a note never approved, hidden by reports or
    /// taken down is `NOT_FOUND` to all but its author and curators. The fields give the public
    /// version (the last approved one) once there is one — an edit under review shows in
    /// `review` only — and the working copy before that.
    impl Note => Note as "Note" {
        |this| this;
        |r, e|
        /// Opaque global ID (`node(id:)` answers it).
        id "id": GlobalId = GlobalId(Kind::Note, r.0.id);
        /// The title.
        title "title": &str = r.shown().0;
        /// The text, plain (line breaks kept; never markup).
        body "body": &str = r.shown().1;
        /// Image URLs, in display order.
        image_urls "imageUrls": Vec<String> = svc::urls(r.shown().2);
        /// Likes, once per member; likes of frozen members do not count.
        like_count "likeCount": i32 = r.0.like_count;
        /// When it was first published (the LATEST order); null before its first approval.
        published_at "publishedAt": Option<DateTime<Utc>> = r.0.first_published_at;
        /// When its public version was last approved; null before its first approval.
        approved_at "approvedAt": Option<DateTime<Utc>> = r.0.published_at;
        /// When its author created it.
        created_at "createdAt": DateTime<Utc> = r.0.created_at;
        /// The note's share code: a buyer arriving through it (`/s/{shareCode}`, or the code on a
        /// cart or order line of one of the note's products) credits the author by the share
        /// link's rules (PROMOTION), and the earning's explanation names the note. It counts only
        /// while the note is public, for the products its public version links. 12 characters
        /// (a product share link's have 10).
        share_code "shareCode": Option<&str> = r.0.share_code.as_deref();
    }
    // The author and the products from the page's rows when the note came with them.
    plain |s, field, out| {
        "author" => {
            let author = s.page()?.authors.get(&s.0.author_id)?;
            plain::object(author, e, &field.selection_set.node, out)?;
        }
        "products" => {
            let products = s.page()?.products.get(&s.0.id)?;
            plain::list(products, e, &field.selection_set.node, out)?;
        }
    }
    resolvers {
        /// The products it recommends, in display order; those no longer on sale are left out.
        async fn products(&self, ctx: &Context<'_>) -> Result<Vec<Product>> {
            let ids = if self.0.published_title.is_some() {
                svc::public_products(&self.0)
            } else {
                svc::working_products(&self.0)
            };
            products(ctx, ids).await
        }
        /// Who wrote it: display name and badge only.
        async fn author(&self, ctx: &Context<'_>) -> Result<NoteAuthor> {
            ctx.data::<Loaders>()?
                .load_one(NoteAuthorKey(self.0.author_id))
                .await
                .map_err(load_err)?
                .map(NoteAuthor)
                .ok_or_else(|| {
                    crate::error::Error::internal(anyhow::anyhow!("note {} has no author", self.0.id))
                        .into()
                })
        }
        /// Views (visits of `/s/{shareCode}`), product clicks, paid orders and the author's
        /// earnings through the note, all time: for its author only; null for everyone else
        /// (curators included).
        async fn stats(&self, ctx: &Context<'_>) -> Result<Option<super::funnel::NoteStats>> {
            super::funnel::note_stats(ctx, &self.0).await
        }
        /// The working copy and where it stands in review: for the author, curators and admins;
        /// null for everyone else.
        async fn review(&self, ctx: &Context<'_>) -> Result<Option<NoteReview>> {
            Ok(svc::is_insider(viewer(ctx)?, &self.0).then(|| NoteReview(self.0.clone())))
        }
    }
}

/// A note's working copy and its review, as its author and curators see them.
pub struct NoteReview(note::Model);

/// A note's working copy (what the next approval would publish) and its review.
#[Object]
impl NoteReview {
    /// Where the working copy stands.
    async fn status(&self) -> NoteStatus {
        self.0.status.into()
    }
    /// The curator's reason for the last rejection (REJECTED only).
    async fn reason(&self) -> Option<&str> {
        self.0.review_reason.as_deref()
    }
    /// Whether the public reads it now (approved, neither hidden nor taken down).
    async fn public(&self) -> bool {
        self.0.is_public
    }
    /// When reports hid it (pending a curator's review); null when not hidden.
    async fn hidden_at(&self) -> Option<DateTime<Utc>> {
        self.0.hidden_at
    }
    /// Reports counted against it since it was last shown (one per member).
    async fn report_count(&self) -> i32 {
        self.0.report_count
    }
    /// The working copy's title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The working copy's text.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// The working copy's image URLs.
    async fn image_urls(&self) -> Vec<String> {
        svc::urls(&self.0.image_urls)
    }
    /// The working copy's products (those the viewer may see).
    async fn products(&self, ctx: &Context<'_>) -> Result<Vec<Product>> {
        products(ctx, svc::working_products(&self.0)).await
    }
    /// When the working copy last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A note's author as the public sees them.
pub struct NoteAuthor(pub svc::Author);

plain_object! {
    /// A note's author: display name and badge only.
    impl NoteAuthor => svc::Author as "NoteAuthor" {
        |this| &this.0;
        |r, e|
        /// The author's `MemberProfile` ID: pass it as `notes(authorId:)`.
        id "id": GlobalId = GlobalId(Kind::MemberProfile, r.id);
        /// The name the author chose.
        display_name "displayName": &str = &r.display_name;
        /// 推手 or 合伙人.
        badge "badge": AuthorBadge = badge(r);
    }
    plain |s, field, out| {}
    resolvers {
        /// The author's public notes.
        async fn notes(
            &self,
            ctx: &Context<'_>,
            #[graphql(desc = "The order (default LATEST).")] feed: Option<NoteFeed>,
            #[graphql(desc = "Page size (default 20, capped at 100).")] first: Option<i32>,
            #[graphql(desc = "The previous page's last cursor.")] after: Option<String>,
        ) -> Result<Fast<NoteConnection>> {
            public_notes(
                ctx,
                feed,
                svc::Filter {
                    author: Some(self.0.id),
                    ..Default::default()
                },
                first,
                after,
            )
            .await
        }
    }
}

plain_enums!(AuthorBadge);

fn badge(m: &svc::Author) -> AuthorBadge {
    match m.tier {
        entity::member::Tier::Partner => AuthorBadge::Partner,
        _ => AuthorBadge::PushHand,
    }
}

/// A page of public notes, answered as a whole without a future per field when its
/// selection allows ([`plain`]; its authors and products read for the page at once).
pub type NoteConnection = ConnectionOf<NoteCursor, Fast<Note>>;

impl crate::graphql::pagination::Listed for Note {
    const CONNECTION: &'static str = "NoteConnection";
    const EDGE: &'static str = "NoteEdge";
}

pub struct NoteWorkConnectionName;

impl ConnectionNameType for NoteWorkConnectionName {
    fn type_name<T: OutputType>() -> String {
        "NoteWorkConnection".into()
    }
}

pub struct NoteWorkEdgeName;

impl EdgeNameType for NoteWorkEdgeName {
    fn type_name<T: OutputType>() -> String {
        "NoteWorkEdge".into()
    }
}

/// Notes in work order (an author's own, the review queue): newest first.
pub type NoteWorkConnection =
    ConnectionOf<NewestCursor, Note, NoteWorkConnectionName, NoteWorkEdgeName>;

/// A page of public notes.
pub(crate) async fn public_notes(
    ctx: &Context<'_>,
    feed: Option<NoteFeed>,
    filter: svc::Filter,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Fast<NoteConnection>> {
    let args = PageArgs::parse(first, after)?;
    let feed = Feed::from(feed.unwrap_or(NoteFeed::Latest));
    let page = svc::list(&state(ctx)?.db, feed, filter, args.after(), args.first).await?;
    let (notes, authors): (Vec<note::Model>, Vec<svc::Author>) = page.items.into_iter().unzip();
    let page = crate::service::page::Page {
        items: notes,
        has_next: page.has_next,
    };
    let la = ctx.look_ahead();
    let rows = note_page(
        ctx,
        &page.items,
        authors,
        &[la.field("edges").field("node"), la.field("nodes")],
    )
    .await?;
    Ok(Fast(args.connection(
        page,
        |n| NoteCursor::of(feed, n),
        |n| Fast(Note(n, rows.clone())),
    )))
}

/// Reads what `selections` (of the page's notes) ask of `notes`' products, for the whole
/// page at once: one statement for the products (the links are in the notes' rows), and the
/// products' own rows as a listing's page reads them ([`super::catalog::prime`]). The
/// authors came with the notes. Public notes only (their public version's products).
async fn note_page(
    ctx: &Context<'_>,
    notes: &[note::Model],
    authors: Vec<svc::Author>,
    selections: &[async_graphql::Lookahead<'_>],
) -> Result<Option<Arc<NotePage>>> {
    use super::catalog::load_now;
    use crate::graphql::loaders::ProductKey;
    if notes.is_empty() {
        return Ok(None);
    }
    let wants = |f: &str| selections.iter().any(|s| s.field(f).exists());
    let direct = ctx.data::<Loaders>()?.loader();
    let mut page = NotePage {
        authors: authors.into_iter().map(|a| (a.id, a)).collect(),
        ..NotePage::default()
    };
    if wants("products") {
        let links: Vec<Vec<Uuid>> = notes.iter().map(svc::public_products).collect();
        let found: HashMap<ProductKey, entity::product::Model> =
            load_now(direct, links.iter().flatten().map(|id| ProductKey(*id)))
                .await
                .map_err(load_err)?;
        let v = viewer(ctx)?;
        let shown: Vec<entity::product::Model> =
            found.into_values().filter(|p| can_see(v, p)).collect();
        let product_selections: Vec<_> = selections.iter().map(|s| s.field("products")).collect();
        let rows = Arc::new(super::catalog::prime(ctx, &shown, &product_selections, true).await?);
        let by_id: HashMap<Uuid, entity::product::Model> =
            shown.into_iter().map(|p| (p.id, p)).collect();
        for (n, ids) in notes.iter().zip(&links) {
            page.products.insert(
                n.id,
                ids.iter()
                    .filter_map(|id| by_id.get(id))
                    .map(|p| Product(p.clone(), Some(rows.clone())))
                    .collect(),
            );
        }
    }
    Ok(Some(Arc::new(page)))
}

/// The member's own notes, every status, newest first (for `Member.notes`).
pub(crate) async fn own_notes(
    ctx: &Context<'_>,
    author: uuid::Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<NoteWorkConnection> {
    let args = PageArgs::parse(first, after)?;
    let page = svc::of_author(&state(ctx)?.db, author, args.after(), args.first).await?;
    Ok(args.connection(page, |n| NewestCursor::of(n.created_at, n.id), Note::of))
}

/// Note `id` as the viewer may see it (for `node(id:)`).
pub(crate) async fn note_node(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Note> {
    Ok(Note::of(
        svc::visible(&state(ctx)?.db, viewer(ctx)?, id).await?,
    ))
}

#[derive(Default)]
pub struct NotesQuery;

#[Object]
impl NotesQuery {
    /// Public 种草 notes, LATEST or HOT (see `NoteFeed` for the HOT formula), optionally only
    /// those linking a product of a category (a top-level category includes its
    /// subcategories), linking one product, or by one author.
    #[allow(clippy::too_many_arguments)]
    async fn notes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order (default LATEST).")] feed: Option<NoteFeed>,
        #[graphql(desc = "Only notes linking a product of this `Category`.")] category_id: Option<
            ID,
        >,
        #[graphql(desc = "Only notes linking this `Product`.")] product_id: Option<ID>,
        #[graphql(desc = "Only notes by this author (`NoteAuthor.id`, a `MemberProfile` ID).")]
        author_id: Option<ID>,
        #[graphql(
            desc = "Page size: at most this many edges (default 20, capped at 100; negative is \
                    `VALIDATION`)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "The previous page's last `cursor` to continue after; a malformed cursor or \
                    one of another feed is `VALIDATION`."
        )]
        after: Option<String>,
    ) -> Result<Fast<NoteConnection>> {
        let filter = svc::Filter {
            category: category_id
                .map(|id| ids::decode_as(&id, Kind::Category, "categoryId"))
                .transpose()?,
            product: product_id
                .map(|id| ids::decode_as(&id, Kind::Product, "productId"))
                .transpose()?,
            author: author_id
                .map(|id| ids::decode_member(&id, "authorId"))
                .transpose()?,
        };
        public_notes(ctx, feed, filter, first, after).await
    }

    /// One note: public notes to anyone; the author's and curators' view of any other;
    /// `NOT_FOUND` otherwise.
    async fn note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A `Note` ID.")] id: ID,
    ) -> Result<Note> {
        note_node(ctx, ids::decode_as(&id, Kind::Note, "id")?).await
    }

    /// CURATOR: notes waiting for review — submitted edits (`review.status` PENDING) and
    /// notes hidden by reports (`review.hiddenAt`) — most recently changed first.
    async fn note_review_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size (default 20, capped at 100).")] first: Option<i32>,
        #[graphql(desc = "The previous page's last cursor.")] after: Option<String>,
    ) -> Result<NoteWorkConnection> {
        let m = viewer(ctx)?.member()?;
        let args = PageArgs::parse(first, after)?;
        let page = svc::review_queue(&state(ctx)?.db, m, args.after(), args.first).await?;
        Ok(args.connection(page, |n| NewestCursor::of(n.updated_at, n.id), Note::of))
    }
}

#[derive(Default)]
pub struct NotesMutation;

#[Object]
impl NotesMutation {
    /// PUSH_HAND or PARTNER: writes a new note as a DRAFT (only its author and curators see
    /// it until it is approved).
    async fn create_note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The note.")] input: NoteInput,
    ) -> Result<Note> {
        let st = state(ctx)?;
        let m = viewer(ctx)?.member()?;
        let row = svc::create(
            &st.db,
            &st.events,
            &st.media,
            m,
            &input.into_service(),
            st.clock.now(),
        )
        .await?;
        Ok(Note::of(row))
    }

    /// The author: replaces the note's working copy; it becomes a DRAFT again (submit it).
    /// A published note stays public as last approved until the edit is approved.
    async fn update_note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of the viewer's `Note` IDs.")] id: ID,
        #[graphql(desc = "The new working copy (every field replaced).")] input: NoteInput,
    ) -> Result<Note> {
        let st = state(ctx)?;
        let m = viewer(ctx)?.member()?;
        let id = ids::decode_as(&id, Kind::Note, "id")?;
        let row = svc::update(
            &st.db,
            &st.events,
            &st.media,
            m,
            id,
            &input.into_service(),
            st.clock.now(),
        )
        .await?;
        Ok(Note::of(row))
    }

    /// The author: deletes the note, its likes and reports. Returns its ID.
    async fn delete_note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of the viewer's `Note` IDs.")] id: ID,
    ) -> Result<ID> {
        let st = state(ctx)?;
        let m = viewer(ctx)?.member()?;
        let note = ids::decode_as(&id, Kind::Note, "id")?;
        svc::delete(&st.db, &st.events, m, note).await?;
        Ok(id)
    }

    /// The author: sends the working copy to review (PENDING). A note that links no product
    /// needs no review and is published at once. Linked products must still be published
    /// (`VALIDATION` on `input.productIds[i]` otherwise); an APPROVED note (nothing new) is
    /// `NOTE_UNCHANGED`; a PENDING one stays as it is.
    async fn submit_note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of the viewer's `Note` IDs.")] id: ID,
    ) -> Result<Note> {
        let st = state(ctx)?;
        let m = viewer(ctx)?.member()?;
        let id = ids::decode_as(&id, Kind::Note, "id")?;
        Ok(Note::of(
            svc::submit(&st.db, &st.events, m, id, st.clock.now()).await?,
        ))
    }

    /// CURATOR: reviews a note — its submitted edit if it has one (approve publishes it,
    /// reject leaves the public version as it was), otherwise its hiding by reports (approve
    /// shows it again, reject takes it down). Anything else is `NOTE_NOT_UNDER_REVIEW`.
    /// Audited (NOTE_APPROVED, NOTE_REJECTED).
    async fn review_note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `Note` ID.")] id: ID,
        #[graphql(desc = "true approves, false rejects.")] approve: bool,
        #[graphql(desc = "Why (1–500 characters); required to reject.")] reason: Option<String>,
    ) -> Result<Note> {
        let st = state(ctx)?;
        let m = viewer(ctx)?.member()?;
        let id = ids::decode_as(&id, Kind::Note, "id")?;
        let row = svc::review(
            &st.db,
            &st.events,
            &actor(ctx, m),
            m,
            id,
            approve,
            reason.as_deref(),
            st.clock.now(),
        )
        .await?;
        Ok(Note::of(row))
    }

    /// Signed in: likes a public note (once; liking again changes nothing). A frozen member
    /// cannot (`FORBIDDEN`); a note that is not public (deleted, hidden) is `NOT_FOUND`.
    async fn like_note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A public `Note` ID.")] id: ID,
    ) -> Result<Note> {
        let st = state(ctx)?;
        let m = viewer(ctx)?.member()?;
        let id = ids::decode_as(&id, Kind::Note, "id")?;
        Ok(Note::of(
            svc::like(&st.db, &st.events, m.id, id, st.clock.now()).await?,
        ))
    }

    /// Signed in: takes back a like (nothing happens without one).
    async fn unlike_note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A public `Note` ID.")] id: ID,
    ) -> Result<Note> {
        let st = state(ctx)?;
        let m = viewer(ctx)?.member()?;
        let id = ids::decode_as(&id, Kind::Note, "id")?;
        Ok(Note::of(svc::unlike(&st.db, &st.events, m.id, id).await?))
    }

    /// Signed in: reports a public note (not one's own). A member's reports of a note count
    /// once; `PUSHHAND_NOTE_REPORT_THRESHOLD` members' reports hide it until a curator
    /// reviews it.
    async fn report_note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A public `Note` ID.")] id: ID,
        #[graphql(desc = "Why (at most 500 characters).")] reason: Option<String>,
    ) -> Result<NoteReportOutcome> {
        let st = state(ctx)?;
        let m = viewer(ctx)?.member()?;
        let id = ids::decode_as(&id, Kind::Note, "id")?;
        let outcome = svc::report(
            &st.db,
            &st.events,
            m.id,
            id,
            reason.as_deref(),
            st.config.policy.note_report_threshold,
            st.clock.now(),
        )
        .await?;
        Ok(match outcome {
            svc::Reported::Counted => NoteReportOutcome::Counted,
            svc::Reported::AlreadyReported => NoteReportOutcome::AlreadyReported,
            svc::Reported::Hidden => NoteReportOutcome::Hidden,
        })
    }
}
