//! The webhook API's scopes (`webhooks:read`, `webhooks:write`) over real HTTP on SQLite: a
//! payments-only token gets 403 `insufficient_scope` with the error body, a token minted with
//! the webhook scopes manages endpoints and reads events, a key cannot mint scopes it lacks,
//! and a key stored with the pre-webhook default scope set keeps managing webhooks.

use reqwest::Method;
use serde_json::{Value, json};
use support::TestApp;

mod support;

impl TestApp {
    /// `POST /v1/tokens` with `key`, asking for `scopes`.
    async fn token(&self, key: &str, scopes: &[&str]) -> (u16, Value) {
        self.post("/v1/tokens", key, None, json!({ "scopes": scopes }))
            .await
    }
}

fn assert_forbidden(got: (u16, Value), code: &str, scope: Option<&str>) {
    let (status, body) = got;
    assert_eq!(status, 403, "{body}");
    let e = &body["error"];
    assert_eq!(e["type"], "permission_error", "{body}");
    assert_eq!(e["code"], code, "{body}");
    assert!(
        e["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    if let Some(scope) = scope {
        let msg = e["message"].as_str().unwrap_or_default();
        assert!(msg.contains(scope), "message names `{scope}`: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_routes_enforce_the_webhook_scopes() {
    let (db, _dir) = test_support::fresh_sqlite().await;
    let p = TestApp::start(db).await;
    let m = p.merchant(None).await;
    let all = tenant_api::auth::jwt::ALL_SCOPES;
    assert!(all.contains(&"webhooks:read") && all.contains(&"webhooks:write"));
    let sk = p.key(Some(&m), all).await;
    let endpoint = json!({"url": "http://127.0.0.1:9/hook", "events": ["payment.succeeded"]});

    // A POS token with payments scopes only: every webhook route is 403 with the error body.
    let (st, t) = p.token(&sk, &["payments:read", "payments:write"]).await;
    assert_eq!(st, 201, "{t}");
    let pos = t["token"].as_str().expect("token").to_owned();
    assert_forbidden(
        p.json(Method::GET, "/v1/webhook-endpoints", &pos, None)
            .await,
        "insufficient_scope",
        Some("webhooks:read"),
    );
    assert_forbidden(
        p.json(Method::GET, "/v1/events", &pos, None).await,
        "insufficient_scope",
        Some("webhooks:read"),
    );
    assert_forbidden(
        p.post("/v1/webhook-endpoints", &pos, None, endpoint.clone())
            .await,
        "insufficient_scope",
        Some("webhooks:write"),
    );
    // …while its payments scope still works.
    assert_eq!(p.json(Method::GET, "/v1/payments", &pos, None).await.0, 200);

    // Read-only webhook token: lists, but cannot create.
    let (_, t) = p.token(&sk, &["webhooks:read"]).await;
    let reader = t["token"].as_str().expect("token").to_owned();
    let (st, list) = p
        .json(Method::GET, "/v1/webhook-endpoints", &reader, None)
        .await;
    assert_eq!((st, list["object"].as_str()), (200, Some("list")), "{list}");
    assert_forbidden(
        p.post("/v1/webhook-endpoints", &reader, None, endpoint.clone())
            .await,
        "insufficient_scope",
        Some("webhooks:write"),
    );

    // A token with both webhook scopes manages endpoints end to end.
    let (_, t) = p.token(&sk, &["webhooks:read", "webhooks:write"]).await;
    let admin = t["token"].as_str().expect("token").to_owned();
    let (st, e) = p
        .post("/v1/webhook-endpoints", &admin, None, endpoint.clone())
        .await;
    assert_eq!(st, 201, "{e}");
    assert!(
        e["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    let id = e["id"].as_str().expect("id").to_owned();
    let (st, got) = p
        .json(
            Method::GET,
            &format!("/v1/webhook-endpoints/{id}"),
            &reader,
            None,
        )
        .await;
    assert_eq!((st, got["url"].clone()), (200, endpoint["url"].clone()));
    assert!(got.get("secret").is_none(), "secret shown only once: {got}");
    let (st, _) = p
        .patch(
            &format!("/v1/webhook-endpoints/{id}"),
            &admin,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, events) = p.json(Method::GET, "/v1/events", &reader, None).await;
    assert_eq!((st, events["object"].as_str()), (200, Some("list")));
    let (st, gone) = p
        .json(
            Method::DELETE,
            &format!("/v1/webhook-endpoints/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!((st, gone["deleted"].as_bool()), (200, Some(true)), "{gone}");

    // A key without the webhook scopes can neither use them nor mint them.
    let narrow = p.key(Some(&m), &["payments:read", "payments:write"]).await;
    assert_forbidden(
        p.token(&narrow, &["payments:read", "webhooks:read"]).await,
        "insufficient_scope",
        Some("webhooks:read"),
    );
    assert_forbidden(
        p.json(Method::GET, "/v1/webhook-endpoints", &narrow, None)
            .await,
        "insufficient_scope",
        Some("webhooks:read"),
    );

    // A key stored with the old default set (before webhook scopes existed) keeps managing
    // webhooks with its secret, and may mint webhook tokens.
    let legacy = p
        .key(
            Some(&m),
            &[
                "payments:read",
                "payments:write",
                "refunds:read",
                "refunds:write",
            ],
        )
        .await;
    assert_eq!(
        p.json(Method::GET, "/v1/webhook-endpoints", &legacy, None)
            .await
            .0,
        200
    );
    assert_eq!(p.token(&legacy, &["webhooks:write"]).await.0, 201);

    // Operators act on merchants, not as them.
    let op = p.key(None, &[]).await;
    assert_forbidden(
        p.json(Method::GET, "/v1/webhook-endpoints", &op, None)
            .await,
        "merchant_key_required",
        None,
    );
}
