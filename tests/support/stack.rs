//! A production-shaped stack for the money tests: the CodePay simulator as its own process
//! (`payfac sim`, the real binary) and `payfac` configured as production against it
//! (`PAYFAC_SANDBOX=false`, `PAYFAC_CODEPAY_*`), on PostgreSQL + Redis or on SQLite.
//!
//! It follows `benches/payments/run.sh` (keys, env vars, onboarding with the simulator's
//! `merchant_no`) but everything is Rust: keys come from `test_support::{app_key, gateway_key}`
//! and are written as PEM files, ports from `test_support::free_port`.
//!
//! Timers are short so that faults and settlement play out in seconds: a 1.5 s CodePay timeout
//! (`timeout`/`slow` faults of 2 s bite), CPM polls every 300 ms with a 6 s deadline, MPM
//! expiry 5 s by default, and the simulator runs its own delays (PIN, refund settlement,
//! notification retries, expiry) [`TIME_SCALE`] times faster.

use reqwest::Method;
use serde_json::{Value, json};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::{TEST_MASTER_KEY, free_port, fresh_postgres_url, payfac_command, redis_url};

/// The simulator's time scale: its refund settlement (5 s), PIN entry (5 s) and notification
/// retries run this many times faster. MPM expiry is scaled too: an order payfac creates with
/// `expires` 30 s closes at the simulator after 30 / `TIME_SCALE` s of real time.
pub const TIME_SCALE: u32 = 5;
/// payfac's per-call timeout towards CodePay, in ms.
pub const CODEPAY_TIMEOUT_MS: u64 = 1500;
/// Delay of the `timeout` and `slow` faults: longer than [`CODEPAY_TIMEOUT_MS`], short enough
/// not to hold the simulator's workers for long.
pub const FAULT_DELAY_MS: u64 = 2000;
/// payfac's CPM deadline (seconds) before it reverses an unsettled payment.
pub const CPM_DEADLINE_SECONDS: u64 = 6;
/// payfac's default MPM expiry (seconds; the request's `expires_in` cannot go under 30 s).
pub const MPM_EXPIRES_SECONDS: u64 = 5;

/// The app's and the gateway's RSA keys as PEM files, the way an operator mounts them.
pub struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    /// Writes the shared test keys (generated once per test process).
    pub fn write() -> Keys {
        Self::write_with(test_support::app_key(), test_support::gateway_key())
    }

    /// Writes `app` (the app's key) and `gateway` (the simulator's signing key).
    pub fn write_with(
        app: &gateway_client::PrivateKey,
        gateway: &gateway_client::PrivateKey,
    ) -> Keys {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = [
            ("app.key", app.to_pkcs8_pem().expose().to_owned()),
            ("app.pub", app.public_key().to_pem()),
            ("gateway.key", gateway.to_pkcs8_pem().expose().to_owned()),
            ("gateway.pub", gateway.public_key().to_pem()),
        ];
        for (name, pem) in files {
            std::fs::write(dir.path().join(name), pem).expect("write key");
        }
        Keys { dir }
    }

    /// One of `app.key`, `app.pub`, `gateway.key`, `gateway.pub`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Polls `url` until it answers 2xx, failing with the process's log if it exits first.
async fn wait_http(http: &reqwest::Client, url: &str, child: &mut Child, log: &Path) {
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{url}: process exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{url} not up after 90 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `payfac sim` as its own process.
#[allow(dead_code)] // not every test binary module uses every field
pub struct Sim {
    child: Child,
    /// `http://127.0.0.1:PORT`: `/api/entry` and `/sim/…` are below it.
    pub base: String,
    /// The app registered at start (payfac's `PAYFAC_CODEPAY_APP_ID`).
    pub app_id: String,
    /// The merchant registered at start.
    pub merchant_no: String,
    /// Its stdout and stderr.
    pub log_file: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

#[allow(dead_code)]
impl Sim {
    /// Starts `payfac sim --listen … --app-id … --app-public-key … --gateway-private-key …
    /// --merchant-no … --time-scale TIME_SCALE` and waits for its control API.
    pub async fn start(keys: &Keys) -> Sim {
        Self::start_as(keys, "wzbe7c400000000001").await
    }

    /// [`Sim::start`] with the app registered at start named `app_id`.
    pub async fn start_as(keys: &Keys, app_id: &str) -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log_file = dir.path().join("sim.log");
        let app_id = app_id.to_owned();
        let merchant_no = "100000000000777".to_owned();
        let mut child = payfac_command(super::binary::payfac_exe())
            .args(["sim", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--time-scale", &TIME_SCALE.to_string()])
            .arg("--gateway-private-key")
            .arg(keys.file("gateway.key"))
            .args(["--app-id", &app_id])
            .arg("--app-public-key")
            .arg(keys.file("app.pub"))
            .args(["--merchant-no", &merchant_no])
            .stdout(std::fs::File::create(&log_file).expect("log"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn payfac sim");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        wait_http(&http, &format!("{base}/sim/clock"), &mut child, &log_file).await;
        Sim {
            child,
            base,
            app_id,
            merchant_no,
            log_file,
            http,
            _dir: dir,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("simulator {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Arms `count` faults of `kind` on `method` (`POST /sim/faults`).
    pub async fn fault(&self, method: &str, kind: &str, count: u32, delay_ms: Option<u64>) {
        let (status, body) = self
            .post(
                "/sim/faults",
                json!({"method": method, "kind": kind, "count": count, "delay_ms": delay_ms}),
            )
            .await;
        assert_eq!(status, 200, "fault {method}/{kind}: {body}");
    }

    /// The armed faults that were not used up yet.
    pub async fn faults(&self) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!("{}/sim/faults", self.base))
            .send()
            .await
            .expect("faults")
            .json()
            .await
            .expect("json");
        v["faults"].as_array().cloned().unwrap_or_default()
    }

    /// Disarms every fault.
    pub async fn clear_faults(&self) {
        self.http
            .delete(format!("{}/sim/faults", self.base))
            .send()
            .await
            .expect("clear faults");
    }

    /// `POST /sim/clock`.
    pub async fn clock(&self, time_scale: Option<u32>, advance_seconds: Option<i64>) -> Value {
        let (status, body) = self
            .post(
                "/sim/clock",
                json!({"time_scale": time_scale, "advance_seconds": advance_seconds}),
            )
            .await;
        assert_eq!(status, 200, "clock: {body}");
        body
    }

    /// Registers (or re-keys) the app `app_id` with `public_key` (PEM): from then on the
    /// simulator accepts only that key's signatures for it.
    pub async fn register_app(&self, app_id: &str, public_key: &str) {
        let (status, body) = self
            .post(
                "/sim/apps",
                json!({"app_id": app_id, "public_key": public_key}),
            )
            .await;
        assert_eq!(status, 200, "sim app: {body}");
    }

    /// Registers the merchant `merchant_no` (the same number another simulator knows).
    pub async fn register_merchant(&self, merchant_no: &str) {
        let (status, body) = self
            .post("/sim/merchants", json!({"merchant_no": merchant_no}))
            .await;
        assert_eq!(status, 200, "sim merchant: {body}");
    }

    /// Registers the store `store_no` of `merchant_no` and its `terminals` (CodePay refuses
    /// orders naming a store or terminal it does not know).
    pub async fn register_store(&self, merchant_no: &str, store_no: &str, terminals: &[&str]) {
        let (status, body) = self
            .post(
                &format!("/sim/merchants/{merchant_no}/stores"),
                json!({"store_no": store_no}),
            )
            .await;
        assert_eq!(status, 200, "sim store: {body}");
        for sn in terminals {
            let (status, body) = self
                .post(
                    &format!("/sim/merchants/{merchant_no}/stores/{store_no}/terminals"),
                    json!({"terminal_sn": sn}),
                )
                .await;
            assert_eq!(status, 200, "sim terminal: {body}");
        }
    }

    /// The simulator's ledger entry for the order (or refund) numbered `merchant_order_no`.
    pub async fn order(&self, merchant_order_no: &str) -> Option<Value> {
        let v: Value = self
            .http
            .get(format!(
                "{}/sim/orders?merchant_order_no={merchant_order_no}",
                self.base
            ))
            .send()
            .await
            .expect("orders")
            .json()
            .await
            .expect("json");
        v["orders"].as_array().and_then(|o| o.first().cloned())
    }

    /// Every notification attempt the simulator made.
    pub async fn notifications(&self) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!("{}/sim/notifications", self.base))
            .send()
            .await
            .expect("notifications")
            .json()
            .await
            .expect("json");
        v["attempts"].as_array().cloned().unwrap_or_default()
    }

    /// Registers a fresh merchant (its own ledger slice) and returns its `merchant_no`.
    pub async fn new_merchant(&self) -> String {
        let (status, body) = self.post("/sim/merchants", json!({})).await;
        assert_eq!(status, 200, "sim merchant: {body}");
        body["merchant_no"]
            .as_str()
            .expect("merchant_no")
            .to_owned()
    }

    /// The simulator's ledger for `merchant_no` (sales and refunds).
    pub async fn orders(&self, merchant_no: &str) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!(
                "{}/sim/orders?merchant_no={merchant_no}",
                self.base
            ))
            .send()
            .await
            .expect("orders")
            .json()
            .await
            .expect("json");
        v["orders"].as_array().cloned().unwrap_or_default()
    }

    /// The wallet pays the MPM `qr_code`; returns the control API's status (200, 404, 409).
    pub async fn pay(&self, qr_code: &str) -> u16 {
        self.post("/sim/mpm/pay", json!({"qr_code": qr_code}))
            .await
            .0
    }

    /// The wallet declines the MPM `qr_code`.
    pub async fn decline(&self, qr_code: &str) -> u16 {
        self.post("/sim/mpm/decline", json!({"qr_code": qr_code}))
            .await
            .0
    }

    /// A CPM auth code for `scenario` (`approve`, `pin`, `pin_fail`, `decline`, `never_settles`).
    pub async fn auth_code(&self, scenario: &str, delay_ms: Option<u64>) -> String {
        let (status, body) = self
            .post(
                "/sim/auth-codes",
                json!({"scenario": scenario, "delay_ms": delay_ms, "pay_method_id": "Alipay"}),
            )
            .await;
        assert_eq!(status, 200, "auth code: {body}");
        body["auth_code"].as_str().expect("auth_code").to_owned()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a [`PayfacProc`] keeps its data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Db {
    /// A fresh PostgreSQL database plus Redis.
    PostgresRedis,
    /// A SQLite file in the data dir, in-process coordination.
    Sqlite,
}

/// A merchant onboarded on payfac against its own simulator merchant.
#[derive(Clone, Debug)]
pub struct Merchant {
    /// `mer_…`.
    pub id: String,
    /// Its secret key.
    pub key: String,
    /// The simulator's `merchant_no` it is onboarded with.
    pub merchant_no: String,
    /// The receiver path its webhook endpoint posts to.
    pub hook_path: String,
}

/// `payfac serve` in production mode against a [`Sim`]; can be SIGKILLed and restarted on the
/// same database, port and log file.
#[allow(dead_code)]
pub struct PayfacProc {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    port: u16,
    /// The operator key.
    pub operator_key: String,
    /// JSON logs of every incarnation, appended.
    pub log_file: PathBuf,
    /// The database URL (`postgres://…` or `sqlite://…`).
    pub database_url: String,
    /// The backend.
    pub db: Db,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    /// HTTP client (short connect timeout so a dead process is noticed at once).
    pub http: reqwest::Client,
    /// How many times it was started.
    pub starts: u32,
}

impl PayfacProc {
    /// Starts payfac against `sim` and waits for `/readyz`. `extra` env vars override the
    /// defaults of this stack.
    pub async fn start(sim: &Sim, keys: &Keys, db: Db, extra: &[(&str, &str)]) -> PayfacProc {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let operator_key = format!("op_test_{}", ulid::Ulid::new());
        let database_url = match db {
            Db::PostgresRedis => fresh_postgres_url(),
            Db::Sqlite => format!("sqlite://{}", dir.path().join("data/payfac.db").display()),
        };
        let path = |p: PathBuf| p.display().to_string();
        let mut env: Vec<(String, String)> = [
            ("PAYFAC_LOG_FORMAT", "json".to_owned()),
            ("PAYFAC_LOG_LEVEL", "info".to_owned()),
            ("PAYFAC_BOOTSTRAP_OPERATOR_KEY", operator_key.clone()),
            ("PAYFAC_MASTER_KEY", TEST_MASTER_KEY.to_owned()),
            ("PAYFAC_SANDBOX", "false".to_owned()),
            ("PAYFAC_PUBLIC_URL", base.clone()),
            ("PAYFAC_CODEPAY_BASE_URL", sim.base.clone()),
            ("PAYFAC_CODEPAY_APP_ID", sim.app_id.clone()),
            (
                "PAYFAC_CODEPAY_PRIVATE_KEY_FILE",
                path(keys.file("app.key")),
            ),
            (
                "PAYFAC_CODEPAY_GATEWAY_PUBLIC_KEY_FILE",
                path(keys.file("gateway.pub")),
            ),
            ("PAYFAC_CODEPAY_TIMEOUT_MS", CODEPAY_TIMEOUT_MS.to_string()),
            ("PAYFAC_CPM_POLL_INTERVAL_MS", "300".to_owned()),
            (
                "PAYFAC_CPM_DEADLINE_SECONDS",
                CPM_DEADLINE_SECONDS.to_string(),
            ),
            (
                "PAYFAC_MPM_EXPIRES_SECONDS",
                MPM_EXPIRES_SECONDS.to_string(),
            ),
            ("PAYFAC_RATE_LIMIT_PER_SECOND", "100000".to_owned()),
            ("PAYFAC_WEBHOOK_ALLOW_HTTP", "true".to_owned()),
            ("PAYFAC_WEBHOOK_ALLOW_PRIVATE", "true".to_owned()),
            // Deliveries cut by a kill are retried quickly.
            (
                "PAYFAC_WEBHOOK_RETRY_SCHEDULE",
                "0s,1s,1s,2s,2s,3s,5s,5s,10s".to_owned(),
            ),
            ("PAYFAC_WEBHOOK_TIMEOUT", "5s".to_owned()),
            ("PAYFAC_SHUTDOWN_GRACE_SECONDS", "5".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        match db {
            Db::PostgresRedis => {
                env.push(("PAYFAC_DATABASE_URL".into(), database_url.clone()));
                env.push(("PAYFAC_REDIS_URL".into(), redis_url()));
            }
            Db::Sqlite => {
                env.push(("PAYFAC_DATA_DIR".into(), path(dir.path().join("data"))));
            }
        }
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let mut p = PayfacProc {
            child: None,
            base,
            port,
            operator_key,
            log_file: dir.path().join("payfac.log"),
            database_url,
            db,
            env,
            dir,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .build()
                .expect("client"),
            starts: 0,
        };
        p.spawn();
        p.wait_ready().await;
        p
    }

    /// A second replica: another `payfac serve` process (its own port, public URL and log) on
    /// the same database, Redis and configuration, started and ready.
    pub async fn replica(&self) -> PayfacProc {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut env = self.env.clone();
        env.retain(|(k, _)| k != "PAYFAC_PUBLIC_URL");
        env.push(("PAYFAC_PUBLIC_URL".into(), base.clone()));
        let mut p = PayfacProc {
            child: None,
            base,
            port,
            operator_key: self.operator_key.clone(),
            log_file: dir.path().join("payfac.log"),
            database_url: self.database_url.clone(),
            db: self.db,
            env,
            dir,
            http: self.http.clone(),
            starts: 0,
        };
        p.spawn();
        p.wait_ready().await;
        p
    }

    /// Starts the process (again) on the same port, database and log file.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .expect("log file");
        let mut cmd: Command = payfac_command(super::binary::payfac_exe());
        cmd.current_dir(self.dir.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn payfac"));
        self.starts += 1;
    }

    /// Waits (≤ 90 s) for `/readyz`.
    pub async fn wait_ready(&mut self) {
        let url = format!("{}/readyz", self.base);
        let child = self.child.as_mut().expect("running");
        wait_http(&self.http, &url, child, &self.log_file).await;
    }

    /// SIGKILL: no drain, no lease hand-back.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything logged so far (every incarnation).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// A request with a bearer key and an optional `Idempotency-Key`; `Err` on a transport
    /// error (process down, connection cut), else status and JSON body.
    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .timeout(Duration::from_secs(30));
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// [`try_call`](Self::try_call) that fails the test on a transport error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.try_call(method.clone(), path, key, body, None)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Onboards a merchant on a fresh simulator merchant, with a secret key and a webhook
    /// endpoint posting to `rx` at `/m/<merchant id>`.
    pub async fn onboard(&self, sim: &Sim, rx: &super::Receiver) -> Merchant {
        let merchant_no = sim.new_merchant().await;
        let op = self.operator_key.clone();
        let post = |path: String, body: Value| {
            let op = op.clone();
            async move { self.call(Method::POST, &path, &op, Some(body)).await }
        };
        let body = json!({"name": "Faults", "default_currency": "USD",
            "max_amount": 100_000_000, "codepay": {"merchant_no": merchant_no}});
        let (id, key) = super::merchant_with_key(post, body, "faults").await;
        let hook_path = format!("/m/{id}");
        let (status, e) = self
            .call(
                Method::POST,
                "/v1/webhook-endpoints",
                &key,
                Some(json!({"url": rx.url(&hook_path, super::Behaviour::Ok)})),
            )
            .await;
        assert_eq!(status, 201, "{e}");
        Merchant {
            id,
            key,
            merchant_no,
            hook_path,
        }
    }
}

impl Drop for PayfacProc {
    fn drop(&mut self) {
        self.kill_hard();
    }
}
