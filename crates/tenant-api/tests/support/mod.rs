//! The tenant API served over real HTTP on a test database, for the integration tests that
//! exercise routes without CodePay (the configured upstream points at a closed port).
#![allow(dead_code)]

use domain::Secret;
use gateway_client::{GatewayClient, GatewayConfig, PrivateKey};
use std::sync::Arc;
use std::time::Duration;
use store::sealing::MasterKeyring;
use tenant_api::adapters::wiring::{Wiring, app_state_from};
use tenant_api::request_id;
use tenant_api::routes::webhooks::WebhookApi;

/// A running tenant API.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The database it serves.
    pub db: store::Database,
    /// The keyring sealing its secrets.
    pub keyring: Arc<MasterKeyring>,
    /// A client for it.
    pub http: reqwest::Client,
}

/// Serves the tenant API (and the merchant webhook API) on an ephemeral port over `db`.
pub async fn start(db: store::Database) -> TestApp {
    let keyring = Arc::new(
        MasterKeyring::new(MasterKeyring::generate_key().expect("key").expose(), &[])
            .expect("keyring"),
    );
    // No payment is taken through this app: the upstream is never called.
    let gw_key = PrivateKey::generate_2048().expect("key").public_key();
    let client = GatewayClient::new(
        GatewayConfig::new(
            "http://127.0.0.1:9".to_owned(),
            "app".to_owned(),
            PrivateKey::generate_2048().expect("key"),
            gw_key.clone(),
        ),
        None,
    )
    .expect("client");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = actix_web::web::Data::new(
        app_state_from(Wiring {
            db: db.clone(),
            coordinator: Arc::new(store::InProcessCoordinator::new()),
            gateway: client,
            gateway_public_key: gw_key,
            engine: payments::EngineConfig {
                public_url: base.clone(),
                ..Default::default()
            },
            token_keys: vec![("k1".into(), Secret::new("0123456789abcdef0123456789abcdef"))],
            rate_limit_per_sec: 10_000,
            sandbox: None,
            keyring: keyring.clone(),
            registry: prometheus::Registry::new(),
            claimant: None,
        })
        .expect("state"),
    );
    // The real URL policy and secret generator live in webhook-fanout; these stand-ins accept
    // the loopback receiver URL and make a fresh random secret.
    let webhooks = actix_web::web::Data::new(WebhookApi::new(
        db.clone(),
        keyring.clone(),
        Arc::new(|u: &str| Ok(u.to_owned())),
        Arc::new(|| Ok(Secret::new(format!("whsec_{}", ulid::Ulid::new())))),
        Duration::from_secs(3600),
    ));
    let server = actix_web::HttpServer::new(move || {
        let state = state.clone();
        actix_web::App::new()
            .wrap(actix_web::middleware::from_fn(request_id::middleware))
            .app_data(webhooks.clone())
            .configure(move |cfg| tenant_api::configure(cfg, state))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    TestApp {
        base,
        db,
        keyring,
        http: reqwest::Client::new(),
    }
}
