//! The merchant webhook API through real HTTP (tenant-api's routes mounted with the
//! `WebhookApi` the server registers), with deliveries made by this crate's worker to a real
//! receiver, on SQLite and PostgreSQL.

mod support;

use actix_web::{App, HttpServer, web};
use domain::{ApiKeyId, Currency, EventId, MerchantId, Secret};
use payments::ports::{
    CpmOrder, Outcome, QrCreated, QrOrder, RefundOrder, Upstream, UpstreamMerchant, UpstreamOrder,
};
use std::sync::Arc;
use std::time::Duration;
use store::sealing::MasterKeyring;
use store::{Database, clock};
use support::store::{config, drive, keyring, payment_event, worker};
use support::{Received, Receiver, Reply};
use tenant_api::accounts::{
    AccountStore, ApiKeyRecord, MemoryAccountStore, MerchantRecord, MerchantStatus,
};
use tenant_api::auth::{jwt::TokenIssuer, keys, rate_limit::LocalRateLimiter};
use tenant_api::routes::webhooks::WebhookApi;
use webhook_fanout::NetworkPolicy;
use webhook_fanout::signature::{self, WebhookSecret};

const WAIT: Duration = Duration::from_secs(20);

/// CodePay is not involved in webhook management.
struct NoUpstream;

fn declined<T>() -> Outcome<T> {
    Outcome::Declined {
        code: "NOT_USED".into(),
        msg: "no upstream in webhook tests".into(),
    }
}

#[async_trait::async_trait]
impl Upstream for NoUpstream {
    async fn create_qr(&self, _: &QrOrder) -> Outcome<QrCreated> {
        declined()
    }
    async fn submit_cpm(&self, _: &CpmOrder) -> Outcome<UpstreamOrder> {
        declined()
    }
    async fn query(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        declined()
    }
    async fn revoke(&self, _: &UpstreamMerchant, _: &str) -> Outcome<()> {
        declined()
    }
    async fn submit_refund(&self, _: &RefundOrder) -> Outcome<Option<String>> {
        declined()
    }
    async fn query_refund(&self, _: &UpstreamMerchant, _: &str) -> Outcome<UpstreamOrder> {
        declined()
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        key: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rq = self
            .http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            rq = rq.json(&b);
        }
        let resp = rq.send().await.expect("request");
        let status = resp.status().as_u16();
        let v = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, v)
    }
}

/// The exact wiring the server does.
fn webhook_api(db: &Database, kr: &Arc<MasterKeyring>) -> WebhookApi {
    let policy = NetworkPolicy {
        allow_http: true,
        allow_private: true,
    };
    WebhookApi::new(
        db.clone(),
        kr.clone(),
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

async fn add_merchant(db: &Database, accounts: &MemoryAccountStore) -> (MerchantId, String) {
    let id = support::store::merchant(db).await;
    let now = chrono::Utc::now();
    accounts
        .insert_merchant(&MerchantRecord {
            id: id.clone(),
            name: "Shop".into(),
            status: MerchantStatus::Active,
            merchant_no: "M1".into(),
            store_no: None,
            default_currency: Currency::from_code("USD").unwrap(),
            allowed_wallets: vec![],
            max_amount_minor: None,
            contact_email: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    (id.clone(), add_key(accounts, Some(id)).await)
}

async fn add_key(accounts: &MemoryAccountStore, merchant: Option<MerchantId>) -> String {
    let prefix = if merchant.is_some() {
        keys::MERCHANT_PREFIX
    } else {
        keys::OPERATOR_PREFIX
    };
    let secret = keys::generate_secret(prefix);
    accounts
        .insert_api_key(&ApiKeyRecord {
            id: ApiKeyId::generate(),
            merchant_id: merchant,
            secret_hash: keys::hash_secret(&secret),
            prefix: keys::display_prefix(&secret),
            label: None,
            scopes: tenant_api::auth::jwt::ALL_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            created_at: chrono::Utc::now(),
            revoked_at: None,
            expires_at: None,
        })
        .await
        .unwrap();
    secret
}

fn serve(db: &Database, kr: &Arc<MasterKeyring>, accounts: Arc<MemoryAccountStore>) -> String {
    let engine = payments::Engine::new(
        Arc::new(payments::testing::memory::MemoryPaymentStore::new()),
        Arc::new(NoUpstream),
        payments::EngineConfig::default(),
        Arc::new(payments::SystemClock),
    );
    let state = web::Data::new(tenant_api::AppState {
        engine,
        accounts,
        idempotency: Arc::new(tenant_api::idempotency::MemoryIdempotencyStore::default()),
        tokens: Arc::new(
            TokenIssuer::new(vec![(
                "k1".into(),
                Secret::new("0123456789abcdef0123456789abcdef"),
            )])
            .unwrap(),
        ),
        rate_limiter: Arc::new(LocalRateLimiter::new(10_000)),
        notifications: None,
        sandbox: None,
    });
    let api = web::Data::new(webhook_api(db, kr));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let state = state.clone();
        App::new()
            .wrap(actix_web::middleware::from_fn(
                tenant_api::request_id::middleware,
            ))
            .app_data(api.clone())
            .configure(move |cfg| tenant_api::configure(cfg, state))
    })
    .workers(2)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

fn verifies(r: &Received, secret: &str) -> bool {
    let s = WebhookSecret::parse(secret).unwrap();
    signature::verify(
        &[s],
        &r.headers["webhook-id"],
        &r.headers["webhook-timestamp"],
        &r.headers["webhook-signature"],
        &r.body,
        clock::now_ms() / 1000,
        signature::DEFAULT_TOLERANCE_SECS,
    )
    .is_ok()
}

async fn merchants_manage_endpoints_and_replay_events_over_http(db: Database) {
    let kr = keyring();
    let accounts = Arc::new(MemoryAccountStore::default());
    let (m, sk) = add_merchant(&db, &accounts).await;
    let (_, sk_other) = add_merchant(&db, &accounts).await;
    let op = add_key(&accounts, None).await;
    let api = Api {
        base: serve(&db, &kr, accounts.clone()),
        http: reqwest::Client::new(),
    };
    let rx = Receiver::start(Reply::status(200));

    // create: the secret is shown once and sealed at rest
    let (st, ep) = api
        .call("POST", &sk, "/v1/webhook-endpoints", Some(serde_json::json!({"url": rx.url("/hook"), "events": ["payment.succeeded"], "description": "shop"})))
        .await;
    assert_eq!(st, 201, "{ep}");
    let id = ep["id"].as_str().unwrap().to_owned();
    let secret = ep["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let (st, got) = api
        .call("GET", &sk, &format!("/v1/webhook-endpoints/{id}"), None)
        .await;
    assert_eq!(st, 200);
    assert!(got.get("secret").is_none(), "never shown again");
    assert_eq!(got["events"], serde_json::json!(["payment.succeeded"]));
    let row = {
        let id = id.clone();
        db.read(move |c| store::webhook_endpoints::get_any(c, &id))
            .await
            .unwrap()
    };
    assert!(
        !row.secret_ciphertext.contains(&secret[6..]),
        "sealed at rest"
    );
    let (_, page) = api.call("GET", &sk, "/v1/webhook-endpoints", None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);

    // foreign ids are 404, bad input 400, operators and merchants kept apart
    for (method, path) in [
        ("GET", format!("/v1/webhook-endpoints/{id}")),
        ("DELETE", format!("/v1/webhook-endpoints/{id}")),
        ("POST", format!("/v1/webhook-endpoints/{id}/rotate-secret")),
    ] {
        let (st, body) = api.call(method, &sk_other, &path, None).await;
        assert_eq!(st, 404, "{method} {path}: {body}");
    }
    let (st, body) = api
        .call(
            "POST",
            &sk,
            "/v1/webhook-endpoints",
            Some(serde_json::json!({"url": "ftp://x.example/"})),
        )
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (400, Some("url_invalid"))
    );
    let (st, body) = api
        .call(
            "POST",
            &sk,
            "/v1/webhook-endpoints",
            Some(serde_json::json!({"url": rx.url("/"), "events": ["payment.teleported"]})),
        )
        .await;
    assert_eq!((st, body["error"]["param"].as_str()), (400, Some("events")));
    assert_eq!(
        api.call("GET", &op, "/v1/webhook-endpoints", None).await.0,
        403
    );
    assert_eq!(
        api.call("GET", &sk, "/v1/operator/webhook-endpoints", None)
            .await
            .0,
        403
    );

    // an event reaches the endpoint, signed with the secret from the create response
    let w = worker(&db, &kr, config("0s,100ms,100ms"));
    let (ev, _) = payment_event(&db, &m, "pay_api_1").await;
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 1).await);
    assert!(verifies(&rx.received()[0], &secret));
    let (_, events) = api
        .call("GET", &sk, "/v1/events?type=payment.succeeded", None)
        .await;
    assert_eq!(events["data"][0]["id"], ev.id.as_str());
    assert_eq!(events["data"][0]["data"]["id"], "pay_api_1");
    assert_eq!(
        api.call("GET", &sk_other, &format!("/v1/events/{}", ev.id), None)
            .await
            .0,
        404
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, attempts) = api
        .call("GET", &sk, &format!("/v1/events/{}/attempts", ev.id), None)
        .await;
    assert_eq!(attempts["data"][0]["http_status"], 200);

    // redeliver
    let (st, _) = api
        .call(
            "POST",
            &sk,
            &format!("/v1/events/{}/redeliver", ev.id),
            None,
        )
        .await;
    assert_eq!(st, 202);
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 2).await);
    assert_eq!(rx.received()[1].headers["webhook-id"], ev.id);

    // a failing delivery shows under delivery_success=false, then recover re-sends it
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    rx.script([Reply::status(500), Reply::status(500), Reply::status(500)]);
    let (ev2, _) = payment_event(&db, &m, "pay_api_2").await;
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 5).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, failing) = api
        .call("GET", &sk, "/v1/events?delivery_success=false", None)
        .await;
    let ids: Vec<_> = failing["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![ev2.id.clone()]);
    let (_, ok_events) = api
        .call("GET", &sk, "/v1/events?delivery_success=true", None)
        .await;
    assert_eq!(ok_events["data"][0]["id"], ev.id.as_str());
    let (_, health) = api
        .call(
            "GET",
            &op,
            "/v1/operator/webhook-endpoints?failing=true",
            None,
        )
        .await;
    assert_eq!(health["data"][0]["id"], id.as_str());
    assert_eq!(health["data"][0]["dead_deliveries"], 1);
    let (_, dl) = api
        .call(
            "GET",
            &op,
            &format!("/v1/operator/webhook-deliveries?event_id={}", ev2.id),
            None,
        )
        .await;
    assert_eq!(dl["data"][0]["status"], "dead");
    assert_eq!(dl["data"][0]["attempts"], 3);
    let (st, rec) = api
        .call(
            "POST",
            &sk,
            &format!("/v1/webhook-endpoints/{id}/recover"),
            Some(serde_json::json!({"since": since})),
        )
        .await;
    assert_eq!((st, rec["deliveries_queued"].as_u64()), (202, Some(1)));
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 6).await);
    assert_eq!(rx.received()[5].headers["webhook-id"], ev2.id);

    // rotation: both secrets sign, the response shows the new one once
    let (st, rot) = api
        .call(
            "POST",
            &sk,
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{rot}");
    let new_secret = rot["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(rot["previous_secret_expires_at"].is_string());
    payment_event(&db, &m, "pay_api_3").await;
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 7).await);
    let last = &rx.received()[6];
    assert!(verifies(last, &secret) && verifies(last, &new_secret));

    // disable, then delete
    let (st, patched) = api
        .call(
            "PATCH",
            &sk,
            &format!("/v1/webhook-endpoints/{id}"),
            Some(serde_json::json!({"enabled": false, "description": null})),
        )
        .await;
    assert_eq!(
        (
            st,
            patched["enabled"].as_bool(),
            patched["description"].is_null()
        ),
        (200, Some(false), true)
    );
    let (_, n) = payment_event(&db, &m, "pay_api_4").await;
    assert_eq!(n, 0);
    assert_eq!(
        api.call("DELETE", &sk, &format!("/v1/webhook-endpoints/{id}"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        api.call("GET", &sk, &format!("/v1/webhook-endpoints/{id}"), None)
            .await
            .0,
        404
    );
    let _ = EventId::parse(&ev.id).unwrap();
}

async fn recover_over_http_re_enables_the_endpoint_and_sends_what_it_missed_once(db: Database) {
    let kr = keyring();
    let accounts = Arc::new(MemoryAccountStore::default());
    let (m, sk) = add_merchant(&db, &accounts).await;
    let (other, _) = add_merchant(&db, &accounts).await;
    let api = Api {
        base: serve(&db, &kr, accounts.clone()),
        http: reqwest::Client::new(),
    };
    let (bad, good) = (
        Receiver::start(Reply::status(500)),
        Receiver::start(Reply::status(200)),
    );
    let (st, ep) = api
        .call(
            "POST",
            &sk,
            "/v1/webhook-endpoints",
            Some(serde_json::json!({"url": bad.url("/hook"), "events": ["payment.succeeded"]})),
        )
        .await;
    assert_eq!(st, 201, "{ep}");
    let id = ep["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/webhook-endpoints/{id}");
    let recover = format!("{path}/recover");
    let since = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(3)).await;

    // failing for longer than the limit disables the endpoint
    let mut cfg = config("0s,150ms,150ms,150ms,150ms,150ms,150ms,150ms");
    cfg.disable_after = Duration::from_millis(400);
    let w = worker(&db, &kr, cfg);
    let (failed, _) = payment_event(&db, &m, "pay_rec_1").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while api.call("GET", &sk, &path, None).await.1["enabled"] != false {
        assert!(tokio::time::Instant::now() < deadline, "never disabled");
        support::store::run_once(&db, &w, "r", 16).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // raised while disabled: no delivery row for the endpoint
    let (missed, n) = payment_event(&db, &m, "pay_rec_2").await;
    assert_eq!(n, 0);
    let (unsubscribed, _) =
        support::store::event(&db, &m, domain::EventType::RefundSucceeded, "re_rec_3").await;
    let (foreign, _) = payment_event(&db, &other, "pay_rec_4").await;
    // the merchant fixes the receiver: the endpoint stays disabled until recovered
    let (st, patched) = api
        .call(
            "PATCH",
            &sk,
            &path,
            Some(serde_json::json!({"url": good.url("/hook")})),
        )
        .await;
    assert_eq!((st, patched["enabled"].as_bool()), (200, Some(false)));

    // `until` defaults to now
    let (st, rec) = api
        .call(
            "POST",
            &sk,
            &recover,
            Some(serde_json::json!({"since": since})),
        )
        .await;
    assert_eq!(st, 202, "{rec}");
    assert_eq!(rec["deliveries_queued"], 2, "{rec}");
    assert_eq!(
        (
            &rec["deliveries_created"],
            &rec["deliveries_requeued"],
            &rec["deliveries_already_succeeded"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(0)
        ),
        "{rec}"
    );
    assert_eq!(
        (&rec["reenabled"], &rec["enabled"], &rec["has_more"]),
        (
            &serde_json::json!(true),
            &serde_json::json!(true),
            &serde_json::json!(false)
        ),
        "{rec}"
    );
    assert!(
        rec["next_since"].is_null() && rec["until"].is_string(),
        "{rec}"
    );
    let (_, now) = api.call("GET", &sk, &path, None).await;
    assert_eq!(
        (&now["enabled"], &now["disabled_reason"]),
        (&serde_json::json!(true), &serde_json::Value::Null)
    );

    let w = worker(&db, &kr, config("0s,100ms"));
    assert!(drive(&db, &w, "r", WAIT, || good.count() == 2).await);
    support::store::run_once(&db, &w, "r", 64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut got: Vec<String> = good
        .received()
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    got.sort();
    let mut wanted = vec![failed.id.clone(), missed.id.clone()];
    wanted.sort();
    assert_eq!(got, wanted, "not {} nor {}", unsubscribed.id, foreign.id);

    // again: both succeeded, nothing is sent twice
    let (st, again) = api
        .call(
            "POST",
            &sk,
            &recover,
            Some(serde_json::json!({"since": since})),
        )
        .await;
    assert_eq!(
        (
            st,
            &again["deliveries_queued"],
            &again["deliveries_already_succeeded"],
            &again["reenabled"]
        ),
        (
            202,
            &serde_json::json!(0),
            &serde_json::json!(2),
            &serde_json::json!(false)
        ),
        "{again}"
    );
    support::store::run_once(&db, &w, "r", 64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(good.count(), 2);

    // bad ranges are 400 with the usual error body
    let t = |d: chrono::Duration| (since + d).to_rfc3339();
    for (body, param) in [
        (
            serde_json::json!({"since": t(chrono::Duration::zero()), "until": t(chrono::Duration::zero())}),
            "until",
        ),
        (
            serde_json::json!({"since": t(-chrono::Duration::seconds(5)), "until": t(-chrono::Duration::seconds(10))}),
            "until",
        ),
        (
            serde_json::json!({"since": t(-chrono::Duration::days(40)), "until": t(chrono::Duration::zero())}),
            "until",
        ),
        (
            serde_json::json!({"since": t(-chrono::Duration::days(40))}),
            "since",
        ),
        (
            serde_json::json!({"since": t(chrono::Duration::days(1))}),
            "since",
        ),
        (serde_json::json!({"since": "yesterday"}), "since"),
        (
            serde_json::json!({"until": t(chrono::Duration::zero())}),
            "since",
        ),
    ] {
        let (st, err) = api.call("POST", &sk, &recover, Some(body.clone())).await;
        assert_eq!(st, 400, "{body}: {err}");
        let e = &err["error"];
        assert_eq!(e["type"], "invalid_request_error", "{body}: {err}");
        assert!(e["code"].is_string() && e["message"].is_string(), "{err}");
        assert_eq!(e["param"], param, "{body}: {err}");
    }
}

on_both_backends!(
    merchants_manage_endpoints_and_replay_events_over_http,
    recover_over_http_re_enables_the_endpoint_and_sends_what_it_missed_once,
);
