//! tenant-api's one test app: the tenant API (and the merchant webhook API, wired as the server
//! wires it) served over real HTTP on `127.0.0.1:<ephemeral>` over a given database, with the
//! helpers every integration test of this crate needs: operator and merchant keys, onboarding,
//! requests, the job runner's pass, events and metrics; plus the CodePay simulator's control API.
//!
//! ```ignore
//! let app = TestApp::start(db).await;                       // upstream: a closed port
//! let sim = SimServer::start(50);
//! let app = TestApp::builder(db).simulator(&sim).start().await; // upstream: the simulator
//! let op = app.operator_key().await;
//! let (_, sk) = app.onboard(&op, &sim_merchant(&sim, json!({})).await).await;
//! let (status, body) = app.post("/v1/payments", &sk, None, json!({ .. })).await;
//! ```
//!
//! Databases, keys, keyrings and the simulator itself come from `test-support`.
#![allow(dead_code)]

use diesel::prelude::*;
use domain::{ApiKeyId, Currency, MerchantId, Secret};
use gateway_client::{GatewayClient, GatewayConfig, PublicKey};
use payments::jobs::{JobOutcome, handle};
use payments::{Engine, EngineConfig};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use store::sealing::MasterKeyring;
use tenant_api::accounts::{AccountStore, ApiKeyRecord, MerchantRecord};
use tenant_api::adapters::accounts::SqlAccountStore;
use tenant_api::adapters::wiring::{Wiring, app_state_from};
use tenant_api::audit::Audit;
use tenant_api::auth::{jwt::TokenIssuer, keys, rate_limit::LocalRateLimiter};
use tenant_api::idempotency::IdempotencyStore;
use tenant_api::routes::webhooks::WebhookApi;
use tenant_api::{AppState, request_id};
use test_support::SimServer;
use webhook_fanout::NetworkPolicy;
use webhook_fanout::signature::WebhookSecret;

/// The token signing keys of every test app.
pub fn token_keys() -> Vec<(String, Secret)> {
    vec![("k1".into(), Secret::new("0123456789abcdef0123456789abcdef"))]
}

/// Requests per second per key: high enough that no test is limited.
pub const RATE_LIMIT: u32 = 10_000;

/// An [`AppState`] over the given engine and stores, with the test token keys, a local rate
/// limiter and no notification intake; for tests that count or replace what the wiring builds.
pub fn app_state(
    engine: Engine,
    accounts: Arc<dyn AccountStore>,
    idempotency: Arc<dyn IdempotencyStore>,
) -> AppState {
    AppState {
        engine,
        accounts,
        idempotency,
        tokens: Arc::new(TokenIssuer::new(token_keys()).expect("issuer")),
        rate_limiter: Arc::new(LocalRateLimiter::new(RATE_LIMIT)),
        notifications: None,
        sandbox: None,
        commits: None,
    }
}

/// What a custom state ([`Builder::state`]) is built from.
pub struct Parts {
    /// The database the app serves.
    pub db: store::Database,
    /// `http://127.0.0.1:PORT`, before the server runs.
    pub base: String,
    /// A client for the configured upstream.
    pub gateway: GatewayClient,
    /// The upstream's public key (verifies notifications).
    pub gateway_public_key: PublicKey,
    /// The engine configuration, `public_url` set to `base`.
    pub engine: EngineConfig,
    /// The app's keyring.
    pub keyring: Arc<MasterKeyring>,
}

type StateFn = Box<dyn FnOnce(Parts) -> AppState>;

/// How to start a [`TestApp`]; [`TestApp::builder`].
pub struct Builder {
    db: store::Database,
    coordinator: Arc<dyn store::Coordinator>,
    upstream: Option<(String, String, PublicKey)>,
    engine: EngineConfig,
    gateway_timeout: Option<Duration>,
    state: Option<StateFn>,
}

impl Builder {
    /// Coordination (rate limits, wake-ups); in-process unless set.
    pub fn coordinator(mut self, coordinator: Arc<dyn store::Coordinator>) -> Self {
        self.coordinator = coordinator;
        self
    }

    /// CodePay is `sim` (its app and keys); unless set, the upstream is a closed port, for
    /// tests that take no payment through CodePay.
    pub fn simulator(mut self, sim: &SimServer) -> Self {
        self.upstream = Some((
            sim.base.clone(),
            sim.app_id.clone(),
            sim.gateway_public_key(),
        ));
        self
    }

    /// Engine tunables (`public_url` is set to the app's address).
    pub fn engine(mut self, engine: EngineConfig) -> Self {
        self.engine = engine;
        self
    }

    /// The gateway client's request timeout.
    pub fn gateway_timeout(mut self, timeout: Duration) -> Self {
        self.gateway_timeout = Some(timeout);
        self
    }

    /// Serves the state `f` builds instead of the server's wiring (`app_state_from`).
    pub fn state(mut self, f: impl FnOnce(Parts) -> AppState + 'static) -> Self {
        self.state = Some(Box::new(f));
        self
    }

    /// Serves the app on an ephemeral port, as a task of the current runtime.
    pub async fn start(self) -> TestApp {
        let (upstream, app_id, gateway_public_key) = self.upstream.unwrap_or_else(|| {
            // Nothing listens on port 9: no payment is taken through this app.
            (
                "http://127.0.0.1:9".to_owned(),
                "app".to_owned(),
                test_support::gateway_key().public_key(),
            )
        });
        let mut gw = GatewayConfig::new(
            upstream,
            app_id,
            test_support::app_key().clone(),
            gateway_public_key.clone(),
        );
        if let Some(timeout) = self.gateway_timeout {
            gw.timeout = timeout;
        }
        let gateway = GatewayClient::new(gw, None).expect("client");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let keyring = test_support::keyring();
        let registry = prometheus::Registry::new();
        let engine = EngineConfig {
            public_url: base.clone(),
            ..self.engine
        };
        let state = match self.state {
            Some(f) => f(Parts {
                db: self.db.clone(),
                base: base.clone(),
                gateway,
                gateway_public_key,
                engine,
                keyring: keyring.clone(),
            }),
            None => app_state_from(Wiring {
                db: self.db.clone(),
                coordinator: self.coordinator,
                gateway,
                gateway_public_key,
                default_gateway_account: None,
                gateway_metrics: None,
                engine,
                token_keys: token_keys(),
                rate_limit_per_sec: RATE_LIMIT,
                sandbox: None,
                keyring: keyring.clone(),
                registry: registry.clone(),
                // No instance heartbeat: claims are left to their lease.
                claimant: None,
            })
            .expect("state"),
        };
        let engine = state.engine.clone();
        let state = actix_web::web::Data::new(state);
        let webhooks = actix_web::web::Data::new(webhook_api(&self.db, &keyring));
        // The books as the server registers them, with its default cut-off (00:00 UTC).
        let books = actix_web::web::Data::new(tenant_api::routes::books::BooksApi {
            books: payments::books::Books::new(self.db.clone(), ledger::Cutoff::midnight_utc()),
            recon: payments::recon::ReconConfig::default(),
        });
        let server = actix_web::HttpServer::new(move || {
            let state = state.clone();
            actix_web::App::new()
                .wrap(actix_web::middleware::from_fn(request_id::middleware))
                .app_data(webhooks.clone())
                .app_data(books.clone())
                .configure(move |cfg| tenant_api::configure(cfg, state))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        TestApp {
            base,
            db: self.db,
            keyring,
            registry,
            engine,
            http: reqwest::Client::new(),
            handle,
        }
    }
}

/// The merchant webhook API as the server registers it: webhook-fanout's URL policy (plain
/// http and private addresses allowed, so a loopback receiver is a valid endpoint) and secrets.
fn webhook_api(db: &store::Database, keyring: &Arc<MasterKeyring>) -> WebhookApi {
    let policy = NetworkPolicy {
        allow_http: true,
        allow_private: true,
    };
    WebhookApi::new(
        db.clone(),
        keyring.clone(),
        Arc::new(move |url: &str| {
            policy
                .parse_endpoint_url(url)
                .map(|u| u.to_string())
                .map_err(|e| e.to_string())
        }),
        Arc::new(|| {
            WebhookSecret::generate()
                .map(|s| Secret::new(s.expose()))
                .map_err(|e| e.to_string())
        }),
        Duration::from_secs(86_400),
    )
}

/// A running tenant API.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The database it serves.
    pub db: store::Database,
    /// The keyring sealing its secrets (and the webhook endpoints' secrets).
    pub keyring: Arc<MasterKeyring>,
    /// Where the wiring registers its metrics.
    pub registry: prometheus::Registry,
    /// Its payment engine (the job runner's handle).
    pub engine: Engine,
    /// A client for it.
    pub http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

impl TestApp {
    /// The app as the server wires it over `db`, with no upstream.
    pub async fn start(db: store::Database) -> Self {
        Self::builder(db).start().await
    }

    /// The app over `db`, configured before it starts.
    pub fn builder(db: store::Database) -> Builder {
        Builder {
            db,
            coordinator: Arc::new(store::InProcessCoordinator::new()),
            upstream: None,
            engine: EngineConfig::default(),
            gateway_timeout: None,
            state: None,
        }
    }

    /// The app over `db` with `sim` as its CodePay and `coordinator` (one payfac process in the
    /// flows that start several over the same database), configured before it starts.
    pub fn over_simulator(
        db: store::Database,
        sim: &SimServer,
        coordinator: Arc<dyn store::Coordinator>,
    ) -> Builder {
        Self::builder(db).coordinator(coordinator).simulator(sim)
    }

    /// Stops the server at once (a crash: open connections dropped).
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }

    // --- accounts, written straight to the database ---

    /// An operator key (no scopes), as `payfac` bootstraps one.
    pub async fn operator_key(&self) -> String {
        self.key(None, &[]).await
    }

    /// An API key of `merchant` (an operator key when `None`) with `scopes`.
    pub async fn key(&self, merchant: Option<&MerchantId>, scopes: &[&str]) -> String {
        let prefix = if merchant.is_some() {
            keys::MERCHANT_PREFIX
        } else {
            keys::OPERATOR_PREFIX
        };
        let secret = keys::generate_secret(prefix);
        SqlAccountStore::new(self.db.clone())
            .insert_api_key(
                &ApiKeyRecord {
                    id: ApiKeyId::generate(),
                    merchant_id: merchant.cloned(),
                    secret_hash: keys::hash_secret(&secret),
                    prefix: keys::display_prefix(&secret),
                    label: None,
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                    created_at: chrono::Utc::now(),
                    revoked_at: None,
                    expires_at: None,
                    binding: None,
                },
                &Audit::system("api_key.create"),
            )
            .await
            .expect("key");
        secret
    }

    /// An active merchant "Shop" (CodePay merchant `M1`, store `store_no`, USD).
    pub async fn merchant(&self, store_no: Option<&str>) -> MerchantId {
        let id = MerchantId::generate();
        let now = chrono::Utc::now();
        SqlAccountStore::new(self.db.clone())
            .insert_merchant(
                &MerchantRecord {
                    store_no: store_no.map(str::to_owned),
                    ..MerchantRecord::active(
                        id.clone(),
                        "Shop",
                        "M1",
                        Currency::from_code("USD").expect("usd"),
                        now,
                    )
                },
                &Audit::system("merchant.create"),
            )
            .await
            .expect("merchant");
        id
    }

    /// A merchant (no store) and a key of it with every scope.
    pub async fn merchant_with_key(&self) -> (MerchantId, String) {
        let id = self.merchant(None).await;
        let sk = self.key(Some(&id), tenant_api::auth::jwt::ALL_SCOPES).await;
        (id, sk)
    }

    /// Onboards a merchant over HTTP as an operator would: creates "Shop" for the CodePay
    /// merchant `merchant_no`, then an API key; returns the merchant id and the key's secret.
    pub async fn onboard(&self, op: &str, merchant_no: &str) -> (String, String) {
        let (status, mer) = self
            .post(
                "/v1/merchants",
                op,
                None,
                json!({"name":"Shop","codepay":{"merchant_no":merchant_no}}),
            )
            .await;
        assert_eq!(status, 201, "{mer}");
        let id = mer["id"].as_str().expect("id").to_owned();
        let (status, k) = self
            .post(&format!("/v1/merchants/{id}/api-keys"), op, None, json!({}))
            .await;
        assert_eq!(status, 201, "{k}");
        (id, k["secret"].as_str().expect("secret").to_owned())
    }

    // --- requests ---

    /// A request to `method path` with `key` as the bearer, to add to and send.
    pub fn request(&self, method: Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
    }

    /// Status and raw body text (so tests can look for key material anywhere in it).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        idem: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut r = self.request(method, path, key);
        if let Some(k) = idem {
            r = r.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("send");
        (r.status().as_u16(), r.text().await.expect("body"))
    }

    /// Status and JSON body (`Null` when the body is not JSON).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = self.call(method, path, key, None, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `POST path` with a JSON body: status and JSON body (`Null` when not JSON).
    pub async fn post(
        &self,
        path: &str,
        key: &str,
        idem: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let (status, text) = self.call(Method::POST, path, key, idem, Some(body)).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `PATCH path` with a JSON body: status and JSON answer.
    pub async fn patch(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.json(Method::PATCH, path, key, Some(body)).await
    }

    /// `GET path`: the JSON body, whatever the status.
    pub async fn get(&self, path: &str, key: &str) -> Value {
        self.request(Method::GET, path, key)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json")
    }

    // --- what the server's other roles do, and what they leave ---

    /// One pass of the job runner over `kinds`: claim what is due with a lease, handle it,
    /// complete or retry; returns the jobs it ran.
    pub async fn run_jobs(&self, kinds: &[&str]) -> Vec<(String, JobOutcome)> {
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        let jobs = self
            .db
            .write(move |c| {
                let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
                store::jobs::claim(
                    c,
                    &kinds,
                    "test-runner",
                    Duration::from_secs(30),
                    50,
                    chrono::Utc::now().timestamp_millis(),
                )
            })
            .await
            .expect("claim");
        let mut ran = Vec::new();
        for job in jobs {
            let subject = job.dedupe_key.clone().unwrap_or_default();
            let outcome = handle(&self.engine, &job.kind, &subject).await;
            ran.push((job.kind.clone(), outcome));
            let id = job.id.clone();
            self.db
                .write(move |c| {
                    let now = chrono::Utc::now().timestamp_millis();
                    match outcome {
                        JobOutcome::Done => store::jobs::complete(c, &id, "test-runner", now),
                        JobOutcome::RetryAt(t) => store::jobs::retry(
                            c,
                            &id,
                            "test-runner",
                            t.timestamp_millis(),
                            "not final",
                            now,
                        ),
                    }
                })
                .await
                .expect("finish job");
        }
        ran
    }

    /// Runs job passes over `kinds` until `GET path` (as `key`) satisfies `done`, for up to
    /// 10 s; returns the last answer (the caller asserts on it).
    pub async fn run_jobs_until(
        &self,
        kinds: &[&str],
        path: &str,
        key: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut last = Value::Null;
        for _ in 0..50 {
            self.run_jobs(kinds).await;
            last = self.get(path, key).await;
            if done(&last) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        last
    }

    /// The types of the events written about `object_id`, oldest first.
    pub async fn events_of(&self, object_id: &str) -> Vec<String> {
        let id = object_id.to_owned();
        self.db
            .read(move |c| {
                use store::schema::events;
                Ok(store::on_backend!(c, |c| events::table
                    .filter(events::object_id.eq(&id))
                    .order(events::id.asc())
                    .select(events::event_type)
                    .load::<String>(c))?)
            })
            .await
            .expect("events")
    }

    /// The value of the counter `name` labelled `from` → `to` (0 when never incremented).
    pub fn counter(&self, name: &str, from: &str, to: &str) -> u64 {
        let families = self.registry.gather();
        let Some(f) = families.iter().find(|f| f.name() == name) else {
            return 0;
        };
        f.get_metric()
            .iter()
            .filter(|m| {
                let l = m.get_label();
                l.iter().any(|p| p.name() == "from" && p.value() == from)
                    && l.iter().any(|p| p.name() == "to" && p.value() == to)
            })
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }
}

/// Turns `async fn name(db: store::Database, coordinator: Arc<dyn store::Coordinator>)`
/// functions into two tests each, as payfac is deployed: `sqlite_in_process::name` (SQLite,
/// in-process coordination) and `postgres_redis::name` (PostgreSQL, Redis), each on a fresh
/// database (multi-thread runtime, 4 workers).
#[macro_export]
macro_rules! on_both_stacks {
    ($($name:ident),* $(,)?) => {
        mod sqlite_in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (db, _dir) = test_support::fresh_sqlite().await;
                    let coordinator = std::sync::Arc::new(store::InProcessCoordinator::new());
                    super::$name(db, coordinator).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = test_support::fresh_postgres().await;
                    super::$name(db, $crate::support::redis_coordinator().await).await;
                }
            )*
        }
    };
}

/// A Redis coordinator on the test Redis under a fresh key prefix.
pub async fn redis_coordinator() -> Arc<dyn store::Coordinator> {
    let coord = store::RedisCoordinator::connect(
        &test_support::redis_url(),
        &format!("t{}:", test_support::random_suffix()),
        Duration::from_secs(2),
    )
    .await
    .expect("redis");
    Arc::new(coord)
}

// --- the simulator's control API (`/sim/...`) ---

/// `POST` to the simulator's `path` (below its base).
pub async fn sim_send(sim: &SimServer, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", sim.base))
        .json(&body)
        .send()
        .await
        .expect("sim")
}

/// `POST` to the simulator's `path`: its JSON answer.
pub async fn sim_post(sim: &SimServer, path: &str, body: Value) -> Value {
    sim_send(sim, path, body).await.json().await.expect("json")
}

/// `GET` the simulator's `path`: its JSON answer.
pub async fn sim_get(sim: &SimServer, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", sim.base))
        .send()
        .await
        .expect("sim")
        .json()
        .await
        .expect("json")
}

/// A new simulator merchant (`body` as `/sim/merchants` takes it): its merchant number.
pub async fn sim_merchant(sim: &SimServer, body: Value) -> String {
    let m = sim_post(sim, "/sim/merchants", body).await;
    m["merchant_no"].as_str().expect("merchant_no").to_owned()
}

/// A customer's auth code that plays `scenario` (`approve`, `decline`, `pin`, ...).
pub async fn auth_code(sim: &SimServer, scenario: &str) -> String {
    let v = sim_post(sim, "/sim/auth-codes", json!({"scenario": scenario})).await;
    v["auth_code"].as_str().expect("auth_code").to_owned()
}
