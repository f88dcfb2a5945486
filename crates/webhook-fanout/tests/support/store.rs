//! Real databases for the delivery tests: a fresh SQLite file or PostgreSQL database per test,
//! merchants, sealed endpoints, events written with their fan-out, and the delivery pump the
//! server runs, driven until a condition holds.
#![allow(dead_code)]

use domain::{EventType, MerchantId, WebhookEndpointId};
use std::sync::Arc;
use std::time::Duration;
use store::events::Event;
use store::sealing::MasterKeyring;
use store::webhook_endpoints::{self, WebhookEndpoint};
use store::{Database, clock};
use webhook_fanout::signature::WebhookSecret;
use webhook_fanout::{DeliveryWorker, FanoutConfig, NetworkPolicy, Pump, PumpConfig};

/// Runs `$name(db)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (db, _dir) = $crate::support::store::fresh_sqlite().await;
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::support::store::fresh_postgres().await;
                    super::$name(db).await;
                }
            )*
        }
    };
}

pub async fn fresh_sqlite() -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("payfac.db").display());
    let db = Database::connect(&url, 8).await.expect("connect sqlite");
    db.migrate().await.expect("migrate");
    (db, dir)
}

pub fn pg_admin_url() -> String {
    std::env::var("PAYFAC_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("PAYFAC_TEST_DATABASE_URL is not set: run `. scripts/test-services.sh` first")
    })
}

pub async fn fresh_postgres() -> Database {
    fresh_postgres_sized(16).await
}

pub async fn fresh_postgres_sized(pool: u32) -> Database {
    fresh_postgres_with_url(pool).await.0
}

/// A fresh migrated PostgreSQL database and its URL (for statements outside transactions).
pub async fn fresh_postgres_with_url(pool: u32) -> (Database, String) {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let admin = pg_admin_url();
    let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut conn = PgConnection::establish(&admin).expect("connect to the admin database");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create test database");
    let mut url = url::Url::parse(&admin).expect("admin url");
    url.set_path(&name);
    let db = Database::connect(url.as_str(), pool)
        .await
        .expect("connect postgres");
    db.migrate().await.expect("migrate");
    (db, url.to_string())
}

pub fn keyring() -> Arc<MasterKeyring> {
    let key = MasterKeyring::generate_key().expect("key");
    Arc::new(MasterKeyring::new(key.expose(), &[]).expect("keyring"))
}

/// Delivery settings for tests: plain http to loopback, a compressed schedule.
pub fn config(schedule: &str) -> FanoutConfig {
    let mut sender = webhook_fanout::SenderConfig {
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    sender.policy = NetworkPolicy {
        allow_http: true,
        allow_private: true,
    };
    FanoutConfig {
        schedule: schedule.parse().expect("schedule"),
        sender,
        ..FanoutConfig::default()
    }
}

pub fn worker(
    db: &Database,
    keyring: &Arc<MasterKeyring>,
    config: FanoutConfig,
) -> Arc<DeliveryWorker> {
    Arc::new(DeliveryWorker::build(db.clone(), keyring.clone(), None, config).expect("worker"))
}

pub async fn merchant(db: &Database) -> MerchantId {
    let id = MerchantId::generate();
    let row = store::merchants::Merchant {
        id: id.to_string(),
        name: "Shop".into(),
        status: "active".into(),
        gateway_account_id: None,
        codepay_merchant_no: None,
        codepay_store_no: None,
        default_currency: "USD".into(),
        allowed_wallets: "[]".into(),
        max_amount_minor: None,
        contact: None,
        metadata: "{}".into(),
        created_at: clock::now_ms(),
        updated_at: clock::now_ms(),
    };
    db.write(move |c| store::merchants::insert(c, &row))
        .await
        .expect("merchant");
    id
}

/// An enabled endpoint with a sealed fresh secret; returns its id and secret.
pub async fn endpoint(
    db: &Database,
    keyring: &Arc<MasterKeyring>,
    merchant: &MerchantId,
    url: &str,
    events: &[&str],
) -> (WebhookEndpointId, WebhookSecret) {
    let id = WebhookEndpointId::generate();
    let secret = WebhookSecret::generate().expect("secret");
    let sealed = keyring
        .seal(
            secret.expose().as_bytes(),
            &webhook_endpoints::secret_binding(id.as_str()),
        )
        .expect("seal");
    let now = clock::now_ms();
    let row = WebhookEndpoint {
        id: id.to_string(),
        merchant_id: merchant.to_string(),
        url: url.to_owned(),
        description: None,
        event_filter: serde_json::to_string(events).expect("json"),
        enabled: true,
        disabled_reason: None,
        secret_ciphertext: sealed,
        previous_secret_ciphertext: None,
        previous_secret_expires_at: None,
        failing_since: None,
        deleted_at: None,
        created_at: now,
        updated_at: now,
    };
    db.write(move |c| store::webhook_endpoints::insert(c, &row))
        .await
        .expect("endpoint");
    (id, secret)
}

/// Writes a `payment.succeeded` event about `object_id` and fans it out in the same transaction.
pub async fn payment_event(
    db: &Database,
    merchant: &MerchantId,
    object_id: &str,
) -> (Event, usize) {
    event(db, merchant, EventType::PaymentSucceeded, object_id).await
}

pub async fn event(
    db: &Database,
    merchant: &MerchantId,
    kind: EventType,
    object_id: &str,
) -> (Event, usize) {
    let ev = Event {
        id: domain::EventId::generate().to_string(),
        merchant_id: merchant.to_string(),
        event_type: kind.as_str().to_owned(),
        object_id: object_id.to_owned(),
        payload: serde_json::json!({"id": object_id, "object": "payment", "status": "succeeded", "amount": 1250, "currency": "USD", "sequence": 2}).to_string(),
        created_at: clock::now_ms(),
    };
    let row = ev.clone();
    let merchant = merchant.clone();
    let n = db
        .write(move |c| {
            // inserting the event fans it out in the same transaction
            store::events::insert(c, &row)?;
            Ok(store::deliveries::list_for_event(c, &merchant, &row.event_id()?)?.len())
        })
        .await
        .expect("event");
    (ev, n)
}

/// Pump settings for tests: polls often (no coordinator wakes it).
pub fn pump_config(owner: &str) -> PumpConfig {
    let mut c = PumpConfig::new(owner);
    c.poll_interval = Duration::from_millis(20);
    c
}

/// Runs the delivery pump as `owner` (as the server's worker role does) until `done` returns
/// true or `timeout` passes, then shuts it down (records flushed, leases handed back); returns
/// whether `done` became true.
pub async fn drive(
    _db: &Database,
    worker: &Arc<DeliveryWorker>,
    owner: &str,
    timeout: Duration,
    done: impl Fn() -> bool,
) -> bool {
    let pump = Arc::new(Pump::new(worker.clone(), pump_config(owner)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(pump.run(None, stopped, Duration::from_secs(10)));
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline && !done() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).expect("stop the pump");
    task.await.expect("pump task");
    done()
}

/// One pump batch of up to `limit` jobs, sent concurrently and recorded; returns how many ran.
pub async fn run_once(
    _db: &Database,
    worker: &Arc<DeliveryWorker>,
    owner: &str,
    limit: i64,
) -> usize {
    let mut config = pump_config(owner);
    config.batch = usize::try_from(limit).unwrap_or(1);
    Arc::new(Pump::new(worker.clone(), config)).run_once().await
}
