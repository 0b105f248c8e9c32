//! Which browser origins may call the API: CORS for `/graphql` (tower-http's [`CorsLayer`]),
//! and the same list for the WebSocket upgrade, which browsers do not preflight (a page on
//! any site may open a WebSocket to any server; only the `Origin` header tells them apart).
//!
//! `PUSHHAND_CORS_ORIGINS` is a comma-separated list of origins (`https://shop.example,
//! http://localhost:5173`) or `*`. Unset: in development any `http(s)://localhost`,
//! `127.0.0.1` or `[::1]` origin, on any port (a Vite or Next.js dev server); in production
//! none. A page served by the API itself (GraphiQL) is same-origin and always allowed.
//! Requests without `Origin` (curl, servers, mobile apps) are not a browser's and pass.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may reuse a preflight's answer.
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// The origins allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origins {
    /// Any origin (`*`).
    Any,
    /// `http(s)://localhost`, `127.0.0.1` and `[::1]` on any port (the development default).
    Loopback,
    /// Exactly these (lower-case, no trailing slash).
    List(Vec<String>),
}

impl Origins {
    /// The origins `configured` names, or the default for the environment.
    pub fn parse(configured: Option<&str>, development: bool) -> anyhow::Result<Origins> {
        let Some(list) = configured else {
            return Ok(if development {
                Origins::Loopback
            } else {
                Origins::List(Vec::new())
            });
        };
        if list.trim() == "*" {
            return Ok(Origins::Any);
        }
        let mut origins = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let origin = item.trim_end_matches('/').to_ascii_lowercase();
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            match authority {
                Some(a) if !a.is_empty() && !a.contains(['/', '?', '#', '*', ' ']) => {
                    origins.push(origin)
                }
                _ => anyhow::bail!(
                    "PUSHHAND_CORS_ORIGINS: {item:?} is not an origin (scheme://host[:port]) or `*`"
                ),
            }
        }
        Ok(Origins::List(origins))
    }

    /// Whether a browser page on `origin` may call the API.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::Loopback => is_loopback(origin),
            Origins::List(list) => {
                let origin = origin.trim_end_matches('/');
                list.iter().any(|o| o.eq_ignore_ascii_case(origin))
            }
        }
    }

    /// Whether a request with `headers` may open a WebSocket: no `Origin` (not a browser), a
    /// same-origin page (its `Origin` names the `Host` it talks to), or an allowed origin.
    pub fn allows_websocket(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let same_origin = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .zip(authority(origin))
            .is_some_and(|(host, authority)| host.eq_ignore_ascii_case(authority));
        same_origin || self.allows(origin)
    }

    /// The CORS layer for these origins: `GET` and `POST`, the headers a GraphQL client
    /// sends and the API's own request `headers`, the request ID exposed, preflights cached
    /// for [`MAX_AGE`].
    pub fn layer(&self, headers: &[&'static str]) -> CorsLayer {
        let origins = self.clone();
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                origin.to_str().is_ok_and(|o| origins.allows(o))
            }))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(
                [
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::ACCEPT,
                    HeaderName::from_static("x-request-id"),
                ]
                .into_iter()
                .chain(headers.iter().map(|h| HeaderName::from_static(h)))
                .collect::<Vec<_>>(),
            )
            .expose_headers([HeaderName::from_static("x-request-id")])
            .max_age(MAX_AGE)
    }
}

/// `host[:port]` of `scheme://host[:port]`.
fn authority(origin: &str) -> Option<&str> {
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
}

fn is_loopback(origin: &str) -> bool {
    let Some(authority) = authority(&origin.to_ascii_lowercase()).map(str::to_owned) else {
        return false;
    };
    let host = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let (host, rest) = authority.split_at(end + 1);
                if !(rest.is_empty() || port_ok(rest)) {
                    return false;
                }
                host.to_owned()
            }
            None => return false,
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) if port_ok(&format!(":{port}")) => host.to_owned(),
            Some(_) => return false,
            None => authority,
        }
    };
    matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]")
}

/// `:<digits>`.
fn port_ok(rest: &str) -> bool {
    rest.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_development_default_is_loopback_on_any_port() {
        let o = Origins::parse(None, true).expect("default");
        assert!(o.allows("http://localhost:5173"));
        assert!(o.allows("https://127.0.0.1"));
        assert!(o.allows("http://[::1]:3000"));
        assert!(!o.allows("http://localhost.evil.example"));
        assert!(!o.allows("http://127.0.0.1.evil.example:80"));
        assert!(!o.allows("http://evil.example"));
        assert!(!o.allows("null"));
        let prod = Origins::parse(None, false).expect("default");
        assert!(!prod.allows("http://localhost:5173"));
    }

    #[test]
    fn a_configured_list_is_matched_exactly() {
        let o = Origins::parse(Some("https://Shop.example/, http://localhost:3000"), false)
            .expect("parses");
        assert!(o.allows("https://shop.example"));
        assert!(o.allows("http://localhost:3000"));
        assert!(!o.allows("http://localhost:3001"));
        assert!(!o.allows("http://shop.example"));
        assert!(Origins::parse(Some("shop.example"), false).is_err());
        assert!(Origins::parse(Some("https://shop.example/app"), false).is_err());
        assert_eq!(Origins::parse(Some("*"), false).expect("any"), Origins::Any);
    }
}
