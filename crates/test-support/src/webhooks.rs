//! Webhook delivery fixtures over a real database (feature `webhooks`): merchants, sealed
//! endpoints, events written with their fan-out, and the delivery pump the server runs, driven
//! until a condition holds. Used by webhook-fanout's tests and by tenant-api's webhook API tests,
//! which deliver with webhook-fanout's worker.

use domain::{EventType, MerchantId, WebhookEndpointId};
use std::sync::Arc;
use std::time::Duration;
use store::events::Event;
use store::sealing::MasterKeyring;
use store::webhook_endpoints::{self, WebhookEndpoint};
use store::{Database, clock};
use webhook_fanout::signature::WebhookSecret;
use webhook_fanout::{DeliveryWorker, FanoutConfig, NetworkPolicy, Pump, PumpConfig};

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

/// The delivery worker the server runs, over `db` with `keyring`.
pub fn worker(
    db: &Database,
    keyring: &Arc<MasterKeyring>,
    config: FanoutConfig,
) -> Arc<DeliveryWorker> {
    Arc::new(DeliveryWorker::build(db.clone(), keyring.clone(), None, config).expect("worker"))
}

/// A merchant row ("Shop", USD), as endpoints and events need one.
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
        routing: "[]".into(),
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
    let filter = serde_json::to_string(events).expect("json");
    let row = WebhookEndpoint::new(id.as_str(), merchant.as_str(), url, filter, sealed, now);
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

/// Writes a `kind` event about `object_id` and fans it out in the same transaction; returns
/// the event and how many deliveries it got.
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

/// Whether the request `r` carries a valid Standard Webhooks signature by one of `secrets`
/// (timestamp checked against now with the default tolerance).
pub fn verifies(r: &crate::receiver::Received, secrets: &[WebhookSecret]) -> bool {
    webhook_fanout::signature::verify(
        secrets,
        &r.headers["webhook-id"],
        &r.headers["webhook-timestamp"],
        &r.headers["webhook-signature"],
        &r.body,
        clock::now_ms() / 1000,
        webhook_fanout::signature::DEFAULT_TOLERANCE_SECS,
    )
    .is_ok()
}
