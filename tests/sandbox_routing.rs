//! On the embedded default an operator can try routing locally: a second gateway account is a
//! second app registered with the built-in sandbox, and a merchant routed to it pays through it
//! (its orders carry that app's id at the simulator), while another merchant stays on the
//! default `sandbox` account.

use crate::support::payfac::{Backend, Payfac};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn a_second_sandbox_account_carries_the_merchants_routed_to_it() {
    let payfac = Payfac::start(Backend::Embedded, &[]).await;
    let op = payfac.operator_key.clone();
    let sandbox = format!("{}/sandbox/codepay", payfac.base);

    // The second app: a key pair of the operator's, its public half registered with the sandbox.
    let key = test_support::keys::other_key();
    let registered: Value = payfac
        .http
        .post(format!("{sandbox}/sim/apps"))
        .bearer_auth(&op)
        .json(&json!({"public_key": key.public_key().to_pem()}))
        .send()
        .await
        .expect("register app")
        .json()
        .await
        .expect("json");
    let app_id = registered["app_id"].as_str().expect("app_id").to_owned();
    let gateway_key = payfac
        .http
        .get(format!("{sandbox}/sim/gateway-key"))
        .bearer_auth(&op)
        .send()
        .await
        .expect("gateway key")
        .text()
        .await
        .expect("pem");
    let (status, account) = payfac
        .call(
            Method::POST,
            "/v1/gateway-accounts",
            &op,
            Some(json!({
                "name": "second sandbox app",
                "base_url": sandbox,
                "app_id": app_id,
                "private_key": key.to_pkcs8_pem().expose(),
                "gateway_public_key": gateway_key,
            })),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    let account_id = account["id"].as_str().expect("id").to_owned();

    let (routed, routed_key) = payfac.merchant_with_key().await;
    let (status, m) = payfac
        .call(
            Method::PATCH,
            &format!("/v1/merchants/{routed}"),
            &op,
            Some(json!({"gateway_account_id": account_id})),
        )
        .await;
    assert_eq!(status, 200, "{m}");
    let (_, plain_key) = payfac.merchant_with_key().await;

    let via_second = payfac.paid_mpm(&routed_key, "second-1").await;
    let via_default = payfac.paid_mpm(&plain_key, "default-1").await;
    for (payment, key, app) in [
        (&via_second, &routed_key, Some(app_id.as_str())),
        (&via_default, &plain_key, None),
    ] {
        let (_, p) = payfac
            .call(Method::GET, &format!("/v1/payments/{payment}"), key, None)
            .await;
        assert_eq!(p["status"], "succeeded", "{p}");
        let order_no = p["codepay"]["merchant_order_no"]
            .as_str()
            .expect("order no");
        let orders: Value = payfac
            .http
            .get(format!("{sandbox}/sim/orders?merchant_order_no={order_no}"))
            .bearer_auth(&op)
            .send()
            .await
            .expect("orders")
            .json()
            .await
            .expect("json");
        let order_app = orders["orders"][0]["app_id"].as_str().expect("app_id");
        match app {
            Some(app) => {
                assert_eq!(p["gateway_account_id"], json!(account_id), "{p}");
                assert_eq!(
                    order_app, app,
                    "the routed order went through the second app"
                );
            }
            None => {
                assert_ne!(p["gateway_account_id"], json!(account_id), "{p}");
                assert_ne!(
                    order_app, app_id,
                    "the other merchant stayed on the default"
                );
            }
        }
    }
}
