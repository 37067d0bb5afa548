//! An in-process RTSP server (gst-rtsp-server) that serves clips from
//! `testdata/` as cameras. Tests use it to exercise the real RTSP path
//! (rtspsrc over TCP, depayloading, decoding, reconnects), and `lotsense demo`
//! uses it so the demo site looks to lotsense exactly like a real site.

use super::IngestError;
use gstreamer::glib;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use std::path::Path;

const TEMPLATE: &str = include_str!("../../pipelines/test-camera.pipeline");

/// A running test server; dropped or [`stop`](TestCameraServer::stop)ped, it
/// closes every client connection (so cameras see the stream die).
pub struct TestCameraServer {
    server: rtsp::RTSPServer,
    main_loop: glib::MainLoop,
    ctx: glib::MainContext,
    source: Option<glib::SourceId>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub port: u16,
}

impl TestCameraServer {
    /// Serves each `(mount, clip)` at `rtsp://127.0.0.1:<port>/<mount>`.
    /// `port` 0 picks a free port.
    pub fn start(port: u16, clips: &[(&str, &Path)]) -> Result<Self, IngestError> {
        super::init_gstreamer()?;
        let err = |m: String| IngestError::Gstreamer(format!("test RTSP server: {m}"));
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let mounts = server
            .mount_points()
            .ok_or_else(|| err("no mount points".into()))?;
        for (mount, clip) in clips {
            if !clip.is_file() {
                return Err(err(format!("clip {} does not exist", clip.display())));
            }
            let launch: String = TEMPLATE
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join(" ");
            let factory = rtsp::RTSPMediaFactory::new();
            factory.set_launch(&launch.replace("{path}", &clip.display().to_string()));
            // Each client gets its own pipeline that starts at the clip's beginning.
            factory.set_shared(false);
            factory.set_protocols(rtsp::gst_rtsp::RTSPLowerTrans::TCP);
            mounts.add_factory(&format!("/{}", mount.trim_start_matches('/')), factory);
        }
        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let source = server
            .attach(Some(&ctx))
            .map_err(|e| err(format!("cannot listen on port {port}: {e}")))?;
        let bound = server.bound_port();
        if bound <= 0 {
            return Err(err(format!("cannot listen on port {port}")));
        }
        let (ml, ctx2) = (main_loop.clone(), ctx.clone());
        let thread = std::thread::Builder::new()
            .name("rtsp-test-server".into())
            .spawn(move || {
                ctx2.with_thread_default(|| ml.run())
                    .expect("fresh context");
            })
            .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            server,
            main_loop,
            ctx,
            source: Some(source),
            thread: Some(thread),
            port: bound as u16,
        })
    }

    pub fn url(&self, mount: &str) -> String {
        format!(
            "rtsp://127.0.0.1:{}/{}",
            self.port,
            mount.trim_start_matches('/')
        )
    }

    /// Stops listening and drops every client.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(id) = self.source.take() {
            // The source lives in our own context, not the global default one
            // (where `SourceId::remove` would look for it).
            if let Some(src) = self.ctx.find_source_by_id(&id) {
                src.destroy();
            }
            self.server
                .client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
            self.main_loop.quit();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for TestCameraServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
