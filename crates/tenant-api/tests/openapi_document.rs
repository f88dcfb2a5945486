//! The OpenAPI document a real app serves (`GET /openapi.json`, over HTTP on SQLite) names every
//! status each route can answer: no `4XX` or `default` wildcard, 401/403/429/503 on every route
//! behind a key, 404 on every route with an id in its path, 400/413 with a JSON body, 400 with
//! query parameters, 400/409/422 with `Idempotency-Key`, every error with the error body, every
//! path parameter described once. Every `$ref` resolves, and the enums and bounds are what the
//! server accepts. A route added without its responses (the bundles of
//! `tenant_api::routes::responses`) fails here. Beside it, what schemathesis found answered
//! wrong (`scripts/schemathesis.sh`): a served path asked with another method is a 405 with
//! `Allow`, a body is read from a JSON object only, revoking a revoked key answers the key, and
//! a webhook URL is taken exactly when the documented pattern matches it.

use reqwest::Method;
use serde_json::{Value, json};
use support::TestApp;

mod support;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The document as served.
async fn document(app: &TestApp) -> Value {
    reqwest::get(format!("{}/openapi.json", app.base))
        .await
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("JSON document")
}

/// Every `(METHOD path, operation)` of the document.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method.to_uppercase(), path.clone(), op));
            }
        }
    }
    out
}

/// What is wrong with one operation's responses and parameters (empty: nothing).
fn problems(method: &str, path: &str, op: &Value) -> Vec<String> {
    let responses = op["responses"].as_object().expect("responses");
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let param = |name: &str, place: &str| {
        params
            .iter()
            .find(|p| p["name"] == name && p["in"] == place)
            .cloned()
    };
    // (statuses the operation must document, because …)
    let mut needed: Vec<(&[&str], &str)> = Vec::new();
    let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
    let mut wrong = Vec::new();
    if path.starts_with("/v1/") && !secured {
        wrong.push(format!(
            "{method} {path}: every /v1 route takes a key: `security((\"bearer\" = []))`"
        ));
    }
    if secured {
        needed.push((
            &["401", "403", "429", "503"],
            "behind a key: `Authenticated`",
        ));
    }
    if path.contains('{') {
        needed.push((&["404"], "an id in the path: `Lookup`"));
    }
    if op.get("requestBody").is_some() {
        needed.push((&["400", "413"], "a JSON body: `JsonBody`"));
    }
    if params.iter().any(|p| p["in"] == "query") {
        needed.push((&["400"], "query parameters: `BadQuery`"));
    }
    if param("Idempotency-Key", "header").is_some() {
        needed.push((&["400", "409", "422"], "`Idempotency-Key`: `Idempotent`"));
    }
    for (statuses, why) in needed {
        for status in statuses {
            if !responses.contains_key(*status) {
                wrong.push(format!("{method} {path}: no {status} ({why})"));
            }
        }
    }
    for (i, p) in params.iter().enumerate() {
        if params[..i]
            .iter()
            .any(|q| q["name"] == p["name"] && q["in"] == p["in"])
        {
            wrong.push(format!(
                "{method} {path}: parameter {} in {} twice",
                p["name"], p["in"]
            ));
        }
    }
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            match param(name, "path") {
                Some(p) if p["required"] == true && p["description"].is_string() => {}
                _ => wrong.push(format!(
                    "{method} {path}: path parameter `{name}` is not documented (required, with \
                     a description)"
                )),
            }
        }
    }
    for (status, response) in responses {
        let is_number = status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit());
        if !is_number {
            wrong.push(format!(
                "{method} {path}: `{status}` is a wildcard, not a status"
            ));
            continue;
        }
        if response["description"].as_str().is_none_or(str::is_empty) {
            wrong.push(format!("{method} {path}: {status} has no description"));
        }
        if status.as_str() >= "400" {
            let schema = &response["content"]["application/json"]["schema"]["$ref"];
            if schema != "#/components/schemas/ErrorBody" {
                wrong.push(format!(
                    "{method} {path}: {status} is not the error body but {schema}"
                ));
            }
        }
    }
    wrong
}

/// `schema` with its `$ref` followed (once) in `doc`.
fn resolved<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => schema,
    }
}

/// The property names of an operation's JSON request body (of every `oneOf` branch).
fn body_fields(doc: &Value, op: &Value) -> Vec<String> {
    let schema = resolved(
        doc,
        &op["requestBody"]["content"]["application/json"]["schema"],
    );
    let branches = match schema["oneOf"].as_array() {
        Some(items) => items.iter().map(|s| resolved(doc, s)).collect(),
        None => vec![schema],
    };
    branches
        .iter()
        .filter_map(|b| b["properties"].as_object())
        .flat_map(|p| p.keys().cloned())
        .collect()
}

/// Every `$ref` under `value` that names nothing in `doc`.
fn dangling<'a>(doc: &Value, value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref"
                    && let Some(r) = v.as_str()
                {
                    let pointer = r.trim_start_matches('#');
                    if doc.pointer(pointer).is_none() {
                        out.push(r);
                    }
                }
                dangling(doc, v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dangling(doc, v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_documents_the_statuses_it_can_answer_with_the_error_body() {
    let (db, _dir) = test_support::fresh_sqlite().await;
    let app = TestApp::start(db).await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    assert!(
        ops.len() >= 42,
        "the document has every route: {}",
        ops.len()
    );
    let mut wrong: Vec<String> = ops
        .iter()
        .flat_map(|(method, path, op)| problems(method, path, op))
        .collect();
    // A body naming a store or terminal is looked up like a path id: another merchant's (or a
    // malformed) one is a 404.
    for (method, path, op) in &ops {
        let fields = body_fields(&doc, op);
        if fields.iter().any(|f| f == "store_id" || f == "terminal_id")
            && op["responses"].get("404").is_none()
        {
            wrong.push(format!(
                "{method} {path}: no 404 (its body names a store or terminal: `Lookup`)"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let bodies_naming_stores = ops
        .iter()
        .filter(|(_, _, op)| body_fields(&doc, op).iter().any(|f| f == "store_id"))
        .count();
    assert!(
        bodies_naming_stores >= 5,
        "payments, keys, tokens and webhook endpoints name stores: {bodies_naming_stores}"
    );
    // What a bound credential gets beyond its binding is said where every 403 is described.
    let forbidden = &doc["paths"]["/v1/payments"]["post"]["responses"]["403"]["description"];
    assert!(
        forbidden
            .as_str()
            .is_some_and(|d| d.contains("`credential_bound`")),
        "{forbidden}"
    );
    let mut refs = Vec::new();
    dangling(&doc, &doc, &mut refs);
    assert!(refs.is_empty(), "references to nothing: {refs:?}");

    // The checker is no formality: a route documented the old way fails it on every count.
    let old = json!({
        "security": [{"bearer": []}],
        "requestBody": {},
        "parameters": [{"name": "Idempotency-Key", "in": "header"}],
        "responses": {"201": {"description": "ok"}, "4XX": {"description": "x"}}
    });
    let found = problems("POST", "/v1/things/{id}", &old);
    for expected in [
        "no 401",
        "no 403",
        "no 429",
        "no 503",
        "no 404",
        "no 413",
        "no 409",
        "no 422",
        "`4XX` is a wildcard",
        "path parameter `id`",
    ] {
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{expected} in {found:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enums_of_the_document_are_what_validation_accepts() {
    let (db, _dir) = test_support::fresh_sqlite().await;
    let app = TestApp::start(db).await;
    let doc = document(&app).await;
    let values = |schema: &str| -> Vec<String> {
        doc["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} is an enum"))
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect()
    };
    let wallets = values("Wallet");
    let names: Vec<String> = domain::Wallet::all().map(|w| w.name().to_owned()).collect();
    assert_eq!(wallets, names);
    let currencies = values("Currency");
    for code in ["USD", "JPY", "KWD", "EUR", "CNY", "HKD", "MMK"] {
        assert!(currencies.iter().any(|c| c == code), "{code} is documented");
    }
    for refused in ["XAU", "XXX", "usd", "ABC"] {
        assert!(
            domain::Currency::from_code(refused).is_err(),
            "{refused} is refused"
        );
        assert!(!currencies.iter().any(|c| c == refused), "{refused} is not");
    }
    assert!(
        currencies
            .iter()
            .all(|c| domain::Currency::from_code(c).is_ok()),
        "every documented currency is accepted"
    );
    assert_eq!(values("Scope"), tenant_api::auth::jwt::ALL_SCOPES.to_vec());

    // Every paged list documents the `limit` that `page_limit` checks, and every filter of an
    // enumerated value its enumeration.
    let mut lists = 0;
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] != "query" {
                continue;
            }
            let schema = &p["schema"];
            if p["name"] == "limit" {
                lists += 1;
                assert_eq!(
                    (schema["minimum"].as_i64(), schema["maximum"].as_i64()),
                    (Some(1), Some(100)),
                    "{method} {path}: limit {schema}"
                );
            }
            assert_ne!(
                schema["type"],
                json!(["string", "null"]),
                "{method} {path}: query parameter {} is not nullable",
                p["name"]
            );
            // (The operator's delivery `status` is free text: another value matches nothing.)
            let name = p["name"].as_str().unwrap_or("");
            let validated = ["wallet", "mode", "currency"].contains(&name)
                || (name == "status" && ["/v1/payments", "/v1/refunds"].contains(&path.as_str()));
            if validated {
                assert!(
                    schema["enum"].is_array(),
                    "{method} {path}: {} is an enumeration: {schema}",
                    p["name"]
                );
            }
        }
    }
    assert!(lists >= 7, "paged lists: {lists}");
    let refund_statuses: Vec<&str> = doc["paths"]["/v1/refunds"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "status")
        .and_then(|p| p["schema"]["enum"].as_array())
        .expect("the refund status is an enum")
        .iter()
        .map(|v| v.as_str().expect("string"))
        .collect();
    assert_eq!(
        refund_statuses,
        domain::RefundStatus::ALL.map(|s| s.as_str()).to_vec()
    );

    // Over HTTP, the documented bounds are the validated ones.
    let m = app.merchant(None).await;
    let sk = app.key(Some(&m), tenant_api::auth::jwt::ALL_SCOPES).await;
    let limit = &doc["paths"]["/v1/payments"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("limit")["schema"];
    let (min, max) = (limit["minimum"].as_i64(), limit["maximum"].as_i64());
    assert_eq!((min, max), (Some(1), Some(100)), "{limit}");
    for (limit, status) in [(0, 400), (1, 200), (100, 200), (101, 400)] {
        let (got, body) = app
            .json(
                Method::GET,
                &format!("/v1/payments?limit={limit}"),
                &sk,
                None,
            )
            .await;
        assert_eq!(got, status, "limit={limit}: {body}");
    }
    let statuses: Vec<String> = doc["paths"]["/v1/payments"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "status")
        .and_then(|p| p["schema"]["enum"].as_array())
        .expect("status is an enum")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect();
    let known: Vec<&str> = domain::PaymentStatus::ALL.map(|s| s.as_str()).to_vec();
    assert_eq!(statuses, known);
    for status in statuses {
        let (got, body) = app
            .json(
                Method::GET,
                &format!("/v1/payments?status={status}"),
                &sk,
                None,
            )
            .await;
        assert_eq!(got, 200, "status={status}: {body}");
    }
    let (got, _) = app
        .json(Method::GET, "/v1/payments?status=paid", &sk, None)
        .await;
    assert_eq!(got, 400, "an undocumented status is refused");
    for (query, status) in [
        ("status=failed", 200),
        ("status=canceled", 400),
        ("limit=100", 200),
        ("limit=101", 400),
        ("amount_gte=0", 200),
        ("amount_gte=-1", 400),
        ("starting_after=ref_01J0000000000000000000000A", 200),
        ("starting_after=pay_01J0000000000000000000000A", 400),
    ] {
        let (got, body) = app
            .json(Method::GET, &format!("/v1/refunds?{query}"), &sk, None)
            .await;
        assert_eq!(got, status, "/v1/refunds?{query}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_path_asked_with_another_method_is_a_405_naming_the_served_ones() {
    let (db, _dir) = test_support::fresh_sqlite().await;
    let app = TestApp::start(db).await;
    let op = app.operator_key().await;
    let client = reqwest::Client::new();
    for (method, path, allow) in [
        ("TRACE", "/v1/payments", "GET, POST"),
        (
            "PUT",
            "/v1/merchants/mer_01J0000000000000000000000",
            "GET, PATCH",
        ),
        ("DELETE", "/v1/payments/anything/cancel", "POST"),
    ] {
        let resp = client
            .request(
                Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", app.base),
            )
            .bearer_auth(&op)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        let got_allow = resp.headers()["allow"].to_str().expect("ascii").to_owned();
        let body: Value = resp.json().await.expect("error body");
        assert_eq!(got_allow, allow, "{method} {path}");
        assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
        assert!(body["error"]["request_id"].is_string(), "{body}");
    }
    let (status, body) = app.json(Method::GET, "/v1/nothing-here", &op, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("resource_missing")),
        "an unknown path stays a 404: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_read_from_a_json_object_only() {
    let (db, _dir) = test_support::fresh_sqlite().await;
    let app = TestApp::start(db).await;
    let op = app.operator_key().await;
    let m = app.merchant(None).await;
    // serde would read a struct from an array of its fields: `[["payments:read"], 60]` was a
    // token request, `"codepay": [null, null]` a merchant's CodePay ids.
    let sk = app.key(Some(&m), tenant_api::auth::jwt::ALL_SCOPES).await;
    let (status, body) = app
        .post("/v1/tokens", &sk, None, json!([["payments:read"], 60]))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_type")),
        "{body}"
    );
    let path = format!("/v1/merchants/{m}");
    let (status, body) = app
        .patch(&path, &op, json!({"codepay": [null, null]}))
        .await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["param"].as_str()
        ),
        (400, Some("invalid_type"), Some("codepay")),
        "{body}"
    );
    let (status, body) = app
        .patch(&path, &op, json!({"codepay": {"store_no": "S-1"}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["codepay"]["store_no"], "S-1", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_revoked_key_answers_it_as_it_is() {
    let (db, _dir) = test_support::fresh_sqlite().await;
    let app = TestApp::start(db).await;
    let op = app.operator_key().await;
    // An idempotent create replays the same key, so a retried DELETE of it must not read 404.
    let (status, key) = app
        .post("/v1/operator/api-keys", &op, Some("op-key-1"), json!({}))
        .await;
    assert_eq!(status, 201, "{key}");
    let path = format!("/v1/operator/api-keys/{}", key["id"].as_str().expect("id"));
    for _ in 0..2 {
        let (status, body) = app.json(Method::DELETE, &path, &op, None).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["revoked_at"].is_string(), "{body}");
    }
    // Someone else's key stays a 404, revoked or not.
    let m = app.merchant(None).await;
    let sk = app.key(Some(&m), tenant_api::auth::jwt::ALL_SCOPES).await;
    let (_, other) = app
        .post(&format!("/v1/merchants/{m}/api-keys"), &op, None, json!({}))
        .await;
    let other_id = other["id"].as_str().expect("id").to_owned();
    let (status, _) = app
        .json(
            Method::DELETE,
            &format!("/v1/operator/api-keys/{other_id}"),
            &op,
            None,
        )
        .await;
    assert_eq!(status, 404, "a merchant's key is no operator key");
    let (status, _) = app
        .json(
            Method::DELETE,
            &format!("/v1/api-keys/{other_id}"),
            &sk,
            None,
        )
        .await;
    assert_eq!(status, 200, "its merchant revokes it");
    let other_merchant = app.merchant(None).await;
    let stranger = app
        .key(Some(&other_merchant), tenant_api::auth::jwt::ALL_SCOPES)
        .await;
    let (status, _) = app
        .json(
            Method::DELETE,
            &format!("/v1/api-keys/{other_id}"),
            &stranger,
            None,
        )
        .await;
    assert_eq!(
        status, 404,
        "another merchant's revoked key is still no key of its"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_url_is_taken_exactly_when_the_documented_pattern_matches_it() {
    let (db, _dir) = test_support::fresh_sqlite().await;
    let app = TestApp::start(db).await;
    let doc = document(&app).await;
    let pattern = doc["components"]["schemas"]["WebhookUrl"]["pattern"]
        .as_str()
        .expect("the URL schema has a pattern")
        .to_owned();
    assert_eq!(pattern, tenant_api::routes::schemas::WEBHOOK_URL_PATTERN);
    let m = app.merchant(None).await;
    let sk = app.key(Some(&m), tenant_api::auth::jwt::ALL_SCOPES).await;
    // The url crate takes all of these; the API takes those the document promises.
    for (url, taken) in [
        ("https://hooks.example/a?b#c", true),
        ("http://127.0.0.1:9/hook", true),
        ("https://a7rv55v0.example*", false),
        ("https://ex%41mple.com/", false),
        ("HTTPS://hooks.example/", false),
        ("https://0x7f.1/", false),
        ("https://[::1]/", false),
    ] {
        let (status, body) = app
            .post("/v1/webhook-endpoints", &sk, None, json!({ "url": url }))
            .await;
        if taken {
            assert_eq!(status, 201, "{url}: {body}");
        } else {
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("url_invalid")),
                "{url}: {body}"
            );
        }
    }
}
