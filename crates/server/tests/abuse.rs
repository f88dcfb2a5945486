//! Issue 12 "hold under abuse": bounded metric labels and the SSRF guard's defaults.

use actix_web::http::Method;
use actix_web::test as atest;
use actix_web::{App, HttpResponse, middleware, web};
use server::config::Config;
use server::metrics::{self, HttpMetrics};
use server::wiring;

/// 1,000 requests with distinct made-up 4 KB methods must not grow `/metrics` by a series each.
#[actix_web::test]
async fn a_thousand_made_up_methods_leave_metrics_small() {
    let registry = prometheus::Registry::new();
    let http = HttpMetrics::register(&registry).expect("register");
    let app = atest::init_service(
        App::new()
            .app_data(web::Data::new(registry.clone()))
            .app_data(web::Data::new(http))
            .wrap(middleware::from_fn(metrics::record))
            .route("/v1/payments", web::post().to(HttpResponse::Created))
            .route("/metrics", web::get().to(metrics::endpoint)),
    )
    .await;
    for i in 0..1_000 {
        let name = format!("M{i:04}{}", "X".repeat(4_000));
        let method = Method::from_bytes(name.as_bytes()).expect("a valid token");
        let req = atest::TestRequest::default()
            .method(method)
            .uri(&format!("/junk/{i}"))
            .to_request();
        let _ = atest::call_service(&app, req).await;
    }
    let req = atest::TestRequest::get().uri("/metrics").to_request();
    let body = atest::call_and_read_body(&app, req).await;
    assert!(
        body.len() < 100 * 1024,
        "/metrics is {} bytes after 1,000 made-up methods",
        body.len()
    );
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(!text.contains("XXXX"), "no raw method in a label");
}

fn sqlite_with_a_real_gateway() -> Config {
    Config {
        data_dir: std::env::temp_dir(),
        codepay_base_url: Some(domain::SecretUrl::new("https://codepay.example/gateway")),
        ..Config::default()
    }
}

/// On SQLite (the embedded default database) with a real CodePay gateway configured, a
/// loopback or plain-http endpoint is refused: the database says nothing about exposure.
#[test]
fn sqlite_with_a_real_gateway_refuses_a_loopback_endpoint() {
    let config = sqlite_with_a_real_gateway();
    assert!(!config.is_sandbox());
    let fanout = wiring::fanout_config(&config).expect("fanout config");
    let policy = fanout.sender.policy;
    assert!(!policy.allow_private && !policy.allow_http, "{policy:?}");
    for url in [
        "http://127.0.0.1:9000/hook",
        "https://127.0.0.1:9000/hook",
        "https://10.0.0.5/hook",
    ] {
        assert!(policy.parse_endpoint_url(url).is_err(), "{url} accepted");
    }
    assert!(fanout.startup_warnings().is_empty());
}

/// Sandbox mode (no gateway configured) stays permissive for a local receiver, and says so.
#[test]
fn the_sandbox_alone_is_permissive_and_says_so() {
    let config = Config {
        data_dir: std::env::temp_dir(),
        ..Config::default()
    };
    assert!(config.is_sandbox());
    let fanout = wiring::fanout_config(&config).expect("fanout config");
    assert!(
        fanout
            .sender
            .policy
            .parse_endpoint_url("http://127.0.0.1:9000/hook")
            .is_ok()
    );
    assert_eq!(fanout.startup_warnings().len(), 2);
}

/// `sandbox = true` beside a real gateway URL is still strict.
#[test]
fn a_forced_sandbox_with_a_gateway_url_is_strict() {
    let config = Config {
        sandbox: Some(true),
        ..sqlite_with_a_real_gateway()
    };
    let policy = wiring::fanout_config(&config)
        .expect("fanout")
        .sender
        .policy;
    assert!(!policy.allow_private && !policy.allow_http);
}

/// A bad `metrics_listen` is a config error naming the key.
#[test]
fn a_bad_metrics_listen_is_refused() {
    let config = Config {
        metrics_listen: Some("nowhere".into()),
        ..Config::default()
    };
    let err = config.validate().expect_err("must fail").to_string();
    assert!(err.contains("metrics_listen"), "{err}");
}
