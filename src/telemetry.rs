//! Structured logging with `tracing`: human-readable text by default (coloured only on a
//! terminal: a log file or collector gets no escape codes), JSON lines for log collectors;
//! the level comes from `RUST_LOG` (default `info`).
//!
//! When `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, the
//! server also exports its spans over OTLP/HTTP with protobuf bodies ([`otlp`]): each
//! request's `request` span ([`crate::http::access`]) joins the caller's trace when the
//! request carries a W3C `traceparent`, and starts a trace of its own otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Whether spans are being exported (set once by [`init`]): the request span then carries
/// the caller's trace context, which costs a header parse the server skips otherwise.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported over OTLP.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// What [`init`] set up. [`Telemetry::shutdown`] exports the spans still queued; call it
/// before the runtime goes away.
#[must_use = "call shutdown() before exiting, or queued spans are lost"]
#[derive(Default)]
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is queued and stops the exporter (a no-op without one).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "exporting the last spans over OTLP failed");
        }
    }
}

/// Installs the global subscriber: logs as `format`, plus the OTLP span exporter when
/// `runtime` is given and the `OTEL_*` environment asks for one (its HTTP requests run on
/// `runtime`). Safe to call more than once (later calls change nothing). A bad `OTEL_*`
/// setting is an error naming it.
pub fn init(
    format: LogFormat,
    runtime: Option<&tokio::runtime::Handle>,
) -> anyhow::Result<Telemetry> {
    let settings = match runtime {
        Some(_) => otlp::Settings::from_env(|name| std::env::var(name).ok())?,
        None => None,
    };
    let endpoint = settings.as_ref().map(|s| s.endpoint.clone());
    let provider = match (settings, runtime) {
        (Some(settings), Some(runtime)) => Some(otlp::provider(settings, runtime.clone())?),
        _ => None,
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal());
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    let spans = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider;
        tracing_opentelemetry::layer().with_tracer(p.tracer("pushhand"))
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(spans)
        .try_init()
        .is_ok();
    if !installed {
        // Another subscriber was there first: nothing would reach this exporter.
        return Ok(Telemetry::default());
    }
    if provider.is_some() {
        EXPORTING.store(true, Ordering::Relaxed);
        let endpoint = endpoint.unwrap_or_default();
        tracing::info!(%endpoint, "exporting spans over OTLP/HTTP");
    }
    Ok(Telemetry { provider })
}

/// The OTLP/HTTP span exporter: which `OTEL_*` settings it reads, and the HTTP client that
/// sends its batches.
///
/// The exporter posts protobuf batches (`application/x-protobuf`) to `<endpoint>/v1/traces`
/// from the SDK's batch thread. Its requests go out through hyper's client on the server's
/// own runtime (the HTTP stack the server is built with), so no second HTTP client or TLS
/// stack is compiled in: endpoints are `http://` — a collector or agent beside the server,
/// as OpenTelemetry deployments usually run one — and `https://` is refused at start.
pub mod otlp {
    use std::time::Duration;

    use anyhow::bail;
    use http_body_util::{BodyExt, Full, Limited};
    use hyper_util::client::legacy::Client as HyperClient;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use opentelemetry_http::{Bytes, HttpError, Request, Response};
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    /// How long one export request may take, body included (OpenTelemetry's default).
    pub const TIMEOUT: Duration = Duration::from_secs(10);

    /// The largest collector answer read (it is a small protobuf message, or an error text).
    const MAX_ANSWER_BYTES: usize = 64 * 1024;

    /// What the environment asks for.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Settings {
        /// Where batches are posted: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, or
        /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
        pub endpoint: String,
    }

    impl Settings {
        /// The settings `var` gives (`std::env::var` in the server), or `None` when no
        /// endpoint is set, `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
        pub fn from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Settings>> {
            let set = |name: &str| {
                var(name)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
            };
            if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                return Ok(None);
            }
            match set("OTEL_TRACES_EXPORTER").as_deref() {
                None | Some("otlp") => {}
                Some("none") => return Ok(None),
                Some(other) => {
                    bail!("OTEL_TRACES_EXPORTER: {other:?} is not supported (`otlp` or `none`)")
                }
            }
            let (name, endpoint) = if let Some(e) = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", e)
            } else if let Some(e) = set("OTEL_EXPORTER_OTLP_ENDPOINT") {
                let base = e.trim_end_matches('/');
                ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("{base}/v1/traces"))
            } else {
                return Ok(None);
            };
            for protocol in [
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ] {
                if let Some(p) = set(protocol)
                    && p != "http/protobuf"
                {
                    bail!("{protocol}: {p:?} is not supported: spans are sent as http/protobuf");
                }
            }
            if endpoint
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            {
                bail!(
                    "{name}: https is not supported: spans are sent over plain HTTP to a \
                     collector or agent beside the server (http://host:4318)"
                );
            }
            match endpoint.parse::<axum::http::Uri>() {
                Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => {}
                _ => bail!("{name}: {endpoint:?} is not an http:// URL"),
            }
            Ok(Some(Settings { endpoint }))
        }
    }

    /// A tracer provider exporting to `settings.endpoint` in batches (the SDK's batch
    /// thread; `OTEL_BSP_*` tune it), sampling as `OTEL_TRACES_SAMPLER` says (default: as
    /// the caller's `traceparent` says, else every trace), with `service.name` from
    /// `OTEL_SERVICE_NAME` (default `pushhand`) and `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn provider(
        settings: Settings,
        runtime: tokio::runtime::Handle,
    ) -> anyhow::Result<SdkTracerProvider> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(settings.endpoint.clone())
            .with_timeout(TIMEOUT)
            .with_http_client(Client::new(runtime))
            .build()
            .map_err(|e| anyhow::anyhow!("OTLP span exporter: {e}"))?;
        let detected = Resource::builder().build();
        let unnamed = detected
            .get(&opentelemetry::Key::from_static_str("service.name"))
            .is_none_or(|name| name.as_str().starts_with("unknown_service"));
        let resource = if unnamed {
            Resource::builder().with_service_name("pushhand").build()
        } else {
            detected
        };
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build())
    }

    /// Sends the exporter's requests with hyper on the server's runtime. The SDK calls it
    /// from its batch thread, which has no runtime: each request is spawned onto `runtime`
    /// and its outcome awaited from there.
    #[derive(Debug)]
    struct Client {
        runtime: tokio::runtime::Handle,
        http: HyperClient<HttpConnector, Full<Bytes>>,
    }

    impl Client {
        fn new(runtime: tokio::runtime::Handle) -> Client {
            let mut connector = HttpConnector::new();
            connector.set_connect_timeout(Some(TIMEOUT));
            connector.set_nodelay(true);
            let http = HyperClient::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector);
            Client { runtime, http }
        }
    }

    #[async_trait::async_trait]
    impl opentelemetry_http::HttpClient for Client {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            let http = self.http.clone();
            let sent = self.runtime.spawn(async move {
                let exchange = async {
                    let (parts, body) = request.into_parts();
                    let answer = http
                        .request(Request::from_parts(parts, Full::new(body)))
                        .await?;
                    let (parts, body) = answer.into_parts();
                    let body = Limited::new(body, MAX_ANSWER_BYTES)
                        .collect()
                        .await?
                        .to_bytes();
                    Ok::<_, HttpError>(Response::from_parts(parts, body))
                };
                match tokio::time::timeout(TIMEOUT, exchange).await {
                    Ok(answer) => answer,
                    Err(_) => Err(format!("no answer within {TIMEOUT:?}").into()),
                }
            });
            sent.await?
        }
    }

    #[cfg(test)]
    mod tests {
        use super::Settings;

        fn settings(vars: &[(&str, &str)]) -> anyhow::Result<Option<Settings>> {
            Settings::from_env(|name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        }

        #[test]
        fn the_endpoint_comes_from_the_standard_variables() {
            assert_eq!(settings(&[]).ok(), Some(None), "off unless asked for");
            assert_eq!(
                settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")])
                    .ok()
                    .flatten()
                    .map(|s| s.endpoint),
                Some("http://collector:4318/v1/traces".to_owned())
            );
            assert_eq!(
                settings(&[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                    (
                        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                        "http://other:4318/traces"
                    ),
                ])
                .ok()
                .flatten()
                .map(|s| s.endpoint),
                Some("http://other:4318/traces".to_owned()),
                "the per-signal variable is used as it is"
            );
            for off in [
                ("OTEL_SDK_DISABLED", "true"),
                ("OTEL_TRACES_EXPORTER", "none"),
            ] {
                let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), off]);
                assert_eq!(s.ok(), Some(None), "{off:?}");
            }
        }

        #[test]
        fn what_cannot_be_sent_is_refused_naming_the_setting() {
            let refused = |vars: &[(&str, &str)], name: &str| {
                let e = settings(vars)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                assert!(e.starts_with(name), "{vars:?}: {e}");
            };
            refused(
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            );
            refused(
                &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318")],
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            );
            refused(
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            );
            refused(
                &[("OTEL_TRACES_EXPORTER", "zipkin")],
                "OTEL_TRACES_EXPORTER",
            );
        }
    }
}

/// `error` and its causes on one line, `: `-separated, each cause written once: a library
/// error that repeats its source in its own message (sea-orm's `Connection Error: <sqlx
/// error>` over that sqlx error) would otherwise print the same words twice.
pub fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}
