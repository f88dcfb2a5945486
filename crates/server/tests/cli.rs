//! Black-box tests of the `payfac` binary: configuration errors, the embedded default, health.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use test_support::{free_port, payfac_command};

fn payfac() -> Command {
    // A clean environment: the test harness's own PAYFAC_* variables must not leak in.
    let mut cmd = payfac_command(env!("CARGO_BIN_EXE_payfac"));
    cmd.env("PAYFAC_LOG_FORMAT", "json");
    cmd
}

fn assert_one_line_error(out: &Output, needle: &str) {
    assert!(!out.status.success(), "must fail: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one error line, got: {stderr}");
    assert!(lines[0].starts_with("payfac: error:"), "{stderr}");
    assert!(
        lines[0].contains(needle),
        "expected `{needle}` in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unknown_config_key_in_the_environment_is_one_clear_error() {
    let out = payfac()
        .args(["config", "check"])
        .env("PAYFAC_DATABSE_URL", "postgres://x/y")
        .output()
        .expect("run");
    assert_one_line_error(&out, "databse_url");
}

#[test]
fn an_unknown_key_in_the_config_file_is_one_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("payfac.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9999\"\nlisten_port = 3\n").expect("write");
    let out = payfac()
        .arg("--config")
        .arg(&file)
        .args(["config", "check"])
        .output()
        .expect("run");
    assert_one_line_error(&out, "listen_port");
}

#[test]
fn a_malformed_database_url_is_one_clear_error() {
    let out = payfac()
        .args(["config", "check"])
        .env("PAYFAC_DATABASE_URL", "mysql://db/payfac")
        .output()
        .expect("run");
    assert_one_line_error(&out, "database_url");
    let out = payfac()
        .args(["config", "check"])
        .env("PAYFAC_REDIS_URL", "http://nope")
        .output()
        .expect("run");
    assert_one_line_error(&out, "redis_url");
    let out = payfac()
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .expect("run");
    assert_one_line_error(&out, "listen");
}

#[test]
fn an_unreachable_database_is_one_clear_error_not_a_panic() {
    let port = free_port();
    let started = Instant::now();
    let out = payfac()
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .env(
            "PAYFAC_DATABASE_URL",
            format!("postgres://payfac:hunter2@127.0.0.1:{port}/payfac"),
        )
        .output()
        .expect("run");
    assert_one_line_error(&out, &format!("127.0.0.1:{port}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("hunter2"), "password leaked: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn config_check_prints_the_effective_config_with_secrets_masked() {
    let out = payfac()
        .args(["config", "check"])
        .env(
            "PAYFAC_DATABASE_URL",
            "postgres://payfac:hunter2@db.internal/payfac",
        )
        .env(
            "PAYFAC_MASTER_KEY",
            "bWFzdGVyLWtleS1tYXN0ZXIta2V5LW1hc3Rlci1rZXk=",
        )
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("database_url = \"postgres://payfac:***@db.internal/payfac\""),
        "{stdout}"
    );
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("bWFzdGVy"),
        "{stdout}"
    );
}

#[test]
fn config_check_masks_a_password_in_the_query_string() {
    let out = payfac()
        .args(["config", "check"])
        .env(
            "PAYFAC_DATABASE_URL",
            "postgres://payfac@db.internal/payfac?sslmode=require&password=hunter2",
        )
        .env("PAYFAC_REDIS_URL", "redis://:hunter3@cache.internal:6379")
        .env("PAYFAC_JWT_SIGNING_KEY", "hunter4")
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "database_url = \"postgres://payfac@db.internal/payfac?sslmode=require&password=***\""
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("redis_url = \"redis://:***@cache.internal:6379\""),
        "{stdout}"
    );
    assert!(stdout.contains("jwt_signing_key = \"***\""), "{stdout}");
    assert!(!stdout.contains("hunter"), "{stdout}");
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET url` (`http://host:port/path`) over std.
fn get(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}")))?;
    test_support::http_get(host, &path)
}

#[test]
fn the_embedded_default_starts_answers_health_and_prints_an_operator_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = payfac()
        .current_dir(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let started = Instant::now();
    let mut healthy = false;
    while started.elapsed() < Duration::from_secs(10) {
        if let Some((200, body)) = get(&format!("http://127.0.0.1:{port}/healthz")) {
            assert!(body.contains("ok"));
            healthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(healthy, "/healthz must answer within 10 s of start");
    let (status, body) = get(&format!("http://127.0.0.1:{port}/readyz")).expect("readyz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"database\":\"ok\""), "{body}");
    let (status, body) = get(&format!("http://127.0.0.1:{port}/metrics")).expect("metrics");
    assert_eq!(status, 200);
    assert!(body.contains("payfac_build_info"), "{body}");
    assert!(
        body.contains(
            "payfac_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"}"
        ),
        "{body}"
    );

    let mut printed = String::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("API reference") {
            break;
        }
    }
    assert!(
        printed.contains("export OP=op_"),
        "operator key printed: {printed}"
    );
    assert!(
        dir.path().join("data/payfac.db").is_file(),
        "SQLite file in ./data"
    );
    drop(running);
}

fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = payfac()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

#[test]
fn codepay_sign_then_verify_round_trips_and_tampering_is_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let private = dir.path().join("app.pem");
    let public = dir.path().join("app.pub");
    let ok = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&private)
        .arg("2048")
        .output()
        .expect("openssl");
    assert!(ok.status.success());
    let ok = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output()
        .expect("openssl");
    assert!(ok.status.success());

    let message = r#"{"app_id":"wz0123456789abcdef","method":"order.query","sign_type":"RSA2","merchant_order_no":"A1","note":"x & y = [z]","empty":""}"#;
    let canonical = run_with_stdin(&["codepay", "canonical"], message);
    assert_eq!(
        String::from_utf8_lossy(&canonical.stdout).trim_end(),
        "app_id=wz0123456789abcdef&merchant_order_no=A1&method=order.query&note=x & y = [z]&sign_type=RSA2"
    );
    let signed = run_with_stdin(
        &[
            "codepay",
            "sign",
            "--private-key",
            private.to_str().expect("utf8"),
        ],
        message,
    );
    assert!(signed.status.success(), "{signed:?}");
    let signed = String::from_utf8_lossy(&signed.stdout).to_string();
    let verify = run_with_stdin(
        &[
            "codepay",
            "verify",
            "--public-key",
            public.to_str().expect("utf8"),
        ],
        &signed,
    );
    assert_eq!(verify.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&verify.stdout).trim(), "valid");
    let tampered = signed.replace("\"A1\"", "\"A2\"");
    let verify = run_with_stdin(
        &[
            "codepay",
            "verify",
            "--public-key",
            public.to_str().expect("utf8"),
        ],
        &tampered,
    );
    assert_eq!(verify.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&verify.stdout).trim(), "invalid");
}

fn wait_ready(port: u16) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Some((200, _)) = get(&format!("http://127.0.0.1:{port}/readyz")) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn the_master_key_rotates_with_previous_keys_and_rewrap() {
    const OLD: &str = "b2xkLW1hc3Rlci1rZXktb2xkLW1hc3Rlci1rZXktMDE=";
    const NEW: &str = "bmV3LW1hc3Rlci1rZXktbmV3LW1hc3Rlci1rZXktMDI=";
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = |env: &[(&str, &str)]| {
        let port = free_port();
        let mut cmd = payfac();
        cmd.current_dir(dir.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        (Running(cmd.spawn().expect("spawn")), port)
    };
    // First start seals the sandbox app key under the old master key.
    let (running, port) = serve(&[("PAYFAC_MASTER_KEY", OLD)]);
    assert!(wait_ready(port));
    drop(running);

    // The new key alone cannot open it: a clear error, not a silent new identity.
    let (mut running, _) = serve(&[("PAYFAC_MASTER_KEY", NEW)]);
    let status = running.0.wait().expect("wait");
    assert!(!status.success());

    let rewrap = payfac()
        .current_dir(dir.path())
        .args(["admin", "rewrap-secrets"])
        .env("PAYFAC_MASTER_KEY", NEW)
        .env("PAYFAC_MASTER_KEY_PREVIOUS", OLD)
        .output()
        .expect("rewrap");
    assert!(rewrap.status.success(), "{rewrap:?}");
    let said = String::from_utf8_lossy(&rewrap.stdout);
    assert!(
        said.contains("re-sealed 1 secret(s)") && said.contains("0 could not"),
        "{said}"
    );

    // After the rewrap the new key alone is enough.
    let (running, port) = serve(&[("PAYFAC_MASTER_KEY", NEW)]);
    assert!(
        wait_ready(port),
        "starts with the new key only after rewrap"
    );
    drop(running);
}
