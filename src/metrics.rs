//! Counters exported at `/metrics` (Prometheus text format).
//!
//! One `Metrics` value is created at start-up and shared by `Arc`; adapters
//! count drops, reconnects and failures here so that "the camera is flaky" is
//! a graph, not a guess.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label set for bay counts by state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BayStateLabel {
    pub state: String,
}

/// Label set for per-camera series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CameraLabel {
    pub camera: String,
}

impl CameraLabel {
    pub fn new(camera: &str) -> Self {
        Self {
            camera: camera.to_string(),
        }
    }
}

/// Label set of HTTP request counts: the route as declared (its template,
/// e.g. `/api/vehicles/{license_plate}`, so plates and ids do not become
/// series; `unmatched` for paths no route serves) and the response status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Label set of HTTP request latencies (per route, all statuses together).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRouteLabels {
    pub method: String,
    pub route: String,
}

/// Latency buckets: 0.5 ms doubling to about 8 s.
fn http_latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    /// Buffers that arrived from the camera's pipeline.
    pub frames_in: Family<CameraLabel, Counter>,
    /// Frames replaced in the one-slot queue before the vision stage took them.
    pub frames_dropped: Family<CameraLabel, Counter>,
    /// Frames the motion gate judged static and skipped.
    pub frames_skipped: Family<CameraLabel, Counter>,
    /// Frames that went through detection.
    pub frames_processed: Family<CameraLabel, Counter>,
    pub camera_reconnects: Family<CameraLabel, Counter>,
    pub camera_failures: Family<CameraLabel, Counter>,
    /// 1 while the camera delivers frames, 0 otherwise.
    pub camera_online: Family<CameraLabel, Gauge>,
    pub plate_reads: Family<CameraLabel, Counter>,
    /// Overview camera frames classified, failed classifier calls, and times
    /// a camera's bays went unknown because it went offline or froze.
    pub bay_samples: Family<CameraLabel, Counter>,
    pub bay_classify_failures: Family<CameraLabel, Counter>,
    pub bay_camera_unknown: Family<CameraLabel, Counter>,
    /// Warp + classify time of the last sample, seconds.
    pub bay_batch_seconds: Family<CameraLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Bays shown on the boards by state (free / occupied / unknown / held_back).
    pub bays: Family<BayStateLabel, Gauge>,
    /// Board messages that could not be published.
    pub board_publish_failures: Counter,
    pub mqtt_reconnects: Counter,
    pub mqtt_failures: Counter,
    /// HTTP requests answered, per method, route and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// Time from a request's arrival to its response, per method and route.
    pub http_request_duration: Family<HttpRouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lotsense");
        let m = Metrics {
            registry: Registry::default(),
            frames_in: Default::default(),
            frames_dropped: Default::default(),
            frames_skipped: Default::default(),
            frames_processed: Default::default(),
            camera_reconnects: Default::default(),
            camera_failures: Default::default(),
            camera_online: Default::default(),
            plate_reads: Default::default(),
            bay_samples: Default::default(),
            bay_classify_failures: Default::default(),
            bay_camera_unknown: Default::default(),
            bay_batch_seconds: Default::default(),
            bays: Default::default(),
            board_publish_failures: Default::default(),
            mqtt_reconnects: Default::default(),
            mqtt_failures: Default::default(),
            http_requests: Default::default(),
            http_request_duration: Family::new_with_constructor(http_latency_histogram),
        };
        registry.register(
            "frames_in",
            "Frames received from camera pipelines",
            m.frames_in.clone(),
        );
        registry.register(
            "frames_dropped",
            "Frames dropped because the vision stage was busy (newest kept)",
            m.frames_dropped.clone(),
        );
        registry.register(
            "frames_skipped",
            "Frames skipped by the motion gate",
            m.frames_skipped.clone(),
        );
        registry.register(
            "frames_processed",
            "Frames run through plate detection",
            m.frames_processed.clone(),
        );
        registry.register(
            "camera_reconnects",
            "Camera pipeline restarts",
            m.camera_reconnects.clone(),
        );
        registry.register(
            "camera_failures",
            "Camera pipeline errors, stalls and ends of stream",
            m.camera_failures.clone(),
        );
        registry.register(
            "camera_online",
            "1 while a camera delivers frames",
            m.camera_online.clone(),
        );
        registry.register("plate_reads", "Plate reads decided", m.plate_reads.clone());
        registry.register(
            "bay_samples",
            "Overview camera frames classified",
            m.bay_samples.clone(),
        );
        registry.register(
            "bay_classify_failures",
            "Bay classifier calls that failed",
            m.bay_classify_failures.clone(),
        );
        registry.register(
            "bay_camera_unknown",
            "Times a camera's bays went unknown (camera offline or picture frozen)",
            m.bay_camera_unknown.clone(),
        );
        registry.register(
            "bay_batch_seconds",
            "Warp and classify time of the last overview sample",
            m.bay_batch_seconds.clone(),
        );
        registry.register("bays", "Bays shown on the boards, by state", m.bays.clone());
        registry.register(
            "board_publish_failures",
            "Board messages that could not be published",
            m.board_publish_failures.clone(),
        );
        registry.register(
            "mqtt_reconnects",
            "MQTT reconnections",
            m.mqtt_reconnects.clone(),
        );
        registry.register(
            "mqtt_failures",
            "MQTT connection errors",
            m.mqtt_failures.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            m.http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from an HTTP request's arrival to its response, by method and route",
            prometheus_client::registry::Unit::Seconds,
            m.http_request_duration.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts one answered HTTP request and its latency.
    pub fn observe_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.http_request_duration
            .get_or_create(&HttpRouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry)
            .expect("writing to a String cannot fail");
        s
    }
}
