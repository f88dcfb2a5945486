//! End to end over the real storage: payfac's app on 127.0.0.1:0 with payments, refunds,
//! events, jobs and idempotency in SQLite, or in PostgreSQL (fresh database per test) with rate
//! limits on Redis; the real CodePay simulator beside it over HTTP; jobs run as the server's
//! runner runs them (claim with a lease, handle, complete or retry).

use codepay_sim::{SimConfig, Simulator};
use diesel::prelude::*;
use domain::{ApiKeyId, Secret};
use gateway_client::{GatewayClient, GatewayConfig, PrivateKey, PublicKey};
use payments::jobs::{JobOutcome, handle};
use payments::{Engine, EngineConfig};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tenant_api::accounts::{AccountStore, ApiKeyRecord};
use tenant_api::adapters::accounts::SqlAccountStore;
use tenant_api::adapters::wiring::{Wiring, app_state_from};
use tenant_api::auth::keys;
use tenant_api::request_id;

const KINDS: [&str; 3] = ["payment.poll", "payment.expire", "refund.poll"];

struct Sim {
    sim: Simulator,
    base: String,
    app_id: String,
    app_key: PrivateKey,
}

fn start_sim() -> Sim {
    let sim = Simulator::new(SimConfig {
        time_scale: 50,
        ..SimConfig::default()
    })
    .expect("sim");
    let app_key = PrivateKey::generate_2048().expect("key");
    let app_id = sim
        .register_app(None, &app_key.public_key().to_pem())
        .expect("app");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!(
        "http://{}/sandbox/codepay",
        listener.local_addr().expect("addr")
    );
    let served = sim.clone();
    let server = actix_web::HttpServer::new(move || {
        let s = served.clone();
        actix_web::App::new()
            .service(actix_web::web::scope("/sandbox/codepay").configure(move |c| s.configure(c)))
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    Sim {
        sim,
        base,
        app_id,
        app_key,
    }
}

struct Payfac {
    base: String,
    engine: Engine,
    db: store::Database,
    handle: actix_web::dev::ServerHandle,
}

/// One payfac process over `db`; several may be started over the same database (a restart).
async fn start_payfac(
    db: store::Database,
    sim: &Sim,
    coord: Arc<dyn store::Coordinator>,
) -> Payfac {
    let gateway_key =
        PublicKey::from_pem_or_base64(&sim.sim.gateway_public_key_pem()).expect("gw key");
    let mut gw = GatewayConfig::new(
        sim.base.clone(),
        sim.app_id.clone(),
        sim.app_key.clone(),
        gateway_key.clone(),
    );
    // Short, so the "CodePay answered after commit but payfac never heard" case is quick.
    gw.timeout = Duration::from_secs(2);
    let client = GatewayClient::new(gw, None).expect("client");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let cfg = EngineConfig {
        public_url: base.clone(),
        poll_interval: Duration::from_millis(200),
        cpm_deadline: Duration::from_secs(3),
        ..EngineConfig::default()
    };
    let state = actix_web::web::Data::new(
        app_state_from(Wiring {
            db: db.clone(),
            coordinator: coord,
            gateway: client,
            gateway_public_key: gateway_key,
            engine: cfg,
            token_keys: vec![("k1".into(), Secret::new("0123456789abcdef0123456789abcdef"))],
            rate_limit_per_sec: 10_000,
            sandbox: None,
            keyring: Arc::new(
                store::sealing::MasterKeyring::new(
                    store::sealing::MasterKeyring::generate_key()
                        .expect("key")
                        .expose(),
                    &[],
                )
                .expect("keyring"),
            ),
            registry: prometheus::Registry::new(),
            claimant: None,
        })
        .expect("state"),
    );
    let engine = state.engine.clone();
    let server = actix_web::HttpServer::new(move || {
        let state = state.clone();
        actix_web::App::new()
            .wrap(actix_web::middleware::from_fn(request_id::middleware))
            .configure(move |cfg| tenant_api::configure(cfg, state))
    })
    .workers(2)
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Payfac {
        base,
        engine,
        db,
        handle,
    }
}

impl Payfac {
    /// One pass of the job runner: claim what is due, handle it, complete or retry.
    async fn run_jobs(&self) {
        let jobs = self
            .db
            .write(|c| {
                store::jobs::claim(
                    c,
                    &KINDS,
                    "test-runner",
                    Duration::from_secs(30),
                    50,
                    chrono::Utc::now().timestamp_millis(),
                )
            })
            .await
            .expect("claim");
        for job in jobs {
            let subject = job.dedupe_key.clone().unwrap_or_default();
            let outcome = handle(&self.engine, &job.kind, &subject).await;
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
    }

    async fn events_of(&self, object_id: &str) -> Vec<String> {
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
}

struct Client {
    http: reqwest::Client,
}

impl Client {
    async fn post(&self, url: String, key: &str, idem: Option<&str>, body: Value) -> (u16, Value) {
        let mut r = self.http.post(url).bearer_auth(key).json(&body);
        if let Some(k) = idem {
            r = r.header("Idempotency-Key", k);
        }
        let r = r.send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, url: String, key: &str) -> Value {
        self.http
            .get(url)
            .bearer_auth(key)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json")
    }
}

/// Creates an operator key in the database, a simulator merchant, and a merchant key.
async fn onboard(p: &Payfac, sim: &Sim, c: &Client) -> String {
    let op = keys::generate_secret(keys::OPERATOR_PREFIX);
    SqlAccountStore::new(p.db.clone())
        .insert_api_key(&ApiKeyRecord {
            id: ApiKeyId::generate(),
            merchant_id: None,
            secret_hash: keys::hash_secret(&op),
            prefix: keys::display_prefix(&op),
            label: None,
            scopes: vec![],
            created_at: chrono::Utc::now(),
            revoked_at: None,
            expires_at: None,
        })
        .await
        .expect("op key");
    let m: Value = c
        .http
        .post(format!("{}/sim/merchants", sim.base))
        .json(&json!({}))
        .send()
        .await
        .expect("sim")
        .json()
        .await
        .expect("json");
    let (_, mer) = c
        .post(
            format!("{}/v1/merchants", p.base),
            &op,
            None,
            json!({"name":"Shop","codepay":{"merchant_no":m["merchant_no"]}}),
        )
        .await;
    let (_, k) = c
        .post(
            format!(
                "{}/v1/merchants/{}/api-keys",
                p.base,
                mer["id"].as_str().unwrap_or_default()
            ),
            &op,
            None,
            json!({}),
        )
        .await;
    k["secret"].as_str().expect("secret").to_owned()
}

async fn auth_code(sim: &Sim, c: &Client, scenario: &str) -> String {
    let v: Value = c
        .http
        .post(format!("{}/sim/auth-codes", sim.base))
        .json(&json!({"scenario": scenario}))
        .send()
        .await
        .expect("sim")
        .json()
        .await
        .expect("json");
    v["auth_code"].as_str().expect("auth_code").to_owned()
}

async fn flows(db: store::Database, coord: Arc<dyn store::Coordinator>) {
    let sim = start_sim();
    let c = Client {
        http: reqwest::Client::new(),
    };
    let p = start_payfac(db.clone(), &sim, coord.clone()).await;
    let sk = onboard(&p, &sim, &c).await;

    // 50 concurrent identical Idempotency-Key requests: one CodePay order, 50 identical answers.
    let code = auth_code(&sim, &c, "approve").await;
    let body = json!({"mode":"cpm","amount":800,"currency":"USD","merchant_order_id":"idem-1","wallet":"alipay","auth_code":code});
    let answers = futures::future::join_all((0..50).map(|_| {
        c.post(
            format!("{}/v1/payments", p.base),
            &sk,
            Some("same-key"),
            body.clone(),
        )
    }))
    .await;
    assert!(
        answers.iter().all(|a| a.0 == 201 && a.1 == answers[0].1),
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    assert_eq!(answers[0].1["status"], "succeeded");
    let orders: Value = c
        .http
        .get(format!("{}/sim/orders", sim.base))
        .send()
        .await
        .expect("orders")
        .json()
        .await
        .expect("json");
    let n = orders["orders"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(n, 1, "one CodePay order: {orders}");

    // Refunds racing each other never exceed the capture.
    let pay_id = answers[0].1["id"].as_str().expect("id").to_owned();
    let racers = futures::future::join_all((0..6).map(|i| {
        c.post(
            format!("{}/v1/payments/{pay_id}/refunds", p.base),
            &sk,
            None,
            json!({"amount":300,"merchant_refund_id":format!("race-{i}")}),
        )
    }))
    .await;
    let ok = racers.iter().filter(|r| r.0 == 201).count();
    assert_eq!(
        ok,
        2,
        "800 fits two refunds of 300: {:?}",
        racers
            .iter()
            .map(|r| (r.0, r.1["error"]["code"].clone()))
            .collect::<Vec<_>>()
    );
    assert!(
        racers
            .iter()
            .all(|r| r.0 == 201 || r.1["error"]["code"] == "refund_exceeds_captured" || r.0 == 409)
    );

    // never_settles → revoked after the deadline: shortened by running the poll past it.
    let code = auth_code(&sim, &c, "never_settles").await;
    let (_, ns) = c.post(format!("{}/v1/payments", p.base), &sk, None, json!({"mode":"cpm","amount":100,"merchant_order_id":"ns-1","wallet":"alipay","auth_code":code})).await;
    assert_eq!(ns["status"], "processing", "{ns}");

    // A restart between "CodePay answered" and "payfac replied": CodePay commits the charge but
    // its answer comes too late (timeout); a NEW payfac process over the same database settles it by polling.
    let fault = c
        .http
        .post(format!("{}/sim/faults", sim.base))
        .json(&json!({"method":"bscanc.pay.submit","kind":"timeout","delay_ms":4000,"count":1}))
        .send()
        .await
        .expect("fault");
    assert!(fault.status().is_success(), "{:?}", fault.text().await);
    // ...and its notifications never reach this process either, so only the poller can settle it.
    let fault = c
        .http
        .post(format!("{}/sim/faults", sim.base))
        .json(&json!({"method": codepay_sim::NOTIFY_METHOD, "kind":"drop","count":50}))
        .send()
        .await
        .expect("fault");
    assert!(fault.status().is_success(), "{:?}", fault.text().await);
    let code = auth_code(&sim, &c, "approve").await;
    let (_, lost) = c.post(format!("{}/v1/payments", p.base), &sk, None, json!({"mode":"cpm","amount":250,"merchant_order_id":"crash-1","wallet":"alipay","auth_code":code})).await;
    assert_eq!(lost["status"], "processing", "{lost}");
    let lost_id = lost["id"].as_str().expect("id").to_owned();
    p.handle.stop(false).await;
    let p2 = start_payfac(db, &sim, coord).await;
    for _ in 0..40 {
        p2.run_jobs().await;
        if c.get(format!("{}/v1/payments/{lost_id}", p2.base), &sk)
            .await["status"]
            == "succeeded"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        c.get(format!("{}/v1/payments/{lost_id}", p2.base), &sk)
            .await["status"],
        "succeeded"
    );
    assert_eq!(
        p2.events_of(&lost_id).await,
        vec!["payment.processing", "payment.succeeded"]
    );
    let orders: Value = c
        .http
        .get(format!("{}/sim/orders", sim.base))
        .send()
        .await
        .expect("orders")
        .json()
        .await
        .expect("json");
    let crash_orders = orders.to_string().matches("crash").count();
    assert!(crash_orders <= 1, "never charged twice");

    // never_settles: past the (test-shortened, 3 s) deadline the poller calls order.revoker and
    // confirms; the payment ends canceled, announced once.
    let ns_id = ns["id"].as_str().expect("id").to_owned();
    for _ in 0..40 {
        p2.run_jobs().await;
        if c.get(format!("{}/v1/payments/{ns_id}", p2.base), &sk).await["status"] == "canceled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ns = c.get(format!("{}/v1/payments/{ns_id}", p2.base), &sk).await;
    assert_eq!(
        (ns["status"].as_str(), ns["failure_code"].as_str()),
        (Some("canceled"), Some("reversed_unsettled")),
        "{ns}"
    );
    assert_eq!(
        p2.events_of(&ns_id).await,
        vec!["payment.processing", "payment.canceled"]
    );

    // The refunds settle by order.refund.query through the job runner.
    for _ in 0..40 {
        p2.run_jobs().await;
        let v = c
            .get(format!("{}/v1/payments/{pay_id}", p2.base), &sk)
            .await;
        if v["amount_refunded"] == 600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        c.get(format!("{}/v1/payments/{pay_id}", p2.base), &sk)
            .await["amount_refunded"],
        600
    );
}

fn pg_admin_url() -> String {
    std::env::var("PAYFAC_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("PAYFAC_TEST_DATABASE_URL is not set: run `. scripts/test-services.sh` first")
    })
}

fn redis_url() -> String {
    std::env::var("PAYFAC_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("PAYFAC_TEST_REDIS_URL is not set: run `. scripts/test-services.sh` first")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_flows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store::Database::connect(
        &format!("sqlite://{}", dir.path().join("p.db").display()),
        4,
    )
    .await
    .expect("db");
    db.migrate().await.expect("migrate");
    flows(db, Arc::new(store::InProcessCoordinator::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_redis_flows() {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let admin = pg_admin_url();
    let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut conn = PgConnection::establish(&admin).expect("admin");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create db");
    let mut url = url::Url::parse(&admin).expect("url");
    url.set_path(&name);
    let db = store::Database::connect(url.as_str(), 8).await.expect("db");
    db.migrate().await.expect("migrate");
    let coord = store::RedisCoordinator::connect(
        &redis_url(),
        &format!("t{name}:"),
        Duration::from_secs(2),
    )
    .await
    .expect("redis");
    flows(db, Arc::new(coord)).await;
}
