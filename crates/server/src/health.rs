//! Liveness and readiness.
//!
//! Liveness (`/healthz`) answers as long as the process serves HTTP: restarting a pod because
//! its database is down would only add a restart storm to the outage. Readiness (`/readyz`)
//! goes false while a dependency is unreachable and as soon as shutdown begins, so the load
//! balancer drains the pod before it stops accepting.

use actix_web::{HttpResponse, web};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Something readiness depends on.
#[async_trait::async_trait]
pub trait Probe: Send + Sync {
    /// Short name shown in `/readyz` (`database`, `redis`).
    fn name(&self) -> &'static str;
    /// `Ok` when reachable; the error text is shown to operators.
    async fn check(&self) -> Result<(), String>;
}

/// Shared readiness state.
#[derive(Clone)]
pub struct Health {
    shutting_down: Arc<AtomicBool>,
    probes: Arc<Vec<Box<dyn Probe>>>,
}

impl Health {
    /// Readiness over these probes.
    pub fn new(probes: Vec<Box<dyn Probe>>) -> Self {
        Self {
            shutting_down: Arc::new(AtomicBool::new(false)),
            probes: Arc::new(probes),
        }
    }

    /// Marks the process as draining: readiness turns false for good.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// True once shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// `GET /healthz`.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`.
pub async fn readyz(health: web::Data<Health>) -> HttpResponse {
    if health.is_shutting_down() {
        return HttpResponse::ServiceUnavailable().json(json!({"status": "shutting_down"}));
    }
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    for probe in health.probes.iter() {
        let outcome = tokio::time::timeout(Duration::from_secs(2), probe.check()).await;
        let verdict = match outcome {
            Ok(Ok(())) => json!("ok"),
            Ok(Err(e)) => {
                ready = false;
                json!(e)
            }
            Err(_) => {
                ready = false;
                json!("timed out after 2s")
            }
        };
        checks.insert(probe.name().to_owned(), verdict);
    }
    let body = json!({"status": if ready { "ready" } else { "not_ready" }, "checks": checks});
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
