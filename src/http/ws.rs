//! GraphQL over WebSocket at `/graphql/ws`: the `graphql-transport-ws` protocol (the
//! graphql-ws library's) and the legacy `graphql-ws` protocol (subscriptions-transport-ws),
//! with the rules the stock integration lacks:
//!
//! | situation | what the server does |
//! |---|---|
//! | no `connection_init` within 3 s | close 4408 |
//! | token in `connection_init` invalid, expired or revoked | close 4403 |
//! | `subscribe`/`start` before the ack | close 4401 |
//! | an operation id already in use | close 4409 |
//! | a second `connection_init` | close 4429 |
//! | a browser page on an origin `PUSHHAND_CORS_ORIGINS` does not allow | 403 (`FORBIDDEN_ORIGIN`), no upgrade |
//! | more than `PUSHHAND_WS_MAX_PER_CLIENT` sockets open from one client address | 429 (`TOO_MANY_CONNECTIONS`), no upgrade |
//! | a 21st active operation | `error` for that id (`TOO_MANY_SUBSCRIPTIONS`), connection stays |
//! | a message over 64 KiB | close 1009 |
//! | not JSON, unknown type, binary frame | close 4400 |
//! | the token expires or is revoked while connected | `error` (`UNAUTHENTICATED`) for each operation, close 4403 |
//! | the server shuts down | close 1001 |
//!
//! The token comes from the `connection_init` payload: `Authorization` (or `authorization`)
//! as `Bearer <jwt>`, or `token`. Without one the connection is anonymous and
//! `earningsUpdated` answers `UNAUTHENTICATED`. The server pings every 15 s (`ka` in the
//! legacy protocol). One task per connection drives every operation of it (a `StreamMap`),
//! so an idle subscription costs its stream's state and nothing more.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Response;
use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio_stream::StreamMap;

use super::HttpState;
use super::serve::ConnectionSlot;
use crate::events::{Delivery, Kind, MemberEvents};
use crate::graphql::context::ClientAddr;
use crate::graphql::loaders;
use crate::service::auth::{self, Viewer};

/// The two subprotocols; `graphql-transport-ws` when the client names neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    TransportWs,
    Legacy,
}

/// Open WebSockets per client address, capped: one address cannot hold all of the
/// server's connections. Loopback is not exempt (behind a local proxy every client would
/// be loopback): a benchmark raises `PUSHHAND_WS_MAX_PER_CLIENT` instead.
#[derive(Clone)]
pub struct PerClient {
    max: usize,
    open: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
}

/// One open WebSocket of a client; dropping it frees the place.
pub struct ClientSlot {
    ip: IpAddr,
    open: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
}

impl PerClient {
    pub fn new(max: usize) -> PerClient {
        PerClient {
            max,
            open: Arc::default(),
        }
    }

    /// A place for one more WebSocket of `ip`, if it has fewer than the cap open.
    fn take(&self, ip: IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

pub async fn upgrade(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    connection: Option<Extension<ConnectionSlot>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> HttpResponse {
    // Browsers let any page open a WebSocket anywhere: the origin is the only guard.
    if !state.origins.allows_websocket(&headers) {
        let body = json!({ "errors": [{
            "message": "this origin may not open a WebSocket here (PUSHHAND_CORS_ORIGINS)",
            "extensions": { "code": "FORBIDDEN_ORIGIN" },
        }] });
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    let client = state.proxies.client(peer, &headers);
    let Some(client_slot) = state.ws_clients.take(client) else {
        let max = state.app.config.ws_max_per_client;
        let body = json!({ "errors": [{
            "message": format!("at most {max} WebSockets may be open from one address"),
            "extensions": { "code": "TOO_MANY_CONNECTIONS" },
        }] });
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    };
    let max = state.app.config.ws_max_message_bytes;
    let ws = ws
        .protocols(["graphql-transport-ws", "graphql-ws"])
        // The transport's own cap, above ours so that we can close cleanly with 1009.
        .max_message_size(max * 4)
        .max_frame_size(max * 4)
        // Small buffers (they grow for a large message): tungstenite's default of 128 KiB
        // each way would make 500 idle connections cost 128 MiB. Messages here are small
        // (a subscribe, a ping), and most sockets sit idle.
        .read_buffer_size(1024)
        .write_buffer_size(0);
    let protocol = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some("graphql-ws") => Protocol::Legacy,
        _ => Protocol::TransportWs,
    };
    ws.on_upgrade(move |socket| async move {
        // Counted, so that shutdown waits for the close frames to go out.
        let _tracked = state.connections.token();
        // Held while the socket is open: its place under the caps.
        let _places = (client_slot, connection);
        let metrics = state.app.metrics.clone();
        metrics.ws_connections.inc();
        let code = Connection::new(state, protocol, client).run(socket).await;
        metrics.ws_connections.dec();
        metrics
            .ws_closes
            .get_or_create(&crate::metrics::CloseLabels { code })
            .inc();
    })
}

type OpStream = Pin<Box<dyn Stream<Item = Option<Response>> + Send>>;

/// Why the loop ended: the close code and reason to send.
struct Close(u16, String);

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Close {
        Close(code, reason.into())
    }
}

struct Connection {
    state: Arc<HttpState>,
    protocol: Protocol,
    client: IpAddr,
    init_received: bool,
    /// The raw token, re-checked after a resync (a revocation may have been missed).
    token: Option<String>,
    /// When the token expires.
    expires: Option<tokio::time::Instant>,
    /// The member's events, for revocations.
    revocations: Option<MemberEvents>,
    ops: StreamMap<String, OpStream>,
    /// What every operation of the connection reads from its context, shared by them: the
    /// viewer, the client's address, and one set of loaders without a cache (a
    /// subscription lives long, and each event must read fresh rows). Set at init.
    session: Arc<async_graphql::Data>,
}

impl Connection {
    fn new(state: Arc<HttpState>, protocol: Protocol, client: IpAddr) -> Connection {
        Connection {
            state,
            protocol,
            client,
            init_received: false,
            token: None,
            expires: None,
            revocations: None,
            ops: StreamMap::new(),
            session: Default::default(),
        }
    }

    /// Serves the connection until it closes; returns the close code sent (or 1000 when the
    /// client went away).
    async fn run(mut self, mut socket: WebSocket) -> u16 {
        let config = self.state.app.config.clone();
        let init_deadline = tokio::time::sleep(Duration::from_secs(config.ws_init_timeout_seconds));
        tokio::pin!(init_deadline);
        let every = Duration::from_secs(config.ws_keepalive_seconds);
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let shutdown = self.state.shutdown.clone();
        let close = loop {
            let expiry = async {
                match self.expires {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let revoked = async {
                match self.revocations.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let step = tokio::select! {
                _ = &mut init_deadline, if !self.init_received => {
                    Err(Close::new(4408, "Connection initialisation timeout"))
                }
                _ = shutdown.cancelled() => Err(Close::new(1001, "server shutting down")),
                msg = socket.recv() => match msg {
                    Some(Ok(msg)) => self.on_message(&mut socket, msg).await,
                    // The client left (or the transport failed): nothing to send.
                    _ => return 1000,
                },
                Some((id, item)) = self.ops.next(), if !self.ops.is_empty() => {
                    self.on_result(&mut socket, id, item).await
                }
                _ = keepalive.tick(), if self.init_received => {
                    let ping = match self.protocol {
                        Protocol::TransportWs => json!({ "type": "ping" }),
                        Protocol::Legacy => json!({ "type": "ka" }),
                    };
                    send(&mut socket, &ping).await
                }
                _ = expiry => Err(self.end_all(&mut socket, "token expired").await),
                delivery = revoked => self.on_member_event(&mut socket, delivery).await,
            };
            if let Err(close) = step {
                break close;
            }
        };
        let Close(code, reason) = close;
        self.state
            .app
            .metrics
            .ws_subscriptions
            .dec_by(self.ops.len() as i64);
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
        code
    }

    async fn on_message(&mut self, socket: &mut WebSocket, msg: Message) -> Result<(), Close> {
        let text = match msg {
            Message::Text(t) => t,
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
            Message::Close(_) => return Err(Close::new(1000, "bye")),
            Message::Binary(_) => {
                return Err(Close::new(4400, "binary messages are not supported"));
            }
        };
        if text.len() > self.state.app.config.ws_max_message_bytes {
            return Err(Close::new(1009, "message too big"));
        }
        let Ok(msg) = serde_json::from_str::<Value>(text.as_str()) else {
            return Err(Close::new(4400, "Invalid message: not JSON"));
        };
        let kind = msg.get("type").and_then(Value::as_str).unwrap_or_default();
        match (self.protocol, kind) {
            (_, "connection_init") => self.on_init(socket, &msg).await,
            (Protocol::TransportWs, "ping") => {
                let mut pong = json!({ "type": "pong" });
                if let Some(p) = msg.get("payload") {
                    pong["payload"] = p.clone();
                }
                send(socket, &pong).await
            }
            (Protocol::TransportWs, "pong") => Ok(()),
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                self.on_subscribe(socket, &msg).await
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                let Some(id) = msg.get("id").and_then(Value::as_str) else {
                    return Err(Close::new(4400, "Invalid message: no id"));
                };
                if self.ops.remove(id).is_some() {
                    self.state.app.metrics.ws_subscriptions.dec();
                    if self.protocol == Protocol::Legacy {
                        send(socket, &json!({ "type": "complete", "id": id })).await?;
                    }
                }
                Ok(())
            }
            (Protocol::Legacy, "connection_terminate") => Err(Close::new(1000, "terminated")),
            _ => Err(Close::new(4400, format!("Invalid message type {kind:?}"))),
        }
    }

    async fn on_init(&mut self, socket: &mut WebSocket, msg: &Value) -> Result<(), Close> {
        if self.init_received {
            return Err(Close::new(4429, "Too many initialisation requests"));
        }
        self.init_received = true;
        let payload = msg.get("payload").unwrap_or(&Value::Null);
        let token = token_of(payload);
        let app = &self.state.app;
        let credentials = app.tokens.credentials(token.as_deref());
        let viewer = auth::viewer_of(&app.db, credentials)
            .await
            .map_err(|_| Close::new(1011, "authentication unavailable"))?;
        if let Viewer::Rejected = viewer {
            if self.protocol == Protocol::Legacy {
                let error =
                    json!({ "type": "connection_error", "payload": { "message": "Forbidden" } });
                send(socket, &error).await?;
            }
            return Err(Close::new(4403, "Forbidden"));
        }
        if let (Viewer::Member(m), auth::Credentials::Token { expires, .. }) =
            (&viewer, credentials)
        {
            let left_ms = expires.saturating_mul(1000) - chrono::Utc::now().timestamp_millis();
            self.expires = Some(
                tokio::time::Instant::now()
                    + Duration::from_millis(u64::try_from(left_ms).unwrap_or(0)),
            );
            self.revocations = Some(app.events.subscribe(m.id));
        }
        let loaders = loaders::for_request(app);
        loaders.enable_all_cache(false);
        let mut session = async_graphql::Data::default();
        session.insert(loaders);
        session.insert(viewer);
        session.insert(ClientAddr(self.client));
        self.session = Arc::new(session);
        self.token = token;
        send(socket, &json!({ "type": "connection_ack" })).await?;
        if self.protocol == Protocol::Legacy {
            send(socket, &json!({ "type": "ka" })).await?;
        }
        Ok(())
    }

    async fn on_subscribe(&mut self, socket: &mut WebSocket, msg: &Value) -> Result<(), Close> {
        if !self.init_received {
            return Err(Close::new(4401, "Unauthorized"));
        }
        let Some(id) = msg
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty() && id.len() <= 128)
        else {
            return Err(Close::new(4400, "Invalid message: no id"));
        };
        if self.ops.contains_key(id) {
            return Err(Close::new(
                4409,
                format!("Subscriber for {id} already exists"),
            ));
        }
        let max = self.state.app.config.ws_max_subscriptions;
        if self.ops.len() >= max {
            let error = json!([{
                "message": format!("at most {max} operations may be active on one connection"),
                "extensions": { "code": "TOO_MANY_SUBSCRIPTIONS" }
            }]);
            return send_error(socket, id, error).await;
        }
        let Some(mut request) = msg
            .get("payload")
            .cloned()
            .and_then(|p| serde_json::from_value::<async_graphql::Request>(p).ok())
        else {
            return Err(Close::new(
                4400,
                "Invalid message: payload is not a GraphQL request",
            ));
        };
        if let Err(refusal) = self.state.persisted.resolve(&mut request).await {
            return send_error(socket, id, refusal.errors()).await;
        }
        let app = &self.state.app;
        let stream = self
            .state
            .api
            .execute_stream(request, self.session.clone())
            .map(Some)
            .chain(futures_util::stream::once(async { None }));
        self.ops.insert(id.to_owned(), Box::pin(stream));
        app.metrics.ws_subscriptions.inc();
        Ok(())
    }

    /// One result of operation `id`: `next`/`data`, or `error` (which ends the operation),
    /// or — at the end of its stream — `complete`.
    async fn on_result(
        &mut self,
        socket: &mut WebSocket,
        id: String,
        item: Option<Response>,
    ) -> Result<(), Close> {
        let Some(response) = item else {
            // The stream ended (StreamMap dropped it already).
            self.state.app.metrics.ws_subscriptions.dec();
            return send(socket, &json!({ "type": "complete", "id": id })).await;
        };
        if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
            // Nothing but errors: the operation failed (e.g. UNAUTHENTICATED, validation).
            self.ops.remove(&id);
            self.state.app.metrics.ws_subscriptions.dec();
            let errors = serde_json::to_value(&response.errors).unwrap_or(Value::Null);
            return send_error(socket, &id, errors).await;
        }
        let payload = serde_json::to_value(&response).unwrap_or(Value::Null);
        let kind = match self.protocol {
            Protocol::TransportWs => "next",
            Protocol::Legacy => "data",
        };
        send(
            socket,
            &json!({ "type": kind, "id": id, "payload": payload }),
        )
        .await
    }

    /// The token is no longer good: every operation gets an `UNAUTHENTICATED` error, then
    /// the connection closes with 4403 (a client reconnects with a fresh token).
    async fn end_all(&mut self, socket: &mut WebSocket, why: &str) -> Close {
        let ids: Vec<String> = self.ops.keys().cloned().collect();
        for id in ids {
            let error = json!([{ "message": why, "extensions": { "code": "UNAUTHENTICATED" } }]);
            if send_error(socket, &id, error).await.is_err() {
                break;
            }
        }
        Close::new(4403, format!("Forbidden: {why}"))
    }

    /// A delivery on the connection's own member channel: a revocation ends the
    /// connection; after a resync the token is checked again (a revocation may have been
    /// among the lost events).
    async fn on_member_event(
        &mut self,
        socket: &mut WebSocket,
        delivery: Delivery,
    ) -> Result<(), Close> {
        let revoked = match delivery {
            Delivery::Event(e) => e.kind == Kind::TokensRevoked,
            Delivery::Resync => {
                let app = &self.state.app;
                let credentials = app.tokens.credentials(self.token.as_deref());
                let viewer = auth::viewer_of(&app.db, credentials)
                    .await
                    .map_err(|_| Close::new(1011, "authentication unavailable"))?;
                !matches!(viewer, Viewer::Member(_))
            }
        };
        if revoked {
            return Err(self.end_all(socket, "token revoked").await);
        }
        Ok(())
    }
}

/// The token of a `connection_init` payload: `Authorization`, `authorization` or `token`
/// (also inside a `headers` object, as some clients send it).
fn token_of(payload: &Value) -> Option<String> {
    let pick = |v: &Value| {
        ["Authorization", "authorization", "token"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let value = pick(payload).or_else(|| payload.get("headers").and_then(pick))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .unwrap_or(&value)
        .trim();
    Some(token.to_owned())
}

async fn send_error(socket: &mut WebSocket, id: &str, errors: Value) -> Result<(), Close> {
    send(
        socket,
        &json!({ "type": "error", "id": id, "payload": errors }),
    )
    .await
}

async fn send(socket: &mut WebSocket, msg: &Value) -> Result<(), Close> {
    socket
        .send(Message::Text(msg.to_string().into()))
        .await
        .map_err(|_| Close::new(1006, "client gone"))
}
