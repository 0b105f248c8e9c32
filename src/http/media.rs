//! `GET /media/<key>`: uploaded images and their thumbnails, from the media store
//! ([`crate::media`]). A thumbnail's first request makes it ([`crate::service::images::serve`]).
//!
//! Every key names an image id and never changes, so an answer is cached for a year
//! (`Cache-Control: public, max-age=31536000, immutable`) and carries its type from the
//! key (`image/jpeg`, `image/png`, `image/webp`) with `X-Content-Type-Options: nosniff`.
//! A path that is no key this server makes, or names nothing stored, is 404 (`NOT_FOUND`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::graphql::context::to_graphql;
use crate::media::{Format, Key};
use crate::service::images;

/// A year: keys never change content.
const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

pub async fn get(State(state): State<Arc<HttpState>>, Path(path): Path<String>) -> Response {
    let Some(key) = Key::parse(&path) else {
        return not_found();
    };
    let format = match key {
        Key::Original { format, .. } | Key::Derived { format, .. } => format,
    };
    match images::serve(&state.app.db, &state.app.media, &key).await {
        Ok(Some(bytes)) => {
            let mut resp = bytes.into_response();
            let headers = resp.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(Format::content_type(format)),
            );
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            resp
        }
        Ok(None) => not_found(),
        Err(e) => {
            let err = to_graphql(&e);
            let code = e.code();
            let status = match code {
                "UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let body = serde_json::json!({ "errors": [{
                "message": err.message,
                "extensions": { "code": code },
            }] });
            (status, axum::Json(body)).into_response()
        }
    }
}

fn not_found() -> Response {
    let body = serde_json::json!({ "errors": [{
        "message": "no such media",
        "extensions": { "code": "NOT_FOUND" },
    }] });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
