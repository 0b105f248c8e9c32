//! The GraphiQL IDE at `GET /`, served whole from the binary: it works without internet
//! (unpkg is slow or blocked on many of our users' networks) and loads nothing from another
//! origin.
//!
//! The page (`assets/ide/index.html`) loads GraphiQL 4.1.2 and React 18.3.1 — the npm
//! registry's published browser bundles, unmodified, pinned by SHA-256 in
//! `assets/ide/vendor/VERSIONS` (`update.sh` there fetches and checks them; a unit test
//! checks the embedded copies) — and `ide.js`, which starts GraphiQL on `/graphql` with
//! subscriptions over graphql-ws on `/graphql/ws`. No crate or Debian package ships
//! GraphiQL's built files, hence the vendored copies.
//!
//! Every script is a same-origin file, so the page's Content-Security-Policy allows scripts
//! from `'self'` alone (no inline script, no `eval`); GraphiQL's fonts and icons are `data:`
//! URLs inside its stylesheet. The vendored files have their version in their name and are
//! cached for a year; the page and `ide.js`/`ide.css` are revalidated.

use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What the page may load: its own scripts and styles, `data:` fonts and images, and
/// requests to its own origin (HTTP and WebSocket). Inline styles are allowed: GraphiQL's
/// dialogs add a `<style>` element (react-remove-scroll) and CodeMirror's search bar has
/// `style` attributes; scripts stay `'self'` only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("../../assets/ide/index.html");

/// One file served under `/ide/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// Versioned in its name: never changes, cached for a year.
    immutable: bool,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const ASSETS: &[Asset] = &[
    Asset {
        name: "graphiql-4.1.2.min.js",
        content_type: JS,
        body: include_bytes!("../../assets/ide/vendor/graphiql-4.1.2.min.js"),
        immutable: true,
    },
    Asset {
        name: "graphiql-4.1.2.min.css",
        content_type: CSS,
        body: include_bytes!("../../assets/ide/vendor/graphiql-4.1.2.min.css"),
        immutable: true,
    },
    Asset {
        name: "react-18.3.1.production.min.js",
        content_type: JS,
        body: include_bytes!("../../assets/ide/vendor/react-18.3.1.production.min.js"),
        immutable: true,
    },
    Asset {
        name: "react-dom-18.3.1.production.min.js",
        content_type: JS,
        body: include_bytes!("../../assets/ide/vendor/react-dom-18.3.1.production.min.js"),
        immutable: true,
    },
    Asset {
        name: "ide.js",
        content_type: JS,
        body: include_bytes!("../../assets/ide/ide.js"),
        immutable: false,
    },
    Asset {
        name: "ide.css",
        content_type: CSS,
        body: include_bytes!("../../assets/ide/ide.css"),
        immutable: false,
    },
];

/// Headers every IDE answer carries.
fn common(resp: &mut Response, cache: &'static str) {
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// `GET /`: the page, with its Content-Security-Policy.
pub async fn page() -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response();
    common(&mut resp, "no-cache");
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    resp
}

/// `GET /ide/{name}`: one of the page's files (404 for any other name).
pub async fn asset(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut resp = ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response();
    let cache = if asset.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    common(&mut resp, cache);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn vendored_files_are_the_pinned_ones() {
        let versions = include_str!("../../assets/ide/vendor/VERSIONS");
        let mut checked = 0;
        for line in versions.lines().filter(|l| !l.starts_with('#')) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [file, _, _, sum] = fields[..] else {
                continue;
            };
            if sum == "-" {
                continue;
            }
            let asset = ASSETS
                .iter()
                .find(|a| a.name == file)
                .unwrap_or_else(|| panic!("{file} is pinned but not served"));
            assert_eq!(
                format!("{:x}", Sha256::digest(asset.body)),
                sum,
                "{file} is not the pinned file"
            );
            checked += 1;
        }
        assert_eq!(checked, ASSETS.iter().filter(|a| a.immutable).count());
    }

    #[test]
    fn the_page_loads_every_script_and_style_from_here() {
        for name in ASSETS.iter().map(|a| a.name) {
            assert!(PAGE.contains(&format!("/ide/{name}")), "{name} unused");
        }
        assert!(!PAGE.contains("<script>"), "no inline script");
    }
}
