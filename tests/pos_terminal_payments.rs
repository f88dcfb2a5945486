//! A POS terminal's token against the real binary in production mode, with the CodePay
//! simulator in its own process: a payment made with a terminal-bound token goes upstream
//! under its store's `store_no` and its terminal's `terminal_sn`, and the token cannot read
//! another terminal's payment.

use crate::support::stack::{Db, Keys, PayfacProc, Sim};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminal_token_pays_under_its_numbers_and_sees_no_other_terminal() {
    let keys = Keys::write();
    let sim = Sim::start(&keys).await;
    let payfac = PayfacProc::start(&sim, &keys, Db::Sqlite, &[]).await;
    let op = payfac.operator_key.clone();
    let merchant_no = sim.new_merchant().await;
    let post = |path: String, body: Value| {
        let (payfac, op) = (&payfac, op.clone());
        async move { payfac.call(Method::POST, &path, &op, Some(body)).await }
    };
    let (merchant, sk) = crate::support::merchant_with_key(
        post,
        json!({"name": "POS shop", "default_currency": "USD",
            "codepay": {"merchant_no": merchant_no}}),
        "back office",
    )
    .await;
    let created = |path: String, body: Value| {
        let (payfac, op) = (&payfac, op.clone());
        async move {
            let (status, v) = payfac.call(Method::POST, &path, &op, Some(body)).await;
            assert_eq!(status, 201, "{path}: {v}");
            v["id"].as_str().expect("id").to_owned()
        }
    };
    sim.register_store(&merchant_no, "HB-01", &["POS-A", "POS-B"])
        .await;
    let store = created(
        format!("/v1/merchants/{merchant}/stores"),
        json!({"name": "Harbour", "codepay": {"store_no": "HB-01"}}),
    )
    .await;
    let till_a = created(
        format!("/v1/stores/{store}/terminals"),
        json!({"name": "Till A", "codepay": {"terminal_sn": "POS-A"}}),
    )
    .await;
    let till_b = created(
        format!("/v1/stores/{store}/terminals"),
        json!({"name": "Till B", "codepay": {"terminal_sn": "POS-B"}}),
    )
    .await;

    // The back office mints a POS token for till A.
    let (status, tok) = payfac
        .call(
            Method::POST,
            "/v1/tokens",
            &sk,
            Some(json!({"scopes": ["payments:write", "payments:read"], "terminal_id": till_a})),
        )
        .await;
    assert_eq!(status, 201, "{tok}");
    let pos = tok["token"].as_str().expect("token").to_owned();

    // Till A takes a payment without naming where: its binding says.
    let code = sim.auth_code("approve", None).await;
    let (status, paid) = payfac
        .call(
            Method::POST,
            "/v1/payments",
            &pos,
            Some(json!({"mode": "cpm", "amount": 1250, "currency": "USD",
                "merchant_order_id": "till-a-1", "wallet": "alipay", "auth_code": code})),
        )
        .await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["status"], "succeeded", "{paid}");
    assert_eq!(
        (&paid["store_id"], &paid["terminal_id"]),
        (&json!(store), &json!(till_a))
    );
    assert_eq!(
        (
            &paid["codepay"]["store_no"],
            &paid["codepay"]["terminal_sn"]
        ),
        (&json!("HB-01"), &json!("POS-A"))
    );
    // ...and the order CodePay holds carries the store's and the terminal's numbers.
    let order_no = paid["codepay"]["merchant_order_no"].clone();
    let orders = sim.orders(&merchant_no).await;
    let order = orders
        .iter()
        .find(|o| o["merchant_order_no"] == order_no)
        .unwrap_or_else(|| panic!("order {order_no} at the simulator: {orders:?}"));
    assert_eq!(
        (&order["store_no"], &order["terminal_sn"]),
        (&json!("HB-01"), &json!("POS-A")),
        "{order}"
    );

    // Till B's payment (taken with the back office key) is not till A's to see.
    let code = sim.auth_code("approve", None).await;
    let (status, other) = payfac
        .call(
            Method::POST,
            "/v1/payments",
            &sk,
            Some(json!({"mode": "cpm", "amount": 900, "currency": "USD",
                "merchant_order_id": "till-b-1", "wallet": "alipay", "auth_code": code,
                "terminal_id": till_b})),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    assert_eq!(other["codepay"]["terminal_sn"], "POS-B");
    let other_id = other["id"].as_str().expect("id");
    let (status, e) = payfac
        .call(Method::GET, &format!("/v1/payments/{other_id}"), &pos, None)
        .await;
    assert_eq!(status, 404, "{e}");
    let (status, own) = payfac
        .call(
            Method::GET,
            &format!("/v1/payments/{}", paid["id"].as_str().expect("id")),
            &pos,
            None,
        )
        .await;
    assert_eq!(status, 200, "{own}");
    let (status, list) = payfac.call(Method::GET, "/v1/payments", &pos, None).await;
    assert_eq!(status, 200, "{list}");
    let listed: Vec<&Value> = list["data"].as_array().expect("data").iter().collect();
    assert_eq!(listed.len(), 1, "till A's only: {list}");
    assert_eq!(listed[0]["id"], paid["id"]);
}
