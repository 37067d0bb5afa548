//! Frames through the real GStreamer ingest from an in-process RTSP server,
//! reconnects when the server goes away, and a clear error for a bad camera
//! while another keeps working.

use crate::support::net::ClosedPort;
use lotsense::ingest::pipeline::CameraSpec;
use lotsense::ingest::testserver::TestCameraServer;
use lotsense::ingest::{run_camera, CameraEvent, CameraSource, FrameSlot};
use lotsense::metrics::{CameraLabel, Metrics};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIP: &str = "testdata/clips/gate-ro.mp4";

struct Cam {
    slot: Arc<FrameSlot>,
    events: tokio::sync::mpsc::Receiver<CameraEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn start(id: &str, source: CameraSource, metrics: Arc<Metrics>) -> Cam {
    let slot = FrameSlot::new();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let stop = Arc::new(AtomicBool::new(false));
    let mut spec = CameraSpec::new(id, source, 10);
    spec.stall_timeout = Duration::from_secs(2);
    spec.backoff_initial = Duration::from_millis(100);
    spec.backoff_max = Duration::from_millis(800);
    let (s, st) = (slot.clone(), stop.clone());
    let thread = std::thread::spawn(move || run_camera(spec, s, tx, metrics, st));
    Cam {
        slot,
        events: rx,
        stop,
        thread: Some(thread),
    }
}

impl Cam {
    fn wait_event(
        &mut self,
        secs: u64,
        pred: impl Fn(&CameraEvent) -> bool,
    ) -> Option<CameraEvent> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            match self.events.try_recv() {
                Ok(e) if pred(&e) => return Some(e),
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        None
    }
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
    }
}

#[test]
fn rtsp_frames_arrive_with_declared_caps_and_the_camera_reconnects() {
    lotsense::ingest::init_gstreamer().unwrap();
    let server = TestCameraServer::start(0, &[("gate", Path::new(CLIP))]).unwrap();
    let port = server.port;
    let metrics = Arc::new(Metrics::new());
    let source = CameraSource::from_url("gate", &server.url("gate"), true, true).unwrap();
    let mut cam = start("gate", source, metrics.clone());
    assert!(
        cam.wait_event(15, |e| matches!(e, CameraEvent::Online { .. }))
            .is_some(),
        "camera never came online"
    );
    // The clip opens on an empty grey frame, then a car: wait for real picture content.
    let t = Instant::now();
    let mut content = false;
    while t.elapsed() < Duration::from_secs(5) && !content {
        let f = cam.slot.take(Duration::from_secs(2)).expect("a frame");
        assert_eq!((f.width, f.height), (1280, 720));
        assert!(f.stride >= 1280 * 3);
        let rows: Vec<&[u8]> = (0..720).step_by(90).map(|y| f.row(y)).collect();
        content = rows.windows(2).any(|w| w[0] != w[1]);
    }
    assert!(content, "only blank frames arrived");

    // Stop the server mid-stream: the camera goes offline, then reconnects when it is back.
    server.stop();
    let held = ClosedPort::hold(port);
    let off = cam
        .wait_event(10, |e| matches!(e, CameraEvent::Offline { .. }))
        .expect("offline after server stop");
    if let CameraEvent::Offline { reason, .. } = off {
        assert!(!reason.is_empty());
    }
    std::thread::sleep(Duration::from_millis(500));
    let server = TestCameraServer::start(port, &[("gate", Path::new(CLIP))]).unwrap();
    drop(held);
    assert!(
        cam.wait_event(20, |e| matches!(e, CameraEvent::Online { .. }))
            .is_some(),
        "camera did not reconnect"
    );
    assert!(
        cam.slot.take(Duration::from_secs(5)).is_some(),
        "no frames after reconnect"
    );
    let label = CameraLabel::new("gate");
    assert!(metrics.camera_reconnects.get_or_create(&label).get() >= 1);
    assert!(metrics.frames_in.get_or_create(&label).get() >= 2);
    cam.stop();
    server.stop();
}

#[test]
fn an_unreachable_camera_reports_why_while_another_keeps_working() {
    lotsense::ingest::init_gstreamer().unwrap();
    let server = TestCameraServer::start(0, &[("gate", Path::new(CLIP))]).unwrap();
    let metrics = Arc::new(Metrics::new());
    let dead_port = ClosedPort::new();
    let bad = CameraSource::from_url(
        "dead",
        &format!("rtsp://127.0.0.1:{}/nothing", dead_port.port()),
        true,
        true,
    )
    .unwrap();
    let mut dead = start("dead", bad, metrics.clone());
    let good_src = CameraSource::from_url("good", &server.url("gate"), true, true).unwrap();
    let mut good = start("good", good_src, metrics.clone());
    let ev = dead
        .wait_event(15, |e| matches!(e, CameraEvent::Offline { .. }))
        .expect("the dead camera reports offline");
    match ev {
        CameraEvent::Offline { camera, reason } => {
            assert_eq!(camera, "dead");
            assert!(
                reason.to_lowercase().contains("could not")
                    || reason.contains("stalled")
                    || reason.contains("resource"),
                "unclear reason: {reason}"
            );
        }
        _ => unreachable!(),
    }
    assert!(good
        .wait_event(15, |e| matches!(e, CameraEvent::Online { .. }))
        .is_some());
    let mut frames = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        if good.slot.take(Duration::from_millis(500)).is_some() {
            frames += 1;
        }
    }
    assert!(
        frames >= 5,
        "the healthy camera delivered only {frames} frames"
    );
    assert!(
        metrics
            .camera_failures
            .get_or_create(&CameraLabel::new("dead"))
            .get()
            >= 1
    );
    dead.stop();
    good.stop();
    server.stop();
}

#[test]
fn file_replay_as_fast_as_possible_delivers_every_frame_then_finishes() {
    let _one = crate::support::HEAVY.blocking_lock();
    lotsense::ingest::init_gstreamer().unwrap();
    let metrics = Arc::new(Metrics::new());
    let url = format!("file://{}", std::fs::canonicalize(CLIP).unwrap().display());
    let source = CameraSource::from_url("replay", &url, false, false).unwrap();
    let mut cam = start("replay", source, metrics);
    let mut n = 0;
    while let Some(_f) = cam.slot.take(Duration::from_secs(10)) {
        n += 1;
    }
    assert!(cam.slot.is_closed());
    assert!(cam
        .wait_event(2, |e| matches!(e, CameraEvent::Finished { .. }))
        .is_some());
    // 95 frames at 10 fps; a fast consumer sees (nearly) all of them.
    assert!(n >= 80, "only {n} frames");
    cam.stop();
}

#[test]
fn bad_camera_urls_are_rejected_with_the_camera_named() {
    let e = CameraSource::from_url("cam7", "http://x/y", true, true).unwrap_err();
    assert!(e.to_string().contains("camera `cam7`"), "{e}");
    let e = CameraSource::from_url("cam8", "file:///no/such/file.mp4", true, true).unwrap_err();
    assert!(
        e.to_string()
            .contains("camera `cam8`: file /no/such/file.mp4 does not exist"),
        "{e}"
    );
}
