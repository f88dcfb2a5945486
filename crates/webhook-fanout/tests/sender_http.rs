//! The sender against a real HTTP receiver on 127.0.0.1.

use domain::{EventId, WebhookEndpointId};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use test_support::receiver::{Receiver, Reply};
use webhook_fanout::outcome::TransportFailure;
use webhook_fanout::signature::{self, WebhookSecret};
use webhook_fanout::{
    AttemptOutcome, EndpointTarget, NetworkPolicy, Sender, SenderConfig, WebhookMessage,
};

const DEV: NetworkPolicy = NetworkPolicy {
    allow_http: true,
    allow_private: true,
};

fn sender(policy: NetworkPolicy, timeout: Duration) -> Sender {
    Sender::new(&SenderConfig {
        timeout,
        policy,
        ..SenderConfig::default()
    })
    .unwrap()
}

fn target(url: &str, secrets: Vec<WebhookSecret>) -> EndpointTarget {
    EndpointTarget {
        id: WebhookEndpointId::generate(),
        url: url.parse().unwrap(),
        secrets,
    }
}

fn message() -> WebhookMessage {
    let id = EventId::generate();
    let body = format!(
        r#"{{"id":"{id}","type":"payment.succeeded","created_at":"2026-11-26T05:00:00Z","data":{{"object":"payment","amount":1250,"note":"caf\u00e9 ☕"}}}}"#
    );
    WebhookMessage {
        event_id: id,
        body: Arc::from(body.into_bytes()),
    }
}

#[tokio::test]
async fn a_2xx_is_delivered_with_the_three_signed_headers_over_the_exact_body() {
    let rx = Receiver::start(Reply::status(204).body(""));
    let secret = WebhookSecret::generate().unwrap();
    let msg = message();
    let rec = sender(DEV, Duration::from_secs(5))
        .send(&target(&rx.url("/hook"), vec![secret.clone()]), &msg)
        .await;
    assert_eq!(rec.outcome, AttemptOutcome::Delivered, "{rec:?}");
    assert_eq!(rec.status, Some(204));
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let h = &got[0].headers;
    assert_eq!(got[0].body, &*msg.body);
    assert_eq!(h["webhook-id"], msg.event_id.as_str());
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["webhook-timestamp"], rec.timestamp.to_string());
    signature::verify(
        &[secret],
        &h["webhook-id"],
        &h["webhook-timestamp"],
        &h["webhook-signature"],
        &got[0].body,
        rec.timestamp,
        300,
    )
    .unwrap();
}

#[tokio::test]
async fn every_attempt_gets_a_fresh_timestamp_and_signature_over_the_same_body() {
    let rx = Receiver::start(Reply::status(500));
    let t = target(&rx.url("/"), vec![WebhookSecret::generate().unwrap()]);
    let msg = message();
    let s = sender(DEV, Duration::from_secs(5));
    let first = s.send(&t, &msg).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = s.send(&t, &msg).await;
    assert_eq!(first.outcome, AttemptOutcome::Failed { throttled: false });
    assert!(second.timestamp > first.timestamp);
    let got = rx.received();
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
    assert_ne!(
        got[0].headers["webhook-signature"],
        got[1].headers["webhook-signature"]
    );
    assert_ne!(
        got[0].headers["webhook-timestamp"],
        got[1].headers["webhook-timestamp"]
    );
}

#[tokio::test]
async fn redirects_are_failures_and_never_followed() {
    let rx = Receiver::start(Reply::status(200));
    rx.script([Reply::status(307).header("location", &rx.url("/elsewhere"))]);
    let rec = sender(DEV, Duration::from_secs(5))
        .send(
            &target(&rx.url("/hook"), vec![WebhookSecret::generate().unwrap()]),
            &message(),
        )
        .await;
    assert_eq!(rec.status, Some(307));
    assert_eq!(rec.outcome, AttemptOutcome::Failed { throttled: false });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let paths: Vec<_> = rx.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/hook"]);
}

#[tokio::test]
async fn gone_throttled_and_retry_after_are_recorded() {
    let rx = Receiver::start(Reply::status(200));
    rx.script([
        Reply::status(410),
        Reply::status(503).header("retry-after", "120"),
        Reply::status(429).header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
    ]);
    let s = sender(DEV, Duration::from_secs(5));
    let t = target(&rx.url("/"), vec![WebhookSecret::generate().unwrap()]);
    let gone = s.send(&t, &message()).await;
    assert_eq!(gone.outcome, AttemptOutcome::Gone);
    let busy = s.send(&t, &message()).await;
    assert_eq!(busy.outcome, AttemptOutcome::Failed { throttled: true });
    assert_eq!(busy.retry_after, Some(Duration::from_secs(120)));
    let past = s.send(&t, &message()).await;
    assert_eq!(past.status, Some(429));
    assert_eq!(past.retry_after, Some(Duration::ZERO));
}

#[tokio::test]
async fn the_response_excerpt_is_capped_at_4_kib() {
    let big = "x".repeat(100 * 1024);
    let rx = Receiver::start(Reply::status(500).body(big));
    let rec = sender(DEV, Duration::from_secs(5))
        .send(
            &target(&rx.url("/"), vec![WebhookSecret::generate().unwrap()]),
            &message(),
        )
        .await;
    assert_eq!(rec.response_excerpt.len(), 4096);
    assert_eq!(rec.status, Some(500));
    assert!(rec.error.is_none(), "{:?}", rec.error);
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_counts_as_throttled() {
    let rx = Receiver::start(Reply::status(200).delayed(Duration::from_secs(3)));
    let rec = sender(DEV, Duration::from_millis(300))
        .send(
            &target(&rx.url("/"), vec![WebhookSecret::generate().unwrap()]),
            &message(),
        )
        .await;
    assert_eq!(
        rec.transport_failure,
        Some(TransportFailure::Timeout),
        "{rec:?}"
    );
    assert_eq!(rec.outcome, AttemptOutcome::Failed { throttled: true });
    assert!(rec.duration < Duration::from_secs(2));
}

#[tokio::test]
async fn a_closed_port_is_a_connect_failure() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rec = sender(DEV, Duration::from_secs(5))
        .send(
            &target(
                &format!("http://127.0.0.1:{port}/"),
                vec![WebhookSecret::generate().unwrap()],
            ),
            &message(),
        )
        .await;
    assert_eq!(
        rec.transport_failure,
        Some(TransportFailure::Connect),
        "{rec:?}"
    );
    assert!(rec.status.is_none());
}

#[tokio::test]
async fn internal_addresses_are_refused_at_delivery_time_by_name_and_by_literal() {
    let rx = Receiver::start(Reply::status(200));
    let no_private = sender(
        NetworkPolicy {
            allow_http: true,
            allow_private: false,
        },
        Duration::from_secs(5),
    );
    let secret = WebhookSecret::generate().unwrap();
    for url in [
        format!("http://localhost:{}/", rx.port),
        format!("http://127.0.0.1:{}/", rx.port),
        format!("http://[::ffff:127.0.0.1]:{}/", rx.port),
        format!("http://0x7f.0.0.1:{}/", rx.port),
    ] {
        let rec = no_private
            .send(&target(&url, vec![secret.clone()]), &message())
            .await;
        assert_eq!(
            rec.transport_failure,
            Some(TransportFailure::Refused),
            "{url}: {rec:?}"
        );
        assert!(
            rec.error.as_deref().unwrap_or("").contains("not allowed"),
            "{rec:?}"
        );
    }
    // https only: a plain-http URL is refused even to a public-looking name.
    let strict = sender(NetworkPolicy::STRICT, Duration::from_secs(5));
    let rec = strict
        .send(&target(&rx.url("/"), vec![secret.clone()]), &message())
        .await;
    assert_eq!(rec.transport_failure, Some(TransportFailure::Refused));
    assert_eq!(rx.count(), 0, "nothing may reach the internal receiver");
    // The same receiver is reachable once private addresses are allowed.
    let rec = sender(DEV, Duration::from_secs(5))
        .send(
            &target(&format!("http://localhost:{}/", rx.port), vec![secret]),
            &message(),
        )
        .await;
    assert_eq!(rec.outcome, AttemptOutcome::Delivered, "{rec:?}");
}

/// Runs the official Python `standardwebhooks` verifier over what the receiver got.
fn python_verify(
    secret: &str,
    headers: &std::collections::HashMap<String, String>,
    body: &[u8],
) -> Result<(), String> {
    let script = r#"
import sys, json
from standardwebhooks.webhooks import Webhook
d = json.load(sys.stdin)
Webhook(d["secret"]).verify(d["body"].encode(), d["headers"])
print("verified")
"#;
    let input = serde_json::json!({
        "secret": secret,
        "headers": {
            "webhook-id": headers["webhook-id"],
            "webhook-timestamp": headers["webhook-timestamp"],
            "webhook-signature": headers["webhook-signature"],
        },
        "body": String::from_utf8(body.to_vec()).unwrap(),
    });
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("verified") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn ensure_python_standardwebhooks() {
    let has = || {
        Command::new("python3")
            .args(["-c", "import standardwebhooks"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if has() {
        return;
    }
    let _ = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "standardwebhooks"])
        .status();
    assert!(
        has(),
        "the official Python verifier is required: `python3 -m pip install standardwebhooks` failed or python3 is missing"
    );
}

#[tokio::test]
async fn the_official_python_library_verifies_payfac_signatures_with_either_rotated_secret() {
    ensure_python_standardwebhooks();
    let rx = Receiver::start(Reply::status(200));
    let old = WebhookSecret::generate().unwrap();
    let new = WebhookSecret::generate().unwrap();
    let rec = sender(DEV, Duration::from_secs(5))
        .send(
            &target(&rx.url("/"), vec![new.clone(), old.clone()]),
            &message(),
        )
        .await;
    assert_eq!(rec.outcome, AttemptOutcome::Delivered);
    let got = &rx.received()[0];
    for s in [&old, &new] {
        python_verify(s.expose(), &got.headers, &got.body).unwrap();
    }
    // The library must reject a stranger's secret and a tampered body, or this test proves nothing.
    let stranger = WebhookSecret::generate().unwrap();
    assert!(python_verify(stranger.expose(), &got.headers, &got.body).is_err());
    let mut tampered = got.body.clone();
    tampered.push(b' ');
    assert!(python_verify(new.expose(), &got.headers, &tampered).is_err());
}
