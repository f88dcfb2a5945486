//! Stores, terminals and the credentials bound to them, over real HTTP on SQLite and on
//! PostgreSQL, with the CodePay simulator taking the payments: CRUD and its validation, 409 on a
//! number taken, 404 across merchants, scopes; a terminal-bound key or token fills in its
//! terminal, refuses another and cannot see another terminal's payments or refunds; operators
//! search every merchant's payments and refunds with filters; a sandbox assigns store and
//! terminal numbers through the registrar.

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use support::{TestApp, auth_code, sim_get, sim_merchant};
use tenant_api::adapters::wiring::{Wiring, app_state_from};
use test_support::{SimServer, on_both_backends};

mod support;

on_both_backends!(
    stores_and_terminals_are_managed_per_merchant,
    bound_credentials_act_only_at_their_store_or_terminal,
    operators_search_payments_and_refunds_across_merchants,
);

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

fn param(v: &Value) -> &str {
    v["error"]["param"].as_str().unwrap_or_default()
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("id in {v}"))
        .to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(id)
        .collect()
}

impl TestApp {
    /// `GET path` as `key`: status and JSON.
    async fn read(&self, path: &str, key: &str) -> (u16, Value) {
        self.json(Method::GET, path, key, None).await
    }

    /// A store of `merchant` created by `key` (201 asserted).
    async fn store(&self, key: &str, merchant: &str, store_no: &str) -> String {
        let (status, s) = self
            .post(
                &format!("/v1/merchants/{merchant}/stores"),
                key,
                None,
                json!({"name": format!("Store {store_no}"), "codepay": {"store_no": store_no}}),
            )
            .await;
        assert_eq!(status, 201, "{s}");
        id(&s)
    }

    /// A terminal of `store` created by `key` (201 asserted).
    async fn terminal(&self, key: &str, store: &str, sn: &str) -> String {
        let (status, t) = self
            .post(
                &format!("/v1/stores/{store}/terminals"),
                key,
                None,
                json!({"name": format!("Till {sn}"), "codepay": {"terminal_sn": sn}}),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        id(&t)
    }
}

async fn stores_and_terminals_are_managed_per_merchant(db: store::Database) {
    let p = TestApp::start(db).await;
    let op = p.operator_key().await;
    let (a, sk_a) = p.merchant_with_key().await;
    let (b, sk_b) = p.merchant_with_key().await;
    let stores_a = format!("/v1/merchants/{a}/stores");

    // An operator creates a store for a merchant, idempotently.
    let body = json!({"name": "Harbour City", "codepay": {"store_no": "S-001"},
        "address": "3 Canton Rd", "timezone": "Asia/Hong_Kong"});
    let (status, s) = p.post(&stores_a, &op, Some("st-1"), body.clone()).await;
    assert_eq!(status, 201, "{s}");
    let s1 = id(&s);
    assert!(s1.starts_with("store_"));
    assert_eq!(s["object"], "store");
    assert_eq!(s["merchant_id"], a.as_str());
    assert_eq!(s["codepay"]["store_no"], "S-001");
    assert_eq!(s["timezone"], "Asia/Hong_Kong");
    assert_eq!(s["enabled"], true);
    let (status, again) = p.post(&stores_a, &op, Some("st-1"), body).await;
    assert_eq!((status, id(&again)), (201, s1.clone()), "replayed");

    // store_no is unique per merchant: taken for A, free for B.
    let (status, dup) = p
        .post(
            &stores_a,
            &op,
            None,
            json!({"name": "Again", "codepay": {"store_no": "S-001"}}),
        )
        .await;
    assert_eq!((status, code(&dup)), (409, "store_no_taken"), "{dup}");
    p.store(&op, b.as_str(), "S-001").await;

    // Validation: each refusal names its field.
    for (body, want_param) in [
        (json!({"name": "", "codepay": {"store_no": "X1"}}), "name"),
        (
            json!({"name": "n".repeat(101), "codepay": {"store_no": "X1"}}),
            "name",
        ),
        (
            json!({"name": "n", "codepay": {"store_no": "no spaces"}}),
            "codepay.store_no",
        ),
        (
            json!({"name": "n", "codepay": {"store_no": "x".repeat(33)}}),
            "codepay.store_no",
        ),
        (
            json!({"name": "n", "codepay": {"store_no": "X1"}, "timezone": "Hong Kong"}),
            "timezone",
        ),
        (
            json!({"name": "n", "codepay": {"store_no": "X1"}, "address": "a".repeat(201)}),
            "address",
        ),
        // Outside sandbox mode the number is required.
        (json!({"name": "n"}), "codepay.store_no"),
    ] {
        let (status, e) = p.post(&stores_a, &op, None, body.clone()).await;
        assert_eq!((status, param(&e)), (400, want_param), "{body}: {e}");
    }
    let (status, e) = p
        .post(
            &stores_a,
            &op,
            None,
            json!({"name": "n", "codepay": {"store_no": "X1"}, "color": "red"}),
        )
        .await;
    assert_eq!((status, code(&e)), (400, "unknown_field"), "{e}");

    // A merchant manages its own stores with stores:write, and no other merchant's.
    let s2 = p.store(&sk_a, a.as_str(), "S-002").await;
    let (status, e) = p
        .post(
            &format!("/v1/merchants/{b}/stores"),
            &sk_a,
            None,
            json!({"name": "n", "codepay": {"store_no": "S-009"}}),
        )
        .await;
    assert_eq!(status, 404, "another merchant's path: {e}");
    let read_only = p.key(Some(&a), &["stores:read"]).await;
    let (status, e) = p
        .post(
            &stores_a,
            &read_only,
            None,
            json!({"name": "n", "codepay": {"store_no": "S-008"}}),
        )
        .await;
    assert_eq!((status, code(&e)), (403, "insufficient_scope"), "{e}");
    let payments_only = p.key(Some(&a), &["payments:read"]).await;
    let (status, _) = p.read(&stores_a, &payments_only).await;
    assert_eq!(status, 403);

    // Reads: the owner and operators; another merchant gets 404.
    let one = format!("/v1/stores/{s1}");
    assert_eq!(p.read(&one, &read_only).await.0, 200);
    assert_eq!(p.read(&one, &op).await.0, 200);
    assert_eq!(p.read(&one, &sk_b).await.0, 404);
    assert_eq!(p.read("/v1/stores/store_nope", &sk_a).await.0, 404);

    // Updates: name, disable, clear the time zone; the number never changes.
    let (status, u) = p
        .patch(
            &one,
            &sk_a,
            json!({"name": "Harbour City 2", "enabled": false, "timezone": null}),
        )
        .await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(
        (&u["name"], &u["enabled"], &u["timezone"]),
        (&json!("Harbour City 2"), &json!(false), &Value::Null)
    );
    assert_eq!(u["address"], "3 Canton Rd", "untouched");
    let (status, e) = p
        .patch(&one, &sk_a, json!({"codepay": {"store_no": "S-777"}}))
        .await;
    assert_eq!((status, code(&e)), (400, "unknown_field"), "{e}");
    assert_eq!(
        p.patch(&one, &sk_b, json!({"name": "mine now"})).await.0,
        404
    );
    assert_eq!(p.patch(&one, &read_only, json!({"name": "x"})).await.0, 403);

    // Pagination, newest first.
    let s3 = p.store(&op, a.as_str(), "S-003").await;
    let (status, page1) = p.read(&format!("{stores_a}?limit=2"), &sk_a).await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(ids(&page1), vec![s3.clone(), s2.clone()]);
    assert_eq!(page1["has_more"], true);
    let (_, page2) = p
        .read(&format!("{stores_a}?limit=2&starting_after={s2}"), &sk_a)
        .await;
    assert_eq!(ids(&page2), vec![s1.clone()]);
    assert_eq!(page2["has_more"], false);
    let (status, e) = p
        .read(&format!("{stores_a}?starting_after=pay_x"), &sk_a)
        .await;
    assert_eq!((status, param(&e)), (400, "starting_after"), "{e}");
    assert_eq!(
        ids(&p.read(&format!("/v1/merchants/{b}/stores"), &op).await.1).len(),
        1
    );

    // Terminals: created in a store, unique terminal_sn per store.
    let terminals = format!("/v1/stores/{s2}/terminals");
    let (status, t) = p
        .post(
            &terminals,
            &sk_a,
            Some("t-1"),
            json!({"name": "Till 1", "codepay": {"terminal_sn": "POS-1"}, "kind": "kiosk"}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let t1 = id(&t);
    assert!(t1.starts_with("term_"));
    assert_eq!(
        (&t["store_id"], &t["kind"], &t["codepay"]["terminal_sn"]),
        (&json!(s2), &json!("kiosk"), &json!("POS-1"))
    );
    let (status, dup) = p
        .post(
            &terminals,
            &op,
            None,
            json!({"name": "Till 1b", "codepay": {"terminal_sn": "POS-1"}}),
        )
        .await;
    assert_eq!((status, code(&dup)), (409, "terminal_sn_taken"), "{dup}");
    p.terminal(&sk_a, &s3, "POS-1").await;
    let t2 = p.terminal(&op, &s2, "POS-2").await;
    for (body, want) in [
        (
            json!({"name": "n", "codepay": {"terminal_sn": "P9"}, "kind": "tablet"}),
            "kind",
        ),
        (
            json!({"name": "n", "codepay": {"terminal_sn": "P 9"}}),
            "codepay.terminal_sn",
        ),
        (json!({"name": "n"}), "codepay.terminal_sn"),
        (
            json!({"name": " ", "codepay": {"terminal_sn": "P9"}}),
            "name",
        ),
    ] {
        let (status, e) = p.post(&terminals, &sk_a, None, body.clone()).await;
        assert_eq!((status, param(&e)), (400, want), "{body}: {e}");
    }
    let (status, _) = p
        .post(
            &terminals,
            &sk_b,
            None,
            json!({"name": "n", "codepay": {"terminal_sn": "P9"}}),
        )
        .await;
    assert_eq!(status, 404, "another merchant's store");
    let (_, list) = p.read(&terminals, &sk_a).await;
    assert_eq!(ids(&list), vec![t2.clone(), t1.clone()]);
    let (_, list) = p.read(&format!("{terminals}?limit=1"), &op).await;
    assert_eq!((ids(&list), &list["has_more"]), (vec![t2], &json!(true)));
    let term = format!("/v1/terminals/{t1}");
    assert_eq!(p.read(&term, &sk_a).await.0, 200);
    assert_eq!(p.read(&term, &sk_b).await.0, 404);
    let (status, u) = p
        .patch(&term, &sk_a, json!({"kind": "counter", "enabled": false}))
        .await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(
        (&u["kind"], &u["enabled"]),
        (&json!("counter"), &json!(false))
    );
    assert_eq!(p.patch(&term, &sk_b, json!({"name": "x"})).await.0, 404);

    // A webhook endpoint may be limited to one of the merchant's stores.
    let hook = json!({"url": "http://127.0.0.1:9/hook", "store_id": s2});
    let (status, e) = p.post("/v1/webhook-endpoints", &sk_a, None, hook).await;
    assert_eq!((status, &e["store_id"]), (201, &json!(s2)), "{e}");
    let endpoint = format!("/v1/webhook-endpoints/{}", id(&e));
    let (status, _) = p
        .post(
            "/v1/webhook-endpoints",
            &sk_b,
            None,
            json!({"url": "http://127.0.0.1:9/hook", "store_id": s2}),
        )
        .await;
    assert_eq!(status, 404, "another merchant's store");
    let (status, e) = p
        .patch(&endpoint, &sk_a, json!({"store_id": "store_nope"}))
        .await;
    assert_eq!(status, 404, "{e}");
    let (status, e) = p.patch(&endpoint, &sk_a, json!({"store_id": s3})).await;
    assert_eq!((status, &e["store_id"]), (200, &json!(s3)), "{e}");
    let (status, e) = p.patch(&endpoint, &sk_a, json!({"store_id": null})).await;
    assert_eq!((status, &e["store_id"]), (200, &Value::Null), "{e}");
}

/// The payload of a JWT, decoded (no verification: the server verified it when minting).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json claims")
}

/// An approved CPM payment: status and body.
async fn cpm(p: &TestApp, sim: &SimServer, key: &str, order: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({"mode": "cpm", "amount": 800, "currency": "USD",
        "merchant_order_id": order, "wallet": "alipay", "auth_code": auth_code(sim, "approve").await});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    p.post("/v1/payments", key, None, body).await
}

/// Registers `stores` (each with its terminals) for `merchant_no` at the simulator, which
/// refuses orders naming a store or terminal CodePay does not know.
fn at_the_simulator(sim: &SimServer, merchant_no: &str, stores: &[(&str, &[&str])]) {
    for (store_no, terminals) in stores {
        sim.sim
            .register_store(merchant_no, Some(store_no))
            .expect("store at the simulator");
        for sn in *terminals {
            sim.sim
                .register_terminal(merchant_no, store_no, Some(sn))
                .expect("terminal at the simulator");
        }
    }
}

async fn bound_credentials_act_only_at_their_store_or_terminal(db: store::Database) {
    let sim = SimServer::start(50);
    let p = TestApp::builder(db).simulator(&sim).start().await;
    let op = p.operator_key().await;
    let merchant_no = sim_merchant(&sim, json!({})).await;
    let (m, sk) = p.onboard(&op, &merchant_no).await;
    let (other, _) = p.merchant_with_key().await;
    let s1 = p.store(&op, &m, "S1").await;
    let s2 = p.store(&op, &m, "S2").await;
    let t1 = p.terminal(&op, &s1, "POS-1").await;
    let t2 = p.terminal(&op, &s1, "POS-2").await;
    let t3 = p.terminal(&op, &s2, "POS-3").await;
    at_the_simulator(
        &sim,
        &merchant_no,
        &[("S1", &["POS-1", "POS-2"]), ("S2", &["POS-3"])],
    );
    let foreign_store = p.store(&op, other.as_str(), "F1").await;

    // An operator issues a terminal-bound key; the key shows its binding and scopes.
    let keys = format!("/v1/merchants/{m}/api-keys");
    let (status, k) = p
        .post(
            &keys,
            &op,
            None,
            json!({"label": "till 1", "terminal_id": t1}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    assert_eq!(
        (&k["store_id"], &k["terminal_id"]),
        (&json!(s1), &json!(t1))
    );
    assert!(k["scopes"].as_array().is_some_and(|s| !s.is_empty()), "{k}");
    let till1 = k["secret"].as_str().expect("secret").to_owned();
    let (status, _) = p
        .post(&keys, &op, None, json!({"store_id": foreign_store}))
        .await;
    assert_eq!(status, 404, "a store of another merchant");
    let (status, e) = p
        .post(&keys, &op, None, json!({"store_id": s2, "terminal_id": t1}))
        .await;
    assert_eq!((status, code(&e)), (422, "terminal_store_mismatch"), "{e}");
    let (_, listed) = p.read(&keys, &op).await;
    let shown = listed["data"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|x| x["id"] == k["id"])
        .cloned()
        .expect("listed");
    assert_eq!(shown["terminal_id"], t1.as_str());

    // A POS token minted by the merchant's key for terminal 1 carries it in its claims.
    let (status, tok) = p
        .post(
            "/v1/tokens",
            &sk,
            None,
            json!({"scopes": ["payments:write", "payments:read", "refunds:read"], "terminal_id": t1}),
        )
        .await;
    assert_eq!(status, 201, "{tok}");
    assert_eq!(
        (&tok["store_id"], &tok["terminal_id"]),
        (&json!(s1), &json!(t1))
    );
    let pos = tok["token"].as_str().expect("token").to_owned();
    let c = claims(&pos);
    assert_eq!(
        (&c["store_id"], &c["terminal_id"]),
        (&json!(s1), &json!(t1))
    );

    // The binding is filled in: the payment is terminal 1's, with its numbers.
    let (status, own) = cpm(&p, &sim, &pos, "pos-1", json!({})).await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(
        (&own["store_id"], &own["terminal_id"]),
        (&json!(s1), &json!(t1))
    );
    assert_eq!(
        (&own["codepay"]["store_no"], &own["codepay"]["terminal_sn"]),
        (&json!("S1"), &json!("POS-1"))
    );
    let orders = sim_get(
        &sim,
        &format!(
            "/sim/orders?merchant_no={}",
            own["codepay"]["merchant_no"].as_str().unwrap_or_default()
        ),
    )
    .await;
    let order = orders["orders"]
        .as_array()
        .and_then(|o| {
            o.iter()
                .find(|o| o["merchant_order_no"] == own["codepay"]["merchant_order_no"])
        })
        .cloned()
        .unwrap_or_else(|| panic!("the order at the simulator: {orders}"));
    assert_eq!(
        (&order["store_no"], &order["terminal_sn"]),
        (&json!("S1"), &json!("POS-1")),
        "the store's and terminal's numbers went upstream"
    );
    // Naming anything else is refused.
    for extra in [
        json!({"terminal_id": t2}),
        json!({"store_id": s2}),
        json!({"store_id": s2, "terminal_id": t3}),
    ] {
        let (status, e) = cpm(&p, &sim, &pos, "pos-x", extra.clone()).await;
        assert_eq!(
            (status, code(&e)),
            (403, "credential_bound"),
            "{extra}: {e}"
        );
    }
    let (status, same) = cpm(
        &p,
        &sim,
        &till1,
        "pos-2",
        json!({"store_id": s1, "terminal_id": t1}),
    )
    .await;
    assert_eq!((status, &same["terminal_id"]), (201, &json!(t1)), "{same}");

    // The unbound key takes payments anywhere: terminal 2 (its store filled in), store 2.
    let (status, at_t2) = cpm(&p, &sim, &sk, "t2-1", json!({"terminal_id": t2})).await;
    assert_eq!((status, &at_t2["store_id"]), (201, &json!(s1)), "{at_t2}");
    let (status, at_s2) = cpm(&p, &sim, &sk, "s2-1", json!({"store_id": s2})).await;
    assert_eq!(
        (status, &at_s2["store_id"], &at_s2["terminal_id"]),
        (201, &json!(s2), &Value::Null),
        "{at_s2}"
    );
    let (status, _) = cpm(&p, &sim, &sk, "nowhere", json!({})).await;
    assert_eq!(status, 201, "a payment at no store");
    let (status, e) = cpm(&p, &sim, &sk, "bad", json!({"store_id": foreign_store})).await;
    assert_eq!((status, code(&e)), (404, "resource_missing"), "{e}");
    let (status, e) = cpm(
        &p,
        &sim,
        &sk,
        "bad",
        json!({"store_id": s2, "terminal_id": t1}),
    )
    .await;
    assert_eq!((status, code(&e)), (422, "terminal_store_mismatch"), "{e}");

    // Another terminal's payment is a 404 for the terminal's credentials; lists are filtered.
    let (own_id, t2_id, s2_id) = (id(&own), id(&at_t2), id(&at_s2));
    for key in [&pos, &till1] {
        assert_eq!(p.read(&format!("/v1/payments/{own_id}"), key).await.0, 200);
        assert_eq!(p.read(&format!("/v1/payments/{t2_id}"), key).await.0, 404);
        assert_eq!(p.read(&format!("/v1/payments/{s2_id}"), key).await.0, 404);
        let (status, list) = p.read("/v1/payments?limit=100", key).await;
        assert_eq!(status, 200, "{list}");
        let mut got = ids(&list);
        got.sort();
        let mut want = vec![own_id.clone(), id(&same)];
        want.sort();
        assert_eq!(got, want);
        let (status, e) = p.read(&format!("/v1/payments?terminal_id={t2}"), key).await;
        assert_eq!((status, code(&e)), (403, "credential_bound"), "{e}");
    }
    assert_eq!(
        ids(&p
            .read(&format!("/v1/payments?terminal_id={t2}"), &sk)
            .await
            .1),
        vec![t2_id.clone()],
        "the unbound key filters by terminal"
    );
    let (status, _) = p
        .post(
            &format!("/v1/payments/{t2_id}/cancel"),
            &till1,
            None,
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "cannot cancel another terminal's payment");

    // Refunds: another terminal's are 404, lists filtered.
    let (status, r_own) = p
        .post(
            &format!("/v1/payments/{own_id}/refunds"),
            &sk,
            None,
            json!({"amount": 100, "merchant_refund_id": "r-own"}),
        )
        .await;
    assert_eq!(status, 201, "{r_own}");
    assert_eq!(r_own["terminal_id"], t1.as_str());
    let (status, r_t2) = p
        .post(
            &format!("/v1/payments/{t2_id}/refunds"),
            &sk,
            None,
            json!({"amount": 100, "merchant_refund_id": "r-t2"}),
        )
        .await;
    assert_eq!(status, 201, "{r_t2}");
    let (status, _) = p
        .post(
            &format!("/v1/payments/{t2_id}/refunds"),
            &till1,
            None,
            json!({"amount": 100, "merchant_refund_id": "r-t2-by-till1"}),
        )
        .await;
    assert_eq!(status, 404, "cannot refund another terminal's payment");
    assert_eq!(
        p.read(&format!("/v1/refunds/{}", id(&r_t2)), &pos).await.0,
        404
    );
    assert_eq!(
        p.read(&format!("/v1/refunds/{}", id(&r_own)), &pos).await.0,
        200
    );
    assert_eq!(
        p.read(&format!("/v1/payments/{t2_id}/refunds"), &pos)
            .await
            .0,
        404
    );
    assert_eq!(ids(&p.read("/v1/refunds", &pos).await.1), vec![id(&r_own)]);
    let mut all = ids(&p.read("/v1/refunds", &sk).await.1);
    all.sort();
    let mut want = vec![id(&r_own), id(&r_t2)];
    want.sort();
    assert_eq!(all, want, "the unbound key lists both");

    // A bound key cannot widen its binding: tokens and keys it makes stay inside it.
    for body in [
        json!({"scopes": ["payments:read"], "store_id": s1}),
        json!({"scopes": ["payments:read"], "terminal_id": t2}),
    ] {
        let (status, e) = p.post("/v1/tokens", &till1, None, body.clone()).await;
        assert_eq!((status, code(&e)), (403, "credential_bound"), "{body}: {e}");
    }
    let (status, narrow) = p
        .post(
            "/v1/tokens",
            &till1,
            None,
            json!({"scopes": ["payments:read"]}),
        )
        .await;
    assert_eq!(status, 201, "{narrow}");
    assert_eq!(narrow["terminal_id"], t1.as_str(), "the key's own binding");
    let (status, e) = p
        .post("/v1/api-keys", &till1, None, json!({"store_id": s1}))
        .await;
    assert_eq!((status, code(&e)), (403, "credential_bound"), "{e}");
    let (status, child) = p.post("/v1/api-keys", &till1, None, json!({})).await;
    assert_eq!(status, 201, "{child}");
    assert_eq!(child["terminal_id"], t1.as_str());
    let (_, mine) = p.read("/v1/api-keys", &till1).await;
    assert!(
        mine["data"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k["terminal_id"] == t1.as_str()),
        "a bound key lists only keys within its binding: {mine}"
    );
    let (_, everyone) = p.read("/v1/api-keys", &sk).await;
    let unbound_id = everyone["data"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["terminal_id"].is_null())
        .map(id)
        .expect("the merchant's unbound key");
    let (status, _) = p
        .json(
            Method::DELETE,
            &format!("/v1/api-keys/{unbound_id}"),
            &till1,
            None,
        )
        .await;
    assert_eq!(status, 404, "a bound key cannot revoke a wider key");

    // ...nor manage stores or webhooks; it reads its own store only.
    let (status, e) = p
        .post(
            &format!("/v1/merchants/{m}/stores"),
            &till1,
            None,
            json!({"name": "n", "codepay": {"store_no": "S9"}}),
        )
        .await;
    assert_eq!((status, code(&e)), (403, "credential_bound"), "{e}");
    assert_eq!(
        p.patch(&format!("/v1/stores/{s1}"), &till1, json!({"name": "x"}))
            .await
            .0,
        403
    );
    assert_eq!(p.read(&format!("/v1/stores/{s1}"), &till1).await.0, 200);
    assert_eq!(p.read(&format!("/v1/stores/{s2}"), &till1).await.0, 404);
    assert_eq!(
        ids(&p.read(&format!("/v1/merchants/{m}/stores"), &till1).await.1),
        vec![s1.clone()]
    );
    assert_eq!(
        ids(&p
            .read(&format!("/v1/stores/{s1}/terminals"), &till1)
            .await
            .1),
        vec![t1.clone()]
    );
    assert_eq!(p.read(&format!("/v1/terminals/{t2}"), &till1).await.0, 404);
    let (status, e) = p.read("/v1/webhook-endpoints", &till1).await;
    assert_eq!((status, code(&e)), (403, "credential_bound"), "{e}");

    // A store-bound key takes payments at any terminal of its store, none elsewhere.
    let (status, k) = p.post(&keys, &op, None, json!({"store_id": s1})).await;
    assert_eq!((status, &k["terminal_id"]), (201, &Value::Null), "{k}");
    let store1 = k["secret"].as_str().expect("secret").to_owned();
    let (status, at) = cpm(&p, &sim, &store1, "s1-t2", json!({"terminal_id": t2})).await;
    assert_eq!((status, &at["terminal_id"]), (201, &json!(t2)), "{at}");
    let (status, e) = cpm(&p, &sim, &store1, "s1-t3", json!({"terminal_id": t3})).await;
    assert_eq!((status, code(&e)), (403, "credential_bound"), "{e}");
    let mut seen = ids(&p.read("/v1/payments?limit=100", &store1).await.1);
    seen.sort();
    let mut want = vec![own_id.clone(), id(&same), t2_id.clone(), id(&at)];
    want.sort();
    assert_eq!(
        seen, want,
        "store 1's payments, none of store 2 or no store"
    );

    // Disabled stores and terminals take no payment.
    p.patch(
        &format!("/v1/terminals/{t2}"),
        &op,
        json!({"enabled": false}),
    )
    .await;
    let (status, e) = cpm(&p, &sim, &sk, "off-t", json!({"terminal_id": t2})).await;
    assert_eq!(
        (status, code(&e), param(&e)),
        (422, "terminal_disabled", "terminal_id"),
        "{e}"
    );
    p.patch(&format!("/v1/stores/{s2}"), &op, json!({"enabled": false}))
        .await;
    let (status, e) = cpm(&p, &sim, &sk, "off-s", json!({"store_id": s2})).await;
    assert_eq!(
        (status, code(&e), param(&e)),
        (422, "store_disabled", "store_id"),
        "{e}"
    );
}

async fn operators_search_payments_and_refunds_across_merchants(db: store::Database) {
    let sim = SimServer::start(50);
    let p = TestApp::builder(db).simulator(&sim).start().await;
    let op = p.operator_key().await;
    let merchant_no_a = sim_merchant(&sim, json!({})).await;
    let (a, sk_a) = p.onboard(&op, &merchant_no_a).await;
    let (b, sk_b) = p.onboard(&op, &sim_merchant(&sim, json!({})).await).await;
    let store_a = p.store(&op, &a, "SA").await;
    let term_a = p.terminal(&op, &store_a, "TA").await;
    at_the_simulator(&sim, &merchant_no_a, &[("SA", &["TA"])]);
    let (_, pa) = cpm(&p, &sim, &sk_a, "a-1", json!({"terminal_id": term_a})).await;
    let (_, pa_mpm) = p
        .post(
            "/v1/payments",
            &sk_a,
            None,
            json!({"mode": "mpm", "amount": 1500, "currency": "USD",
                "merchant_order_id": "a-2", "wallet": "wechat_pay"}),
        )
        .await;
    let (_, pb) = cpm(&p, &sim, &sk_b, "b-1", json!({})).await;
    let (pa_id, pa_mpm_id, pb_id) = (id(&pa), id(&pa_mpm), id(&pb));
    assert_eq!(pa["status"], "succeeded", "{pa}");
    assert_eq!(pa_mpm["status"], "pending", "{pa_mpm}");

    let search = |q: &str| {
        let p = &p;
        let op = op.clone();
        let path = format!("/v1/payments?limit=100{q}");
        async move {
            let (status, list) = p.read(&path, &op).await;
            assert_eq!(status, 200, "{path}: {list}");
            let mut got = ids(&list);
            got.sort();
            got
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        search("").await,
        sorted(vec![pa_id.clone(), pa_mpm_id.clone(), pb_id.clone()]),
        "an operator sees every merchant's payments"
    );
    assert_eq!(
        search(&format!("&merchant_id={a}")).await,
        sorted(vec![pa_id.clone(), pa_mpm_id.clone()])
    );
    assert_eq!(
        search(&format!("&merchant_id={b}")).await,
        vec![pb_id.clone()]
    );
    assert_eq!(
        search(&format!("&store_id={store_a}")).await,
        vec![pa_id.clone()]
    );
    assert_eq!(
        search(&format!("&terminal_id={term_a}")).await,
        vec![pa_id.clone()]
    );
    assert_eq!(
        search("&status=succeeded").await,
        sorted(vec![pa_id.clone(), pb_id.clone()])
    );
    assert_eq!(search("&wallet=wechat_pay").await, vec![pa_mpm_id.clone()]);
    assert_eq!(search("&mode=mpm").await, vec![pa_mpm_id.clone()]);
    assert_eq!(search("&currency=EUR").await, Vec::<String>::new());
    assert_eq!(search("&amount_gte=1000").await, vec![pa_mpm_id.clone()]);
    assert_eq!(
        search("&amount_lte=800").await,
        sorted(vec![pa_id.clone(), pb_id.clone()])
    );
    assert_eq!(search("&merchant_order_id=b-1").await, vec![pb_id.clone()]);
    let order_no = pb["codepay"]["merchant_order_no"].as_str().expect("no");
    assert_eq!(
        search(&format!("&codepay_merchant_order_no={order_no}")).await,
        vec![pb_id.clone()]
    );
    let trans_no = pa["codepay"]["trans_no"].as_str().expect("trans_no");
    assert_eq!(
        search(&format!("&codepay_trans_no={trans_no}")).await,
        vec![pa_id.clone()]
    );
    assert_eq!(
        search(&format!(
            "&gateway_account_id={}",
            domain::GatewayAccountId::generate()
        ))
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        search("&created_gte=2000-01-01T00:00:00Z&created_lt=2000-01-02T00:00:00Z").await,
        Vec::<String>::new()
    );
    for (q, want) in [
        ("merchant_id=acme", "merchant_id"),
        ("store_id=x", "store_id"),
        ("terminal_id=x", "terminal_id"),
        ("status=paid", "status"),
        ("wallet=cash", "wallet"),
        ("mode=nfc", "mode"),
        ("currency=XX", "currency"),
        ("amount_gte=-5", "amount_gte"),
        ("amount_gte=9&amount_lte=1", "amount_lte"),
        ("amount_lte=lots", "amount_lte"),
        ("gateway_account_id=x", "gateway_account_id"),
        ("created_gte=yesterday", "created_gte"),
    ] {
        let (status, e) = p.read(&format!("/v1/payments?{q}"), &op).await;
        assert_eq!((status, param(&e)), (400, want), "{q}: {e}");
    }

    // A merchant gets the same filters on its own payments; merchant_id cannot widen them.
    let (_, own) = p
        .read(&format!("/v1/payments?merchant_id={a}"), &sk_b)
        .await;
    assert_eq!(ids(&own), vec![pb_id.clone()]);
    let (_, own) = p.read("/v1/payments?mode=mpm", &sk_a).await;
    assert_eq!(ids(&own), vec![pa_mpm_id.clone()]);

    // Operators read one payment of any merchant.
    let (status, one) = p.read(&format!("/v1/payments/{pb_id}"), &op).await;
    assert_eq!((status, id(&one)), (200, pb_id.clone()), "{one}");
    assert_eq!(p.read(&format!("/v1/payments/{pb_id}"), &sk_a).await.0, 404);

    // Refunds: searched the same way.
    let refund = |key: String, pay: String, r: &'static str| {
        let p = &p;
        async move {
            let (status, body) = p
                .post(
                    &format!("/v1/payments/{pay}/refunds"),
                    &key,
                    None,
                    json!({"amount": 200, "merchant_refund_id": r}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body
        }
    };
    let ra = refund(sk_a.clone(), pa_id.clone(), "ra").await;
    let rb = refund(sk_b.clone(), pb_id.clone(), "rb").await;
    let (ra_id, rb_id) = (id(&ra), id(&rb));
    let refunds = |q: &str| {
        let p = &p;
        let op = op.clone();
        let path = format!("/v1/refunds?limit=100{q}");
        async move {
            let (status, list) = p.read(&path, &op).await;
            assert_eq!(status, 200, "{path}: {list}");
            let mut got = ids(&list);
            got.sort();
            got
        }
    };
    assert_eq!(
        refunds("").await,
        sorted(vec![ra_id.clone(), rb_id.clone()])
    );
    assert_eq!(
        refunds(&format!("&merchant_id={b}")).await,
        vec![rb_id.clone()]
    );
    assert_eq!(
        refunds(&format!("&store_id={store_a}")).await,
        vec![ra_id.clone()]
    );
    assert_eq!(
        refunds(&format!("&terminal_id={term_a}")).await,
        vec![ra_id.clone()]
    );
    assert_eq!(
        refunds(&format!("&payment_id={pb_id}")).await,
        vec![rb_id.clone()]
    );
    assert_eq!(refunds("&merchant_order_id=a-1").await, vec![ra_id.clone()]);
    assert_eq!(refunds("&merchant_refund_id=rb").await, vec![rb_id.clone()]);
    assert_eq!(refunds("&wallet=wechat_pay").await, Vec::<String>::new());
    assert_eq!(refunds("&mode=cpm").await.len(), 2);
    assert_eq!(refunds("&amount_gte=201").await, Vec::<String>::new());
    let refund_no = ra["codepay"]["refund_no"].as_str().expect("refund_no");
    assert_eq!(
        refunds(&format!("&codepay_merchant_order_no={refund_no}")).await,
        vec![ra_id.clone()]
    );
    let (status, e) = p.read("/v1/refunds?status=canceled", &op).await;
    assert_eq!((status, param(&e)), (400, "status"), "{e}");
    let (status, one) = p.read(&format!("/v1/refunds/{rb_id}"), &op).await;
    assert_eq!((status, id(&one)), (200, rb_id.clone()));
    let (_, own) = p.read(&format!("/v1/refunds?merchant_id={b}"), &sk_a).await;
    assert_eq!(
        ids(&own),
        vec![ra_id],
        "a merchant's refund list is its own"
    );
    assert_eq!(p.read(&format!("/v1/refunds/{rb_id}"), &sk_a).await.0, 404);
}

/// A registrar that assigns numbers and records what it was asked, as the server's sandbox does
/// with the simulator.
#[derive(Default)]
struct Recording(parking_lot::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl tenant_api::SandboxRegistrar for Recording {
    async fn register_merchant(&self, _name: &str) -> tenant_api::Result<String> {
        Ok("SBX-MERCHANT".to_owned())
    }
    async fn register_store(
        &self,
        merchant_no: &str,
        store_no: Option<&str>,
    ) -> tenant_api::Result<String> {
        self.0
            .lock()
            .push(format!("store {merchant_no} {store_no:?}"));
        Ok(store_no.unwrap_or("SBX-STORE").to_owned())
    }
    async fn register_terminal(
        &self,
        merchant_no: &str,
        store_no: &str,
        terminal_sn: Option<&str>,
    ) -> tenant_api::Result<String> {
        self.0
            .lock()
            .push(format!("terminal {merchant_no} {store_no} {terminal_sn:?}"));
        Ok(terminal_sn.unwrap_or("SBX-TERM").to_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_sandbox_mode_stores_and_terminals_are_registered_and_numbered() {
    let (db, _dir) = test_support::fresh_sqlite().await;
    let registrar = Arc::new(Recording::default());
    let sandbox = registrar.clone();
    let p = TestApp::builder(db)
        .state(move |parts| {
            app_state_from(Wiring {
                db: parts.db,
                coordinator: Arc::new(store::InProcessCoordinator::new()),
                gateway: parts.gateway,
                gateway_public_key: parts.gateway_public_key,
                engine: parts.engine,
                token_keys: support::token_keys(),
                rate_limit_per_sec: support::RATE_LIMIT,
                sandbox: Some(sandbox),
                keyring: parts.keyring,
                registry: prometheus::Registry::new(),
                claimant: None,
                default_gateway_account: None,
                gateway_metrics: None,
            })
            .expect("state")
        })
        .start()
        .await;
    let op = p.operator_key().await;
    let (status, m) = p
        .post("/v1/merchants", &op, None, json!({"name": "Sandbox Shop"}))
        .await;
    assert_eq!(status, 201, "{m}");
    let mid = id(&m);
    let (status, s) = p
        .post(
            &format!("/v1/merchants/{mid}/stores"),
            &op,
            None,
            json!({"name": "Main"}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    assert_eq!(
        s["codepay"]["store_no"], "SBX-STORE",
        "assigned by the sandbox"
    );
    let (status, t) = p
        .post(
            &format!("/v1/stores/{}/terminals", id(&s)),
            &op,
            None,
            json!({"name": "Till", "codepay": {"terminal_sn": "MY-SN"}}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(
        t["codepay"]["terminal_sn"], "MY-SN",
        "a given number is kept"
    );
    assert_eq!(
        *registrar.0.lock(),
        vec![
            "store SBX-MERCHANT None".to_owned(),
            "terminal SBX-MERCHANT SBX-STORE Some(\"MY-SN\")".to_owned(),
        ]
    );
}
