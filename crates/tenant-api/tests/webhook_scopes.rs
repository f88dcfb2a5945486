//! The webhook API's scopes (`webhooks:read`, `webhooks:write`) over real HTTP on SQLite: a
//! payments-only token gets 403 `insufficient_scope` with the error body, a token minted with
//! the webhook scopes manages endpoints and reads events, a key cannot mint scopes it lacks,
//! and a key stored with the pre-webhook default scope set keeps managing webhooks.

use domain::{ApiKeyId, Currency, MerchantId};
use reqwest::Method;
use serde_json::{Value, json};
use tenant_api::accounts::{AccountStore, ApiKeyRecord, MerchantRecord, MerchantStatus};
use tenant_api::adapters::accounts::SqlAccountStore;
use tenant_api::auth::keys;

mod support;

struct Payfac {
    base: String,
    http: reqwest::Client,
    accounts: SqlAccountStore,
}

async fn start(db: store::Database) -> Payfac {
    let app = support::start(db).await;
    Payfac {
        base: app.base,
        http: app.http,
        accounts: SqlAccountStore::new(app.db),
    }
}

impl Payfac {
    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(bearer);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn merchant(&self) -> MerchantId {
        let id = MerchantId::generate();
        let now = chrono::Utc::now();
        self.accounts
            .insert_merchant(&MerchantRecord {
                id: id.clone(),
                name: "Shop".into(),
                status: MerchantStatus::Active,
                merchant_no: "M1".into(),
                store_no: None,
                default_currency: Currency::from_code("USD").expect("usd"),
                allowed_wallets: vec![],
                max_amount_minor: None,
                contact_email: None,
                created_at: now,
                updated_at: now,
            })
            .await
            .expect("merchant");
        id
    }

    async fn key(&self, merchant: Option<&MerchantId>, scopes: &[&str]) -> String {
        let prefix = if merchant.is_some() {
            keys::MERCHANT_PREFIX
        } else {
            keys::OPERATOR_PREFIX
        };
        let secret = keys::generate_secret(prefix);
        self.accounts
            .insert_api_key(&ApiKeyRecord {
                id: ApiKeyId::generate(),
                merchant_id: merchant.cloned(),
                secret_hash: keys::hash_secret(&secret),
                prefix: keys::display_prefix(&secret),
                label: None,
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                created_at: chrono::Utc::now(),
                revoked_at: None,
                expires_at: None,
            })
            .await
            .expect("key");
        secret
    }

    async fn token(&self, key: &str, scopes: &[&str]) -> (u16, Value) {
        self.call(
            Method::POST,
            "/v1/tokens",
            key,
            Some(json!({ "scopes": scopes })),
        )
        .await
    }
}

fn assert_forbidden(got: (u16, Value), code: &str, scope: Option<&str>) {
    let (status, body) = got;
    assert_eq!(status, 403, "{body}");
    let e = &body["error"];
    assert_eq!(e["type"], "permission_error", "{body}");
    assert_eq!(e["code"], code, "{body}");
    assert!(
        e["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    if let Some(scope) = scope {
        let msg = e["message"].as_str().unwrap_or_default();
        assert!(msg.contains(scope), "message names `{scope}`: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_routes_enforce_the_webhook_scopes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let db = store::Database::connect(&url, 4).await.expect("db");
    db.migrate().await.expect("migrate");
    let p = start(db).await;
    let m = p.merchant().await;
    let all = tenant_api::auth::jwt::ALL_SCOPES;
    assert!(all.contains(&"webhooks:read") && all.contains(&"webhooks:write"));
    let sk = p.key(Some(&m), all).await;
    let endpoint = json!({"url": "http://127.0.0.1:9/hook", "events": ["payment.succeeded"]});

    // A POS token with payments scopes only: every webhook route is 403 with the error body.
    let (st, t) = p.token(&sk, &["payments:read", "payments:write"]).await;
    assert_eq!(st, 201, "{t}");
    let pos = t["token"].as_str().expect("token").to_owned();
    assert_forbidden(
        p.call(Method::GET, "/v1/webhook-endpoints", &pos, None)
            .await,
        "insufficient_scope",
        Some("webhooks:read"),
    );
    assert_forbidden(
        p.call(Method::GET, "/v1/events", &pos, None).await,
        "insufficient_scope",
        Some("webhooks:read"),
    );
    assert_forbidden(
        p.call(
            Method::POST,
            "/v1/webhook-endpoints",
            &pos,
            Some(endpoint.clone()),
        )
        .await,
        "insufficient_scope",
        Some("webhooks:write"),
    );
    // …while its payments scope still works.
    assert_eq!(p.call(Method::GET, "/v1/payments", &pos, None).await.0, 200);

    // Read-only webhook token: lists, but cannot create.
    let (_, t) = p.token(&sk, &["webhooks:read"]).await;
    let reader = t["token"].as_str().expect("token").to_owned();
    let (st, list) = p
        .call(Method::GET, "/v1/webhook-endpoints", &reader, None)
        .await;
    assert_eq!((st, list["object"].as_str()), (200, Some("list")), "{list}");
    assert_forbidden(
        p.call(
            Method::POST,
            "/v1/webhook-endpoints",
            &reader,
            Some(endpoint.clone()),
        )
        .await,
        "insufficient_scope",
        Some("webhooks:write"),
    );

    // A token with both webhook scopes manages endpoints end to end.
    let (_, t) = p.token(&sk, &["webhooks:read", "webhooks:write"]).await;
    let admin = t["token"].as_str().expect("token").to_owned();
    let (st, e) = p
        .call(
            Method::POST,
            "/v1/webhook-endpoints",
            &admin,
            Some(endpoint.clone()),
        )
        .await;
    assert_eq!(st, 201, "{e}");
    assert!(
        e["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    let id = e["id"].as_str().expect("id").to_owned();
    let (st, got) = p
        .call(
            Method::GET,
            &format!("/v1/webhook-endpoints/{id}"),
            &reader,
            None,
        )
        .await;
    assert_eq!((st, got["url"].clone()), (200, endpoint["url"].clone()));
    assert!(got.get("secret").is_none(), "secret shown only once: {got}");
    let (st, _) = p
        .call(
            Method::PATCH,
            &format!("/v1/webhook-endpoints/{id}"),
            &admin,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, events) = p.call(Method::GET, "/v1/events", &reader, None).await;
    assert_eq!((st, events["object"].as_str()), (200, Some("list")));
    let (st, gone) = p
        .call(
            Method::DELETE,
            &format!("/v1/webhook-endpoints/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!((st, gone["deleted"].as_bool()), (200, Some(true)), "{gone}");

    // A key without the webhook scopes can neither use them nor mint them.
    let narrow = p.key(Some(&m), &["payments:read", "payments:write"]).await;
    assert_forbidden(
        p.token(&narrow, &["payments:read", "webhooks:read"]).await,
        "insufficient_scope",
        Some("webhooks:read"),
    );
    assert_forbidden(
        p.call(Method::GET, "/v1/webhook-endpoints", &narrow, None)
            .await,
        "insufficient_scope",
        Some("webhooks:read"),
    );

    // A key stored with the old default set (before webhook scopes existed) keeps managing
    // webhooks with its secret, and may mint webhook tokens.
    let legacy = p
        .key(
            Some(&m),
            &[
                "payments:read",
                "payments:write",
                "refunds:read",
                "refunds:write",
            ],
        )
        .await;
    assert_eq!(
        p.call(Method::GET, "/v1/webhook-endpoints", &legacy, None)
            .await
            .0,
        200
    );
    assert_eq!(p.token(&legacy, &["webhooks:write"]).await.0, 201);

    // Operators act on merchants, not as them.
    let op = p.key(None, &[]).await;
    assert_forbidden(
        p.call(Method::GET, "/v1/webhook-endpoints", &op, None)
            .await,
        "merchant_key_required",
        None,
    );
}
