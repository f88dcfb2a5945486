//! Payment rules over real storage and the real CodePay simulator over HTTP: the store number kept on
//! the payment, MPM expiry closed upstream, the late-success rule, sealed idempotent replays,
//! transition metrics, and the self-rescheduling `payment.reconcile` job.

use codepay_sim::{SimConfig, Simulator};
use diesel::prelude::*;
use domain::{ApiKeyId, PaymentId, Secret};
use gateway_client::{GatewayClient, GatewayConfig, PrivateKey, PublicKey};
use payments::Engine;
use payments::EngineConfig;
use payments::jobs::{JobOutcome, handle};
use payments::jobs::{KINDS as PAYMENT_JOB_KINDS, seed_jobs};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use store::sealing::MasterKeyring;
use tenant_api::accounts::{AccountStore, ApiKeyRecord};
use tenant_api::adapters::accounts::SqlAccountStore;
use tenant_api::adapters::wiring::{Wiring, app_state_from};
use tenant_api::auth::keys;

struct Sim {
    sim: Simulator,
    base: String,
    app_id: String,
    app_key: PrivateKey,
}

fn start_sim() -> Sim {
    let sim = Simulator::new(SimConfig::default()).expect("sim");
    let app_key = PrivateKey::generate_2048().expect("key");
    let app_id = sim
        .register_app(None, &app_key.public_key().to_pem())
        .expect("app");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!(
        "http://{}/sandbox/codepay",
        listener.local_addr().expect("a")
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
    keyring: Arc<MasterKeyring>,
    registry: prometheus::Registry,
    http: reqwest::Client,
}

async fn start_payfac(
    db: store::Database,
    sim: &Sim,
    coord: Arc<dyn store::Coordinator>,
) -> Payfac {
    let gateway_key =
        PublicKey::from_pem_or_base64(&sim.sim.gateway_public_key_pem()).expect("gw key");
    let gw = GatewayConfig::new(
        sim.base.clone(),
        sim.app_id.clone(),
        sim.app_key.clone(),
        gateway_key.clone(),
    );
    let client = GatewayClient::new(gw, None).expect("client");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let key = MasterKeyring::generate_key().expect("key");
    let keyring = Arc::new(MasterKeyring::new(key.expose(), &[]).expect("keyring"));
    let registry = prometheus::Registry::new();
    let state = actix_web::web::Data::new(
        app_state_from(Wiring {
            db: db.clone(),
            coordinator: coord,
            gateway: client,
            gateway_public_key: gateway_key,
            engine: EngineConfig {
                public_url: base.clone(),
                poll_interval: Duration::from_millis(200),
                // The sandbox may ask for very short QR lifetimes, so expiry is testable.
                min_mpm_expiry: Duration::from_secs(1),
                reconcile_interval: Duration::from_secs(60),
                reconcile_min_age: Duration::ZERO,
                ..EngineConfig::default()
            },
            token_keys: vec![("k1".into(), Secret::new("0123456789abcdef0123456789abcdef"))],
            rate_limit_per_sec: 10_000,
            sandbox: None,
            keyring: keyring.clone(),
            registry: registry.clone(),
            claimant: None,
        })
        .expect("state"),
    );
    let engine = state.engine.clone();
    let server = actix_web::HttpServer::new(move || {
        let state = state.clone();
        actix_web::App::new()
            .wrap(actix_web::middleware::from_fn(
                tenant_api::request_id::middleware,
            ))
            .configure(move |cfg| tenant_api::configure(cfg, state))
    })
    .workers(2)
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    Payfac {
        base,
        engine,
        db,
        keyring,
        registry,
        http: reqwest::Client::new(),
    }
}

impl Payfac {
    /// One pass of the job runner over every payment kind; returns the jobs it ran.
    async fn run_jobs(&self) -> Vec<(String, JobOutcome)> {
        let jobs = self
            .db
            .write(|c| {
                store::jobs::claim(
                    c,
                    &PAYMENT_JOB_KINDS,
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

    async fn post(&self, path: &str, key: &str, idem: Option<&str>, body: Value) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body);
        if let Some(k) = idem {
            r = r.header("Idempotency-Key", k);
        }
        let r = r.send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, key: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key);
        r.send().await.expect("send").json().await.expect("json")
    }

    fn counter(&self, name: &str, from: &str, to: &str) -> u64 {
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

async fn sim_post(sim: &Sim, path: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}{path}", sim.base))
        .json(&body)
        .send()
        .await
        .expect("sim")
        .json()
        .await
        .expect("json")
}

async fn sim_order(sim: &Sim, merchant_order_no: &str) -> Value {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/sim/orders", sim.base))
        .send()
        .await
        .expect("orders")
        .json()
        .await
        .expect("json");
    v["orders"]
        .as_array()
        .and_then(|o| {
            o.iter()
                .find(|o| o["merchant_order_no"] == merchant_order_no)
        })
        .cloned()
        .unwrap_or(Value::Null)
}

/// An operator key written to the database.
async fn operator_key(p: &Payfac) -> String {
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
    op
}

async fn upstream_no(p: &Payfac, id: &str) -> String {
    let id = PaymentId::parse(id).expect("id");
    let pay = p
        .engine
        .store()
        .payment(&id)
        .await
        .expect("read")
        .expect("row");
    pay.merchant_order_no
}

async fn flows(db: store::Database, coord: Arc<dyn store::Coordinator>) {
    let sim = start_sim();
    let p = start_payfac(db, &sim, coord).await;
    let op = operator_key(&p).await;

    // A CodePay merchant with a store: the store number must survive every re-read.
    let m = sim_post(&sim, "/sim/merchants", json!({"store_no": "S-7"})).await;
    let (st, mer) = p
        .post(
            "/v1/merchants",
            &op,
            None,
            json!({"name":"Shop","codepay":{"merchant_no":m["merchant_no"],"store_no":"S-7"}}),
        )
        .await;
    assert_eq!(st, 201, "{mer}");
    let mid = mer["id"].as_str().expect("id").to_owned();

    // An API key created under an Idempotency-Key: the replay shows the secret again, the
    // stored record does not hold it readable.
    let path = format!("/v1/merchants/{mid}/api-keys");
    let (st, k) = p.post(&path, &op, Some("key-once"), json!({})).await;
    assert_eq!(st, 201, "{k}");
    let sk = k["secret"].as_str().expect("secret").to_owned();
    let (st, again) = p.post(&path, &op, Some("key-once"), json!({})).await;
    assert_eq!((st, &again), (201, &k));
    let bodies: Vec<Option<String>> =
        p.db.read(|c| {
            use store::schema::idempotency_keys as ik;
            Ok(store::on_backend!(c, |c| ik::table
                .select(ik::response_body)
                .load::<Option<String>>(c))?)
        })
        .await
        .expect("bodies");
    assert!(!bodies.is_empty());
    for b in bodies.iter().flatten() {
        assert!(!b.contains(&sk), "secret stored in plaintext");
        assert!(!b.contains("secret"), "stored body is not sealed: {b}");
    }

    // MPM with a 1 s expiry: unpaid → payfac closes it upstream → canceled, announced once.
    let (st, a) = p
        .post("/v1/payments", &sk, None, json!({"mode":"mpm","amount":1200,"currency":"USD","merchant_order_id":"exp-1","wallet":"alipay","expires_in":1}))
        .await;
    assert_eq!((st, a["status"].as_str()), (201, Some("pending")), "{a}");
    let a_id = a["id"].as_str().expect("id").to_owned();
    let stored = p
        .engine
        .store()
        .payment(&PaymentId::parse(&a_id).expect("id"))
        .await
        .expect("read")
        .expect("row");
    assert_eq!(stored.upstream_store_no.as_deref(), Some("S-7"));
    assert_eq!(
        sim_order(&sim, &stored.merchant_order_no).await["store_no"],
        "S-7"
    );
    let before = p.counter("payfac_payment_transitions_total", "pending", "canceled");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..40 {
        p.run_jobs().await;
        if p.get(&format!("/v1/payments/{a_id}"), &sk).await["status"] == "canceled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let a = p.get(&format!("/v1/payments/{a_id}"), &sk).await;
    assert_eq!(
        (a["status"].as_str(), a["failure_code"].as_str()),
        (Some("canceled"), Some("expired")),
        "{a}"
    );
    let upstream = sim_order(&sim, &stored.merchant_order_no).await;
    assert!(
        upstream["trans_status"] != 2 && upstream["trans_status"] != 0,
        "closed upstream: {upstream}"
    );
    let events = p.events_of(&a_id).await;
    assert_eq!(
        events.iter().filter(|e| *e == "payment.canceled").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        p.counter("payfac_payment_transitions_total", "pending", "canceled"),
        before + 1
    );
    // Paying the closed QR in the wallet is refused by CodePay: nothing to reconcile.
    let qr = a["qr_code"].as_str().unwrap_or_default().to_owned();
    let refused = reqwest::Client::new()
        .post(format!("{}/sim/mpm/pay", sim.base))
        .json(&json!({"qr_code": qr}))
        .send()
        .await
        .expect("pay");
    assert!(!refused.status().is_success());

    // The late success: payfac holds the payment canceled (a local close CodePay did not apply)
    // and the customer pays anyway. The signed success notification is reconciled by the rule:
    // confirmed by query, refunded in full automatically, the payment stays canceled.
    let (_, b) = p
        .post("/v1/payments", &sk, None, json!({"mode":"mpm","amount":700,"currency":"USD","merchant_order_id":"late-1","wallet":"alipay","expires_in":600}))
        .await;
    let b_id = b["id"].as_str().expect("id").to_owned();
    let b_no = upstream_no(&p, &b_id).await;
    let id = b_id.clone();
    p.db.write(move |c| {
        use store::schema::payments;
        store::on_backend!(c, |c| diesel::update(payments::table.find(&id))
            .set((
                payments::status.eq("canceled"),
                payments::closed_by_us.eq(true),
                payments::failure_code.eq("canceled_by_merchant"),
                payments::version.eq(payments::version + 1),
            ))
            .execute(c))?;
        Ok(())
    })
    .await
    .expect("local close");
    let paid = sim_post(&sim, "/sim/mpm/pay", json!({"qr_code": b["qr_code"]})).await;
    assert_eq!(sim_order(&sim, &b_no).await["trans_status"], 2, "{paid}");
    let mut refunds = Value::Null;
    for _ in 0..50 {
        p.run_jobs().await;
        refunds = p.get(&format!("/v1/payments/{b_id}/refunds"), &sk).await;
        if refunds["data"][0]["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = &refunds["data"][0];
    assert_eq!(
        (
            r["status"].as_str(),
            r["amount"].as_i64(),
            r["reason"].as_str()
        ),
        (
            Some("succeeded"),
            Some(700),
            Some("late_success_after_close")
        ),
        "{refunds}"
    );
    let b = p.get(&format!("/v1/payments/{b_id}"), &sk).await;
    assert_eq!(
        (b["status"].as_str(), b["amount_refunded"].as_i64()),
        (Some("canceled"), Some(700))
    );
    let r_id = r["id"].as_str().expect("refund id").to_owned();
    let r_events = p.events_of(&r_id).await;
    assert!(
        r_events.contains(&"refund.succeeded".to_owned()),
        "{r_events:?}"
    );
    assert!(p.counter("payfac_refund_transitions_total", "pending", "succeeded") >= 1);

    // Periodic reconciliation: seeded once however often, runs, and reschedules itself.
    assert_eq!(seed_jobs(&p.db).await.expect("seed"), 1);
    assert_eq!(seed_jobs(&p.db).await.expect("seed"), 0);
    let ran = p.run_jobs().await;
    let rec: Vec<_> = ran
        .iter()
        .filter(|(k, _)| k == "payment.reconcile")
        .collect();
    assert_eq!(rec.len(), 1, "{ran:?}");
    let JobOutcome::RetryAt(next) = rec[0].1 else {
        panic!("reconcile must reschedule itself: {ran:?}")
    };
    let wait = next - chrono::Utc::now();
    assert!(wait > chrono::Duration::seconds(50) && wait <= chrono::Duration::seconds(60));
    assert_eq!(
        seed_jobs(&p.db).await.expect("seed"),
        0,
        "still queued: not seeded twice"
    );
    let _ = &p.keyring;
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
async fn sqlite_payment_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let db = store::Database::connect(&url, 4).await.expect("db");
    db.migrate().await.expect("migrate");
    flows(db, Arc::new(store::InProcessCoordinator::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_redis_payment_rules() {
    let admin = pg_admin_url();
    let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut conn = diesel::PgConnection::establish(&admin).expect("admin");
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
