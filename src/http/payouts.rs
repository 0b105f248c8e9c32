//! WeChat Pay's payout notifications, `POST /payouts/wechat/notify` (transfer bills that
//! ended, `MCHTRANSFER.BILL.FINISHED`): verified and applied by
//! [`crate::service::payouts::notified`]; here the request is handed over and WeChat's
//! expected answer given back. Alipay transfers are confirmed by their answer or a query.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::payments::payouts::PayoutChannel;
use crate::payments::{Ack, Notice};
use crate::service::payments::NotifyError;

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

pub async fn wechat(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app = &state.app;
    let Some(payout) = app.payments.payouts.get(PayoutChannel::Wechat) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let outcome = crate::service::payouts::notified(
        &app.db,
        &app.events,
        &app.payments.payouts,
        PayoutChannel::Wechat,
        Notice {
            headers: &headers,
            body: &body,
        },
        app.clock.now(),
    )
    .await;
    match outcome {
        Ok(()) => answer(payout.ack()),
        Err(NotifyError::Refused(_)) => answer(Ack {
            status: 401,
            ..payout.nack()
        }),
        Err(NotifyError::Failed(e)) => {
            tracing::error!(error = ?e, "payout notification not applied; WeChat will retry");
            answer(payout.nack())
        }
    }
}
