//! Share posters in GraphQL: `sharePoster`. What a poster shows, who may make it and how it
//! is cached are [`crate::service::posters`]'s; its PNG is served by `GET
//! /posters/{key}.png` ([`crate::http`]).

use async_graphql::{Context, Enum, ID, Object, Result};

use crate::error::Error;
use crate::graphql::context::{state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::service::posters::{self as svc, Subject, Template};

/// A share poster's layout.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum PosterTemplate {
    /// 600 × 1000: the picture across the top, name and price below it, the push-hand's
    /// name and the QR code at the bottom.
    Classic,
    /// 600 × 800: the picture framed on white, smaller type.
    Minimal,
}

impl From<PosterTemplate> for Template {
    fn from(t: PosterTemplate) -> Template {
        match t {
            PosterTemplate::Classic => Template::Classic,
            PosterTemplate::Minimal => Template::Minimal,
        }
    }
}

impl From<Template> for PosterTemplate {
    fn from(t: Template) -> PosterTemplate {
        match t {
            Template::Classic => PosterTemplate::Classic,
            Template::Minimal => PosterTemplate::Minimal,
        }
    }
}

/// A share poster.
pub struct SharePoster(svc::Poster);

/// A share poster (分享海报): the product's picture, name and price (for a note: its title
/// and picture, and its first product on sale), the push-hand's display name, and a QR code
/// of the short link of the push-hand's own share code. The same inputs give the same
/// poster, served from a cache.
#[Object]
impl SharePoster {
    /// The poster as an SVG document (`width` × `height`). Every text in it is escaped. The
    /// picture is referenced by its URL (`<image href>`), which the client loads; the server
    /// never fetches it.
    async fn svg(&self) -> &str {
        std::str::from_utf8(&self.0.svg).unwrap_or_default()
    }
    /// The poster as a PNG of `width` × `height` pixels, at an absolute URL under
    /// `PUSHHAND_PUBLIC_URL` that needs no token (its key is signed by the server) and
    /// changes with the poster's content (served `Cache-Control: public, max-age=86400,
    /// immutable`). The PNG draws a neutral placeholder where the SVG shows the picture.
    async fn png_url(&self) -> &str {
        &self.0.png_url
    }
    /// The short link the QR code holds: `PUSHHAND_PUBLIC_URL/s/{code}`. Its visits count
    /// in the viewer's funnel (`me.funnel`).
    async fn short_url(&self) -> &str {
        &self.0.content.short_url
    }
    /// The viewer's share code on the poster (a share link's, 10 characters, or a note's,
    /// 12): opaque, at most 32 characters, so it also fits a WeChat mini-program `scene`.
    async fn code(&self) -> &str {
        &self.0.content.code
    }
    /// Width in pixels (the SVG's user units).
    async fn width(&self) -> i32 {
        self.0.content.template.size().0 as i32
    }
    /// Height in pixels (the SVG's user units).
    async fn height(&self) -> i32 {
        self.0.content.template.size().1 as i32
    }
    /// The layout.
    async fn template(&self) -> PosterTemplate {
        self.0.content.template.into()
    }
}

#[derive(Default)]
pub struct PostersMutation;

#[Object]
impl PostersMutation {
    /// PUSH_HAND / PARTNER: a share poster of a published product (with your share link to
    /// it, made on first use as `createShareLink` does) or of your own public note (with the
    /// note's share code). Give exactly one of `productId` and `noteId` (else `VALIDATION`).
    /// `UNAUTHENTICATED` when anonymous; `NOT_FOUND` for a product not on sale or a note that
    /// is not public (even yours); `FORBIDDEN` for another member's note (a poster carries
    /// its maker's own code) and for buyers, who have no share links.
    async fn share_poster(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A published product: the poster carries your share link to it.")]
        product_id: Option<ID>,
        #[graphql(desc = "One of your public notes: the poster carries its share code.")]
        note_id: Option<ID>,
        #[graphql(desc = "The layout.", default_with = "PosterTemplate::Classic")]
        template: PosterTemplate,
    ) -> Result<SharePoster> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let subject = match (&product_id, &note_id) {
            (Some(p), None) => Subject::Product(ids::decode_as(p, Kind::Product, "productId")?),
            (None, Some(n)) => Subject::Note(ids::decode_as(n, Kind::Note, "noteId")?),
            _ => {
                return Err(Error::validation(
                    "productId",
                    "give exactly one of productId and noteId",
                )
                .into());
            }
        };
        Ok(SharePoster(
            st.posters
                .share(&st.db, me, subject, template.into(), st.clock.now())
                .await?,
        ))
    }
}
