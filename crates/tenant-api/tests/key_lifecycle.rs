//! Key lifecycle over real HTTP on SQLite: operators list, create and revoke operator keys;
//! merchants list, create (scoped, expiring) and revoke their own keys with `keys:write`; every
//! key shows its last use.

use reqwest::Method;
use serde_json::{Value, json};
use support::TestApp;

mod support;

async fn app() -> (TestApp, tempfile::TempDir) {
    let (db, dir) = test_support::db::fresh_sqlite().await;
    (TestApp::start(db).await, dir)
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|k| k["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn operators_list_create_and_revoke_operator_keys() {
    let (app, _dir) = app().await;
    let op = app.operator_key().await;
    let (status, created) = app
        .post(
            "/v1/operator/api-keys",
            &op,
            None,
            json!({"label": "alice"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let new_secret = created["secret"].as_str().expect("secret").to_owned();
    let new_id = created["id"].as_str().expect("id").to_owned();
    // The new key works, and shows up with its last use.
    let list = app.get("/v1/operator/api-keys", &new_secret).await;
    assert!(ids(&list).contains(&new_id), "{list}");
    assert!(list["data"][0].get("secret").is_none(), "{list}");
    let mut used = Value::Null;
    for _ in 0..50 {
        let list = app.get("/v1/operator/api-keys", &op).await;
        used = list["data"]
            .as_array()
            .expect("data")
            .iter()
            .find(|k| k["id"] == new_id.as_str())
            .expect("listed")["last_used_at"]
            .clone();
        if !used.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(used.is_string(), "last_used_at recorded: {used}");
    let (status, revoked) = app
        .json(
            Method::DELETE,
            &format!("/v1/operator/api-keys/{new_id}"),
            &op,
            None,
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, _) = app
        .json(Method::GET, "/v1/operator/api-keys", &new_secret, None)
        .await;
    assert_eq!(status, 401);
    // Merchants cannot touch operator keys.
    let (_, sk) = app.merchant_with_key().await;
    let (status, _) = app
        .json(Method::GET, "/v1/operator/api-keys", &sk, None)
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn merchants_manage_their_own_keys_with_keys_write() {
    let (app, _dir) = app().await;
    let (mid, sk) = app.merchant_with_key().await;
    let (status, created) = app
        .post(
            "/v1/api-keys",
            &sk,
            None,
            json!({"label": "pos", "scopes": ["payments:read"], "expires_in": 3600}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["scopes"], json!(["payments:read"]));
    assert!(created["expires_at"].is_string(), "{created}");
    let pos = created["secret"].as_str().expect("secret").to_owned();
    let pos_id = created["id"].as_str().expect("id").to_owned();
    let list = app.get("/v1/api-keys", &sk).await;
    assert_eq!(ids(&list).len(), 2, "{list}");
    // The narrow key cannot manage keys, nor can another merchant see or revoke these.
    let (status, _) = app.json(Method::GET, "/v1/api-keys", &pos, None).await;
    assert_eq!(status, 403);
    let (_, other) = app.merchant_with_key().await;
    assert!(!ids(&app.get("/v1/api-keys", &other).await).contains(&pos_id));
    let (status, _) = app
        .json(
            Method::DELETE,
            &format!("/v1/api-keys/{pos_id}"),
            &other,
            None,
        )
        .await;
    assert_eq!(status, 404);
    // No scope beyond the caller's.
    let narrow = app.key(Some(&mid), &["keys:write"]).await;
    let (status, body) = app
        .post(
            "/v1/api-keys",
            &narrow,
            None,
            json!({"scopes": ["refunds:write"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .post("/v1/api-keys", &sk, None, json!({"expires_in": 5}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app
        .json(Method::DELETE, &format!("/v1/api-keys/{pos_id}"), &sk, None)
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, _) = app.json(Method::GET, "/v1/payments", &pos, None).await;
    assert_eq!(status, 401);
}
