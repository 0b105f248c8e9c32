//! The load: closed-loop HTTP/1.1 clients (one keep-alive connection each, hyper's client
//! connection API, the request bytes built once) recording latencies in an HDR histogram,
//! and idle WebSocket subscriptions for the memory scenario.
//!
//! Requests say `Accept-Encoding: gzip`, as browsers and GraphQL clients in them do; the
//! server sends the answers its response cache keeps gzipped as kept, and compresses every
//! other answer from `PUSHHAND_COMPRESS_FROM_BYTES` (1 KiB) as it goes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// One step of a scenario: a GraphQL request, signed in or not. A step may depend on the
/// previous answer (checkout then payment), see [`Script`].
#[derive(Clone)]
pub struct Call {
    pub query: String,
    pub variables: Value,
    pub token: Option<String>,
}

/// What each client repeats: a fixed call, or checkout + payment (the second call needs the
/// order id and total from the first). Client `i` of a checkout places `places[i % len]`
/// (each shopper their own call, signed in as them).
#[derive(Clone)]
pub enum Script {
    Repeat(Call),
    Checkout {
        places: Vec<Call>,
        pay: Pay,
    },
    /// The buyer's path per order: each of `adds` (`addToCart`, answering the cart's lines),
    /// then `placeOrder` of the cart's lines to the shopper's address, then the payment.
    /// Client `i` is `shoppers[i % len]`.
    CartCheckout {
        shoppers: Vec<CartShopper>,
        pay: Pay,
    },
    /// Orders that each use something once (a cart filled beforehand, a coupon), then the
    /// payment: client `i` places `places[i]`'s calls in turn, one an order (running out is
    /// an error: more are needed for the run's length).
    Orders {
        places: Arc<Vec<Vec<Call>>>,
        pay: Pay,
    },
    /// `GET /s/{code}` (S15): client `i` visits `codes[(i + n * clients) % len]` on its
    /// `n`-th request, as a visitor never seen before (its own `User-Agent` each time), so
    /// every visit is recorded; a visit is done when it answers the redirect (302).
    Visits {
        codes: Arc<Vec<String>>,
    },
}

/// How a checkout script pays for the order it placed.
#[derive(Clone)]
pub enum Pay {
    /// An admin's `confirmPayment`, standing in for the provider (S6, S9): one request.
    Confirm { admin_token: String },
    /// The buyer's `createPayment(channel: SANDBOX)`, then the sandbox's pay button
    /// (`POST /payments/sandbox/{intentId}/pay`), which signs a notification and sends it
    /// through the notification path — verified (HMAC, timestamp window, nonce never seen)
    /// and booked as a provider's would be (S10): two requests.
    Sandbox,
}

/// One S9-path shopper: signed in as `token`, adding `adds` to the cart, shipping to `address_id`.
#[derive(Clone)]
pub struct CartShopper {
    pub token: String,
    pub adds: Vec<Call>,
    pub address_id: String,
}

/// Results of one scenario.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Stats {
    /// Completed iterations (requests, or orders for a checkout script).
    pub iterations: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// Largest resident memory of the server seen while the scenario ran, bytes.
    pub max_rss: u64,
    /// The server process's CPU time over the measured seconds, in milliseconds per
    /// iteration (its own threads only: not PostgreSQL's or Redis's). Far steadier than a
    /// rate on a shared machine, where a neighbour's load moves the rate but hardly the
    /// work an iteration takes.
    pub server_cpu_ms: Option<f64>,
}

struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    async fn post(
        &mut self,
        addr: SocketAddr,
        body: Bytes,
        token: Option<&str>,
    ) -> anyhow::Result<Value> {
        let answer = self.post_raw(addr, body, token).await?;
        let bytes = answer.json()?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&bytes)))
    }

    async fn post_raw(
        &mut self,
        addr: SocketAddr,
        body: Bytes,
        token: Option<&str>,
    ) -> anyhow::Result<Answer> {
        self.post_to(addr, "/graphql", body, token)
            .await
            .map(|(_, a)| a)
    }

    /// GETs `path` as `user_agent`; answers the status.
    async fn get(
        &mut self,
        addr: SocketAddr,
        path: &str,
        user_agent: &str,
    ) -> anyhow::Result<hyper::StatusCode> {
        self.sender.ready().await?;
        let req = Request::get(path)
            .header("host", addr.to_string())
            .header("user-agent", user_agent)
            .body(Full::new(Bytes::new()))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        resp.into_body().collect().await?;
        Ok(status)
    }

    /// POSTs `body` to `path`; answers the status and the body as it came.
    async fn post_to(
        &mut self,
        addr: SocketAddr,
        path: &str,
        body: Bytes,
        token: Option<&str>,
    ) -> anyhow::Result<(hyper::StatusCode, Answer)> {
        self.sender.ready().await?;
        let mut req = Request::post(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .header("accept-encoding", "gzip");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = self.sender.send_request(req.body(Full::new(body))?).await?;
        let status = resp.status();
        let gzip = resp
            .headers()
            .get("content-encoding")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, Answer { gzip, bytes }))
    }
}

/// An answer's body as it came: gzip-compressed or not.
struct Answer {
    gzip: bool,
    bytes: Bytes,
}

impl Answer {
    /// The JSON (inflated if it came compressed).
    fn json(&self) -> anyhow::Result<Bytes> {
        if !self.gzip {
            return Ok(self.bytes.clone());
        }
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&self.bytes[..]), &mut out)
            .context("a gzip answer that does not inflate")?;
        Ok(Bytes::from(out))
    }

    /// Whether it is an error answer (it has an `"errors"` key). Not parsed: a 30 KB page
    /// would cost the load generator more than the server; a compressed answer is inflated
    /// the first time and then one time in `COMPRESSED_CHECK_EVERY` (inflating every one
    /// would cost the load generator more than the server; error answers are small, under
    /// the server's compression threshold, so they come plain and are always checked).
    fn failed(&self, nth: u64) -> anyhow::Result<bool> {
        let json = if !self.gzip {
            self.bytes.clone()
        } else if nth.is_multiple_of(COMPRESSED_CHECK_EVERY) {
            self.json()?
        } else {
            return Ok(false);
        };
        Ok(json.windows(9).any(|w| w == b"\"errors\":"))
    }
}

/// One compressed answer in this many is inflated and checked.
const COMPRESSED_CHECK_EVERY: u64 = 64;

fn body(call: &Call) -> Bytes {
    Bytes::from(json!({ "query": call.query, "variables": call.variables }).to_string())
}

/// Runs `script` from `clients` connections for `warmup` (discarded) then `measure`,
/// sampling the memory of the server (process `pid`) every 100 ms and its CPU time at the
/// start and the end of the measured seconds.
pub async fn run(
    addr: SocketAddr,
    script: &Script,
    clients: usize,
    warmup: Duration,
    measure: Duration,
    expect_errors: bool,
    pid: u32,
) -> anyhow::Result<Stats> {
    let started = Instant::now();
    let measuring_from = started + warmup;
    let until = measuring_from + measure;
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop_sampling.clone();
        tokio::spawn(async move {
            let mut max = 0;
            while !stop.load(Ordering::Relaxed) {
                max = max.max(crate::server::rss_of(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            max
        })
    };
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(measuring_from.into()).await;
        let from = crate::server::cpu_ms_of(pid);
        tokio::time::sleep_until(until.into()).await;
        Some(crate::server::cpu_ms_of(pid)? - from?)
    });
    let mut tasks = Vec::new();
    for client in 0..clients {
        let script = script.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let (mut done, mut errors, mut sent) = (0u64, 0u64, 0u64);
            let mut next_order = 0usize;
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                let ok = match &script {
                    Script::Repeat(call) => {
                        sent += 1;
                        !conn
                            .post_raw(addr, body(call), call.token.as_deref())
                            .await?
                            .failed(sent - 1)?
                    }
                    Script::Checkout { places, pay } => {
                        let place = places
                            .get(client % places.len().max(1))
                            .context("a checkout script without calls")?;
                        sent += 1;
                        checkout(&mut conn, addr, place, pay, sent == 1).await?
                    }
                    Script::CartCheckout { shoppers, pay } => {
                        let shopper = shoppers
                            .get(client % shoppers.len().max(1))
                            .context("a cart checkout script without shoppers")?;
                        sent += 1;
                        cart_checkout(&mut conn, addr, shopper, pay, sent == 1).await?
                    }
                    Script::Visits { codes } => {
                        let code = codes
                            .get((client + sent as usize * clients) % codes.len().max(1))
                            .context("a visit script without codes")?;
                        sent += 1;
                        let status = conn
                            .get(
                                addr,
                                &format!("/s/{code}"),
                                &format!("bench/{client}/{sent}"),
                            )
                            .await?;
                        status == hyper::StatusCode::FOUND
                    }
                    Script::Orders { places, pay } => {
                        let place = places
                            .get(client)
                            .and_then(|mine| mine.get(next_order))
                            .context("the script ran out of orders: raise --s9-carts")?;
                        next_order += 1;
                        sent += 1;
                        checkout(&mut conn, addr, place, pay, sent == 1).await?
                    }
                };
                let t1 = Instant::now();
                if t0 >= measuring_from {
                    hist.record((t1 - t0).as_micros().max(1) as u64)?;
                    done += 1;
                    if !ok {
                        errors += 1;
                    }
                }
            }
            Ok::<_, anyhow::Error>((hist, done, errors))
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut done, mut errors) = (0, 0);
    for t in tasks {
        let (h, d, e) = t.await??;
        hist.add(h)?;
        done += d;
        errors += e;
    }
    stop_sampling.store(true, Ordering::Relaxed);
    let max_rss = sampler.await?;
    let cpu_ms = cpu.await?;
    if errors > 0 && !expect_errors {
        bail!("{errors} of {done} requests answered with errors");
    }
    let seconds = measure.as_secs_f64();
    Ok(Stats {
        iterations: done,
        seconds,
        per_second: done as f64 / seconds,
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1e3,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1e3,
        errors,
        max_rss,
        server_cpu_ms: cpu_ms.filter(|_| done > 0).map(|ms| ms / done as f64),
    })
}

/// One order the buyer's way: fill the cart, place the order from those lines, pay.
async fn cart_checkout(
    conn: &mut Conn,
    addr: SocketAddr,
    shopper: &CartShopper,
    pay: &Pay,
    first: bool,
) -> anyhow::Result<bool> {
    let mut lines = Vec::new();
    for add in &shopper.adds {
        let added = conn.post(addr, body(add), Some(&shopper.token)).await?;
        lines = cart_line_ids(&added)?;
    }
    let place = Call {
        query: PLACE_FROM_CART.into(),
        variables: json!({ "i": { "cartLineIds": lines, "addressId": shopper.address_id } }),
        token: Some(shopper.token.clone()),
    };
    checkout(conn, addr, &place, pay, first).await
}

/// The cart's line IDs from an `addToCart { lines { id } }` answer.
pub fn cart_line_ids(added: &Value) -> anyhow::Result<Vec<String>> {
    let Some(lines) = added["data"]["addToCart"]["lines"].as_array() else {
        bail!("addToCart failed: {added}");
    };
    lines
        .iter()
        .map(|l| {
            l["id"]
                .as_str()
                .map(str::to_owned)
                .context("a line without id")
        })
        .collect()
}

/// S9's order: from cart lines, to an address.
pub const PLACE_FROM_CART: &str =
    "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total shippingFee } }";

/// One order: place it, then pay for it (`pay`). Errors are fatal (a checkout benchmark
/// that fails is no benchmark). The sandbox's pay button answers 204 whether or not the
/// notification booked the payment (as a provider expects), so a client's `first` order
/// is read back to see it `PAID` (in the warm-up: not measured).
async fn checkout(
    conn: &mut Conn,
    addr: SocketAddr,
    place: &Call,
    pay: &Pay,
    first: bool,
) -> anyhow::Result<bool> {
    let placed = conn.post(addr, body(place), place.token.as_deref()).await?;
    let order = &placed["data"]["placeOrder"];
    let (Some(id), Some(total)) = (order["id"].as_str(), order["total"].as_str()) else {
        bail!("placeOrder failed: {placed}");
    };
    match pay {
        Pay::Confirm { admin_token } => {
            let confirm = Call {
                query:
                    "mutation($i: ConfirmPaymentInput!) { confirmPayment(input: $i) { status } }"
                        .into(),
                variables: json!({ "i": { "orderId": id, "paymentReference": format!("bench-{id}"), "amount": total } }),
                token: None,
            };
            let paid = conn.post(addr, body(&confirm), Some(admin_token)).await?;
            if paid["data"]["confirmPayment"]["status"] != json!("PAID") {
                bail!("confirmPayment failed: {paid}");
            }
        }
        Pay::Sandbox => {
            let create = Call {
                query: CREATE_PAYMENT.into(),
                variables: json!({ "o": id }),
                token: None,
            };
            let intent = conn
                .post(addr, body(&create), place.token.as_deref())
                .await?;
            let Some(intent_id) = intent["data"]["createPayment"]["id"].as_str() else {
                bail!("createPayment failed: {intent}");
            };
            let path = format!("/payments/sandbox/{intent_id}/pay");
            let (status, answer) = conn.post_to(addr, &path, Bytes::new(), None).await?;
            if status != hyper::StatusCode::NO_CONTENT {
                bail!(
                    "the sandbox's pay button answered {status}: {}",
                    String::from_utf8_lossy(&answer.bytes)
                );
            }
            if first {
                let read = Call {
                    query: ORDER_STATUS.into(),
                    variables: json!({ "o": id }),
                    token: None,
                };
                let read = conn.post(addr, body(&read), place.token.as_deref()).await?;
                if read["data"]["node"]["status"] != json!("PAID") {
                    bail!("a sandbox payment that did not book: {read}");
                }
            }
        }
    }
    Ok(true)
}

/// S10's payment: the buyer opens a sandbox payment for the order.
const CREATE_PAYMENT: &str =
    "mutation($o: ID!) { createPayment(orderId: $o, channel: SANDBOX) { id amount } }";

/// An order's status, read back after a client's first sandbox payment.
const ORDER_STATUS: &str = "query($o: ID!) { node(id: $o) { ... on Order { status } } }";

/// Sends every call at once, each from its own connection opened beforehand (S12: many
/// members claiming at the same moment). Answers the calls' rate over the burst's length
/// (from the start signal to the last answer), with their latencies, and the answers, in the
/// calls' order.
pub async fn burst(addr: SocketAddr, calls: Vec<Call>) -> anyhow::Result<(Stats, Vec<Value>)> {
    let n = calls.len();
    let start = Arc::new(tokio::sync::Barrier::new(n + 1));
    let mut tasks = Vec::with_capacity(n);
    for call in calls {
        let start = start.clone();
        let mut conn = Conn::open(addr).await?;
        tasks.push(tokio::spawn(async move {
            let request = body(&call);
            start.wait().await;
            let t0 = Instant::now();
            let answer = conn.post(addr, request, call.token.as_deref()).await?;
            Ok::<_, anyhow::Error>((t0.elapsed(), answer))
        }));
    }
    start.wait().await;
    let began = Instant::now();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut answers = Vec::with_capacity(n);
    for t in tasks {
        let (took, answer) = t.await??;
        hist.record(took.as_micros().max(1) as u64)?;
        answers.push(answer);
    }
    let seconds = began.elapsed().as_secs_f64();
    let errors = answers.iter().filter(|a| a.get("errors").is_some()).count() as u64;
    Ok((
        Stats {
            iterations: n as u64,
            seconds,
            per_second: n as f64 / seconds.max(1e-9),
            p50_ms: hist.value_at_quantile(0.5) as f64 / 1e3,
            p99_ms: hist.value_at_quantile(0.99) as f64 / 1e3,
            errors,
            max_rss: 0,
            server_cpu_ms: None,
        },
        answers,
    ))
}

/// Sends one request on a fresh connection and returns the answer.
pub async fn once(addr: SocketAddr, call: &Call) -> anyhow::Result<Value> {
    Conn::open(addr)
        .await?
        .post(addr, body(call), call.token.as_deref())
        .await
}

/// Opens `connections` WebSockets with `per_connection` idle `earningsUpdated`
/// subscriptions each, signed in with `token`; returns them (dropping closes them).
pub async fn idle_subscriptions(
    addr: SocketAddr,
    token: &str,
    connections: usize,
    per_connection: usize,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut request = format!("ws://{addr}/graphql/ws").into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
        ws.send(Message::Text(init.to_string().into())).await?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str().contains("connection_ack") => {}
            other => bail!("no connection_ack: {other:?}"),
        }
        for i in 0..per_connection {
            let sub = json!({ "type": "subscribe", "id": format!("s{i}"),
                "payload": { "query": "subscription { earningsUpdated { kind summary { pending } } }" } });
            ws.send(Message::Text(sub.to_string().into())).await?;
        }
        // Keep the socket open and answer pings until dropped.
        held.push(tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Text(t) = msg
                    && t.as_str().contains("\"ping\"")
                {
                    let _ = ws
                        .send(Message::Text(json!({ "type": "pong" }).to_string().into()))
                        .await;
                }
            }
        }));
    }
    Ok(held)
}
