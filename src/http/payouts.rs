//! WeChat Pay's payout notifications, `POST /payouts/wechat/notify` (transfer bills that
//! ended, `MCHTRANSFER.BILL.FINISHED`): verified and applied by
//! [`crate::service::payouts::notified`]; here the request is handed over and WeChat's
//! expected answer given back. Alipay transfers are confirmed by their answer or a query.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::payments::Notice;
use crate::payments::payouts::PayoutChannel;

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
    super::payments::acknowledge(
        (payout.ack(), payout.nack()),
        PayoutChannel::Wechat.code(),
        "payout",
        outcome,
    )
}
