//! Starts the real binary and talks to it over HTTP.

use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::{TEST_MASTER_KEY, free_port, fresh_postgres_url, payfac_command, redis_url};

/// Which backends a started payfac uses.
pub enum Backend {
    /// SQLite in the data dir, in-process coordination (the embedded default).
    Embedded,
    /// A fresh PostgreSQL database plus Redis from the test services.
    PostgresRedis,
}

/// A running `payfac serve`.
pub struct Payfac {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The operator key.
    pub operator_key: String,
    /// Where the process writes its JSON logs.
    pub log_file: PathBuf,
    _dir: tempfile::TempDir,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The database URL the process uses.
    pub database_url: String,
}

impl Payfac {
    /// Starts `payfac serve` and waits for `/readyz`.
    pub async fn start(backend: Backend, extra_env: &[(&str, &str)]) -> Payfac {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let operator_key = format!("op_test_{}", ulid::Ulid::new());
        let log_file = dir.path().join("payfac.log");
        let mut cmd = payfac_command(super::binary::payfac_exe());
        cmd.current_dir(dir.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("PAYFAC_LOG_FORMAT", "json")
            .env("PAYFAC_LOG_LEVEL", "debug")
            .env("PAYFAC_BOOTSTRAP_OPERATOR_KEY", &operator_key)
            .env("PAYFAC_SHUTDOWN_GRACE_SECONDS", "20")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_file).expect("log file"));
        let mut database_url = format!("sqlite://{}", dir.path().join("data/payfac.db").display());
        if let Backend::PostgresRedis = backend {
            // The master key is fixed so that a second process on the same database can open
            // what the first sealed.
            database_url = fresh_postgres_url();
            cmd.env("PAYFAC_DATABASE_URL", &database_url)
                .env("PAYFAC_REDIS_URL", redis_url())
                .env("PAYFAC_MASTER_KEY", TEST_MASTER_KEY);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn payfac");
        let mut payfac = Payfac {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            operator_key,
            log_file,
            _dir: dir,
            http: reqwest::Client::new(),
            database_url,
        };
        let started = Instant::now();
        loop {
            let ready = payfac
                .http
                .get(format!("{}/readyz", payfac.base))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            // A process that exited will never be ready: say so at once, with its log.
            if let Some(Ok(Some(status))) = payfac.child.as_mut().map(Child::try_wait) {
                panic!("payfac exited ({status}) before ready: {}", payfac.logs());
            }
            // Generous: the whole suite starts many processes on 2 cores at once.
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "payfac not ready after 90 s: {}",
                payfac.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        payfac
    }

    /// Everything the process logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// The data directory the process uses (`./data` under its working directory), unless the
    /// caller set `PAYFAC_DATA_DIR`.
    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// Kills the process with SIGKILL: no drain, no lease hand-back, like a node that died.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.as_ref().map(Child::id).expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// A request with a bearer key; returns status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Onboards a merchant and returns (merchant id, secret key).
    pub async fn merchant_with_key(&self) -> (String, String) {
        let op = self.operator_key.clone();
        let post = |path: String, body: Value| {
            let op = op.clone();
            async move { self.call(Method::POST, &path, &op, Some(body)).await }
        };
        let shop = json!({"name": "Shop", "default_currency": "USD"});
        super::merchant_with_key(post, shop, "e2e").await
    }

    /// A CPM auth code from the sandbox for `scenario`.
    pub async fn auth_code(&self, scenario: &str, delay_ms: Option<u64>) -> String {
        let resp: Value = self
            .http
            .post(format!("{}/sandbox/codepay/sim/auth-codes", self.base))
            .json(&json!({"scenario": scenario, "delay_ms": delay_ms}))
            .send()
            .await
            .expect("auth code")
            .json()
            .await
            .expect("json");
        resp["auth_code"].as_str().expect("auth_code").to_owned()
    }

    /// Creates an MPM payment of `amount` (minor units of USD) in `wallet`; returns the payment.
    pub async fn mpm_payment(&self, key: &str, order: &str, amount: i64, wallet: &str) -> Value {
        let (status, payment) = self
            .call(
                Method::POST,
                "/v1/payments",
                key,
                Some(json!({"mode": "mpm", "amount": amount, "currency": "USD",
                    "merchant_order_id": order, "wallet": wallet})),
            )
            .await;
        assert_eq!(status, 201, "{payment}");
        payment
    }

    /// Pays `payment`'s QR code in the sandbox, as the customer's wallet would.
    pub async fn pay_in_sandbox(&self, payment: &Value) {
        let paid = self
            .http
            .post(format!("{}/sandbox/codepay/sim/mpm/pay", self.base))
            .json(&json!({"qr_code": payment["qr_code"]}))
            .send()
            .await
            .expect("pay");
        assert!(paid.status().is_success(), "{:?}", paid.text().await);
    }

    /// An MPM payment of 12.50 USD in Alipay, paid and seen `succeeded`; returns its id.
    pub async fn paid_mpm(&self, key: &str, order: &str) -> String {
        let payment = self.mpm_payment(key, order, 1250, "alipay").await;
        let id = payment["id"].as_str().expect("id").to_owned();
        self.pay_in_sandbox(&payment).await;
        for _ in 0..100 {
            let (_, p) = self
                .call(Method::GET, &format!("/v1/payments/{id}"), key, None)
                .await;
            if p["status"] == "succeeded" {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("payment {id} never succeeded");
    }
}

impl Drop for Payfac {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
