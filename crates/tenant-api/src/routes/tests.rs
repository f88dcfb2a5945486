//! HTTP-level tests of the error contract, auth and idempotency over in-memory stores and a
//! scripted CodePay (the black-box suite over real databases and the simulator is separate).

use crate::accounts::{AccountStore, ApiKeyRecord, MemoryAccountStore, MerchantRecord};
use crate::audit::Audit;
use crate::auth::{jwt::TokenIssuer, keys, rate_limit::LocalRateLimiter};
use crate::idempotency::MemoryIdempotencyStore;
use crate::{AppState, request_id};
use ::payments::testing::fake::FakeCodePay;
use ::payments::testing::memory::MemoryPaymentStore;
use ::payments::{Engine, EngineConfig, SystemClock};
use actix_web::{App, test, web};
use domain::{ApiKeyId, Currency, MerchantId, Secret};
use std::sync::Arc;
use std::sync::atomic::Ordering;

struct Setup {
    state: web::Data<AppState>,
    codepay: Arc<FakeCodePay>,
    sk: String,
    op: String,
    merchant: MerchantId,
}

async fn setup() -> Setup {
    setup_with_limit(1000).await
}

async fn setup_with_limit(per_second: u32) -> Setup {
    let accounts = Arc::new(MemoryAccountStore::default());
    let codepay = Arc::new(FakeCodePay::new());
    let engine = Engine::new(
        Arc::new(MemoryPaymentStore::new()),
        codepay.clone(),
        EngineConfig::default(),
        Arc::new(SystemClock),
    );
    let merchant = MerchantId::generate();
    let (now, usd) = (chrono::Utc::now(), Currency::from_code("USD").expect("usd"));
    accounts
        .insert_merchant(
            &MerchantRecord::active(merchant.clone(), "Shop", "M1", usd, now),
            &Audit::system("merchant.create"),
        )
        .await
        .expect("merchant");
    let mut secrets = Vec::new();
    for (prefix, owner) in [
        (keys::MERCHANT_PREFIX, Some(merchant.clone())),
        (keys::OPERATOR_PREFIX, None),
    ] {
        let secret = keys::generate_secret(prefix);
        accounts
            .insert_api_key(
                &ApiKeyRecord {
                    id: ApiKeyId::generate(),
                    merchant_id: owner,
                    secret_hash: keys::hash_secret(&secret),
                    prefix: keys::display_prefix(&secret),
                    label: None,
                    scopes: crate::auth::jwt::ALL_SCOPES
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect(),
                    created_at: now,
                    revoked_at: None,
                    expires_at: None,
                    binding: None,
                },
                &Audit::system("api_key.create"),
            )
            .await
            .expect("key");
        secrets.push(secret);
    }
    let state = web::Data::new(AppState {
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
        rate_limiter: Arc::new(LocalRateLimiter::new(per_second)),
        notifications: None,
        sandbox: None,
        commits: None,
    });
    let op = secrets.pop().unwrap_or_default();
    let sk = secrets.pop().unwrap_or_default();
    Setup {
        state,
        codepay,
        sk,
        op,
        merchant,
    }
}

macro_rules! app {
    ($s:expr) => {{
        let state = $s.state.clone();
        test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(request_id::middleware))
                .configure(move |cfg| crate::configure(cfg, state)),
        )
        .await
    }};
}

fn cpm_body(order: &str) -> serde_json::Value {
    serde_json::json!({"mode":"cpm","amount":1250,"currency":"USD","merchant_order_id":order,"wallet":"alipay","auth_code":"2800001"})
}

/// (key, body, status, code, param)
type Case<'a> = (Option<&'a str>, &'a str, u16, &'a str, Option<&'a str>);

#[actix_web::test]
async fn every_bad_input_gets_the_error_body_with_the_request_id() {
    let s = setup().await;
    let app = app!(s);
    let cases: Vec<Case<'_>> = vec![
        (None, "{}", 401, "missing_api_key", None),
        (Some("sk_nope"), "{}", 401, "invalid_api_key", None),
        (
            Some(&s.op),
            r#"{"mode":"mpm"}"#,
            403,
            "merchant_key_required",
            None,
        ),
        (Some(&s.sk), "{", 400, "invalid_json", None),
        (
            Some(&s.sk),
            r#"{"mode":"mpm","amount":1,"merchant_order_id":"a","wallet":"alipay","x":1}"#,
            400,
            "unknown_field",
            Some("x"),
        ),
        (
            Some(&s.sk),
            r#"{"mode":"mpm","amount":"1","merchant_order_id":"a","wallet":"alipay"}"#,
            400,
            "invalid_type",
            Some("amount"),
        ),
        (
            Some(&s.sk),
            r#"{"mode":"mpm","merchant_order_id":"a","wallet":"alipay"}"#,
            400,
            "parameter_missing",
            Some("amount"),
        ),
        (
            Some(&s.sk),
            r#"{"mode":"mpm","amount":-5,"merchant_order_id":"a","wallet":"alipay"}"#,
            400,
            "amount_invalid",
            Some("amount"),
        ),
        (
            Some(&s.sk),
            r#"{"mode":"mpm","amount":5,"currency":"XXY","merchant_order_id":"a","wallet":"alipay"}"#,
            400,
            "currency_unsupported",
            Some("currency"),
        ),
        (
            Some(&s.sk),
            r#"{"mode":"mpm","amount":5,"merchant_order_id":"a","wallet":"bitcoin"}"#,
            400,
            "wallet_unsupported",
            Some("wallet"),
        ),
    ];
    for (key, body, status, code, param) in cases {
        let mut req = test::TestRequest::post()
            .uri("/v1/payments")
            .insert_header(("x-request-id", "abc-123"))
            .set_payload(body.to_owned());
        if let Some(k) = key {
            req = req.insert_header(("Authorization", format!("Bearer {k}")));
        }
        let resp = test::call_service(&app, req.to_request()).await;
        assert_eq!(resp.status().as_u16(), status, "{body}");
        assert_eq!(
            resp.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
            Some("abc-123")
        );
        let v: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
        assert_eq!(v["error"]["request_id"], "abc-123");
        assert_eq!(v["error"]["param"].as_str(), param, "{body}");
    }
    let foreign = format!("/v1/payments/{}", domain::PaymentId::generate());
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&foreign)
            .insert_header(("Authorization", format!("Bearer {}", s.sk)))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 404);
    assert!(resp.headers().contains_key("x-request-id"));
}

#[actix_web::test]
async fn fifty_concurrent_identical_requests_make_one_codepay_order() {
    let s = setup().await;
    let app = app!(s);
    let body = cpm_body("o-idem").to_string();
    let futs = (0..50).map(|_| {
        let req = test::TestRequest::post()
            .uri("/v1/payments")
            .insert_header(("Authorization", format!("Bearer {}", s.sk)))
            .insert_header(("Idempotency-Key", "k-1"))
            .set_payload(body.clone())
            .to_request();
        test::call_service(&app, req)
    });
    let responses = futures::future::join_all(futs).await;
    let mut bodies = Vec::new();
    for r in responses {
        assert_eq!(r.status().as_u16(), 201);
        let b: serde_json::Value = test::read_body_json(r).await;
        bodies.push(b);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "identical answers");
    assert_eq!(s.codepay.submits.load(Ordering::SeqCst), 1);
    let other = test::TestRequest::post()
        .uri("/v1/payments")
        .insert_header(("Authorization", format!("Bearer {}", s.sk)))
        .insert_header(("Idempotency-Key", "k-1"))
        .set_payload(cpm_body("o-other").to_string())
        .to_request();
    let resp = test::call_service(&app, other).await;
    assert_eq!(resp.status().as_u16(), 422);
    let replay = test::TestRequest::post()
        .uri("/v1/payments")
        .insert_header(("Authorization", format!("Bearer {}", s.sk)))
        .insert_header(("Idempotency-Key", "k-1"))
        .set_payload(body)
        .to_request();
    let resp = test::call_service(&app, replay).await;
    assert_eq!(
        resp.headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
}

#[actix_web::test]
async fn a_scoped_token_cannot_exceed_its_scopes_and_dies_with_its_key() {
    let s = setup().await;
    let app = app!(s);
    let mint = test::TestRequest::post()
        .uri("/v1/tokens")
        .insert_header(("Authorization", format!("Bearer {}", s.sk)))
        .set_payload(r#"{"scopes":["payments:read"]}"#)
        .to_request();
    let resp = test::call_service(&app, mint).await;
    assert_eq!(resp.status().as_u16(), 201);
    let v: serde_json::Value = test::read_body_json(resp).await;
    let token = v["token"].as_str().unwrap_or_default().to_owned();
    let write = test::TestRequest::post()
        .uri("/v1/payments")
        .insert_header(("Authorization", format!("Bearer {token}")))
        .set_payload(cpm_body("t1").to_string())
        .to_request();
    let resp = test::call_service(&app, write).await;
    assert_eq!(resp.status().as_u16(), 403);
    let list = |t: &str| {
        test::TestRequest::get()
            .uri("/v1/payments")
            .insert_header(("Authorization", format!("Bearer {t}")))
            .to_request()
    };
    assert_eq!(
        test::call_service(&app, list(&token))
            .await
            .status()
            .as_u16(),
        200
    );
    let keys = s
        .state
        .accounts
        .api_keys_of(&s.merchant)
        .await
        .expect("keys");
    let revoke = test::TestRequest::delete()
        .uri(&format!(
            "/v1/merchants/{}/api-keys/{}",
            s.merchant, keys[0].id
        ))
        .insert_header(("Authorization", format!("Bearer {}", s.op)))
        .to_request();
    assert_eq!(
        test::call_service(&app, revoke).await.status().as_u16(),
        200
    );
    assert_eq!(
        test::call_service(&app, list(&token))
            .await
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        test::call_service(&app, list(&s.sk))
            .await
            .status()
            .as_u16(),
        401
    );
}

#[actix_web::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let s = setup_with_limit(3).await;
    let app = app!(s);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let req = test::TestRequest::get()
            .uri("/v1/payments")
            .insert_header(("Authorization", format!("Bearer {}", s.sk)))
            .to_request();
        let resp = test::call_service(&app, req).await;
        if resp.status().as_u16() == 429 {
            assert_eq!(
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
                Some("1")
            );
            let v: serde_json::Value = test::read_body_json(resp).await;
            assert_eq!(v["error"]["code"], "rate_limited");
            statuses.push(429);
        } else {
            statuses.push(resp.status().as_u16());
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    let other = test::TestRequest::get()
        .uri("/v1/merchants")
        .insert_header(("Authorization", format!("Bearer {}", s.op)))
        .to_request();
    assert_eq!(
        test::call_service(&app, other).await.status().as_u16(),
        200,
        "limits are per key"
    );
}

#[actix_web::test]
async fn every_mounted_v1_route_is_described_in_the_openapi_document() {
    let s = setup().await;
    let app = app!(s);
    let resp = test::call_service(
        &app,
        test::TestRequest::get().uri("/openapi.json").to_request(),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    let doc: serde_json::Value = test::read_body_json(resp).await;
    let paths = doc["paths"].as_object().expect("paths");
    let mounted: Vec<(String, String)> = crate::routes::mounted_v1_routes()
        .map(|(m, p)| (m.to_owned(), format!("/v1{p}")))
        .collect();
    assert!(mounted.len() >= 36, "the route tables list every route");
    let missing: Vec<_> = mounted
        .iter()
        .filter(|(m, p)| !doc["paths"][p.as_str()][m.as_str()].is_object())
        .collect();
    assert!(
        missing.is_empty(),
        "mounted but not documented: {missing:?}"
    );
    // …and nothing is documented that is not served.
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            if method == "parameters" {
                continue;
            }
            assert!(
                mounted.iter().any(|(m, p)| m == method && p == path),
                "documented but not mounted: {method} {path}"
            );
        }
    }
    // The webhook operations name their schemas, and the schemas exist.
    let schema_of = |path: &str, method: &str, status: &str| {
        doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
            .to_string()
    };
    for (path, method, status, schema) in [
        (
            "/v1/webhook-endpoints",
            "post",
            "201",
            "WebhookEndpointObject",
        ),
        (
            "/v1/webhook-endpoints",
            "get",
            "200",
            "WebhookEndpointObject",
        ),
        (
            "/v1/webhook-endpoints/{id}",
            "delete",
            "200",
            "DeletedObject",
        ),
        (
            "/v1/webhook-endpoints/{id}/recover",
            "post",
            "202",
            "RecoveryObject",
        ),
        ("/v1/events", "get", "200", "EventObject"),
        ("/v1/events/{id}", "get", "200", "EventObject"),
        ("/v1/events/{id}/attempts", "get", "200", "AttemptObject"),
        (
            "/v1/events/{id}/redeliver",
            "post",
            "202",
            "RedeliveryObject",
        ),
        (
            "/v1/operator/webhook-deliveries",
            "get",
            "200",
            "DeliveryObject",
        ),
        ("/v1/webhook-endpoints/{id}", "get", "403", "ErrorBody"),
    ] {
        let got = schema_of(path, method, status);
        assert!(got.contains(schema), "{method} {path} {status}: {got}");
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} is defined"
        );
    }
    let body = &doc["paths"]["/v1/webhook-endpoints"]["post"]["requestBody"];
    assert!(body.to_string().contains("CreateEndpointRequest"), "{body}");
    let fields = &doc["components"]["schemas"]["WebhookEndpointObject"]["properties"];
    for f in ["id", "url", "events", "enabled", "secret", "created_at"] {
        assert!(fields[f].is_object(), "WebhookEndpointObject.{f}");
    }
}
