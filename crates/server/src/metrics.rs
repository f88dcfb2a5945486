//! Prometheus metrics of the HTTP layer and the build, and the `/metrics` endpoint.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::time::{Duration, Instant};

/// HTTP request metrics, labelled by route template (never the raw path: ids would explode
/// the series count).
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    own: HistogramVec,
    waits: prometheus::CounterVec,
}

/// Buckets of payfac's own time per request: fine below 10 ms, where the targets are.
const OWN_BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01,
    0.02, 0.05, 0.1, 0.25, 1.0, 5.0,
];

impl HttpMetrics {
    /// Registers `payfac_http_requests_total` and `payfac_http_request_duration_seconds`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "payfac_http_requests_total",
                "HTTP requests by route template, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "payfac_http_request_duration_seconds",
                "HTTP request latency by route template.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["route", "method"],
        )?;
        let own = HistogramVec::new(
            HistogramOpts::new(
                "payfac_http_own_seconds",
                "payfac's own time per request by route template: the request's time minus \
                 what it waited on the database (SQL, Redis) and on CodePay's answers.",
            )
            .buckets(OWN_BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let waits = prometheus::CounterVec::new(
            Opts::new(
                "payfac_http_wait_seconds_total",
                "Time requests spent waiting, by route template and on what (database, upstream).",
            ),
            &["route", "method", "on"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(own.clone()))?;
        registry.register(Box::new(waits.clone()))?;
        Ok(Self {
            requests,
            duration,
            own,
            waits,
        })
    }

    fn observe(
        &self,
        route: &str,
        method: &str,
        status: u16,
        elapsed: Duration,
        waits: store::waits::RequestWaits,
    ) {
        self.requests
            .with_label_values(&[route, method, &status_label(status)])
            .inc();
        self.duration
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
        let own = elapsed.saturating_sub(waits.database + waits.upstream);
        self.own
            .with_label_values(&[route, method])
            .observe(own.as_secs_f64());
        for (on, d) in [("database", waits.database), ("upstream", waits.upstream)] {
            if !d.is_zero() {
                self.waits
                    .with_label_values(&[route, method, on])
                    .inc_by(d.as_secs_f64());
            }
        }
    }
}

/// The method as a label: one of the standard methods, else `other`. The method is client
/// input; labelling it raw let a thousand made-up methods grow `/metrics` without bound.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::TRACE => "TRACE",
        M::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The status as a label: a real HTTP status (100–599) as itself, anything else `other`.
fn status_label(status: u16) -> std::borrow::Cow<'static, str> {
    if (100..600).contains(&status) {
        status.to_string().into()
    } else {
        "other".into()
    }
}

/// Middleware recording every request (use with `actix_web::middleware::from_fn`).
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let method = method_label(req.method());
    let (res, waits) = store::waits::scope(next.call(req)).await;
    let res = res?;
    if let Some(metrics) = metrics {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        metrics.observe(
            &route,
            method,
            res.status().as_u16(),
            started.elapsed(),
            waits,
        );
    }
    Ok(res)
}

/// Registers `payfac_build_info{version}` = 1.
pub fn register_build_info(registry: &Registry) -> prometheus::Result<()> {
    let info = IntGaugeVec::new(
        Opts::new("payfac_build_info", "Build information; always 1."),
        &["version"],
    )?;
    info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    registry.register(Box::new(info))
}

/// `GET /metrics` in the Prometheus text format.
pub async fn endpoint(registry: web::Data<Registry>) -> HttpResponse {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut buf) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(buf),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}
