//! The providers' notifications, `POST /payments/{wechat|alipay|sandbox}/notify` (a route
//! per enabled channel) and `…/refund-notify` (refunds), the sandbox's pay button,
//! `POST /payments/sandbox/{intentId}/pay`, and its refund buttons,
//! `POST /payments/sandbox/refunds/{refundId}/{succeed|fail}` (development only). Verification and booking are [`crate::service::payments`]'s; here the
//! request is handed over and the provider's expected answer given back.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::payments::{Ack, Channel, Notice};
use crate::service::payments::{self as svc, Notified, NotifyError};
use crate::service::refunds::{self, RefundNotified, Refunds};

/// The largest notification read (a provider's notification is a few kilobytes).
pub const MAX_NOTIFICATION_BYTES: usize = 64 * 1024;

fn answer(ack: Ack) -> Response {
    let mut response = (
        StatusCode::from_u16(ack.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        ack.body,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ack.content_type),
    );
    response
}

/// Handles one notification of `channel`.
pub async fn notify(
    state: &HttpState,
    channel: Channel,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    notify_of(state, channel, headers, body, None).await
}

/// [`notify`], with the intent when the caller has just read it.
async fn notify_of(
    state: &HttpState,
    channel: Channel,
    headers: &HeaderMap,
    body: &[u8],
    known: Option<svc::Known>,
) -> Response {
    let Some(provider) = state.app.payments.get(channel) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let app = &state.app;
    let outcome = svc::notified(
        &app.db,
        &app.events,
        &app.units_sold,
        &crate::graphql::schema::orders::policy(app),
        provider.as_ref(),
        Notice { headers, body },
        known,
        app.clock.now(),
    )
    .await;
    // Paid, not paid, or unbookable (a mismatch, kept for review): all taken.
    let outcome =
        outcome.map(|(Notified::Paid(_) | Notified::NotPaid | Notified::Unbookable(_))| ());
    acknowledge(
        (provider.ack(), provider.nack()),
        channel.code(),
        "payment",
        outcome,
    )
}

/// The provider's acknowledgement of a notification handled with `outcome`: taken, refused
/// (the sender's fault: 401 where the provider reads statuses) or not handled (logged; the
/// provider sends it again).
pub(super) fn acknowledge(
    (ack, nack): (Ack, Ack),
    channel: &str,
    what: &str,
    outcome: Result<(), NotifyError>,
) -> Response {
    match outcome {
        Ok(()) => answer(ack),
        Err(NotifyError::Refused(_)) => {
            let status = if nack.status >= 400 { 401 } else { nack.status };
            answer(Ack { status, ..nack })
        }
        Err(NotifyError::Failed(e)) => {
            tracing::error!(channel, error = ?e, "{what} notification not handled; the provider will retry");
            answer(nack)
        }
    }
}

pub async fn wechat(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    notify(&state, Channel::WechatJsapi, &headers, &body).await
}

pub async fn alipay(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    notify(&state, Channel::Alipay, &headers, &body).await
}

pub async fn sandbox(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    notify(&state, Channel::Sandbox, &headers, &body).await
}

/// The sandbox's pay button: signs a notification that the intent was paid its amount and
/// handles it as if the provider had sent it.
pub async fn sandbox_pay(
    State(state): State<Arc<HttpState>>,
    Path(intent_id): Path<String>,
) -> Response {
    let Some(sandbox) = state.app.payments.sandbox() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(id) = uuid::Uuid::try_parse(&intent_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The intent with its order, lines and buyer: all the payment reads, in one statement.
    let known = match svc::intent_to_pay(&state.app.db, id).await {
        Ok(k) if k.intent.channel == Channel::Sandbox.code() => k,
        Ok(_) | Err(crate::error::Error::NotFound(_)) => {
            return StatusCode::NOT_FOUND.into_response();
        }
        Err(e) => {
            tracing::error!(error = ?e, "sandbox payment not read");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let (signature, body) = sandbox.notification(
        known.intent.id,
        known.intent.amount.to_decimal(),
        state.app.clock.now(),
    );
    let mut headers = HeaderMap::new();
    match HeaderValue::from_str(&signature) {
        Ok(v) => headers.insert(crate::payments::sandbox::SIGNATURE_HEADER, v),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    notify_of(&state, Channel::Sandbox, &headers, &body, Some(known)).await
}

/// Handles one refund notification of `channel`.
pub async fn refund_notify(
    state: &HttpState,
    channel: Channel,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let Some(provider) = state.app.payments.get(channel) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let app = &state.app;
    let ctx = Refunds {
        db: &app.db,
        events: &app.events,
        sold: &app.units_sold,
        payments: &app.payments,
    };
    let outcome = refunds::notified(
        ctx,
        provider.as_ref(),
        Notice { headers, body },
        app.clock.now(),
    )
    .await;
    let outcome = outcome.map(|(RefundNotified::Recorded(_) | RefundNotified::Mismatch)| ());
    acknowledge(
        (provider.ack(), provider.nack()),
        channel.code(),
        "refund",
        outcome,
    )
}

pub async fn wechat_refund(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    refund_notify(&state, Channel::WechatJsapi, &headers, &body).await
}

pub async fn alipay_refund(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    refund_notify(&state, Channel::Alipay, &headers, &body).await
}

pub async fn sandbox_refund(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    refund_notify(&state, Channel::Sandbox, &headers, &body).await
}

/// The sandbox's refund buttons: signs a notification that the refund succeeded
/// (`succeed`) or was closed (`fail`) and handles it as if the provider had sent it.
pub async fn sandbox_refund_outcome(
    State(state): State<Arc<HttpState>>,
    Path((refund_id, outcome)): Path<(String, String)>,
) -> Response {
    let Some(sandbox) = state.app.payments.sandbox() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let succeeded = match outcome.as_str() {
        "succeed" => true,
        "fail" => false,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let Ok(id) = uuid::Uuid::try_parse(&refund_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let refund = match refunds::get(&state.app.db, id).await {
        Ok(r) if r.channel == Channel::Sandbox.code() => r,
        Ok(_) | Err(crate::error::Error::NotFound(_)) => {
            return StatusCode::NOT_FOUND.into_response();
        }
        Err(e) => {
            tracing::error!(error = ?e, "sandbox refund not read");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let (signature, body) = sandbox.refund_notification(
        refund.id,
        refund.intent_id,
        refund.amount.to_decimal(),
        succeeded,
        state.app.clock.now(),
    );
    let mut headers = HeaderMap::new();
    match HeaderValue::from_str(&signature) {
        Ok(v) => headers.insert(crate::payments::sandbox::SIGNATURE_HEADER, v),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    refund_notify(&state, Channel::Sandbox, &headers, &body).await
}
