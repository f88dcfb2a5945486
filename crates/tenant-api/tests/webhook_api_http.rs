//! The merchant webhook API through real HTTP (tenant-api's routes mounted with the
//! `WebhookApi` the server registers), with deliveries made by webhook-fanout's worker to a real
//! receiver, on SQLite and PostgreSQL.

mod support;

use domain::EventId;
use reqwest::Method;
use std::time::Duration;
use store::Database;
use support::TestApp;
use test_support::on_both_backends;
use test_support::receiver::{Receiver, Reply};
use test_support::webhooks::{config, drive, event, payment_event, run_once, verifies, worker};
use webhook_fanout::signature::WebhookSecret;

const WAIT: Duration = Duration::from_secs(20);

async fn merchants_manage_endpoints_and_replay_events_over_http(db: Database) {
    let api = TestApp::start(db.clone()).await;
    // The worker opens the endpoint secrets the API sealed.
    let kr = api.keyring.clone();
    let (m, sk) = api.merchant_with_key().await;
    let (_, sk_other) = api.merchant_with_key().await;
    let op = api.key(None, tenant_api::auth::jwt::ALL_SCOPES).await;
    let rx = Receiver::start(Reply::status(200));

    // create: the secret is shown once and sealed at rest
    let (st, ep) = api.post("/v1/webhook-endpoints", &sk, None, serde_json::json!({"url": rx.url("/hook"), "events": ["payment.succeeded"], "description": "shop"}))
        .await;
    assert_eq!(st, 201, "{ep}");
    let id = ep["id"].as_str().unwrap().to_owned();
    let secret = ep["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let (st, got) = api
        .json(
            Method::GET,
            &format!("/v1/webhook-endpoints/{id}"),
            &sk,
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert!(got.get("secret").is_none(), "never shown again");
    assert_eq!(got["events"], serde_json::json!(["payment.succeeded"]));
    let row = {
        let id = id.clone();
        db.read(move |c| store::webhook_endpoints::get_any(c, &id))
            .await
            .unwrap()
    };
    assert!(
        !row.secret_ciphertext.contains(&secret[6..]),
        "sealed at rest"
    );
    let page = api.get("/v1/webhook-endpoints", &sk).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);

    // foreign ids are 404, bad input 400, operators and merchants kept apart
    for (method, path) in [
        (Method::GET, format!("/v1/webhook-endpoints/{id}")),
        (Method::DELETE, format!("/v1/webhook-endpoints/{id}")),
        (
            Method::POST,
            format!("/v1/webhook-endpoints/{id}/rotate-secret"),
        ),
    ] {
        let (st, body) = api.json(method.clone(), &path, &sk_other, None).await;
        assert_eq!(st, 404, "{method} {path}: {body}");
    }
    let (st, body) = api
        .post(
            "/v1/webhook-endpoints",
            &sk,
            None,
            serde_json::json!({"url": "ftp://x.example/"}),
        )
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (400, Some("url_invalid"))
    );
    let (st, body) = api
        .post(
            "/v1/webhook-endpoints",
            &sk,
            None,
            serde_json::json!({"url": rx.url("/"), "events": ["payment.teleported"]}),
        )
        .await;
    assert_eq!((st, body["error"]["param"].as_str()), (400, Some("events")));
    assert_eq!(
        api.json(Method::GET, "/v1/webhook-endpoints", &op, None)
            .await
            .0,
        403
    );
    assert_eq!(
        api.json(Method::GET, "/v1/operator/webhook-endpoints", &sk, None)
            .await
            .0,
        403
    );

    // an event reaches the endpoint, signed with the secret from the create response
    let w = worker(&db, &kr, config("0s,100ms,100ms"));
    let (ev, _) = payment_event(&db, &m, "pay_api_1").await;
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 1).await);
    assert!(verifies(
        &rx.received()[0],
        &[WebhookSecret::parse(&secret).unwrap()]
    ));
    let events = api.get("/v1/events?type=payment.succeeded", &sk).await;
    assert_eq!(events["data"][0]["id"], ev.id.as_str());
    assert_eq!(events["data"][0]["data"]["id"], "pay_api_1");
    assert_eq!(
        api.json(
            Method::GET,
            &format!("/v1/events/{}", ev.id),
            &sk_other,
            None
        )
        .await
        .0,
        404
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let attempts = api
        .get(&format!("/v1/events/{}/attempts", ev.id), &sk)
        .await;
    assert_eq!(attempts["data"][0]["http_status"], 200);

    // redeliver
    let (st, _) = api
        .json(
            Method::POST,
            &format!("/v1/events/{}/redeliver", ev.id),
            &sk,
            None,
        )
        .await;
    assert_eq!(st, 202);
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 2).await);
    assert_eq!(rx.received()[1].headers["webhook-id"], ev.id);

    // a failing delivery shows under delivery_success=false, then recover re-sends it
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    rx.script([Reply::status(500), Reply::status(500), Reply::status(500)]);
    let (ev2, _) = payment_event(&db, &m, "pay_api_2").await;
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 5).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let failing = api.get("/v1/events?delivery_success=false", &sk).await;
    let ids: Vec<_> = failing["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![ev2.id.clone()]);
    let ok_events = api.get("/v1/events?delivery_success=true", &sk).await;
    assert_eq!(ok_events["data"][0]["id"], ev.id.as_str());
    let health = api
        .get("/v1/operator/webhook-endpoints?failing=true", &op)
        .await;
    assert_eq!(health["data"][0]["id"], id.as_str());
    assert_eq!(health["data"][0]["dead_deliveries"], 1);
    let dl = api
        .get(
            &format!("/v1/operator/webhook-deliveries?event_id={}", ev2.id),
            &op,
        )
        .await;
    assert_eq!(dl["data"][0]["status"], "dead");
    assert_eq!(dl["data"][0]["attempts"], 3);
    let (st, rec) = api
        .post(
            &format!("/v1/webhook-endpoints/{id}/recover"),
            &sk,
            None,
            serde_json::json!({"since": since}),
        )
        .await;
    assert_eq!((st, rec["deliveries_queued"].as_u64()), (202, Some(1)));
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 6).await);
    assert_eq!(rx.received()[5].headers["webhook-id"], ev2.id);

    // rotation: both secrets sign, the response shows the new one once
    let (st, rot) = api
        .json(
            Method::POST,
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &sk,
            None,
        )
        .await;
    assert_eq!(st, 200, "{rot}");
    let new_secret = rot["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(rot["previous_secret_expires_at"].is_string());
    payment_event(&db, &m, "pay_api_3").await;
    assert!(drive(&db, &w, "r", WAIT, || rx.count() == 7).await);
    let last = &rx.received()[6];
    assert!(
        verifies(last, &[WebhookSecret::parse(&secret).unwrap()])
            && verifies(last, &[WebhookSecret::parse(&new_secret).unwrap()])
    );

    // disable, then delete
    let (st, patched) = api
        .patch(
            &format!("/v1/webhook-endpoints/{id}"),
            &sk,
            serde_json::json!({"enabled": false, "description": null}),
        )
        .await;
    assert_eq!(
        (
            st,
            patched["enabled"].as_bool(),
            patched["description"].is_null()
        ),
        (200, Some(false), true)
    );
    let (_, n) = payment_event(&db, &m, "pay_api_4").await;
    assert_eq!(n, 0);
    assert_eq!(
        api.json(
            Method::DELETE,
            &format!("/v1/webhook-endpoints/{id}"),
            &sk,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        api.json(
            Method::GET,
            &format!("/v1/webhook-endpoints/{id}"),
            &sk,
            None
        )
        .await
        .0,
        404
    );
    let _ = EventId::parse(&ev.id).unwrap();
}

async fn recover_over_http_re_enables_the_endpoint_and_sends_what_it_missed_once(db: Database) {
    let api = TestApp::start(db.clone()).await;
    let kr = api.keyring.clone();
    let (m, sk) = api.merchant_with_key().await;
    let (other, _) = api.merchant_with_key().await;
    let (bad, good) = (
        Receiver::start(Reply::status(500)),
        Receiver::start(Reply::status(200)),
    );
    let (st, ep) = api
        .post(
            "/v1/webhook-endpoints",
            &sk,
            None,
            serde_json::json!({"url": bad.url("/hook"), "events": ["payment.succeeded"]}),
        )
        .await;
    assert_eq!(st, 201, "{ep}");
    let id = ep["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/webhook-endpoints/{id}");
    let recover = format!("{path}/recover");
    let since = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(3)).await;

    // failing for longer than the limit disables the endpoint
    let mut cfg = config("0s,150ms,150ms,150ms,150ms,150ms,150ms,150ms");
    cfg.disable_after = Duration::from_millis(400);
    let w = worker(&db, &kr, cfg);
    let (failed, _) = payment_event(&db, &m, "pay_rec_1").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while api.json(Method::GET, &path, &sk, None).await.1["enabled"] != false {
        assert!(tokio::time::Instant::now() < deadline, "never disabled");
        run_once(&db, &w, "r", 16).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // raised while disabled: no delivery row for the endpoint
    let (missed, n) = payment_event(&db, &m, "pay_rec_2").await;
    assert_eq!(n, 0);
    let (unsubscribed, _) = event(&db, &m, domain::EventType::RefundSucceeded, "re_rec_3").await;
    let (foreign, _) = payment_event(&db, &other, "pay_rec_4").await;
    // the merchant fixes the receiver: the endpoint stays disabled until recovered
    let (st, patched) = api
        .patch(&path, &sk, serde_json::json!({"url": good.url("/hook")}))
        .await;
    assert_eq!((st, patched["enabled"].as_bool()), (200, Some(false)));

    // `until` defaults to now
    let (st, rec) = api
        .post(&recover, &sk, None, serde_json::json!({"since": since}))
        .await;
    assert_eq!(st, 202, "{rec}");
    assert_eq!(rec["deliveries_queued"], 2, "{rec}");
    assert_eq!(
        (
            &rec["deliveries_created"],
            &rec["deliveries_requeued"],
            &rec["deliveries_already_succeeded"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(0)
        ),
        "{rec}"
    );
    assert_eq!(
        (&rec["reenabled"], &rec["enabled"], &rec["has_more"]),
        (
            &serde_json::json!(true),
            &serde_json::json!(true),
            &serde_json::json!(false)
        ),
        "{rec}"
    );
    assert!(
        rec["next_since"].is_null() && rec["until"].is_string(),
        "{rec}"
    );
    let now = api.get(&path, &sk).await;
    assert_eq!(
        (&now["enabled"], &now["disabled_reason"]),
        (&serde_json::json!(true), &serde_json::Value::Null)
    );

    let w = worker(&db, &kr, config("0s,100ms"));
    assert!(drive(&db, &w, "r", WAIT, || good.count() == 2).await);
    run_once(&db, &w, "r", 64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut got: Vec<String> = good
        .received()
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    got.sort();
    let mut wanted = vec![failed.id.clone(), missed.id.clone()];
    wanted.sort();
    assert_eq!(got, wanted, "not {} nor {}", unsubscribed.id, foreign.id);

    // again: both succeeded, nothing is sent twice
    let (st, again) = api
        .post(&recover, &sk, None, serde_json::json!({"since": since}))
        .await;
    assert_eq!(
        (
            st,
            &again["deliveries_queued"],
            &again["deliveries_already_succeeded"],
            &again["reenabled"]
        ),
        (
            202,
            &serde_json::json!(0),
            &serde_json::json!(2),
            &serde_json::json!(false)
        ),
        "{again}"
    );
    run_once(&db, &w, "r", 64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(good.count(), 2);

    // bad ranges are 400 with the usual error body
    let t = |d: chrono::Duration| (since + d).to_rfc3339();
    for (body, param) in [
        (
            serde_json::json!({"since": t(chrono::Duration::zero()), "until": t(chrono::Duration::zero())}),
            "until",
        ),
        (
            serde_json::json!({"since": t(-chrono::Duration::seconds(5)), "until": t(-chrono::Duration::seconds(10))}),
            "until",
        ),
        (
            serde_json::json!({"since": t(-chrono::Duration::days(40)), "until": t(chrono::Duration::zero())}),
            "until",
        ),
        (
            serde_json::json!({"since": t(-chrono::Duration::days(40))}),
            "since",
        ),
        (
            serde_json::json!({"since": t(chrono::Duration::days(1))}),
            "since",
        ),
        (serde_json::json!({"since": "yesterday"}), "since"),
        (
            serde_json::json!({"until": t(chrono::Duration::zero())}),
            "since",
        ),
    ] {
        let (st, err) = api.post(&recover, &sk, None, body.clone()).await;
        assert_eq!(st, 400, "{body}: {err}");
        let e = &err["error"];
        assert_eq!(e["type"], "invalid_request_error", "{body}: {err}");
        assert!(e["code"].is_string() && e["message"].is_string(), "{err}");
        assert_eq!(e["param"], param, "{body}: {err}");
    }
}

on_both_backends!(
    merchants_manage_endpoints_and_replay_events_over_http,
    recover_over_http_re_enables_the_endpoint_and_sends_what_it_missed_once,
);
