//! Calls to a provider's API, with hyper's client (the HTTP stack the server is built with,
//! as `telemetry::otlp` does): no second HTTP client or TLS stack is compiled in, so a
//! provider's API is reached over `http://` — an egress proxy beside the server that speaks
//! TLS to the provider (`https://` base URLs are refused at start). Only WeChat Pay is called
//! from the server; Alipay's page pay is a signed URL the buyer's browser opens.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How long one call may take, answer included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read (a provider's answers are small JSON documents).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// A provider's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: Bytes,
}

/// A pooled HTTP/1 client.
#[derive(Clone, Debug)]
pub struct Transport {
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Default for Transport {
    fn default() -> Transport {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(TIMEOUT));
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Transport { http }
    }
}

impl Transport {
    /// Sends `request`, reading the whole answer, within [`TIMEOUT`].
    pub async fn send(&self, request: axum::http::Request<Full<Bytes>>) -> anyhow::Result<Answer> {
        let exchange = async {
            let answer = self.http.request(request).await.context("sending")?;
            let (parts, body) = answer.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
                .to_bytes();
            Ok(Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {TIMEOUT:?}"))?
    }
}
