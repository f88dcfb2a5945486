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
