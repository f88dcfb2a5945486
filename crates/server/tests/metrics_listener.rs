//! `metrics_listen`: `/metrics` and `/readyz` move to their own listener (the one the chart's
//! probes and ServiceMonitor use and its Ingress never routes), off the public one.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use test_support::http_get as get;
use test_support::{free_port, payfac_command};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn metrics_and_readiness_move_to_the_metrics_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (public, ops) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let child = payfac_command(env!("CARGO_BIN_EXE_payfac"))
        .current_dir(dir.path())
        .env("PAYFAC_LOG_FORMAT", "json")
        .env("PAYFAC_METRICS_LISTEN", &ops)
        .args(["serve", "--listen", &public])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let _running = Running(child);
    let started = Instant::now();
    let mut ready = false;
    while started.elapsed() < Duration::from_secs(20) {
        if let Some((200, _)) = get(&ops, "/readyz") {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready, "/readyz must answer on metrics_listen");
    let (status, body) = get(&ops, "/metrics").expect("metrics");
    assert_eq!(status, 200);
    assert!(body.contains("payfac_build_info"), "{body}");
    assert_eq!(get(&ops, "/healthz").map(|r| r.0), Some(200));
    // the public listener keeps liveness and the API, not metrics or readiness
    assert_eq!(get(&public, "/healthz").map(|r| r.0), Some(200));
    for path in ["/metrics", "/readyz"] {
        let (status, _) = get(&public, path).expect(path);
        assert_eq!(status, 404, "{path} on the public listener");
    }
}
