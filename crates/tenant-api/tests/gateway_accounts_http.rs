//! Operator gateway accounts over real HTTP, on SQLite and on PostgreSQL: the private key is
//! stored sealed (ciphertext, bound to its row), opens with the keyring to the same key, and is
//! never returned; merchants cannot reach these routes; merchants may name an account.

use diesel::prelude::*;
use domain::GatewayAccountId;
use gateway_client::PrivateKey;
use serde_json::{Value, json};
use support::TestApp;
use test_support::on_both_backends;

mod support;

/// The stored gateway account rows, read as the server's upstream setup reads them.
impl TestApp {
    async fn row(&self, id: &str) -> store::gateway_accounts::GatewayAccount {
        let id = GatewayAccountId::parse(id).expect("id");
        self.db
            .read(move |c| store::gateway_accounts::get(c, &id))
            .await
            .expect("row")
    }

    /// Opens the stored ciphertext exactly as the server's upstream setup does.
    async fn stored_key(&self, id: &str) -> PrivateKey {
        let row = self.row(id).await;
        let ct = row.private_key_ciphertext.expose();
        assert!(!ct.contains("BEGIN"), "stored key is not sealed");
        assert!(!ct.contains("PRIVATE"), "stored key is not sealed");
        let pem = self
            .keyring
            .open(ct, &format!("gateway_accounts:{id}:private_key"))
            .expect("opens with the keyring and its row binding");
        assert!(
            self.keyring
                .open(ct, "gateway_accounts:gwa_other:private_key")
                .is_err(),
            "bound to its row"
        );
        PrivateKey::from_pem_or_base64(pem.expose()).expect("a real key")
    }
}

/// A PKCS#8 PEM private key made by the `openssl` command line.
fn openssl_key() -> String {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("the openssl command line is needed by this test");
    assert!(out.status.success(), "openssl genpkey failed");
    String::from_utf8(out.stdout).expect("pem")
}

/// Base64 DER: the PEM body without its armor lines.
fn base64_der(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

fn assert_no_private_key(text: &str) {
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("\"private_key\""),
        "private key leaked: {text}"
    );
}

/// `POST /v1/merchants` as the operator.
async fn new_merchant(p: &TestApp, op: &str, body: Value) -> (u16, Value) {
    p.post("/v1/merchants", op, None, body).await
}

/// `PATCH /v1/merchants/{id}` as the operator.
async fn patch_merchant(p: &TestApp, op: &str, id: &str, body: Value) -> (u16, Value) {
    let path = format!("/v1/merchants/{id}");
    p.json(reqwest::Method::PATCH, &path, op, Some(body)).await
}

async fn gateway_accounts(db: store::Database) {
    use reqwest::Method;
    let p = TestApp::start(db).await;
    let op = p.operator_key().await;
    let app_pem = openssl_key();
    let app_pub = PrivateKey::from_pem_or_base64(&app_pem)
        .expect("openssl key parses")
        .public_key()
        .to_pem();
    let gateway_pub = test_support::gateway_key().public_key().to_pem();
    let body = json!({
        "name": "CodePay prod", "base_url": "https://gw.example/api", "app_id": "app_1",
        "private_key": app_pem, "gateway_public_key": gateway_pub,
        "request_timeout_ms": 8000,
    });

    // Create, idempotently: the replay is the same account, one row.
    let create = |body: Value| {
        p.call(
            Method::POST,
            "/v1/gateway-accounts",
            &op,
            Some("gwa-1"),
            Some(body),
        )
    };
    let (status, text) = create(body.clone()).await;
    assert_eq!(status, 201, "{text}");
    assert_no_private_key(&text);
    let acc: Value = serde_json::from_str(&text).expect("json");
    let id = acc["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("gwa_"));
    assert_eq!(acc["object"], "gateway_account");
    assert_eq!(acc["private_key_configured"], true);
    assert_eq!(acc["app_public_key"].as_str(), Some(app_pub.as_str()));
    assert_eq!(acc["app_id"], "app_1");
    assert_eq!(acc["connect_timeout_ms"], 2000);
    assert_eq!(acc["request_timeout_ms"], 8000);
    assert_eq!(acc["enabled"], true);
    let (status, replay) = create(body.clone()).await;
    assert_eq!((status, replay), (201, text.clone()));
    let rows =
        p.db.read(store::gateway_accounts::list)
            .await
            .expect("list");
    assert_eq!(rows.len(), 1);

    // Stored sealed, opens to the very key that was sent.
    let stored = p.stored_key(&id).await;
    assert_eq!(stored.public_key().to_pem(), app_pub);
    let first_ciphertext = p.row(&id).await.private_key_ciphertext.expose().to_owned();

    // Reads never carry it.
    let (status, text) = p
        .call(
            Method::GET,
            &format!("/v1/gateway-accounts/{id}"),
            &op,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_no_private_key(&text);
    let (status, text) = p
        .call(Method::GET, "/v1/gateway-accounts", &op, None, None)
        .await;
    assert_eq!(status, 200);
    assert_no_private_key(&text);
    let list: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(list["data"][0]["id"].as_str(), Some(id.as_str()));

    // Bad keys: 400 with the field named; nothing stored.
    for (field, value) in [
        (
            "private_key",
            json!("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"),
        ),
        ("private_key", json!(gateway_pub)),
        ("gateway_public_key", json!("garbage")),
    ] {
        let mut bad = body.clone();
        bad[field] = value;
        let (status, err) = p.post("/v1/gateway-accounts", &op, None, bad).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["param"], field);
        assert_eq!(err["error"]["type"], "invalid_request_error");
    }
    let mut bad = body.clone();
    bad.as_object_mut().expect("obj").remove("app_id");
    let (status, err) = p.post("/v1/gateway-accounts", &op, None, bad).await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("app_id"))
    );
    let (status, err) = p
        .patch(
            &format!("/v1/gateway-accounts/{id}"),
            &op,
            json!({"private_key": "bm90IGEga2V5"}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("private_key"))
    );
    assert_eq!(
        p.db.read(store::gateway_accounts::list)
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        p.row(&id).await.private_key_ciphertext.expose(),
        first_ciphertext
    );

    // PATCH without a key keeps the sealed key; with one (base64 DER this time) re-seals.
    let (status, upd) = p
        .patch(
            &format!("/v1/gateway-accounts/{id}"),
            &op,
            json!({"enabled": false, "name": "renamed"}),
        )
        .await;
    assert_eq!(status, 200, "{upd}");
    assert_eq!(
        (upd["enabled"].as_bool(), upd["name"].as_str()),
        (Some(false), Some("renamed"))
    );
    assert_eq!(upd["app_public_key"].as_str(), Some(app_pub.as_str()));
    assert_eq!(
        p.row(&id).await.private_key_ciphertext.expose(),
        first_ciphertext
    );
    let rotated = test_support::other_key();
    let rotated_pub = rotated.public_key().to_pem();
    let (status, text) = p
        .call(
            Method::PATCH,
            &format!("/v1/gateway-accounts/{id}"),
            &op,
            None,
            Some(json!({"private_key": base64_der(rotated.to_pkcs8_pem().expose())})),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_no_private_key(&text);
    let upd: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(upd["app_public_key"].as_str(), Some(rotated_pub.as_str()));
    assert_eq!(upd["name"], "renamed");
    assert_ne!(
        p.row(&id).await.private_key_ciphertext.expose(),
        first_ciphertext
    );
    assert_eq!(p.stored_key(&id).await.public_key().to_pem(), rotated_pub);
    let (status, _) = p
        .json(
            Method::GET,
            "/v1/gateway-accounts/gwa_01JAAAAAAAAAAAAAAAAAAAAAAA",
            &op,
            None,
        )
        .await;
    assert_eq!(status, 404);

    // The audit log has both changes, without key material.
    let audit =
        p.db.read(|c| store::audit::list(c, None, &store::PageRequest::first(100)))
            .await
            .expect("audit");
    let actions: Vec<&str> = audit
        .items
        .iter()
        .filter(|e| e.target_id == id)
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "gateway_account.update",
            "gateway_account.update",
            "gateway_account.create"
        ]
    );
    assert!(audit.items.iter().all(|e| !e.details.contains("PRIVATE")));

    // Merchants may name an existing account (else 422 on the field).
    let (status, mer) = new_merchant(
        &p,
        &op,
        json!({"name":"Shop","codepay":{"merchant_no":"M1"},"gateway_account_id": id}),
    )
    .await;
    assert_eq!(status, 201, "{mer}");
    assert_eq!(mer["gateway_account_id"].as_str(), Some(id.as_str()));
    let mid = mer["id"].as_str().expect("mid").to_owned();
    let column: Option<String> = {
        let mid = mid.clone();
        p.db.read(move |c| {
            use store::schema::merchants as m;
            Ok(store::on_backend!(c, |c| m::table
                .find(&mid)
                .select(m::gateway_account_id)
                .first(c))?)
        })
        .await
        .expect("merchant row")
    };
    assert_eq!(column.as_deref(), Some(id.as_str()));
    for bad in ["gwa_01JAAAAAAAAAAAAAAAAAAAAAAA", "nonsense"] {
        let (status, err) = new_merchant(
            &p,
            &op,
            json!({"name":"X","codepay":{"merchant_no":"M2"},"gateway_account_id": bad}),
        )
        .await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["param"], "gateway_account_id");
        let (status, err) = patch_merchant(&p, &op, &mid, json!({"gateway_account_id": bad})).await;
        assert_eq!(
            (status, err["error"]["param"].as_str()),
            (422, Some("gateway_account_id"))
        );
    }
    let (_, plain) = new_merchant(
        &p,
        &op,
        json!({"name":"Plain","codepay":{"merchant_no":"M3"}}),
    )
    .await;
    assert_eq!(plain["gateway_account_id"], Value::Null);
    let pid = plain["id"].as_str().expect("id").to_owned();
    let (status, linked) = patch_merchant(&p, &op, &pid, json!({"gateway_account_id": id})).await;
    assert_eq!(
        (status, linked["gateway_account_id"].as_str()),
        (200, Some(id.as_str()))
    );
    let all = p.get("/v1/merchants", &op).await;
    let data = all["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    assert!(
        data.iter()
            .all(|m| m["gateway_account_id"].as_str() == Some(id.as_str()))
    );

    // A merchant's key, or a token it mints, gets 403 on every gateway account route.
    let (status, k) = p
        .post(
            &format!("/v1/merchants/{mid}/api-keys"),
            &op,
            None,
            json!({}),
        )
        .await;
    assert_eq!(status, 201);
    let sk = k["secret"].as_str().expect("secret").to_owned();
    let (status, t) = p
        .post("/v1/tokens", &sk, None, json!({"scopes":["payments:read"]}))
        .await;
    assert_eq!(status, 201, "{t}");
    let token = t["token"].as_str().expect("token").to_owned();
    for who in [&sk, &token] {
        for (method, path, body) in [
            (Method::GET, "/v1/gateway-accounts".to_owned(), None),
            (
                Method::POST,
                "/v1/gateway-accounts".to_owned(),
                Some(body.clone()),
            ),
            (Method::GET, format!("/v1/gateway-accounts/{id}"), None),
            (
                Method::PATCH,
                format!("/v1/gateway-accounts/{id}"),
                Some(json!({"enabled": true})),
            ),
        ] {
            let (status, text) = p.call(method.clone(), &path, who, None, body).await;
            assert_eq!(status, 403, "{method} {path}: {text}");
            assert_no_private_key(&text);
        }
    }
    assert_eq!(
        p.db.read(store::gateway_accounts::list)
            .await
            .expect("list")
            .len(),
        1
    );
    assert!(
        !p.row(&id).await.enabled,
        "the merchant's PATCH changed nothing"
    );

    // The OpenAPI document lists the routes.
    let doc = p.get("/openapi.json", &op).await;
    assert!(doc["paths"]["/v1/gateway-accounts"]["post"].is_object());
    assert!(doc["paths"]["/v1/gateway-accounts/{id}"]["patch"].is_object());
}

on_both_backends!(gateway_accounts);
