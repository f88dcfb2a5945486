//! The audit trail over real HTTP on SQLite and on PostgreSQL: every configuration and money
//! change an operator or a merchant makes (merchants, keys, stores, terminals, endpoints, a
//! merchant's cancel and refund) is in `GET /v1/audit-events` under the key that made it, an
//! operator reads every merchant's and filters, a merchant reads only its own and only with an
//! administrator key.

use reqwest::Method;
use serde_json::{Value, json};
use support::{TestApp, auth_code, sim_merchant};
use test_support::{SimServer, on_both_backends};

mod support;

on_both_backends!(every_change_is_in_the_audit_trail_of_the_key_that_made_it);

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("id in {v}"))
        .to_owned()
}

/// `(action, actor, target id)` of each entry of a page, oldest first.
fn trail(page: &Value) -> Vec<(String, String, String)> {
    let mut rows: Vec<_> = page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {page}"))
        .iter()
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                text(&e["action"]),
                text(&e["actor"]),
                text(&e["target"]["id"]),
            )
        })
        .collect();
    rows.reverse();
    rows
}

async fn every_change_is_in_the_audit_trail_of_the_key_that_made_it(db: store::Database) {
    let sim = SimServer::start(50);
    let p = TestApp::builder(db).simulator(&sim).start().await;
    let op = p.operator_key().await;
    let op_id = id(&p.get("/v1/operator/api-keys", &op).await["data"][0]);
    let (m, sk) = p.onboard(&op, &sim_merchant(&sim, json!({})).await).await;
    let sk_id = id(&p.get("/v1/api-keys", &sk).await["data"][0]);
    let (other, _) = p.onboard(&op, &sim_merchant(&sim, json!({})).await).await;

    let post = |path: String, key: &'static str, body: Value| {
        let (p, op, sk) = (&p, op.clone(), sk.clone());
        async move {
            let key = if key == "op" { op } else { sk };
            let (status, v) = p.post(&path, &key, None, body).await;
            assert!(status < 300, "{path}: {status} {v}");
            v
        }
    };
    post(format!("/v1/merchants/{m}/suspend"), "op", json!({})).await;
    post(format!("/v1/merchants/{m}/activate"), "op", json!({})).await;
    let extra = post(format!("/v1/merchants/{m}/api-keys"), "op", json!({})).await;
    let (status, _) = p
        .json(
            Method::DELETE,
            &format!("/v1/merchants/{m}/api-keys/{}", id(&extra)),
            &op,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let store = post(
        format!("/v1/merchants/{m}/stores"),
        "sk",
        json!({"name": "Harbour", "codepay": {"store_no": "S1"}}),
    )
    .await;
    let till = post(
        format!("/v1/stores/{}/terminals", id(&store)),
        "sk",
        json!({"name": "Till", "codepay": {"terminal_sn": "T1"}}),
    )
    .await;
    let endpoint = post(
        "/v1/webhook-endpoints".to_owned(),
        "sk",
        json!({"url": "https://hooks.example/payfac"}),
    )
    .await;
    let open = post(
        "/v1/payments".to_owned(),
        "sk",
        json!({"mode": "mpm", "amount": 500, "currency": "USD", "merchant_order_id": "o-1",
            "wallet": "alipay"}),
    )
    .await;
    post(
        format!("/v1/payments/{}/cancel", id(&open)),
        "sk",
        json!({}),
    )
    .await;
    let paid = post(
        "/v1/payments".to_owned(),
        "sk",
        json!({"mode": "cpm", "amount": 800, "currency": "USD", "merchant_order_id": "o-2",
            "wallet": "alipay", "auth_code": auth_code(&sim, "approve").await}),
    )
    .await;
    assert_eq!(paid["status"], "succeeded", "{paid}");
    let refund = post(
        format!("/v1/payments/{}/refunds", id(&paid)),
        "sk",
        json!({"amount": 300, "merchant_refund_id": "r-1"}),
    )
    .await;

    // The operator reads the merchant's trail, each change under the key that made it.
    let page = p
        .get(&format!("/v1/audit-events?merchant_id={m}&limit=100"), &op)
        .await;
    let got = trail(&page);
    let want = [
        ("merchant.create", &op_id, m.clone()),
        ("api_key.create", &op_id, sk_id.clone()),
        ("merchant.suspend", &op_id, m.clone()),
        ("merchant.activate", &op_id, m.clone()),
        ("api_key.create", &op_id, id(&extra)),
        ("api_key.revoke", &op_id, id(&extra)),
        ("store.create", &sk_id, id(&store)),
        ("terminal.create", &sk_id, id(&till)),
        ("webhook_endpoint.create", &sk_id, id(&endpoint)),
        ("payment.cancel", &sk_id, id(&open)),
        ("refund.create", &sk_id, id(&refund)),
    ]
    .map(|(a, k, t)| (a.to_owned(), k.clone(), t));
    assert_eq!(got, want.to_vec(), "{page}");
    // No secret reaches the trail.
    let text = page.to_string();
    assert!(
        !text.contains(&sk) && !text.contains(&op),
        "a key secret in {text}"
    );

    // Filters: by action, by target.
    let suspended = p
        .get(
            &format!("/v1/audit-events?merchant_id={m}&action=merchant.suspend"),
            &op,
        )
        .await;
    assert_eq!(trail(&suspended).len(), 1, "{suspended}");
    let about_refund = p
        .get(&format!("/v1/audit-events?target_id={}", id(&refund)), &op)
        .await;
    assert_eq!(trail(&about_refund).len(), 1, "{about_refund}");

    // A merchant reads its own trail only, whatever merchant_id it names.
    let own = p
        .get(
            &format!("/v1/audit-events?merchant_id={other}&limit=100"),
            &sk,
        )
        .await;
    assert_eq!(trail(&own), want.to_vec(), "{own}");
    // Only an administrator key (`keys:write`) reads it.
    let (status, reader) = p
        .post(
            &format!("/v1/merchants/{m}/api-keys"),
            &op,
            None,
            json!({"scopes": ["payments:read"]}),
        )
        .await;
    assert_eq!(status, 201, "{reader}");
    let secret = reader["secret"].as_str().expect("secret");
    let (status, refused) = p.json(Method::GET, "/v1/audit-events", secret, None).await;
    assert_eq!(status, 403, "{refused}");
    // Bad filters are typed errors.
    let (status, bad) = p
        .json(Method::GET, "/v1/audit-events?merchant_id=nope", &op, None)
        .await;
    assert_eq!(
        (status, &bad["error"]["param"]),
        (400, &json!("merchant_id"))
    );
}
