//! `GET /posters/{key}.png`: a share poster's PNG ([`crate::service::posters::Posters::png`]),
//! for clients that download images by URL (WeChat mini-programs) rather than decode base64.
//! The key is made and signed by the server in `sharePoster`'s `pngUrl`, so the route needs
//! no token; a key it did not make, or whose code no longer makes a poster, is `404`. The
//! image is served `Cache-Control: public, max-age=86400, immutable` — its URL changes with
//! its content — and a key whose content has changed since it was made redirects (`302`,
//! `no-store`) to the current one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::error::Error;
use crate::service::posters::Png;

pub async fn png(State(state): State<Arc<HttpState>>, Path(file): Path<String>) -> Response {
    let app = &state.app;
    let Some(key) = file.strip_suffix(".png") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match app.posters.png(&app.db, key).await {
        Ok(Png::Image(bytes)) => {
            let mut res = bytes.into_response();
            let headers = res.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400, immutable"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            res
        }
        Ok(Png::Moved(path)) => {
            let mut res = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&path) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(Error::NotFound(_)) => StatusCode::NOT_FOUND.into_response(),
        Err(Error::Unavailable) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "poster PNG not served");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
