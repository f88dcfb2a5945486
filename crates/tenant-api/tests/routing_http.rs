//! Routing payments through gateway accounts, over real HTTP on SQLite and PostgreSQL with the
//! CodePay simulator: merchant routing rules are validated and audited, a merchant's account
//! can be cleared, a key rotated through `PATCH /v1/gateway-accounts/{id}` is used by the very
//! next payment of the same process, a disabled account refuses new payments while its
//! existing ones settle, and each account's notifications arrive at its own URL, verified with
//! its key.

mod support;

use diesel::prelude::*;
use gateway_client::PrivateKey;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::time::Duration;
use store::schema::upstream_notifications as un;
use support::{TestApp, sim_get, sim_merchant, sim_post};
use test_support::{SimServer, on_both_backends};

/// `POST /v1/gateway-accounts` for an app of `sim` signing with `key`: the account's id.
async fn account(
    app: &TestApp,
    op: &str,
    sim: &SimServer,
    app_id: &str,
    key: &PrivateKey,
) -> String {
    let (status, acc) = app
        .post(
            "/v1/gateway-accounts",
            op,
            None,
            json!({
                "name": app_id, "base_url": sim.base, "app_id": app_id,
                "private_key": key.to_pkcs8_pem().expose(),
                "gateway_public_key": sim.gateway_public_key().to_pem(),
            }),
        )
        .await;
    assert_eq!(status, 201, "{acc}");
    acc["id"].as_str().expect("id").to_owned()
}

async fn patch(app: &TestApp, op: &str, path: &str, body: Value) -> (u16, Value) {
    app.patch(path, op, body).await
}

/// An MPM payment request of `amount` USD cents.
fn mpm(order: &str, amount: i64) -> Value {
    json!({"mode":"mpm","amount":amount,"currency":"USD","merchant_order_id":order,"wallet":"alipay"})
}

/// The audit actions recorded about `merchant`, newest first.
/// The routing entries of the merchant's audit trail (its other entries, such as the merchant
/// update a PATCH also writes, are left out).
async fn audit_actions(app: &TestApp, merchant: &str) -> Vec<String> {
    let audit = app
        .db
        .read(|c| store::audit::list(c, None, &store::PageRequest::first(100)))
        .await
        .expect("audit");
    audit
        .items
        .into_iter()
        .filter(|e| e.target_id == merchant)
        .map(|e| e.action)
        .filter(|a| a == "merchant.gateway_account" || a == "merchant.routing")
        .collect()
}

async fn routing_rules_are_validated_audited_and_clearable(db: store::Database) {
    let sim = SimServer::start(50);
    let app = TestApp::builder(db).simulator(&sim).start().await;
    let op = app.operator_key().await;
    let enabled = account(&app, &op, &sim, &sim.app_id, test_support::app_key()).await;
    let disabled = account(&app, &op, &sim, "app_off", test_support::other_key()).await;
    let (status, _) = patch(
        &app,
        &op,
        &format!("/v1/gateway-accounts/{disabled}"),
        json!({"enabled": false}),
    )
    .await;
    assert_eq!(status, 200);
    let merchant_no = sim_merchant(&sim, json!({})).await;
    let (mid, sk) = app.onboard(&op, &merchant_no).await;
    let path = format!("/v1/merchants/{mid}");

    let rule = |currency: &str, wallet: &str, account: &str| json!({"currency": currency, "wallet": wallet, "gateway_account_id": account});
    let too_many: Vec<Value> = (0..33)
        .map(|_| json!({"gateway_account_id": enabled}))
        .collect();
    for (body, status, code, param) in [
        (
            json!({"routing": [rule("EUR", "alipay", "gwa_01JAAAAAAAAAAAAAAAAAAAAAAA")]}),
            422,
            "gateway_account_unknown",
            "routing[0].gateway_account_id",
        ),
        (
            json!({"routing": [{"gateway_account_id": enabled}, rule("EUR", "alipay", &disabled)]}),
            422,
            "gateway_account_disabled",
            "routing[1].gateway_account_id",
        ),
        (
            json!({"routing": [rule("XXX", "alipay", &enabled)]}),
            400,
            "currency_unsupported",
            "routing[0].currency",
        ),
        (
            json!({"routing": [rule("EUR", "cash", &enabled)]}),
            400,
            "wallet_unsupported",
            "routing[0].wallet",
        ),
        (
            json!({"routing": too_many}),
            400,
            "parameter_invalid",
            "routing",
        ),
        (
            json!({"gateway_account_id": "nonsense"}),
            422,
            "gateway_account_unknown",
            "gateway_account_id",
        ),
    ] {
        let (got, err) = patch(&app, &op, &path, body.clone()).await;
        assert_eq!(got, status, "{body}: {err}");
        assert_eq!(err["error"]["code"], code, "{body}: {err}");
        assert_eq!(err["error"]["param"], param, "{body}: {err}");
    }
    let m = app.get(&path, &op).await;
    assert_eq!(m["routing"], json!([]), "refused changes wrote nothing");
    assert_eq!(m["gateway_account_id"], Value::Null);
    assert!(audit_actions(&app, &mid).await.is_empty());

    // A valid change: ordered rules and the merchant's own account, shown and audited.
    let rules = json!([rule("EUR", "alipay", &enabled), {"wallet": "wechat_pay", "gateway_account_id": enabled}]);
    let (status, m) = patch(
        &app,
        &op,
        &path,
        json!({"routing": rules, "gateway_account_id": enabled}),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["routing"], rules);
    assert_eq!(m["gateway_account_id"], json!(enabled));
    let m = app.get(&path, &op).await;
    assert_eq!(m["routing"], rules);
    assert_eq!(m["gateway_account_id"], json!(enabled));
    let mut actions = audit_actions(&app, &mid).await;
    actions.sort();
    assert_eq!(actions, ["merchant.gateway_account", "merchant.routing"]);
    let (status, paid) = app
        .post("/v1/payments", &sk, None, mpm("routed", 100))
        .await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["gateway_account_id"], json!(enabled));

    // `null` clears the account, `[]` the rules: the next payment takes the configured upstream.
    let (status, m) = patch(
        &app,
        &op,
        &path,
        json!({"gateway_account_id": null, "routing": []}),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["gateway_account_id"], Value::Null);
    assert_eq!(m["routing"], json!([]));
    let m = app.get(&path, &op).await;
    assert_eq!(
        (&m["gateway_account_id"], &m["routing"]),
        (&Value::Null, &json!([]))
    );
    let (status, plain) = app.post("/v1/payments", &sk, None, mpm("plain", 100)).await;
    assert_eq!(status, 201, "{plain}");
    assert_eq!(plain["gateway_account_id"], Value::Null);
    // A PATCH without either field leaves the routing alone.
    let (status, m) = patch(&app, &op, &path, json!({"name": "Renamed"})).await;
    assert_eq!((status, &m["routing"]), (200, &json!([])));
    assert_eq!(audit_actions(&app, &mid).await.len(), 4);
    app.stop().await;
}

/// The upstream notification rows: (verified, verification error).
async fn notifications(db: &store::Database) -> Vec<(bool, Option<String>)> {
    db.read(|c| {
        Ok(store::on_backend!(c, |c| un::table
            .order(un::received_at.asc())
            .select((un::verified, un::verification_error))
            .load(c))?)
    })
    .await
    .expect("notifications")
}

/// A notification the simulator's gateway key signs, naming `app_id`.
fn signed_notification(merchant_no: &str, order_no: &str, app_id: &str) -> String {
    let mut m: Map<String, Value> = serde_json::from_value(json!({
        "method": "payment.result.notify", "app_id": app_id, "merchant_no": merchant_no,
        "merchant_order_no": order_no, "trans_no": "T-FORGED", "trans_type": 1,
        "trans_status": 2, "price_currency": "USD", "order_amount": "1.00",
        "trans_amount": "1.00", "sign_type": "RSA2",
        "timestamp": chrono::Utc::now().timestamp_millis().to_string(),
    }))
    .expect("object");
    gateway_client::sign_message(&mut m, test_support::gateway_key());
    Value::Object(m).to_string()
}

async fn a_rotated_key_is_used_by_the_next_payment_and_a_disabled_account_takes_none(
    db: store::Database,
) {
    let sim = SimServer::start(50);
    let app = TestApp::builder(db.clone()).simulator(&sim).start().await;
    let op = app.operator_key().await;
    let app_id = "wz_rotating";
    sim.sim
        .register_app(Some(app_id), &test_support::app_key().public_key().to_pem())
        .expect("app");
    let acc = account(&app, &op, &sim, app_id, test_support::app_key()).await;
    let merchant_no = sim_merchant(&sim, json!({})).await;
    let (mid, sk) = app.onboard(&op, &merchant_no).await;
    let (status, _) = patch(
        &app,
        &op,
        &format!("/v1/merchants/{mid}"),
        json!({"gateway_account_id": acc}),
    )
    .await;
    assert_eq!(status, 200);

    let (status, first) = app.post("/v1/payments", &sk, None, mpm("p1", 100)).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["gateway_account_id"], json!(acc));
    let ledger = |no: String| {
        let sim = &sim;
        async move {
            let v = sim_get(sim, &format!("/sim/orders?merchant_order_no={no}")).await;
            v["orders"].as_array().cloned().unwrap_or_default()
        }
    };
    let order_no = first["codepay"]["merchant_order_no"]
        .as_str()
        .expect("order no")
        .to_owned();
    let at_sim = ledger(order_no.clone()).await;
    assert_eq!(at_sim.len(), 1);
    assert_eq!(
        at_sim[0]["app_id"], app_id,
        "went through the account's app"
    );

    // CodePay now knows the app by its new key only: the old one is refused there.
    let rotated = test_support::other_key();
    sim.sim
        .register_app(Some(app_id), &rotated.public_key().to_pem())
        .expect("re-key");
    let (_, refused) = app.post("/v1/payments", &sk, None, mpm("p2", 100)).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["failure_message"]
            .as_str()
            .is_some_and(|m| m.contains("signature")),
        "signed with the old key, CodePay refuses it: {refused}"
    );
    let (status, upd) = patch(
        &app,
        &op,
        &format!("/v1/gateway-accounts/{acc}"),
        json!({"private_key": rotated.to_pkcs8_pem().expose()}),
    )
    .await;
    assert_eq!(status, 200, "{upd}");
    // No wait: this process's next payment signs with the new key.
    let (status, second) = app.post("/v1/payments", &sk, None, mpm("p3", 100)).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["status"], "pending", "{second}");
    assert!(second["qr_code"].as_str().is_some(), "{second}");

    // Disabled: new payments are refused before anything is written; existing ones settle
    // through the account (the wallet pays, the notification arrives at the account's URL).
    let (status, _) = patch(
        &app,
        &op,
        &format!("/v1/gateway-accounts/{acc}"),
        json!({"enabled": false}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, err) = app.post("/v1/payments", &sk, None, mpm("p4", 100)).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "gateway_account_disabled");
    assert_eq!(err["error"]["param"], "gateway_account_id");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&acc))
    );
    let list = app.get("/v1/payments?merchant_order_id=p4", &sk).await;
    assert_eq!(list["data"], json!([]), "nothing written");
    let qr = second["qr_code"].as_str().expect("qr").to_owned();
    let paid = sim_post(&sim, "/sim/mpm/pay", json!({"qr_code": qr})).await;
    assert!(paid.get("error").is_none(), "{paid}");
    let id = second["id"].as_str().expect("id").to_owned();
    let mut last = Value::Null;
    for _ in 0..100 {
        last = app.get(&format!("/v1/payments/{id}"), &sk).await;
        if last["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        last["status"], "succeeded",
        "settled by its notification: {last}"
    );
    let attempts = sim_get(&sim, "/sim/notifications").await;
    let urls: Vec<&str> = attempts["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["url"].as_str())
        .collect();
    assert!(
        urls.iter()
            .all(|u| *u == format!("{}/callbacks/codepay/{acc}", app.base)),
        "{urls:?}"
    );
    assert_eq!(notifications(&db).await, [(true, None)]);

    // A notification naming another app at this account's URL is refused and kept unverified;
    // the account-less URL verifies with the account whose app_id it names.
    let forged = signed_notification(&merchant_no, &order_no, "wz_someone_else");
    for url in [
        format!("{}/callbacks/codepay/{acc}", app.base),
        format!("{}/callbacks/codepay", app.base),
    ] {
        let r = app
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(forged.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 400, "{url}");
    }
    let rows = notifications(&db).await;
    assert_eq!(rows.len(), 3);
    assert!(rows[1..].iter().all(|(verified, error)| {
        !verified
            && error
                .as_deref()
                .is_some_and(|e| e.contains("wz_someone_else"))
    }));
    let p1 = app
        .get(
            &format!("/v1/payments/{}", first["id"].as_str().expect("id")),
            &sk,
        )
        .await;
    assert_eq!(
        p1["status"], "pending",
        "a refused notification changes nothing"
    );
    app.stop().await;
}

on_both_backends!(
    routing_rules_are_validated_audited_and_clearable,
    a_rotated_key_is_used_by_the_next_payment_and_a_disabled_account_takes_none,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_account_url_refuses_the_notification() {
    let (db, _dir) = test_support::fresh_sqlite().await;
    let app = TestApp::start(db.clone()).await;
    let body = signed_notification("M1", "P1", "app");
    for account in ["gwa_01JAAAAAAAAAAAAAAAAAAAAAAA", "not-an-id"] {
        let r = app
            .http
            .request(
                Method::POST,
                format!("{}/callbacks/codepay/{account}", app.base),
            )
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 400);
        assert_eq!(r.text().await.expect("text"), "invalid signature");
    }
    let rows = notifications(&db).await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|(v, e)| {
        !v && e
            .as_deref()
            .is_some_and(|e| e.contains("unknown gateway account"))
    }));
    app.stop().await;
}
