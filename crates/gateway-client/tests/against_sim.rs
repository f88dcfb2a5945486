//! GatewayClient against the real CodePay simulator (crates/codepay-sim) over real HTTP: every
//! operation, the strict checks, and every fault kind end in the right typed outcome.

use std::time::Duration;

use codepay_sim::Simulator;
use domain::{Currency, Money, Secret, TransStatus};
use gateway_client::{
    CallOutcome, CpmSubmit, FieldError, GatewayClient, GatewayConfig, MerchantRef, MpmCreate,
    Operation, OrderQuery, OrderRef, PaymentFields, PrivateKey, PublicKey, RefundQuery,
    RefundSubmit, Revoke, TransactionResult, UnknownReason,
};
use serde_json::{Map, Value, json};
use test_support::{SimServer, app_key, other_key};

struct Sim {
    sim: Simulator,
    base: String,
    app_id: String,
    merchant: MerchantRef,
    http: reqwest::Client,
}

impl Sim {
    async fn start() -> Self {
        // PIN entry and refund settlement take seconds at real speed: compress them.
        let SimServer {
            sim,
            base,
            app_id,
            merchant_no,
        } = SimServer::start(100);
        Self {
            sim,
            base,
            app_id,
            merchant: MerchantRef::new(merchant_no),
            http: reqwest::Client::new(),
        }
    }

    fn client_with(&self, key: &PrivateKey) -> GatewayClient {
        let gateway = PublicKey::from_pem_or_base64(&self.sim.gateway_public_key_pem()).unwrap();
        let mut config = GatewayConfig::new(&self.base, &self.app_id, key.clone(), gateway);
        config.timeout = Duration::from_millis(1500);
        GatewayClient::new(config, None).unwrap()
    }

    fn client(&self) -> GatewayClient {
        self.client_with(app_key())
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap_or(Value::Null)
    }

    async fn auth_code(&self, scenario: &str) -> String {
        let v = self
            .control(
                "/sim/auth-codes",
                json!({"scenario": scenario, "pay_method_id": "Alipay"}),
            )
            .await;
        v["auth_code"].as_str().unwrap().to_owned()
    }

    async fn fault(&self, method: &str, kind: &str, delay_ms: Option<u64>) {
        let mut body = json!({"method": method, "kind": kind, "count": 1});
        if let Some(d) = delay_ms {
            body["delay_ms"] = json!(d);
        }
        self.control("/sim/faults", body).await;
    }

    fn payment(&self, order_no: &str, minor: i64) -> PaymentFields {
        PaymentFields {
            merchant: self.merchant.clone(),
            merchant_order_no: order_no.into(),
            pay_method_id: "Alipay".into(),
            amount: usd(minor),
            description: "test order".into(),
            notify_url: None,
            attach: None,
        }
    }

    fn cpm(&self, order_no: &str, auth_code: String) -> CpmSubmit {
        CpmSubmit {
            payment: self.payment(order_no, 3450),
            auth_code: Secret::new(auth_code),
        }
    }

    async fn query(&self, order_no: &str) -> TransactionResult {
        let q = OrderQuery {
            merchant: self.merchant.clone(),
            order: OrderRef::MerchantOrderNo(order_no.into()),
            currency: Some(usd(0).currency()),
        };
        match self.client().query_order(&q).await {
            CallOutcome::Success(r) => r,
            other => panic!("query {order_no}: {other:?}"),
        }
    }

    async fn wait_status(&self, order_no: &str, want: TransStatus) -> TransactionResult {
        for _ in 0..100 {
            let r = self.query(order_no).await;
            if r.trans_status == want {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{order_no} never reached {want:?}");
    }
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::from_code("USD").unwrap()).unwrap()
}

fn declined_code<T: std::fmt::Debug>(outcome: CallOutcome<T>) -> String {
    match outcome {
        CallOutcome::Declined { code, .. } => code,
        other => panic!("expected Declined, got {other:?}"),
    }
}

#[actix_web::test]
async fn mpm_create_pay_query() {
    let sim = Sim::start().await;
    let op = MpmCreate {
        payment: sim.payment("MPM1", 3450),
        expires_secs: Some(600),
    };
    let CallOutcome::Success(created) = sim.client().create_mpm(&op).await else {
        panic!()
    };
    assert!(!created.qrcode_url.is_empty());
    let unpaid = sim.query("MPM1").await;
    assert_eq!(unpaid.trans_status, TransStatus::Created);
    assert_eq!(unpaid.trans_fee_c, None, "no fee before payment");
    sim.control("/sim/mpm/pay", json!({"qr_code": created.qrcode_url}))
        .await;
    let paid = sim.wait_status("MPM1", TransStatus::Succeeded).await;
    assert_eq!(paid.trans_no, created.trans_no);
    assert_eq!(paid.order_amount, Some(usd(3450)));
    // The simulator's default rate, 60 bps: 34.50 × 0.6 % = 0.207 → 0.21.
    assert_eq!(paid.trans_fee_c, Some(usd(21)));
}

#[actix_web::test]
async fn cpm_scenarios_map_to_statuses() {
    let sim = Sim::start().await;
    let c = sim.client();
    let approve = c
        .submit_cpm(&sim.cpm("CPM1", sim.auth_code("approve").await))
        .await;
    assert!(
        matches!(approve, CallOutcome::Success(ref r) if r.trans_status == TransStatus::Succeeded),
        "{approve:?}"
    );
    let decline = c
        .submit_cpm(&sim.cpm("CPM2", sim.auth_code("decline").await))
        .await;
    assert!(
        matches!(decline, CallOutcome::Success(ref r) if r.trans_status == TransStatus::Failed),
        "{decline:?}"
    );
    let pin = c
        .submit_cpm(&sim.cpm("CPM3", sim.auth_code("pin").await))
        .await;
    assert!(
        matches!(pin, CallOutcome::Success(ref r) if r.trans_status == TransStatus::InProgress),
        "{pin:?}"
    );
    sim.wait_status("CPM3", TransStatus::Succeeded).await;
    let stuck = c
        .submit_cpm(&sim.cpm("CPM4", sim.auth_code("never_settles").await))
        .await;
    assert!(
        matches!(stuck, CallOutcome::Success(ref r) if r.trans_status == TransStatus::InProgress),
        "{stuck:?}"
    );
    let revoke = Revoke {
        merchant: sim.merchant.clone(),
        merchant_order_no: "CPM4".into(),
    };
    assert_eq!(c.revoke(&revoke).await, CallOutcome::Success(()));
    sim.wait_status("CPM4", TransStatus::Failed).await;
    // The same auth code twice is a definite refusal.
    let code = sim.auth_code("approve").await;
    let _ = c.submit_cpm(&sim.cpm("CPM5", code.clone())).await;
    assert_eq!(
        declined_code(c.submit_cpm(&sim.cpm("CPM6", code)).await),
        "E04202"
    );
}

#[actix_web::test]
async fn refunds_submit_query_and_limits() {
    let sim = Sim::start().await;
    let c = sim.client();
    let paid = c
        .submit_cpm(&sim.cpm("SALE1", sim.auth_code("approve").await))
        .await;
    assert!(matches!(paid, CallOutcome::Success(_)));
    let refund = |no: &str, minor| RefundSubmit {
        merchant: sim.merchant.clone(),
        original: OrderRef::MerchantOrderNo("SALE1".into()),
        merchant_order_no: no.into(),
        amount: usd(minor),
        description: "return".into(),
        notify_url: None,
    };
    let CallOutcome::Success(accepted) = c.submit_refund(&refund("REF1", 1000)).await else {
        panic!()
    };
    assert_eq!(accepted.amount, Some(usd(1000)));
    let q = RefundQuery {
        merchant: sim.merchant.clone(),
        refund: OrderRef::TransNo(accepted.trans_no.clone()),
        currency: None,
    };
    let mut settled = None;
    for _ in 0..100 {
        if let CallOutcome::Success(r) = c.query_refund(&q).await
            && r.trans_status == TransStatus::Succeeded
        {
            settled = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let settled = settled.expect("refund settles");
    assert_eq!(settled.refund_amount(), Some(usd(1000)));
    let over = declined_code(c.submit_refund(&refund("REF2", 3000)).await);
    assert!(over == "E04130" || over == "E04126", "{over}");
}

#[actix_web::test]
async fn strict_checks_are_declines() {
    let sim = Sim::start().await;
    let c = sim.client();
    let op = MpmCreate {
        payment: sim.payment("DUP1", 100),
        expires_secs: None,
    };
    assert!(matches!(c.create_mpm(&op).await, CallOutcome::Success(_)));
    assert_eq!(
        declined_code(c.create_mpm(&op).await),
        "E04101",
        "duplicate merchant_order_no"
    );
    let wrong_key = other_key();
    let op = MpmCreate {
        payment: sim.payment("WK1", 100),
        expires_secs: None,
    };
    assert_eq!(
        declined_code(sim.client_with(wrong_key).create_mpm(&op).await),
        "E01003"
    );

    struct Bogus(MerchantRef);
    impl Operation for Bogus {
        type Response = ();
        const METHOD: &'static str = "order.bogus";
        fn merchant(&self) -> &MerchantRef {
            &self.0
        }
        fn order_label(&self) -> String {
            String::new()
        }
        fn fields(&self) -> Map<String, Value> {
            Map::new()
        }
        fn parse(&self, _: &Map<String, Value>) -> Result<(), FieldError> {
            Ok(())
        }
    }
    assert_eq!(
        declined_code(c.call(&Bogus(sim.merchant.clone())).await),
        "E07303"
    );

    // The gateway's clock jumps an hour ahead: our real-time timestamp is now stale.
    sim.sim.advance_clock(3600);
    let op = MpmCreate {
        payment: sim.payment("TS1", 100),
        expires_secs: None,
    };
    assert_eq!(declined_code(c.create_mpm(&op).await), "E01004");
}

#[actix_web::test]
async fn every_fault_kind_maps_to_the_right_outcome() {
    let sim = Sim::start().await;
    let c = sim.client();
    let mpm = |no: &str| MpmCreate {
        payment: sim.payment(no, 100),
        expires_secs: None,
    };
    let method = "cscanb.pay.getqrcode";

    sim.fault(method, "http_500", None).await;
    assert_eq!(
        c.create_mpm(&mpm("F1")).await,
        CallOutcome::Unknown {
            reason: UnknownReason::HttpStatus(500)
        }
    );

    sim.fault(method, "timeout", Some(3000)).await;
    assert_eq!(
        c.create_mpm(&mpm("F2")).await,
        CallOutcome::Unknown {
            reason: UnknownReason::Timeout
        }
    );
    // The operation was applied: settling by query finds it, a retry under the same number is refused.
    assert_eq!(sim.query("F2").await.trans_status, TransStatus::Created);

    sim.fault(method, "drop_response_after_commit", None).await;
    let dropped = c.create_mpm(&mpm("F3")).await;
    assert!(
        matches!(
            dropped,
            CallOutcome::Unknown {
                reason: UnknownReason::ConnectionLost(_)
            }
        ),
        "{dropped:?}"
    );
    assert_eq!(sim.query("F3").await.trans_status, TransStatus::Created);

    sim.fault(method, "unsigned", None).await;
    assert_eq!(
        c.create_mpm(&mpm("F4")).await,
        CallOutcome::Unknown {
            reason: UnknownReason::UnsignedSuccess
        }
    );

    sim.fault(method, "bad_signature", None).await;
    assert_eq!(
        c.create_mpm(&mpm("F5")).await,
        CallOutcome::Unknown {
            reason: UnknownReason::BadSignature
        }
    );

    sim.fault(method, "slow", Some(300)).await;
    assert!(matches!(
        c.create_mpm(&mpm("F6")).await,
        CallOutcome::Success(_)
    ));
}
