//! Test harness: a real simulator on 127.0.0.1:0, a signing client, a real notification receiver.

use actix_web::{App, HttpResponse, HttpServer, web};
use codepay_sim::{SimConfig, Simulator};
use gateway_client::{PublicKey, sign_message, verify_message};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use test_support::SimServer;

pub use test_support::{app_key, other_key, sim_config};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A running simulator with one app and one merchant.
pub struct TestSim {
    pub sim: Simulator,
    pub base: String,
    pub app_id: String,
    pub merchant_no: String,
    pub http: reqwest::Client,
}

/// What an `/api/entry` call returned, after checking the gateway's signature.
#[derive(Debug)]
pub struct Answer {
    pub code: String,
    pub msg: String,
    pub data: Map<String, Value>,
    pub raw: Map<String, Value>,
}

impl Answer {
    pub fn ok(self) -> Map<String, Value> {
        assert_eq!(
            self.code, "0",
            "expected success, got {} {}",
            self.code, self.msg
        );
        self.data
    }
}

pub fn s(data: &Map<String, Value>, key: &str) -> String {
    data.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key} in {data:?}"))
        .to_owned()
}

pub fn i(data: &Map<String, Value>, key: &str) -> i64 {
    data.get(key)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no integer {key} in {data:?}"))
}

impl TestSim {
    /// A CPM order paid at once (scenario `approve`); its `trans_no`.
    pub async fn paid_order(&self, order_no: &str, amount: &str) -> String {
        let code = self.auth_code(json!({ "scenario": "approve" })).await;
        let d = self
            .call(
                "bscanc.pay.submit",
                json!({"merchant_order_no": order_no, "price_currency": "USD",
                       "order_amount": amount, "auth_code": code}),
            )
            .await
            .ok();
        assert_eq!(i(&d, "trans_status"), 2);
        s(&d, "trans_no")
    }

    pub async fn start(time_scale: u32) -> Self {
        Self::start_with(sim_config(time_scale)).await
    }

    pub async fn start_with(cfg: SimConfig) -> Self {
        Self::from_server(SimServer::start_with(cfg))
    }

    /// Serves an existing simulator, calling it as `app_id` for `merchant_no`.
    pub fn serve(sim: Simulator, app_id: String, merchant_no: String) -> Self {
        Self::from_server(SimServer::serve(sim, app_id, merchant_no))
    }

    fn from_server(server: SimServer) -> Self {
        let SimServer {
            sim,
            base,
            app_id,
            merchant_no,
        } = server;
        Self {
            sim,
            base,
            app_id,
            merchant_no,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
        }
    }

    /// A signed request for `method` with the common fields and `fields`.
    pub fn request(&self, method: &str, fields: Value) -> Map<String, Value> {
        let mut msg = Map::new();
        for (k, v) in [
            ("app_id", self.app_id.as_str()),
            ("merchant_no", self.merchant_no.as_str()),
            ("method", method),
            ("format", "JSON"),
            ("charset", "UTF-8"),
            ("version", "1.0"),
            ("sign_type", "RSA2"),
        ] {
            msg.insert(k.into(), json!(v));
        }
        msg.insert("timestamp".into(), json!(now_ms().to_string()));
        if let Value::Object(extra) = fields {
            msg.extend(extra);
        }
        sign_message(&mut msg, app_key());
        msg
    }

    pub async fn post_raw(&self, msg: &Map<String, Value>) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(format!("{}/api/entry", self.base))
            .json(msg)
            .send()
            .await
    }

    /// Sends an already built message and checks the response is signed by the gateway.
    pub async fn send(&self, msg: &Map<String, Value>) -> Answer {
        let resp = self.post_raw(msg).await.expect("http");
        assert_eq!(resp.status(), 200);
        let raw: Map<String, Value> = resp.json().await.expect("json envelope");
        verify_message(&raw, &self.gateway_public_key())
            .unwrap_or_else(|e| panic!("response not signed by the gateway: {e} {raw:?}"));
        let data = match raw.get("data") {
            Some(Value::String(text)) => serde_json::from_str(text).expect("data is JSON text"),
            None => Map::new(),
            Some(other) => panic!("data must be a JSON string, got {other}"),
        };
        Answer {
            code: raw
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            msg: raw
                .get("msg")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            data,
            raw,
        }
    }

    pub async fn call(&self, method: &str, fields: Value) -> Answer {
        self.send(&self.request(method, fields)).await
    }

    pub fn gateway_public_key(&self) -> PublicKey {
        PublicKey::from_pem_or_base64(&self.sim.gateway_public_key_pem()).expect("gateway key")
    }

    pub async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("control call");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .patch(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("control call");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The ledger's entry (`GET /sim/orders`) for one of the merchant's order numbers.
    pub async fn ledger_entry(&self, order_no: &str) -> Value {
        let v = self
            .get(&format!(
                "/sim/orders?merchant_no={}&merchant_order_no={order_no}",
                self.merchant_no
            ))
            .await;
        let list = v["orders"].as_array().expect("orders");
        assert_eq!(list.len(), 1, "{v}");
        list[0].clone()
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    pub async fn auth_code(&self, body: Value) -> String {
        let (status, v) = self.control("/sim/auth-codes", body).await;
        assert_eq!(status, 200, "{v}");
        v["auth_code"].as_str().expect("auth_code").to_owned()
    }

    /// Creates an MPM order and returns (trans_no, qr content).
    pub async fn mpm_order(
        &self,
        order_no: &str,
        amount: &str,
        notify_url: Option<&str>,
    ) -> (String, String) {
        let mut fields = json!({
            "merchant_order_no": order_no,
            "pay_method_id": "Alipay",
            "price_currency": "USD",
            "order_amount": amount,
            "description": "test order",
        });
        if let Some(u) = notify_url {
            fields["notify_url"] = json!(u);
        }
        let data = self.call("cscanb.pay.getqrcode", fields).await.ok();
        (s(&data, "trans_no"), s(&data, "qrcode_url"))
    }

    pub async fn query(&self, order_no: &str) -> Map<String, Value> {
        self.call("order.query", json!({ "merchant_order_no": order_no }))
            .await
            .ok()
    }

    /// Polls `order.query` until `trans_status` is `want` (or panics after `within`).
    pub async fn wait_status(
        &self,
        order_no: &str,
        want: i64,
        within: Duration,
    ) -> Map<String, Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let d = self.query(order_no).await;
            if i(&d, "trans_status") == want {
                return d;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "status never became {want}: {d:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A real HTTP receiver for notifications that fails the first `failures` deliveries.
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Map<String, Value>>>>,
}

impl Receiver {
    pub async fn start(failures: usize) -> Self {
        let received: Arc<Mutex<Vec<Map<String, Value>>>> = Arc::default();
        let store = received.clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = HttpServer::new(move || {
            let store = store.clone();
            App::new().route(
                "/notify",
                web::post().to(move |body: web::Bytes| {
                    let store = store.clone();
                    async move {
                        let msg: Map<String, Value> =
                            serde_json::from_slice(&body).unwrap_or_default();
                        let mut all = store.lock();
                        all.push(msg);
                        if all.len() <= failures {
                            // Close, but not `success`: CodePay must retry.
                            HttpResponse::Ok().body("success\n")
                        } else {
                            HttpResponse::Ok().body("success")
                        }
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self {
            url: format!("http://{addr}/notify"),
            received,
        }
    }

    pub fn count(&self) -> usize {
        self.received.lock().len()
    }

    pub fn all(&self) -> Vec<Map<String, Value>> {
        self.received.lock().clone()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Map<String, Value>> {
        let deadline = tokio::time::Instant::now() + within;
        while self.count() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} notifications, got {}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.all()
    }
}
