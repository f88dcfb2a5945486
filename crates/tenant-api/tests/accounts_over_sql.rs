//! Operator onboarding, key issuance, isolation and revocation through real HTTP, over the
//! real `store` on SQLite and on PostgreSQL (fresh database per test).

use async_trait::async_trait;
use domain::{ApiKeyId, Secret};
use payments::ports::*;
use payments::testing::memory::MemoryPaymentStore;
use payments::{Engine, EngineConfig, SystemClock};
use std::sync::Arc;
use tenant_api::accounts::{AccountStore, ApiKeyRecord};
use tenant_api::adapters::accounts::SqlAccountStore;
use tenant_api::auth::{jwt::TokenIssuer, keys, rate_limit::LocalRateLimiter};
use tenant_api::idempotency::MemoryIdempotencyStore;
use tenant_api::{AppState, request_id};

/// CodePay is not part of these flows; any call would be a bug, so it answers "unknown".
struct NoUpstream;

#[async_trait]
impl Upstream for NoUpstream {
    async fn create_qr(&self, _: &QrOrder) -> Outcome<QrCreated> {
        Outcome::Unknown {
            reason: "not wired".into(),
        }
    }
    async fn submit_cpm(&self, _: &CpmOrder) -> Outcome<UpstreamOrder> {
        Outcome::Unknown {
            reason: "not wired".into(),
        }
    }
    async fn query(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        Outcome::Unknown {
            reason: "not wired".into(),
        }
    }
    async fn revoke(&self, _: &UpstreamMerchant, _: &str) -> Outcome<()> {
        Outcome::Unknown {
            reason: "not wired".into(),
        }
    }
    async fn submit_refund(&self, _: &RefundOrder) -> Outcome<Option<String>> {
        Outcome::Unknown {
            reason: "not wired".into(),
        }
    }
    async fn query_refund(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        Outcome::Unknown {
            reason: "not wired".into(),
        }
    }
}

fn pg_admin_url() -> String {
    std::env::var("PAYFAC_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("PAYFAC_TEST_DATABASE_URL is not set: run `. scripts/test-services.sh` first")
    })
}

async fn fresh_postgres() -> store::Database {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let admin = pg_admin_url();
    let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut conn = PgConnection::establish(&admin).expect("connect to the admin database");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create test database");
    let mut url = url::Url::parse(&admin).expect("admin url");
    url.set_path(&name);
    let db = store::Database::connect(url.as_str(), 4)
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    db
}

async fn fresh_sqlite(dir: &tempfile::TempDir) -> store::Database {
    let path = dir.path().join("payfac.db");
    let db = store::Database::connect(&format!("sqlite://{}", path.display()), 4)
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    db
}

/// Starts the app on 127.0.0.1:0; returns its base URL and an operator key.
async fn start(db: store::Database) -> (String, String) {
    let accounts = Arc::new(SqlAccountStore::new(db));
    let op = keys::generate_secret(keys::OPERATOR_PREFIX);
    accounts
        .insert_api_key(&ApiKeyRecord {
            id: ApiKeyId::generate(),
            merchant_id: None,
            secret_hash: keys::hash_secret(&op),
            prefix: keys::display_prefix(&op),
            label: Some("bootstrap".into()),
            scopes: vec![],
            created_at: chrono::Utc::now(),
            revoked_at: None,
            expires_at: None,
        })
        .await
        .expect("operator key");
    let engine = Engine::new(
        Arc::new(MemoryPaymentStore::new()),
        Arc::new(NoUpstream),
        EngineConfig::default(),
        Arc::new(SystemClock),
    );
    let state = actix_web::web::Data::new(AppState {
        engine,
        accounts,
        idempotency: Arc::new(MemoryIdempotencyStore::default()),
        tokens: Arc::new(
            TokenIssuer::new(vec![(
                "k1".into(),
                Secret::new("0123456789abcdef0123456789abcdef"),
            )])
            .expect("issuer"),
        ),
        rate_limiter: Arc::new(LocalRateLimiter::new(1000)),
        notifications: None,
        sandbox: None,
    });
    let server = actix_web::HttpServer::new(move || {
        let state = state.clone();
        actix_web::App::new()
            .wrap(actix_web::middleware::from_fn(request_id::middleware))
            .configure(move |cfg| tenant_api::configure(cfg, state))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{addr}"), op)
}

async fn onboarding_isolation_and_revocation(db: store::Database) {
    let (base, op) = start(db).await;
    let http = reqwest::Client::new();
    let post = |path: &str, key: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let mut merchants = Vec::new();
    let mut secrets = Vec::new();
    for name in ["Alpha", "Beta"] {
        let m: serde_json::Value = post("/v1/merchants", &op, serde_json::json!({"name": name, "codepay": {"merchant_no": format!("M{name}")}, "max_amount": 5000}))
            .await.expect("create").json().await.expect("json");
        assert_eq!(m["object"], "merchant");
        assert_eq!(m["status"], "active");
        let id = m["id"].as_str().expect("id").to_owned();
        let k: serde_json::Value = post(
            &format!("/v1/merchants/{id}/api-keys"),
            &op,
            serde_json::json!({"label": "pos"}),
        )
        .await
        .expect("key")
        .json()
        .await
        .expect("json");
        let secret = k["secret"].as_str().expect("secret shown once").to_owned();
        assert!(secret.starts_with("sk_"));
        merchants.push(id);
        secrets.push(secret);
    }
    // Listing keys never shows a secret.
    let listed = http
        .get(format!("{base}/v1/merchants/{}/api-keys", merchants[0]))
        .bearer_auth(&op)
        .send()
        .await
        .expect("list");
    let text = listed.text().await.expect("body");
    assert!(!text.contains(&secrets[0]) && !text.contains("\"secret\""));
    // A merchant key cannot use operator routes; another merchant's payment id is a 404.
    let r = http
        .get(format!("{base}/v1/merchants"))
        .bearer_auth(&secrets[0])
        .send()
        .await
        .expect("call");
    assert_eq!(r.status().as_u16(), 403);
    let r = http
        .get(format!(
            "{base}/v1/payments/{}",
            domain::PaymentId::generate()
        ))
        .bearer_auth(&secrets[1])
        .send()
        .await
        .expect("call");
    assert_eq!(r.status().as_u16(), 404);
    // Suspended merchants cannot take payments.
    post(
        &format!("/v1/merchants/{}/suspend", merchants[0]),
        &op,
        serde_json::json!({}),
    )
    .await
    .expect("suspend");
    let r = post(
        "/v1/payments",
        &secrets[0],
        serde_json::json!({"mode":"mpm","amount":100,"merchant_order_id":"o1","wallet":"alipay"}),
    )
    .await
    .expect("pay");
    assert_eq!(r.status().as_u16(), 403);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "merchant_suspended");
    // A revoked key is refused on its very next request (well within one second).
    let keys: serde_json::Value = http
        .get(format!("{base}/v1/merchants/{}/api-keys", merchants[1]))
        .bearer_auth(&op)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let key_id = keys["data"][0]["id"].as_str().expect("key id").to_owned();
    let before = http
        .get(format!("{base}/v1/payments"))
        .bearer_auth(&secrets[1])
        .send()
        .await
        .expect("call");
    assert_eq!(before.status().as_u16(), 200);
    let t0 = std::time::Instant::now();
    let r = http
        .delete(format!(
            "{base}/v1/merchants/{}/api-keys/{key_id}",
            merchants[1]
        ))
        .bearer_auth(&op)
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status().as_u16(), 200);
    let after = http
        .get(format!("{base}/v1/payments"))
        .bearer_auth(&secrets[1])
        .send()
        .await
        .expect("call");
    assert_eq!(after.status().as_u16(), 401);
    assert!(t0.elapsed() < std::time::Duration::from_secs(1));
    // Another merchant's key id cannot be revoked through the wrong merchant.
    let r = http
        .delete(format!(
            "{base}/v1/merchants/{}/api-keys/{key_id}",
            merchants[0]
        ))
        .bearer_auth(&op)
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_onboarding_isolation_and_revocation() {
    let dir = tempfile::tempdir().expect("tempdir");
    onboarding_isolation_and_revocation(fresh_sqlite(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_onboarding_isolation_and_revocation() {
    onboarding_isolation_and_revocation(fresh_postgres().await).await;
}
