//! The sandbox provider, for development and tests only (the server refuses it in
//! production): no provider account, yet the notification path runs as for a real one — a
//! signed notification, verified (HMAC-SHA256 with a key made at start, timestamp window,
//! nonce never seen) before anything is booked.
//!
//! The key lives in this process only: a notification signed by one instance is refused by
//! another. (`POST /payments/sandbox/{intentId}/pay` signs and verifies on one instance.)
//!
//! Refunds: a request is taken (`PROCESSING`) and remembered in this process; the developer
//! ends it with a signed refund notification (`POST /payments/sandbox/refunds/{refundId}/
//! succeed` or `/fail`), verified like a payment's (a body with `"event":"REFUND"`, which a
//! payment's verification refuses, and the other way round).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use uuid::Uuid;

use super::keys::nonce;
use super::nonces::{NonceStore, WINDOW};
use super::{
    Ack, Channel, IntentRequest, Notice, PaymentError, Provider, RefundRequest, RefundState,
    RefundStatus, Refusal, TradeState, VerifiedPayment,
};

/// The header carrying `t=<unix seconds>,n=<nonce>,s=<hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "pushhand-sandbox-signature";

/// The sandbox provider.
pub struct Sandbox {
    key: [u8; 32],
    nonces: Arc<dyn NonceStore>,
    /// The refunds asked for, as the sandbox's notifications left them.
    refunds: Mutex<HashMap<Uuid, RefundState>>,
}

/// A sandbox refund notification's body.
#[derive(Serialize, Deserialize)]
struct RefundBody {
    /// Always `REFUND`.
    event: String,
    out_refund_no: String,
    out_trade_no: String,
    reference: String,
    /// Yuan, as text (exact).
    amount: String,
    /// `SUCCESS` or `CLOSED`.
    status: String,
}

/// A sandbox notification's body.
#[derive(Serialize, Deserialize)]
struct Body {
    out_trade_no: String,
    reference: String,
    /// Yuan, as text (exact).
    amount: String,
    paid_at: DateTime<Utc>,
}

impl Sandbox {
    /// A sandbox with a fresh random key.
    pub fn generate(nonces: Arc<dyn NonceStore>) -> anyhow::Result<Sandbox> {
        use rand::TryRngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.try_fill_bytes(&mut key)?;
        Ok(Sandbox {
            key,
            nonces,
            refunds: Mutex::default(),
        })
    }

    /// The signature header of `body`, signed now.
    fn sign(&self, body: &[u8], now: DateTime<Utc>) -> String {
        let nonce = nonce();
        let timestamp = now.timestamp();
        let signature: String = self
            .mac(timestamp, &nonce, body)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("t={timestamp},n={nonce},s={signature}")
    }

    /// Checks a notification's signature, timestamp and nonce.
    async fn check(&self, notice: Notice<'_>, now: DateTime<Utc>) -> Result<(), PaymentError> {
        let (timestamp, nonce, signature) =
            parse_header(notice.headers).ok_or(Refusal::Malformed)?;
        // Constant-time comparison (`verify_slice`).
        self.mac(timestamp, nonce, notice.body)
            .verify_slice(&signature)
            .map_err(|_| Refusal::Signature)?;
        if !super::fresh(timestamp, now, WINDOW) {
            return Err(Refusal::Stale.into());
        }
        let first = self
            .nonces
            .first_seen(&format!("sandbox:{nonce}"))
            .await
            .map_err(PaymentError::Internal)?;
        if !first {
            return Err(Refusal::Replayed.into());
        }
        Ok(())
    }

    /// A signed notification that the refund `refund_id` of `intent_id` (`amount`)
    /// succeeded, or was closed (what the developer's buttons send): its signature header
    /// and its body.
    pub fn refund_notification(
        &self,
        refund_id: Uuid,
        intent_id: Uuid,
        amount: Decimal,
        succeeded: bool,
        now: DateTime<Utc>,
    ) -> (String, Vec<u8>) {
        let body = serde_json::to_vec(&RefundBody {
            event: "REFUND".into(),
            out_refund_no: super::out_refund_no(refund_id),
            out_trade_no: super::out_trade_no(intent_id),
            reference: format!("SANDBOX-REFUND-{}", super::out_refund_no(refund_id)),
            amount: amount.to_string(),
            status: if succeeded { "SUCCESS" } else { "CLOSED" }.into(),
        })
        .expect("a plain struct serializes");
        (self.sign(&body, now), body)
    }

    fn mac(&self, timestamp: i64, nonce: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(format!("{timestamp}\n{nonce}\n").as_bytes());
        mac.update(body);
        mac.update(b"\n");
        mac
    }

    /// A signed notification that `intent_id` was paid `amount` (what the developer's
    /// "pay" button sends): its signature header and its body.
    pub fn notification(
        &self,
        intent_id: Uuid,
        amount: Decimal,
        now: DateTime<Utc>,
    ) -> (String, Vec<u8>) {
        let body = serde_json::to_vec(&Body {
            out_trade_no: super::out_trade_no(intent_id),
            reference: format!("SANDBOX-{}", super::out_trade_no(intent_id)),
            amount: amount.to_string(),
            paid_at: now,
        })
        .expect("a plain struct serializes");
        (self.sign(&body, now), body)
    }
}

fn parse_header(headers: &HeaderMap) -> Option<(i64, &str, Vec<u8>)> {
    let value = headers.get(SIGNATURE_HEADER)?.to_str().ok()?;
    let (mut t, mut n, mut s) = (None, None, None);
    for part in value.split(',') {
        match part.trim().split_once('=')? {
            ("t", v) => t = v.parse().ok(),
            ("n", v) if !v.is_empty() => n = Some(v),
            ("s", v) => s = hex(v),
            _ => return None,
        }
    }
    Some((t?, n?, s?))
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[async_trait::async_trait]
impl Provider for Sandbox {
    fn channel(&self) -> Channel {
        Channel::Sandbox
    }

    async fn create_intent(
        &self,
        request: &IntentRequest<'_>,
    ) -> Result<serde_json::Value, PaymentError> {
        Ok(json!({
            "payUrl": format!("/payments/sandbox/{}/pay", request.intent_id),
        }))
    }

    async fn verify_notice(
        &self,
        notice: Notice<'_>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedPayment, PaymentError> {
        self.check(notice, now).await?;
        let body: Body = serde_json::from_slice(notice.body).map_err(|_| Refusal::Malformed)?;
        let amount: Decimal = body.amount.parse().map_err(|_| Refusal::Malformed)?;
        Ok(VerifiedPayment {
            intent_id: super::intent_of(&body.out_trade_no).ok_or(Refusal::Unrelated)?,
            reference: body.reference,
            amount,
            state: TradeState::Paid,
            paid_at: Some(body.paid_at),
        })
    }

    fn ack(&self) -> Ack {
        Ack {
            status: 204,
            content_type: "text/plain; charset=utf-8",
            body: "",
        }
    }

    fn nack(&self) -> Ack {
        Ack {
            status: 500,
            content_type: "text/plain; charset=utf-8",
            body: "not handled",
        }
    }

    async fn request_refund(
        &self,
        request: &RefundRequest<'_>,
    ) -> Result<RefundStatus, PaymentError> {
        if super::to_fen(request.amount).filter(|f| *f > 0).is_none() {
            return Err(PaymentError::Invalid("amount"));
        }
        let mut refunds = self.refunds.lock().expect("not poisoned");
        let state = refunds
            .entry(request.refund_id)
            .or_insert(RefundState::Processing);
        // A failed refund asked again is taken again, as the providers do.
        if matches!(state, RefundState::Failed(_)) {
            *state = RefundState::Processing;
        }
        Ok(RefundStatus {
            refund_id: request.refund_id,
            intent_id: Some(request.intent_id),
            reference: None,
            amount: Some(request.amount),
            state: state.clone(),
        })
    }

    async fn query_refund(
        &self,
        request: &RefundRequest<'_>,
    ) -> Result<Option<RefundStatus>, PaymentError> {
        let refunds = self.refunds.lock().expect("not poisoned");
        Ok(refunds.get(&request.refund_id).map(|state| RefundStatus {
            refund_id: request.refund_id,
            intent_id: Some(request.intent_id),
            reference: None,
            amount: Some(request.amount),
            state: state.clone(),
        }))
    }

    async fn verify_refund_notice(
        &self,
        notice: Notice<'_>,
        now: DateTime<Utc>,
    ) -> Result<RefundStatus, PaymentError> {
        self.check(notice, now).await?;
        let body: RefundBody =
            serde_json::from_slice(notice.body).map_err(|_| Refusal::Malformed)?;
        if body.event != "REFUND" {
            return Err(Refusal::Malformed.into());
        }
        let amount: Decimal = body.amount.parse().map_err(|_| Refusal::Malformed)?;
        let refund_id = super::refund_of(&body.out_refund_no).ok_or(Refusal::Unrelated)?;
        let state = match body.status.as_str() {
            "SUCCESS" => RefundState::Succeeded,
            _ => RefundState::Failed(format!("{}: the sandbox closed the refund", body.status)),
        };
        self.refunds
            .lock()
            .expect("not poisoned")
            .insert(refund_id, state.clone());
        Ok(RefundStatus {
            refund_id,
            intent_id: Some(super::intent_of(&body.out_trade_no).ok_or(Refusal::Unrelated)?),
            reference: Some(body.reference),
            amount: Some(amount),
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::nonces::{MemoryNonces, REMEMBER_FOR};

    #[tokio::test]
    async fn a_signed_notification_is_believed_once_and_a_forged_one_never() {
        let nonces = Arc::new(MemoryNonces::new(REMEMBER_FOR));
        let sandbox = Sandbox::generate(nonces.clone()).unwrap();
        let other = Sandbox::generate(nonces).unwrap();
        let now = Utc::now();
        let intent = Uuid::now_v7();
        let (signature, body) = sandbox.notification(intent, "9.90".parse().unwrap(), now);
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        let notice = Notice {
            headers: &headers,
            body: &body,
        };
        let refused = |r: Result<VerifiedPayment, PaymentError>| match r {
            Err(PaymentError::Refused(r)) => r,
            other => panic!("not refused: {other:?}"),
        };
        assert_eq!(
            refused(other.verify_notice(notice, now).await),
            Refusal::Signature
        );
        let late = now + chrono::Duration::minutes(6);
        assert_eq!(
            refused(sandbox.verify_notice(notice, late).await),
            Refusal::Stale
        );
        let paid = sandbox.verify_notice(notice, now).await.unwrap();
        assert_eq!(
            (paid.intent_id, paid.amount.to_string()),
            (intent, "9.90".into())
        );
        assert_eq!(
            refused(sandbox.verify_notice(notice, now).await),
            Refusal::Replayed
        );
        let tampered = String::from_utf8(body.clone())
            .unwrap()
            .replace("9.90", "0.01");
        let notice = Notice {
            headers: &headers,
            body: tampered.as_bytes(),
        };
        assert_eq!(
            refused(sandbox.verify_notice(notice, now).await),
            Refusal::Signature
        );
    }
}
