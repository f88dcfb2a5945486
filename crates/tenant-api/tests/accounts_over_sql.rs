//! Operator onboarding, key issuance, isolation and revocation through real HTTP, over the
//! real `store` on SQLite and on PostgreSQL (fresh database per test).

mod support;

use support::TestApp;
use test_support::on_both_backends;

async fn onboarding_isolation_and_revocation(db: store::Database) {
    let app = TestApp::start(db).await;
    let (base, op) = (app.base.clone(), app.operator_key().await);
    let http = &app.http;
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

on_both_backends!(onboarding_isolation_and_revocation);
