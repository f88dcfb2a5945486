//! Child processes: a clean environment and a port to listen on.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::process::Command;

/// A port that was free a moment ago on 127.0.0.1, for a child process to listen on.
///
/// In-process servers should bind `127.0.0.1:0` themselves instead (no race).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A command for the `payfac` binary at `exe` without any of this process's `PAYFAC_*`
/// variables: the test services' `PAYFAC_TEST_*` (and anything a developer exported) must not
/// configure the process under test.
pub fn payfac_command(exe: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(exe);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PAYFAC_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A tiny HTTP/1.1 GET of `path` at `addr` (`127.0.0.1:PORT`) over std, for tests of a child
/// process that need no client crate: the status and the body, or `None` when it did not answer.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    stream.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}
