//! GatewayClient against a tiny real HTTP server (tokio TcpListener): every way an answer can go
//! wrong maps to the right outcome, and what goes on the wire is a correctly signed request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::{Currency, Money, Secret, TransStatus};
use gateway_client::{
    CallOutcome, CpmSubmit, GatewayClient, GatewayConfig, GatewayMetrics, MerchantRef, MpmCreate,
    OrderQuery, OrderRef, PaymentFields, PrivateKey, RefundSubmit, Revoke, UnknownReason,
    sign_message, verify_message,
};
use serde_json::{Map, Value, json};
use test_support::{app_key, gateway_key};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake gateway does with a request.
#[derive(Clone)]
enum Reply {
    /// HTTP status and body (the body is sent as is).
    Raw(u16, Vec<u8>),
    /// Reads the request, then waits this long before answering `Raw(200, signed success)`.
    Slow(Duration),
    /// Reads the request, then closes the connection without a word.
    Drop,
}

fn signed_body(v: Value, key: &PrivateKey) -> Vec<u8> {
    let mut m = v.as_object().cloned().unwrap();
    sign_message(&mut m, key);
    serde_json::to_vec(&m).unwrap()
}

fn success(data: Value) -> Reply {
    let body = json!({"code": "0", "msg": "success", "psn": "P1", "data": data.to_string()});
    Reply::Raw(200, signed_body(body, gateway_key()))
}

struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Map<String, Value>>>>,
}

async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf[end + 4..end + 4 + len].to_vec());
        }
    }
}

async fn serve(reply: Reply) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let reply = reply.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some(body) = read_request(&mut stream).await else {
                    return;
                };
                if let Ok(Value::Object(m)) = serde_json::from_slice(&body) {
                    seen.lock().unwrap().push(m);
                }
                let (status, body) = match reply {
                    Reply::Raw(s, b) => (s, b),
                    Reply::Slow(d) => {
                        tokio::time::sleep(d).await;
                        (
                            200,
                            signed_body(
                                json!({"code": "0", "msg": "success", "data": "{}"}),
                                gateway_key(),
                            ),
                        )
                    }
                    Reply::Drop => return,
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Server { addr, requests }
}

fn client(addr: SocketAddr, metrics: Option<GatewayMetrics>) -> GatewayClient {
    let mut config = GatewayConfig::new(
        format!("http://{addr}/"),
        "wz9f2a175d0e0ef632",
        app_key().clone(),
        gateway_key().public_key(),
    );
    config.timeout = Duration::from_millis(800);
    GatewayClient::new(config, metrics).unwrap()
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::from_code("USD").unwrap()).unwrap()
}

fn query() -> OrderQuery {
    OrderQuery {
        merchant: MerchantRef::new("302100041048"),
        order: OrderRef::MerchantOrderNo("PF01".into()),
        currency: Some(Currency::from_code("USD").unwrap()),
    }
}

fn cpm(auth_code: &str) -> CpmSubmit {
    CpmSubmit {
        payment: PaymentFields {
            merchant: MerchantRef::new("302100041048"),
            merchant_order_no: "PF02".into(),
            pay_method_id: "WeChatPay".into(),
            amount: usd(3450),
            description: "Coffee".into(),
            notify_url: None,
            attach: None,
        },
        auth_code: Secret::new(auth_code),
    }
}

#[tokio::test]
async fn signed_success_is_read_and_request_is_signed_with_common_fields() {
    let server = serve(success(
        json!({"trans_no": "T1", "trans_status": 2, "price_currency": "USD",
        "order_amount": "34.50", "trans_end_time": "2026-11-26 05:00:00"}),
    ))
    .await;
    let outcome = client(server.addr, None).query_order(&query()).await;
    let CallOutcome::Success(r) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(r.trans_status, TransStatus::Succeeded);
    assert_eq!(r.order_amount, Some(usd(3450)));
    let req = server.requests.lock().unwrap()[0].clone();
    assert_eq!(verify_message(&req, &app_key().public_key()), Ok(()));
    assert_eq!(req["method"], json!("order.query"));
    assert_eq!(req["sign_type"], json!("RSA2"));
    let ts = req["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 13, "timestamp in milliseconds: {ts}");
}

#[tokio::test]
async fn every_operation_sends_its_method_and_reads_its_answer() {
    let server = serve(success(
        json!({"trans_no": "T9", "qrcode_url": "https://qr.example/abc",
        "trans_status": 0, "order_amount": "10.00"}),
    ))
    .await;
    let c = client(server.addr, None);
    let mpm = MpmCreate {
        payment: cpm("x").payment,
        expires_secs: Some(300),
    };
    assert!(
        matches!(c.create_mpm(&mpm).await, CallOutcome::Success(r) if r.qrcode_url == "https://qr.example/abc")
    );
    assert!(
        matches!(c.submit_cpm(&cpm("28123")).await, CallOutcome::Success(r) if r.trans_status == TransStatus::InProgress)
    );
    let refund = RefundSubmit {
        merchant: MerchantRef::new("302100041048"),
        original: OrderRef::MerchantOrderNo("PF02".into()),
        merchant_order_no: "PF02R1".into(),
        amount: usd(1000),
        description: "refund".into(),
        notify_url: None,
    };
    assert!(
        matches!(c.submit_refund(&refund).await, CallOutcome::Success(r) if r.amount == Some(usd(1000)))
    );
    let revoke = Revoke {
        merchant: MerchantRef::new("302100041048"),
        merchant_order_no: "PF02".into(),
    };
    assert_eq!(c.revoke(&revoke).await, CallOutcome::Success(()));
    let methods: Vec<String> = server
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r["method"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        methods,
        [
            "cscanb.pay.getqrcode",
            "bscanc.pay.submit",
            "order.refund.submit",
            "order.revoker"
        ]
    );
    let reqs = server.requests.lock().unwrap();
    assert_eq!(reqs[1]["auth_code"], json!("28123"));
    assert_eq!(reqs[2]["order_amount"], json!("10.00"));
    assert_eq!(reqs[2]["orig_merchant_order_no"], json!("PF02"));
}

#[tokio::test]
async fn server_error_is_unknown() {
    let body = signed_body(json!({"code": "E1", "msg": "boom"}), gateway_key());
    for status in [500, 502, 503] {
        let server = serve(Reply::Raw(status, body.clone())).await;
        let outcome = client(server.addr, None).query_order(&query()).await;
        assert_eq!(
            outcome,
            CallOutcome::Unknown {
                reason: UnknownReason::HttpStatus(status)
            }
        );
    }
}

#[tokio::test]
async fn timeout_is_unknown() {
    let server = serve(Reply::Slow(Duration::from_secs(3))).await;
    let outcome = client(server.addr, None).submit_cpm(&cpm("281")).await;
    assert_eq!(
        outcome,
        CallOutcome::Unknown {
            reason: UnknownReason::Timeout
        }
    );
}

#[tokio::test]
async fn connection_dropped_after_sending_is_unknown() {
    let server = serve(Reply::Drop).await;
    let outcome = client(server.addr, None).submit_cpm(&cpm("281")).await;
    assert!(
        matches!(
            outcome,
            CallOutcome::Unknown {
                reason: UnknownReason::ConnectionLost(_)
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        server.requests.lock().unwrap().len(),
        1,
        "the request did reach the server"
    );
}

#[tokio::test]
async fn refused_connection_is_unknown_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let outcome = client(addr, None).query_order(&query()).await;
    assert!(
        matches!(
            outcome,
            CallOutcome::Unknown {
                reason: UnknownReason::Connect(_)
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn unsigned_success_is_unknown() {
    let body = serde_json::to_vec(&json!({"code": "0", "msg": "success",
        "data": "{\"trans_no\":\"T\",\"trans_status\":2}"}))
    .unwrap();
    let server = serve(Reply::Raw(200, body)).await;
    let outcome = client(server.addr, None).query_order(&query()).await;
    assert_eq!(
        outcome,
        CallOutcome::Unknown {
            reason: UnknownReason::UnsignedSuccess
        }
    );
}

#[tokio::test]
async fn success_with_bad_signature_is_unknown() {
    let wrong_key = signed_body(
        json!({"code": "0", "msg": "success",
        "data": "{\"trans_no\":\"T\",\"trans_status\":2}"}),
        app_key(),
    );
    let server = serve(Reply::Raw(200, wrong_key)).await;
    let outcome = client(server.addr, None).query_order(&query()).await;
    assert_eq!(
        outcome,
        CallOutcome::Unknown {
            reason: UnknownReason::BadSignature
        }
    );
}

#[tokio::test]
async fn unsigned_error_is_declined_with_code_and_msg() {
    let body =
        serde_json::to_vec(&json!({"code": "E04111", "msg": "original order not found"})).unwrap();
    let server = serve(Reply::Raw(200, body)).await;
    let outcome = client(server.addr, None).query_order(&query()).await;
    assert_eq!(
        outcome,
        CallOutcome::Declined {
            code: "E04111".into(),
            msg: "original order not found".into()
        }
    );
}

#[tokio::test]
async fn html_from_a_proxy_is_unknown() {
    let server = serve(Reply::Raw(200, b"<html>gateway</html>".to_vec())).await;
    let outcome = client(server.addr, None).query_order(&query()).await;
    assert!(matches!(
        outcome,
        CallOutcome::Unknown {
            reason: UnknownReason::Unparsable(_)
        }
    ));
    let server = serve(Reply::Raw(404, b"not found".to_vec())).await;
    let outcome = client(server.addr, None).query_order(&query()).await;
    assert_eq!(
        outcome,
        CallOutcome::Unknown {
            reason: UnknownReason::HttpStatus(404)
        }
    );
}

#[tokio::test]
async fn success_with_unreadable_data_is_unknown() {
    let server = serve(success(
        json!({"trans_no": "T", "trans_status": 2, "price_currency": "USD",
        "order_amount": "34.505"}),
    ))
    .await;
    let outcome = client(server.addr, None).query_order(&query()).await;
    assert!(
        matches!(outcome, CallOutcome::Unknown { reason: UnknownReason::Unparsable(ref r) } if r.contains("order_amount"))
    );
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_outcome() {
    let registry = prometheus::Registry::new();
    let metrics = GatewayMetrics::new(&registry).unwrap();
    let server = serve(success(json!({"trans_no": "T", "trans_status": 2}))).await;
    let c = client(server.addr, Some(metrics));
    let _ = c.query_order(&query()).await;
    let _ = c.query_order(&query()).await;
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        text.contains(r#"payfac_upstream_calls_total{method="order.query",outcome="success"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"payfac_upstream_call_duration_seconds_count{method="order.query"} 2"#),
        "{text}"
    );
}

/// Collects everything the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn traces_name_the_call_but_never_the_auth_code_or_keys() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // A process-wide subscriber: a thread-local one races with the other tests of this binary
    // over tracing's cached per-callsite interest (spans then vanish from the capture). Only this
    // test installs one; the others' calls land in the capture too, and must not leak either.
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets it");
    let body = serde_json::to_vec(&json!({"code": "E1", "msg": "declined"})).unwrap();
    let server = serve(Reply::Raw(200, body)).await;
    let c = client(server.addr, None);
    tracing::info!(config = ?c.config(), "client");
    let _ = c.submit_cpm(&cpm("287777666655554444")).await;
    let server = serve(Reply::Slow(Duration::from_secs(3))).await;
    let _ = client(server.addr, None)
        .submit_cpm(&cpm("287777666655554444"))
        .await;
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("bscanc.pay.submit") && text.contains("PF02"),
        "{text}"
    );
    assert!(
        !text.contains("287777666655554444"),
        "auth code leaked: {text}"
    );
    assert!(
        !text.contains("PRIVATE KEY") && text.contains("PrivateKey(***)"),
        "{text}"
    );
}
