//! The harness: the `payfac` binary under test ([`binary`]), a started process ([`payfac`]) and a
//! webhook receiver ([`receiver`]). Databases, ports and the test services come from
//! `test-support`.

pub mod binary;
pub mod ledger;
pub mod payfac;
pub mod receiver;
pub mod stack;

pub use payfac::{Backend, Payfac};
pub use receiver::{Behaviour, Hit, Receiver};

use std::time::{Duration, Instant};

/// Polls `done` every 50 ms until it holds, failing the test with `what` after `within`.
pub async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a merchant from `body` and a secret key labelled `label` for it, through `post` (an
/// operator's `POST path body` to a started payfac); returns (merchant id, secret).
pub async fn merchant_with_key<F, Fut>(
    post: F,
    body: serde_json::Value,
    label: &str,
) -> (String, String)
where
    F: Fn(String, serde_json::Value) -> Fut,
    Fut: std::future::Future<Output = (u16, serde_json::Value)>,
{
    let (status, merchant) = post("/v1/merchants".to_owned(), body).await;
    assert_eq!(status, 201, "{merchant}");
    let id = merchant["id"].as_str().expect("merchant id").to_owned();
    let key_path = format!("/v1/merchants/{id}/api-keys");
    let (status, key) = post(key_path, serde_json::json!({ "label": label })).await;
    assert_eq!(status, 201, "{key}");
    (id, key["secret"].as_str().expect("secret").to_owned())
}
