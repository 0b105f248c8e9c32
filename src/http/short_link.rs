//! `GET /s/{code}`: a share code's short link (the one a poster's QR code holds). It records a
//! visit — once per visitor per UTC day ([`crate::service::funnel::visit`], grouped with the
//! visits arriving meanwhile by [`crate::service::funnel::Visits`]) — and redirects
//! (302) to the storefront (`PUSHHAND_STOREFRONT_URL`) with `code=<code>` added, so the
//! storefront can pass the code on to `addToCart`, `placeOrder` and `register`. `?p=<product
//! ID>` on a note's code counts a click on one of the note's products and is passed on as
//! `p`.
//!
//! The redirect never depends on the count: a code that names nothing (mistyped, a note taken
//! down) goes to the storefront without a code, and a database failure is logged and still
//! redirects, so a shopper is never stopped at a dead link. Answers are `no-store`, so that
//! no cache between us and the visitor answers for us.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::graphql::ids::{self, Kind};
use crate::service::funnel;

/// The storefront URL, checked: an absolute http(s) URL without spaces.
pub fn storefront(url: &str) -> anyhow::Result<&str> {
    let url = url.trim();
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        anyhow::bail!("{url:?} is not an absolute http(s) URL");
    }
    Ok(url)
}

/// `base` with `params` added to its query (before any `#fragment`).
fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let (head, fragment) = match base.split_once('#') {
        Some((h, f)) => (h, Some(f)),
        None => (base, None),
    };
    let mut out = head.to_owned();
    if !params.is_empty() {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        out.push(if head.contains('?') { '&' } else { '?' });
        out.push_str(&query);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

pub async fn visit(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let app = &state.app;
    let now = app.clock.now();
    let product_param = query.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "p")
            .map(|(_, v)| v.into_owned())
    });
    let product = product_param
        .as_deref()
        .and_then(|p| ids::decode_as(p, Kind::Product, "p").ok());
    let address = state.proxies.client(peer, &headers).to_string();
    let user_agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(512)
        .collect();
    let visitor = funnel::visitor_hash(
        app.jwt_secret.expose().as_bytes(),
        &funnel::day(now),
        &address,
        &user_agent,
    );
    let stored = match state.visits.visit(&code, product, &visitor, now).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = ?e, "short link visit not recorded");
            funnel::normalise(&code).filter(|_| code.len() <= 32)
        }
    };
    let base = storefront(&app.config.storefront_url).unwrap_or("/");
    let mut params: Vec<(&str, &str)> = Vec::new();
    if let Some(c) = stored.as_deref() {
        params.push(("code", c));
        if let (Some(p), Some(_)) = (product_param.as_deref(), product) {
            params.push(("p", p));
        }
    }
    let location = with_query(base, &params);
    let mut res = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_code_to_any_storefront_url() {
        assert_eq!(
            with_query("https://shop.example/", &[("code", "AB12")]),
            "https://shop.example/?code=AB12"
        );
        assert_eq!(
            with_query("https://shop.example/?x=1#/home", &[("code", "AB12")]),
            "https://shop.example/?x=1&code=AB12#/home"
        );
        assert_eq!(
            with_query("https://shop.example/", &[]),
            "https://shop.example/"
        );
        assert!(storefront("ftp://x").is_err());
        assert!(storefront("https://shop.example/ x").is_err());
    }
}
