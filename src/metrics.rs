//! Prometheus metrics of the server's calls, named and labelled as
//! go-grpc-prometheus names them, so existing gRPC dashboards work unchanged.
//! Every call is observed once, in the glue every handler goes through
//! (`rpc::observe`): grpcio has no interceptors.

use std::sync::Arc;

use grpcio::{MethodType, RpcStatusCode};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// go-grpc-prometheus's default buckets (Prometheus's `DefBuckets`), in seconds.
const HANDLING_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A store round trip: sub-millisecond on a LAN, up to the 1 s timeout.
const STORE_BUCKETS: [f64; 11] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0,
];

/// Every status code, in the order of their numbers.
const CODES: [RpcStatusCode; 17] = [
    RpcStatusCode::OK,
    RpcStatusCode::CANCELLED,
    RpcStatusCode::UNKNOWN,
    RpcStatusCode::INVALID_ARGUMENT,
    RpcStatusCode::DEADLINE_EXCEEDED,
    RpcStatusCode::NOT_FOUND,
    RpcStatusCode::ALREADY_EXISTS,
    RpcStatusCode::PERMISSION_DENIED,
    RpcStatusCode::RESOURCE_EXHAUSTED,
    RpcStatusCode::FAILED_PRECONDITION,
    RpcStatusCode::ABORTED,
    RpcStatusCode::OUT_OF_RANGE,
    RpcStatusCode::UNIMPLEMENTED,
    RpcStatusCode::INTERNAL,
    RpcStatusCode::UNAVAILABLE,
    RpcStatusCode::DATA_LOSS,
    RpcStatusCode::UNAUTHENTICATED,
];

/// A status code as grpc-go's `codes.Code.String()` spells it, which
/// dashboards match on (`Canceled`, not `CANCELLED`).
pub fn go_code_name(code: RpcStatusCode) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES
        .get(i32::from(code) as usize)
        .copied()
        .unwrap_or("Unknown")
}

/// go-grpc-prometheus's `grpc_type` of a method.
fn grpc_type(ty: MethodType) -> &'static str {
    match ty {
        MethodType::Unary => "unary",
        MethodType::ClientStreaming => "client_stream",
        MethodType::ServerStreaming => "server_stream",
        MethodType::Duplex => "bidi_stream",
    }
}

/// The server's metric families, in a registry of their own.
pub struct Metrics {
    registry: Registry,
    started: IntCounterVec,
    handled: IntCounterVec,
    received: IntCounterVec,
    sent: IntCounterVec,
    handling: HistogramVec,
    in_flight: IntGaugeVec,
    rooms: RoomMetrics,
    auth: AuthMetrics,
}

/// The CollaborativeFeed's rooms (`service::rooms`): what an operator watches
/// for them.
#[derive(Clone)]
pub struct RoomMetrics {
    pub(crate) rooms: IntGauge,
    pub(crate) participants: IntGauge,
    /// Participants removed because their queue stayed full.
    pub(crate) lagging: IntCounter,
    /// Round trips to a shared room store.
    pub(crate) store_seconds: Histogram,
    pub(crate) subscription_reconnects: IntCounter,
    pub(crate) gaps_filled: IntCounter,
    pub(crate) gap_ended_calls: IntCounter,
    pub(crate) presence_expiries: IntCounter,
}

/// Authentication (`auth`): calls refused, by reason.
#[derive(Clone)]
pub struct AuthMetrics {
    pub(crate) refused: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

const LABELS: [&str; 3] = ["grpc_type", "grpc_service", "grpc_method"];

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let with_code = [LABELS[0], LABELS[1], LABELS[2], "grpc_code"];
        let metrics = Metrics {
            registry: Registry::new(),
            started: counter(
                "grpc_server_started_total",
                "Total number of RPCs started on the server.",
                &LABELS,
            ),
            handled: counter(
                "grpc_server_handled_total",
                "Total number of RPCs completed on the server, regardless of success or failure.",
                &with_code,
            ),
            received: counter(
                "grpc_server_msg_received_total",
                "Total number of RPC stream messages received on the server.",
                &LABELS,
            ),
            sent: counter(
                "grpc_server_msg_sent_total",
                "Total number of gRPC stream messages sent by the server.",
                &LABELS,
            ),
            handling: HistogramVec::new(
                HistogramOpts::new(
                    "grpc_server_handling_seconds",
                    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
                )
                .buckets(HANDLING_BUCKETS.to_vec()),
                &LABELS,
            )
            .expect("valid metric"),
            in_flight: IntGaugeVec::new(
                Opts::new(
                    "grpc_server_calls_in_flight",
                    "Number of RPCs started on the server and not yet completed.",
                ),
                &LABELS,
            )
            .expect("valid metric"),
            rooms: RoomMetrics {
                rooms: IntGauge::new("messenger_feed_rooms", "Feed rooms open now.")
                    .expect("valid metric"),
                participants: IntGauge::new(
                    "messenger_feed_participants",
                    "Participants in the feed's rooms now.",
                )
                .expect("valid metric"),
                lagging: IntCounter::new(
                    "messenger_feed_lagging_removed_total",
                    "Participants removed from a feed room because their queue (--feed-queue) stayed full for --room-lag-ms.",
                )
                .expect("valid metric"),
                store_seconds: Histogram::with_opts(
                    HistogramOpts::new(
                        "messenger_room_store_round_trip_seconds",
                        "Round trips to the shared room store (--rooms redis://), scripts and pings.",
                    )
                    .buckets(STORE_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
                subscription_reconnects: IntCounter::new(
                    "messenger_room_subscription_reconnects_total",
                    "Times this replica's subscription to the room store was re-established after it dropped.",
                )
                .expect("valid metric"),
                gaps_filled: IntCounter::new(
                    "messenger_room_gaps_filled_total",
                    "Gaps in a room's events (a dropped subscription, a skipped number) filled from the room's history.",
                )
                .expect("valid metric"),
                gap_ended_calls: IntCounter::new(
                    "messenger_room_gap_ended_calls_total",
                    "Room calls ended with UNAVAILABLE because events they needed were no longer in the store.",
                )
                .expect("valid metric"),
                presence_expiries: IntCounter::new(
                    "messenger_room_presence_expiries_total",
                    "Participants this replica announced as left because their heartbeats expired (their replica died or was cut off).",
                )
                .expect("valid metric"),
            },
            auth: AuthMetrics {
                refused: counter(
                    "messenger_auth_refused_total",
                    "Calls refused by authentication (UNAUTHENTICATED) or authorization (PERMISSION_DENIED), by reason.",
                    &["reason"],
                ),
            },
        };
        let families: [Box<dyn prometheus::core::Collector>; 15] = [
            Box::new(metrics.started.clone()),
            Box::new(metrics.handled.clone()),
            Box::new(metrics.received.clone()),
            Box::new(metrics.sent.clone()),
            Box::new(metrics.handling.clone()),
            Box::new(metrics.in_flight.clone()),
            Box::new(metrics.rooms.rooms.clone()),
            Box::new(metrics.rooms.participants.clone()),
            Box::new(metrics.rooms.lagging.clone()),
            Box::new(metrics.rooms.store_seconds.clone()),
            Box::new(metrics.rooms.subscription_reconnects.clone()),
            Box::new(metrics.rooms.gaps_filled.clone()),
            Box::new(metrics.rooms.gap_ended_calls.clone()),
            Box::new(metrics.rooms.presence_expiries.clone()),
            Box::new(metrics.auth.refused.clone()),
        ];
        for family in families {
            metrics.registry.register(family).expect("names are unique");
        }
        Arc::new(metrics)
    }

    /// The rooms' gauges and counter.
    pub fn rooms(&self) -> RoomMetrics {
        self.rooms.clone()
    }

    /// The authentication refusals' counter.
    pub fn auth(&self) -> AuthMetrics {
        self.auth.clone()
    }

    /// The metrics of one method (path `/package.Service/Method`), its
    /// counters resolved once so a call costs a few atomic adds.
    pub(crate) fn method(&self, ty: MethodType, path: &str) -> MethodMetrics {
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", path));
        self.labelled([grpc_type(ty), service, method])
    }

    /// What grpcio answers UNIMPLEMENTED before any handler: calls of methods
    /// no service has. Their names are a client's to choose, so they share
    /// one series (`unknown` for type, service and method) instead of adding
    /// one per name.
    pub(crate) fn unimplemented_checker(&self) -> UnimplementedCalls {
        UnimplementedCalls(Arc::new(self.labelled(["unknown", "unknown", "unknown"])))
    }

    fn labelled(&self, labels: [&str; 3]) -> MethodMetrics {
        MethodMetrics {
            started: self.started.with_label_values(&labels),
            received: self.received.with_label_values(&labels),
            sent: self.sent.with_label_values(&labels),
            handling: self.handling.with_label_values(&labels),
            in_flight: self.in_flight.with_label_values(&labels),
            handled: CODES.map(|code| {
                self.handled.with_label_values(&[
                    labels[0],
                    labels[1],
                    labels[2],
                    go_code_name(code),
                ])
            }),
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn encode(&self) -> Vec<u8> {
        let mut text = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut text);
        text
    }
}

/// One method's counters.
#[derive(Clone)]
pub(crate) struct MethodMetrics {
    pub(crate) started: IntCounter,
    pub(crate) received: IntCounter,
    pub(crate) sent: IntCounter,
    pub(crate) handling: prometheus::Histogram,
    pub(crate) in_flight: IntGauge,
    handled: [IntCounter; 17],
}

impl MethodMetrics {
    pub(crate) fn handled(&self, code: RpcStatusCode) -> &IntCounter {
        let index = usize::try_from(i32::from(code)).unwrap_or(2);
        self.handled.get(index).unwrap_or(&self.handled[2])
    }
}

/// Counts the calls grpcio answers UNIMPLEMENTED itself (a grpcio
/// `ServerChecker`: patches/grpcio/0001 tells checkers of them).
#[derive(Clone)]
pub(crate) struct UnimplementedCalls(Arc<MethodMetrics>);

impl grpcio::ServerChecker for UnimplementedCalls {
    fn check(&mut self, _ctx: &grpcio::RpcContext<'_>) -> grpcio::CheckResult {
        grpcio::CheckResult::Continue
    }

    fn box_clone(&self) -> Box<dyn grpcio::ServerChecker> {
        Box::new(self.clone())
    }

    fn unimplemented(&mut self, _ctx: &grpcio::RpcContext<'_>) {
        let calls = &self.0;
        calls.started.inc();
        calls.handled(RpcStatusCode::UNIMPLEMENTED).inc();
        calls.handling.observe(0.0);
    }
}

/// The `/metrics` page, served over HTTP/1.1 by a thread of its own until
/// dropped. Scrapes are rare and small: one thread is plenty.
pub struct MetricsEndpoint {
    http: Arc<tiny_http::Server>,
    metrics: Arc<Metrics>,
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEndpoint")
            .field("port", &self.port)
            .finish()
    }
}

impl MetricsEndpoint {
    /// Serves `metrics` on `addr` (`HOST:PORT`; port 0 picks a free one).
    pub fn serve(addr: &str, metrics: Arc<Metrics>) -> Result<MetricsEndpoint, String> {
        let http = tiny_http::Server::http(addr)
            .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
        let port = http.server_addr().to_ip().map_or(0, |addr| addr.port());
        let http = Arc::new(http);
        let (server, page) = (http.clone(), metrics.clone());
        let thread = std::thread::Builder::new()
            .name("metrics-http".to_owned())
            .spawn(move || answer_scrapes(&server, &page))
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        Ok(MetricsEndpoint {
            http,
            metrics,
            port,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }
}

fn answer_scrapes(http: &tiny_http::Server, metrics: &Metrics) {
    for request in http.incoming_requests() {
        let response = if request.url() == "/metrics" || request.url().starts_with("/metrics?") {
            let content_type = tiny_http::Header::from_bytes(
                "Content-Type",
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .expect("a valid header");
            tiny_http::Response::from_data(metrics.encode()).with_header(content_type)
        } else {
            tiny_http::Response::from_data(b"not found: the metrics are at /metrics\n".to_vec())
                .with_status_code(404)
        };
        // A scraper that went away needs no answer.
        let _ = request.respond(response);
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.http.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_spelled_as_grpc_go_spells_them() {
        assert_eq!(go_code_name(RpcStatusCode::OK), "OK");
        assert_eq!(go_code_name(RpcStatusCode::CANCELLED), "Canceled");
        assert_eq!(
            go_code_name(RpcStatusCode::DEADLINE_EXCEEDED),
            "DeadlineExceeded"
        );
        assert_eq!(
            go_code_name(RpcStatusCode::UNAUTHENTICATED),
            "Unauthenticated"
        );
        for (number, code) in CODES.iter().enumerate() {
            assert_eq!(i32::from(*code) as usize, number);
        }
    }

    #[test]
    fn a_method_is_labelled_by_type_service_and_name() {
        let metrics = Metrics::new();
        let method = metrics.method(
            MethodType::ServerStreaming,
            "/messenger.LearningMessenger/StreamLearnings",
        );
        method.started.inc();
        method.handled(RpcStatusCode::CANCELLED).inc();
        let text = String::from_utf8(metrics.encode()).unwrap();
        assert!(text.contains(
            "grpc_server_started_total{grpc_method=\"StreamLearnings\",grpc_service=\"messenger.LearningMessenger\",grpc_type=\"server_stream\"} 1"
        ), "{text}");
        assert!(text.contains("grpc_code=\"Canceled\""), "{text}");
    }
}
