//! Notes that sell, the share funnel and "who gets credit now" in GraphQL: `creditPreview`,
//! `me.funnel(period)` and `Note.stats`. The rules are [`crate::service::funnel`]'s.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Duration, Utc};

use super::cart::Attribution;
use super::catalog::Product;
use super::members::BindingKind;
use super::notes::Note;
use super::orders::ShareLink;
use crate::error::Error;
use crate::graphql::context::{load_err, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{Loaders, ProductKey};
use crate::graphql::scalars::Dec;
use crate::service::funnel::{self as svc, Counts, Period};

/// A binding's kind as the API names it.
fn binding_kind(k: entity::binding::Kind) -> BindingKind {
    use entity::binding::Kind as K;
    match k {
        K::InviteCode => BindingKind::InviteCode,
        K::PartnerLink => BindingKind::PartnerLink,
        K::AdminRebind => BindingKind::AdminRebind,
        K::MembershipPurchase => BindingKind::MembershipPurchase,
    }
}

/// The rules `creditPreview` applies, in order (SPEC §2.4), stated once for clients to show.
const RULES: &str = "1. a push-hand's or partner's own purchase: SELF_PURCHASE to the buyer, \
     whatever the share code; 2. else a share code of another push-hand or partner (a share \
     link to the product, or a public note linking it): PROMOTION to its owner; 3. else the \
     buyer's active binding: BOUND_REBATE to the upline (PARTNER_REWARD when it came from a \
     partner's link, which lapses after the binding period; invite-code bindings are \
     permanent); 4. else nobody. A membership-activity product pays its referrer a fixed \
     MEMBERSHIP_REWARD instead of a rate. The earner's upline gets TEAM_REBATE.";

/// Who would be credited if the viewer bought a product now.
pub struct CreditPreview(svc::CreditPreview);

/// Who would be credited if the signed-in buyer bought the product now, through the share
/// code given (if any), and why — worked out by the rule the payment applies, in the words
/// the cart and earnings' explanations use.
#[Object]
impl CreditPreview {
    /// The rule, the earner and the rule in words — the same as a cart line's
    /// `attribution` (e.g. "PROMOTION (推广赚钱): bought through 小王's note «…»").
    async fn attribution(&self) -> Attribution {
        Attribution(self.0.credit.clone())
    }
    /// Whether the share code given decides the credit (false: none given, or it does not
    /// count — the buyer's own purchase as a push-hand, the buyer's own code, a plain
    /// buyer's code).
    async fn code_counts(&self) -> bool {
        matches!(
            self.0.credit.attribution,
            crate::service::earnings::Attribution::Promotion { .. }
        )
    }
    /// The note the share code names, when it decides the credit; the earning's explanation
    /// will name it.
    async fn note_id(&self) -> Option<ID> {
        self.0.note.map(|id| ids::encode(Kind::Note, id))
    }
    /// How the buyer's active binding came about; null without one.
    async fn binding_kind(&self) -> Option<BindingKind> {
        self.0.binding.as_ref().map(|b| binding_kind(b.kind))
    }
    /// When the buyer's active binding lapses; null when it is permanent or there is none.
    async fn binding_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.binding.as_ref().and_then(|b| b.expires_at)
    }
    /// Whether the buyer's active binding decides the credit (no share code that counts, and
    /// the buyer is not a push-hand or partner).
    async fn binding_decides(&self) -> bool {
        matches!(
            self.0.credit.attribution,
            crate::service::earnings::Attribution::Bound { .. }
        )
    }
    /// The rules applied, in order, in words.
    async fn rules(&self) -> &'static str {
        RULES
    }
}

/// A period of the funnel, ending now.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum FunnelPeriod {
    /// Since 00:00 UTC today.
    Today,
    /// The last 7 × 24 hours.
    #[graphql(name = "LAST_7_DAYS")]
    Last7Days,
    /// The last 30 × 24 hours.
    #[graphql(name = "LAST_30_DAYS")]
    Last30Days,
    /// Everything.
    AllTime,
}

impl FunnelPeriod {
    fn period(self, now: DateTime<Utc>) -> Period {
        let from = match self {
            FunnelPeriod::Today => now
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .map_or(now, |d| d.and_utc()),
            FunnelPeriod::Last7Days => now - Duration::days(7),
            FunnelPeriod::Last30Days => now - Duration::days(30),
            FunnelPeriod::AllTime => return Period::all(),
        };
        // `to` is exclusive: the current second's events count.
        Period {
            from,
            to: now + Duration::seconds(1),
        }
    }
}

/// Counts over a period (of a share link, a note, or all of them).
#[derive(SimpleObject, Clone)]
pub struct FunnelCounts {
    /// Visits of the short link `/s/{code}`: one per visitor per UTC day (by whole days).
    pub visits: i64,
    /// Clicks on a note's products (`/s/{code}?p={productId}`), one per visitor, product and
    /// day; 0 for share links.
    pub product_clicks: i64,
    /// Members who registered through the code (`register`'s `shareCode`) in the period.
    pub registrations: i64,
    /// Of those, members who have placed an order (paid or not, any time).
    pub first_orders: i64,
    /// Distinct orders paid in the period with a line bought through the code (by anyone,
    /// registered through it or not).
    pub paid_orders: i64,
    /// The viewer's earnings booked in the period on lines bought through the code, net of
    /// reversals and adjustments, CNY.
    pub earnings: Dec,
    /// Of the registrations, members with no paid order yet ("registered but never bought").
    pub registered_never_bought: i64,
}

impl From<&Counts> for FunnelCounts {
    fn from(c: &Counts) -> Self {
        FunnelCounts {
            visits: c.visits,
            product_clicks: c.product_clicks,
            registrations: c.registrations,
            first_orders: c.first_orders,
            paid_orders: c.paid_orders,
            earnings: c.earnings.into(),
            registered_never_bought: c.registered_never_bought,
        }
    }
}

/// One share link or note in the funnel.
pub struct FunnelRow(svc::FunnelRow);

/// A share link or a note of the viewer's, and its counts over the period.
#[Object]
impl FunnelRow {
    /// The share code (`/s/{code}`).
    async fn code(&self) -> Option<&str> {
        match (&self.0.share_link, &self.0.note) {
            (Some(l), _) => Some(&l.code),
            (None, Some(n)) => n.share_code.as_deref(),
            (None, None) => None,
        }
    }
    /// The share link, for a share link's row; null for a note's.
    async fn share_link(&self) -> Option<ShareLink> {
        self.0.share_link.clone().map(ShareLink)
    }
    /// The share link's product (null for a note's row, or once it is not on sale).
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        let Some(l) = &self.0.share_link else {
            return Ok(None);
        };
        let found = ctx
            .data::<Loaders>()?
            .load_one(ProductKey(l.product_id))
            .await
            .map_err(load_err)?;
        let v = viewer(ctx)?;
        Ok(found
            .filter(|p| crate::service::catalog::can_see(v, p))
            .map(Product::of))
    }
    /// The note, for a note's row; null for a share link's.
    async fn note(&self) -> Option<Note> {
        self.0.note.clone().map(Note::of)
    }
    /// Its counts over the period.
    async fn counts(&self) -> FunnelCounts {
        (&self.0.counts).into()
    }
}

/// The viewer's share funnel over a period.
pub struct Funnel {
    from: DateTime<Utc>,
    rows: Vec<svc::FunnelRow>,
}

/// A push-hand's share funnel: per share link and per note, visits → registrations → first
/// orders → paid orders → earnings, and who registered but never bought.
#[Object]
impl Funnel {
    /// Where the period starts (null for ALL_TIME); it ends now.
    async fn since(&self) -> Option<DateTime<Utc>> {
        (self.from > DateTime::<Utc>::UNIX_EPOCH).then_some(self.from)
    }
    /// One row per share link or note with any count in the period: notes first, then share
    /// links, newest first.
    async fn rows(&self) -> Vec<FunnelRow> {
        self.rows.iter().cloned().map(FunnelRow).collect()
    }
    /// The rows added up.
    async fn totals(&self) -> FunnelCounts {
        let mut t = Counts::default();
        for r in &self.rows {
            let c = &r.counts;
            t.visits += c.visits;
            t.product_clicks += c.product_clicks;
            t.registrations += c.registrations;
            t.first_orders += c.first_orders;
            t.paid_orders += c.paid_orders;
            t.registered_never_bought += c.registered_never_bought;
            t.earnings = entity::Money::from_fen(t.earnings.fen() + c.earnings.fen());
        }
        (&t).into()
    }
}

/// `Member.funnel`: the member's own funnel (another member's, as an admin reads a
/// `Member`, is `FORBIDDEN`).
pub(crate) async fn funnel_of(
    ctx: &Context<'_>,
    member_id: uuid::Uuid,
    period: FunnelPeriod,
) -> Result<Funnel> {
    let st = state(ctx)?;
    let me = viewer(ctx)?.member()?;
    if me.id != member_id {
        return Err(Error::Forbidden("only the member itself reads its funnel".into()).into());
    }
    let period = period.period(st.clock.now());
    let rows = svc::funnel(&st.db, me.id, period).await?;
    Ok(Funnel {
        from: period.from,
        rows,
    })
}

/// A note's numbers, for its author.
#[derive(SimpleObject)]
pub struct NoteStats {
    /// Visits of the note's short link `/s/{shareCode}`, one per visitor per UTC day.
    pub views: i64,
    /// Clicks on its products (`/s/{shareCode}?p={productId}`), one per visitor, product and
    /// day.
    pub product_clicks: i64,
    /// Distinct paid orders with a line bought through the note's share code.
    pub orders: i64,
    /// The author's earnings on those lines, net of reversals and adjustments, CNY.
    pub earnings: Dec,
}

/// `Note.stats`: the author's only (null for everyone else, curators included).
pub(crate) async fn note_stats(
    ctx: &Context<'_>,
    n: &entity::note::Model,
) -> Result<Option<NoteStats>> {
    let Ok(me) = viewer(ctx)?.member() else {
        return Ok(None);
    };
    if me.id != n.author_id {
        return Ok(None);
    }
    let c = svc::note_stats(&state(ctx)?.db, n).await?;
    Ok(Some(NoteStats {
        views: c.visits,
        product_clicks: c.product_clicks,
        orders: c.paid_orders,
        earnings: c.earnings.into(),
    }))
}

#[derive(Default)]
pub struct FunnelQuery;

#[Object]
impl FunnelQuery {
    /// Who would be credited if the signed-in buyer bought `productId` now, through
    /// `shareCode` if given, and why: the buyer's own purchase as a push-hand or partner,
    /// else the share code's owner (a share link's or a public note's), else the buyer's
    /// binding (its kind and expiry given) — in the words a cart line's `attribution` and
    /// earnings' explanations use. `UNAUTHENTICATED` when anonymous; `NOT_FOUND` for a
    /// product not on sale; `VALIDATION` (`shareCode`) for a code that names no share link or
    /// public note about the product.
    async fn credit_preview(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The product's ID.")] product_id: ID,
        #[graphql(desc = "A share code (a share link's or a note's); omit for none.")]
        share_code: Option<String>,
    ) -> Result<CreditPreview> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let product = ids::decode_as(&product_id, Kind::Product, "productId")?;
        Ok(CreditPreview(
            svc::credit_preview(&st.db, me, product, share_code.as_deref(), st.clock.now()).await?,
        ))
    }
}
