//! Issue 13, routing and notifications per account, end to end: two separate `payfac sim`
//! processes (their own app ids and gateway keys), two gateway accounts created through the API,
//! two payfac replicas on one PostgreSQL + Redis. Merchant A goes through account 1 except its
//! EUR payments (a routing rule sends them to account 2); merchant B goes through account 2; a
//! merchant naming none goes through the `default` account (the `codepay_*` settings).
//!
//! Checked: every payment and refund is in the right simulator's ledger only, under the right
//! app (a payment recorded without an account goes through the default account); each
//! simulator's notifications arrive at their account's callback URL, verify and settle
//! the payment; a notification signed by simulator 1 but naming account 2's app, or posted to
//! account 2's URL, is refused and recorded unverified, and changes nothing; a key rotated
//! through replica 1 (`PATCH /v1/gateway-accounts/{id}`, re-keyed at the simulator) is used by
//! replica 1's next payment and by replica 2 within a few seconds, without a restart, while the
//! old key is refused by the simulator.

use crate::support::stack::{Db, Keys, PayfacProc, Sim};
use diesel::prelude::*;
use gateway_client::PrivateKey;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};
use store::schema::upstream_notifications as un;

/// Account 1's app at simulator 1 (beside the default app the configuration names).
const APP_ONE: &str = "wzacct100000000001";
/// Account 2's app: simulator 2's only app.
const APP_TWO: &str = "wzacct200000000002";

/// A fresh 2048-bit key, generated off the async workers.
async fn new_key() -> PrivateKey {
    tokio::task::spawn_blocking(|| PrivateKey::generate_2048().expect("key"))
        .await
        .expect("keygen")
}

/// `call` that fails the test unless the status is `want`.
async fn expect(
    p: &PayfacProc,
    want: u16,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> Value {
    let (status, v) = p.call(method.clone(), path, key, body).await;
    assert_eq!(status, want, "{method} {path}: {v}");
    v
}

/// `POST /v1/gateway-accounts` for `app_id` at `sim`, signing with `key`.
async fn gateway_account(p: &PayfacProc, sim: &Sim, app_id: &str, key: &PrivateKey) -> String {
    let body = json!({
        "name": app_id, "base_url": sim.base, "app_id": app_id,
        "private_key": key.to_pkcs8_pem().expose(),
        "gateway_public_key": gateway_pem(sim).await,
        "request_timeout_ms": 1500,
    });
    let acc = expect(
        p,
        201,
        Method::POST,
        "/v1/gateway-accounts",
        &p.operator_key,
        Some(body),
    )
    .await;
    acc["id"].as_str().expect("id").to_owned()
}

/// The simulator's public key (`GET /sim/gateway-key`).
async fn gateway_pem(sim: &Sim) -> String {
    reqwest::get(format!("{}/sim/gateway-key", sim.base))
        .await
        .expect("gateway key")
        .text()
        .await
        .expect("pem")
}

/// A merchant on CodePay merchant `merchant_no` (`extra` merged into the body) and its key.
async fn merchant(p: &PayfacProc, name: &str, merchant_no: &str, extra: Value) -> (String, String) {
    let mut body = json!({"name": name, "default_currency": "USD",
        "codepay": {"merchant_no": merchant_no}});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let m = expect(
        p,
        201,
        Method::POST,
        "/v1/merchants",
        &p.operator_key,
        Some(body),
    )
    .await;
    let id = m["id"].as_str().expect("id").to_owned();
    let k = expect(
        p,
        201,
        Method::POST,
        &format!("/v1/merchants/{id}/api-keys"),
        &p.operator_key,
        Some(json!({})),
    )
    .await;
    (id, k["secret"].as_str().expect("secret").to_owned())
}

/// An MPM payment (expiring in 120 s, so nothing but a notification can settle it soon).
async fn mpm(p: &PayfacProc, key: &str, order: &str, amount: i64, currency: &str) -> Value {
    let body = json!({"mode": "mpm", "amount": amount, "currency": currency,
        "merchant_order_id": order, "wallet": "alipay", "expires_in": 120});
    expect(p, 201, Method::POST, "/v1/payments", key, Some(body)).await
}

/// A CPM payment with an `approve` code of `sim` (the simulator that will receive it).
async fn cpm(p: &PayfacProc, sim: &Sim, key: &str, order: &str, amount: i64) -> Value {
    let code = sim.auth_code("approve", None).await;
    let body = json!({"mode": "cpm", "amount": amount, "currency": "USD",
        "merchant_order_id": order, "wallet": "alipay", "auth_code": code});
    expect(p, 201, Method::POST, "/v1/payments", key, Some(body)).await
}

/// A refund of `amount` of `payment`.
async fn refund(p: &PayfacProc, key: &str, payment: &Value, amount: i64, reference: &str) -> Value {
    let path = format!(
        "/v1/payments/{}/refunds",
        payment["id"].as_str().expect("id")
    );
    let body = json!({"amount": amount, "merchant_refund_id": reference});
    expect(p, 201, Method::POST, &path, key, Some(body)).await
}

/// Polls `GET path` until its `status` is `want`; within `limit`.
async fn wait_status(p: &PayfacProc, key: &str, path: &str, want: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let v = expect(p, 200, Method::GET, path, key, None).await;
        if v["status"] == want {
            return v;
        }
        assert!(
            started.elapsed() < limit,
            "{path} is {} after {limit:?}, not {want}: {v}",
            v["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn order_no(payment: &Value) -> String {
    payment["codepay"]["merchant_order_no"]
        .as_str()
        .expect("merchant_order_no")
        .to_owned()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// The order numbered `no` is in `here`'s ledger under `app_id` and not in `not_there`'s.
async fn only_at(here: &Sim, not_there: &Sim, no: &str, app_id: &str) {
    let found = here
        .order(no)
        .await
        .unwrap_or_else(|| panic!("{no} missing from {}", here.base));
    assert_eq!(found["app_id"], app_id, "{no}: {found}");
    assert!(
        not_there.order(no).await.is_none(),
        "{no} is in {}'s ledger too",
        not_there.base
    );
}

/// A payment notification for `order_no` of `merchant_no` naming `app_id`, signed with `key`
/// exactly as a simulator signs its own.
fn notification(merchant_no: &str, order_no: &str, app_id: &str, key: &PrivateKey) -> String {
    let mut m: Map<String, Value> = serde_json::from_value(json!({
        "method": "payment.result.notify", "http_request_id": format!("N{}", ulid::Ulid::new()),
        "app_id": app_id, "merchant_no": merchant_no, "merchant_order_no": order_no,
        "trans_no": "T-MISADDRESSED", "trans_type": 1, "trans_status": 2,
        "price_currency": "USD", "order_amount": "9.00", "trans_amount": "9.00",
        "pay_method_id": "Alipay", "sign_type": "RSA2",
        "timestamp": chrono::Utc::now().timestamp_millis().to_string(),
    }))
    .expect("object");
    gateway_client::sign_message(&mut m, key);
    Value::Object(m).to_string()
}

async fn post_raw(p: &PayfacProc, path: &str, body: String) -> (u16, String) {
    let r = p
        .http
        .post(format!("{}{path}", p.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("callback");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// The recorded notifications about the order numbered `no`: (verified, verification error).
async fn recorded(db: &store::Database, no: &str) -> Vec<(bool, Option<String>)> {
    let pattern = format!("%{no}%");
    db.read(move |c| {
        Ok(store::on_backend!(c, |c| un::table
            .filter(un::raw_body.like(&pattern))
            .order(un::received_at.asc())
            .select((un::verified, un::verification_error))
            .load(c))?)
    })
    .await
    .expect("notifications")
}

/// The simulator's delivered notification attempts for `trans_no`: the URLs they went to.
async fn delivered_to(sim: &Sim, trans_no: &str) -> Vec<String> {
    sim.notifications()
        .await
        .into_iter()
        .filter(|a| a["trans_no"] == trans_no && a["outcome"] == "delivered")
        .filter_map(|a| a["url"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_two_replicas() {
    let started = Instant::now();
    let (account_one_key, sim_two_app_key, sim_two_gateway_key, rotated_key) =
        tokio::join!(new_key(), new_key(), new_key(), new_key());
    let keys_one = Keys::write();
    let keys_two = Keys::write_with(&sim_two_app_key, &sim_two_gateway_key);
    let sim1 = Sim::start(&keys_one).await;
    let sim2 = Sim::start_as(&keys_two, APP_TWO).await;
    sim1.register_app(APP_ONE, &account_one_key.public_key().to_pem())
        .await;
    let r1 = PayfacProc::start(&sim1, &keys_one, Db::PostgresRedis, &[]).await;
    let r2 = r1.replica().await;
    let db = store::Database::connect(&r1.database_url, 2)
        .await
        .expect("db");
    let op = r1.operator_key.clone();

    // Two accounts through the API; the `default` one mirrors the configuration.
    let acc1 = gateway_account(&r1, &sim1, APP_ONE, &account_one_key).await;
    let acc2 = gateway_account(&r1, &sim2, APP_TWO, &sim_two_app_key).await;
    let accounts = expect(&r1, 200, Method::GET, "/v1/gateway-accounts", &op, None).await;
    let default = accounts["data"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["name"] == "default")
        .map(id)
        .expect("the default account row");
    assert_eq!(
        accounts["data"].as_array().map(Vec::len),
        Some(3),
        "{accounts}"
    );

    // A is known to both gateways (its EUR goes to account 2), B only to simulator 2.
    let no_a = sim1.new_merchant().await;
    sim2.register_merchant(&no_a).await;
    let no_b = sim2.new_merchant().await;
    let no_c = sim1.new_merchant().await;
    let (mid_a, ka) = merchant(&r1, "A", &no_a, json!({"gateway_account_id": acc1})).await;
    let (_, kb) = merchant(&r2, "B", &no_b, json!({"gateway_account_id": acc2})).await;
    let (_, kc) = merchant(&r1, "C", &no_c, json!({})).await;
    let routed = expect(
        &r2,
        200,
        Method::PATCH,
        &format!("/v1/merchants/{mid_a}"),
        &op,
        Some(json!({"routing": [{"currency": "EUR", "gateway_account_id": acc2}]})),
    )
    .await;
    assert_eq!(routed["routing"][0]["gateway_account_id"], json!(acc2));
    assert_eq!(routed["gateway_account_id"], json!(acc1));

    // Payments on both replicas; MPM ones paid in the right simulator's wallet.
    let a_usd = mpm(&r1, &ka, "a-usd", 1000, "USD").await;
    let a_eur = mpm(&r2, &ka, "a-eur", 2000, "EUR").await;
    let a_cpm = cpm(&r1, &sim1, &ka, "a-cpm", 3000).await;
    let b_mpm = mpm(&r2, &kb, "b-mpm", 4000, "USD").await;
    let b_cpm = cpm(&r1, &sim2, &kb, "b-cpm", 5000).await;
    let b_open = mpm(&r1, &kb, "b-open", 900, "USD").await;
    let c_mpm = mpm(&r2, &kc, "c-mpm", 6000, "USD").await;
    for (p, account) in [
        (&a_usd, &acc1),
        (&a_eur, &acc2),
        (&a_cpm, &acc1),
        (&b_mpm, &acc2),
        (&b_cpm, &acc2),
        (&b_open, &acc2),
        (&c_mpm, &default),
    ] {
        assert_eq!(p["gateway_account_id"], json!(account), "{p}");
    }
    assert_eq!(a_cpm["status"], "succeeded", "{a_cpm}");
    assert_eq!(b_cpm["status"], "succeeded", "{b_cpm}");
    for (sim, p) in [
        (&sim1, &a_usd),
        (&sim2, &a_eur),
        (&sim2, &b_mpm),
        (&sim1, &c_mpm),
    ] {
        assert_eq!(
            sim.pay(p["qr_code"].as_str().expect("qr")).await,
            200,
            "{p}"
        );
    }
    let mut settled = Vec::new();
    for (r, key, p) in [
        (&r1, &ka, &a_usd),
        (&r2, &ka, &a_eur),
        (&r1, &kb, &b_mpm),
        (&r2, &kc, &c_mpm),
    ] {
        // Expiring in 120 s and created just now: only the notification settles them this soon.
        let path = format!("/v1/payments/{}", id(p));
        settled.push(wait_status(r, key, &path, "succeeded", Duration::from_secs(20)).await);
    }
    for p in &settled {
        let trans_no = p["codepay"]["trans_no"].as_str().expect("trans_no");
        assert_eq!(p["codepay"]["merchant_order_no"], json!(order_no(p)));
        assert!(
            !p["codepay"]["merchant_no"]
                .as_str()
                .unwrap_or("")
                .is_empty()
        );
        let sim = if p["gateway_account_id"] == json!(acc2) {
            &sim2
        } else {
            &sim1
        };
        let account = p["gateway_account_id"].as_str().expect("account");
        let urls = delivered_to(sim, trans_no).await;
        assert!(
            !urls.is_empty()
                && urls
                    .iter()
                    .all(|u| u.ends_with(&format!("/callbacks/codepay/{account}"))),
            "{trans_no} notified at {urls:?}"
        );
        let rows = recorded(&db, &order_no(p)).await;
        assert!(
            !rows.is_empty() && rows.iter().all(|(verified, _)| *verified),
            "{rows:?}"
        );
    }

    // Refunds go where their payment went.
    let a_refund = refund(&r2, &ka, &a_cpm, 1000, "ra").await;
    let b_refund = refund(&r1, &kb, &b_cpm, 2000, "rb").await;
    let e_refund = refund(&r1, &ka, &settled[1], 500, "re").await;
    for (r, key, rf, account, merchant_no) in [
        (&r2, &ka, &a_refund, &acc1, &no_a),
        (&r1, &kb, &b_refund, &acc2, &no_b),
        (&r1, &ka, &e_refund, &acc2, &no_a),
    ] {
        assert_eq!(rf["gateway_account_id"], json!(account), "{rf}");
        assert_eq!(rf["codepay"]["merchant_no"], json!(merchant_no), "{rf}");
        let path = format!("/v1/refunds/{}", id(rf));
        wait_status(r, key, &path, "succeeded", Duration::from_secs(30)).await;
    }

    // Each order and refund is in its own gateway's ledger only, under its account's app.
    let app_default = sim1.app_id.clone();
    for (p, here, there, app) in [
        (&a_usd, &sim1, &sim2, APP_ONE),
        (&a_cpm, &sim1, &sim2, APP_ONE),
        (&a_eur, &sim2, &sim1, APP_TWO),
        (&b_mpm, &sim2, &sim1, APP_TWO),
        (&b_cpm, &sim2, &sim1, APP_TWO),
        (&c_mpm, &sim1, &sim2, app_default.as_str()),
    ] {
        only_at(here, there, &order_no(p), app).await;
    }
    for (rf, here, there, app) in [
        (&a_refund, &sim1, &sim2, APP_ONE),
        (&b_refund, &sim2, &sim1, APP_TWO),
        (&e_refund, &sim2, &sim1, APP_TWO),
    ] {
        let no = rf["codepay"]["refund_no"].as_str().expect("refund_no");
        only_at(here, there, no, app).await;
    }

    // A payment recorded before payments carried an account goes through the default account.
    let legacy = id(&settled[3]);
    db.write(move |c| {
        use store::schema::payments as pm;
        store::on_backend!(c, |c| diesel::update(pm::table.find(&legacy))
            .set(pm::gateway_account_id.eq(None::<String>))
            .execute(c))?;
        Ok(())
    })
    .await
    .expect("an account-less payment");
    let legacy_refund = refund(&r2, &kc, &settled[3], 1000, "rc").await;
    assert_eq!(legacy_refund["gateway_account_id"], Value::Null);
    let no = legacy_refund["codepay"]["refund_no"]
        .as_str()
        .expect("refund_no");
    only_at(&sim1, &sim2, no, &app_default).await;
    wait_status(
        &r2,
        &kc,
        &format!("/v1/refunds/{}", id(&legacy_refund)),
        "succeeded",
        Duration::from_secs(30),
    )
    .await;

    // Misaddressed notifications about account 2's open order, signed by simulator 1.
    let gw1 = test_support::gateway_key();
    let open_no = order_no(&b_open);
    for (path, app) in [
        // names account 2's app: verified with account 2's key, which did not sign it
        ("/callbacks/codepay".to_owned(), APP_TWO),
        // posted to account 2's URL, naming account 1's app
        (format!("/callbacks/codepay/{acc2}"), APP_ONE),
    ] {
        let (status, text) = post_raw(&r1, &path, notification(&no_b, &open_no, app, gw1)).await;
        assert_eq!(
            (status, text.as_str()),
            (400, "invalid signature"),
            "{path}"
        );
    }
    // Verified by account 1's key at account 1's URL, but the order is account 2's: no match.
    let (status, text) = post_raw(
        &r2,
        &format!("/callbacks/codepay/{acc1}"),
        notification(&no_b, &open_no, APP_ONE, gw1),
    )
    .await;
    assert_eq!((status, text.as_str()), (200, "success"));
    let rows = recorded(&db, &open_no).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows[..2]
            .iter()
            .all(|(verified, error)| !verified && error.is_some())
    );
    assert!(rows[2].0, "{rows:?}");
    let open = expect(
        &r2,
        200,
        Method::GET,
        &format!("/v1/payments/{}", id(&b_open)),
        &kb,
        None,
    )
    .await;
    assert_eq!(open["status"], "pending", "nothing changed: {open}");
    assert!(open["codepay"]["trans_no"] != "T-MISADDRESSED");

    // Rotation: simulator 1 now knows account 1's app by the new key only.
    sim1.register_app(APP_ONE, &rotated_key.public_key().to_pem())
        .await;
    let refused = mpm(&r2, &ka, "old-key", 700, "USD").await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["failure_message"]
            .as_str()
            .is_some_and(|m| m.contains("signature")),
        "the simulator refuses the old key: {refused}"
    );
    let patched_at = Instant::now();
    let upd = expect(
        &r1,
        200,
        Method::PATCH,
        &format!("/v1/gateway-accounts/{acc1}"),
        &op,
        Some(json!({"private_key": rotated_key.to_pkcs8_pem().expose()})),
    )
    .await;
    assert_eq!(
        upd["app_public_key"].as_str(),
        Some(rotated_key.public_key().to_pem().as_str())
    );
    // Replica 1 (which took the PATCH): its very next payment.
    let first = mpm(&r1, &ka, "new-key-r1", 800, "USD").await;
    assert_eq!(first["status"], "pending", "{first}");
    assert!(first["qr_code"].as_str().is_some(), "{first}");
    // Replica 2: within a few seconds, no restart.
    let mut attempt = 0;
    let on_r2 = loop {
        attempt += 1;
        let p = mpm(&r2, &ka, &format!("new-key-r2-{attempt}"), 800, "USD").await;
        if p["status"] == "pending" {
            break p;
        }
        assert!(
            patched_at.elapsed() < Duration::from_secs(5),
            "replica 2 still signs with the old key {:?} after the PATCH: {p}",
            patched_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "replica 2 used the rotated key {:?} after the PATCH (attempt {attempt})",
        patched_at.elapsed()
    );
    assert_eq!(on_r2["gateway_account_id"], json!(acc1));
    only_at(&sim1, &sim2, &order_no(&on_r2), APP_ONE).await;
    assert_eq!(sim1.pay(on_r2["qr_code"].as_str().expect("qr")).await, 200);
    wait_status(
        &r2,
        &ka,
        &format!("/v1/payments/{}", id(&on_r2)),
        "succeeded",
        Duration::from_secs(20),
    )
    .await;

    // The open order of account 2 still settles normally through its own gateway.
    assert_eq!(sim2.pay(b_open["qr_code"].as_str().expect("qr")).await, 200);
    wait_status(
        &r1,
        &kb,
        &format!("/v1/payments/{}", id(&b_open)),
        "succeeded",
        Duration::from_secs(20),
    )
    .await;
    eprintln!("two gateways, two replicas: {:?}", started.elapsed());
}
