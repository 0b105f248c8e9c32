//! A small graphql-ws client over tokio-tungstenite, speaking either subprotocol, for the
//! subscription tests: it sends what a client library sends and hands back every message
//! or the close frame, so the tests can assert the protocol exactly.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestApp;

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY: &str = "graphql-ws";

/// How long a test waits for an expected message.
const PATIENCE: Duration = Duration::from_secs(10);

/// What arrived.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    Json(Value),
    Closed(u16, String),
}

pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    pub protocol: String,
}

impl Ws {
    /// Opens a WebSocket to `/graphql/ws` offering `protocol`.
    pub async fn connect(app: &TestApp, protocol: &str) -> Ws {
        let url = format!("ws://{}/graphql/ws", app.addr);
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocol).expect("header"),
        );
        let (stream, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket handshake");
        let chosen = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(chosen, protocol, "the server speaks the offered protocol");
        Ws {
            stream,
            protocol: chosen,
        }
    }

    pub async fn send(&mut self, msg: Value) {
        self.send_text(msg.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next protocol message or the close, skipping keep-alives (`ping`/`ka`).
    pub async fn recv(&mut self) -> Incoming {
        self.recv_within(PATIENCE)
            .await
            .expect("a message before the timeout")
    }

    /// Like [`Ws::recv`], `None` when nothing arrives within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Incoming> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("JSON message");
                    if matches!(v["type"].as_str(), Some("ping" | "ka")) {
                        continue;
                    }
                    return Some(Incoming::Json(v));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Some(Incoming::Closed(code, reason));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Incoming::Closed(1006, "dropped".into())),
            }
        }
    }

    /// The next message, which must be JSON.
    pub async fn json(&mut self) -> Value {
        match self.recv().await {
            Incoming::Json(v) => v,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            match self.recv().await {
                Incoming::Closed(code, reason) => return (code, reason),
                Incoming::Json(_) => continue,
            }
        }
    }

    /// `connection_init` with the token (if any) and the ack.
    pub async fn init(&mut self, token: Option<&str>) {
        let payload = match token {
            Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
            None => json!({}),
        };
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = self.json().await;
        assert_eq!(ack["type"], json!("connection_ack"), "{ack}");
    }

    /// Starts operation `id` (`subscribe`, or `start` in the legacy protocol).
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.protocol == LEGACY {
            "start"
        } else {
            "subscribe"
        };
        self.send(json!({ "type": kind, "id": id,
                          "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next data message (`next`, or `data` in the legacy protocol) for `id`, returning
    /// its `payload`.
    pub async fn next(&mut self, id: &str) -> Value {
        let kind = if self.protocol == LEGACY {
            "data"
        } else {
            "next"
        };
        let msg = self.json().await;
        assert_eq!(msg["type"], json!(kind), "{msg}");
        assert_eq!(msg["id"], json!(id), "{msg}");
        msg["payload"].clone()
    }

    /// Asserts that nothing but keep-alives arrives for `wait`.
    pub async fn silent_for(&mut self, wait: Duration) {
        if let Some(msg) = self.recv_within(wait).await {
            panic!("expected silence, got {msg:?}");
        }
    }
}
