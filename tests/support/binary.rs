//! The `payfac` executable under test.
//!
//! `CARGO_BIN_EXE_payfac` exists only in the `server` package's own tests, so this package finds
//! the binary itself: next to this test executable (`target/<profile>/deps/e2e-<hash>` →
//! `target/<profile>/payfac`), where `cargo test --workspace` has just built it (the `server`
//! package has integration tests, so cargo builds its binary). When that file is missing (e.g.
//! `cargo test -p e2e` on a clean clone) or older than a source it is built from, it is built
//! once per test process with `$CARGO build -p server --bin payfac` and the path cargo reports
//! for it is used.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

/// The `payfac` executable, built first if needed; every test of the process shares one.
pub fn payfac_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let profile_dir = profile_dir();
        let beside = profile_dir.join(format!("payfac{}", std::env::consts::EXE_SUFFIX));
        if is_current(&beside) {
            beside
        } else {
            build(&profile_name(&profile_dir))
        }
    })
}

/// The repository root (this package lives in `<root>/tests`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e package lives in <root>/tests")
        .to_owned()
}

/// `target/<profile>`: cargo puts test executables in its `deps` folder.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let dir = exe.parent().expect("folder of the test executable");
    match dir.file_name() {
        Some(name) if name == "deps" => dir.parent().expect("profile folder").to_owned(),
        _ => dir.to_owned(),
    }
}

/// The cargo profile whose output folder is `profile_dir` (`dev` writes to `debug`).
fn profile_name(profile_dir: &Path) -> String {
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_owned(),
        Some("release") => "release".to_owned(),
        // A custom profile's folder carries its name; anything else is a layout we do not know.
        Some(name) if profile_dir.join("deps").is_dir() => name.to_owned(),
        _ if cfg!(debug_assertions) => "dev".to_owned(),
        _ => "release".to_owned(),
    }
}

/// Whether `exe` exists and no source of the binary changed after it was written.
///
/// A false "stale" only costs a `cargo build` that finds nothing to do; the sources are every
/// workspace crate but this harness's own (`tests/`, `crates/test-support`, `crates/*/tests`,
/// `crates/*/benches`), the migrations and the manifests.
fn is_current(exe: &Path) -> bool {
    let Ok(built) = exe.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let root = workspace_root();
    let mut newest = SystemTime::UNIX_EPOCH;
    for file in ["Cargo.toml", "Cargo.lock"] {
        newest = newest.max(modified(&root.join(file)));
    }
    newest = newest.max(newest_below(&root.join("migrations")));
    if let Ok(crates) = std::fs::read_dir(root.join("crates")) {
        for krate in crates.filter_map(Result::ok) {
            if krate.file_name() != "test-support" {
                newest = newest.max(newest_below(&krate.path()));
            }
        }
    }
    newest <= built
}

fn modified(path: &Path) -> SystemTime {
    path.metadata()
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The newest modification time below `dir`, leaving out test and bench folders.
fn newest_below(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return newest;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            let name = entry.file_name();
            if !["tests", "benches", "target"].iter().any(|n| name == *n) {
                newest = newest.max(newest_below(&path));
            }
        } else {
            newest = newest.max(modified(&path));
        }
    }
    newest
}

/// Builds `payfac` with the profile of this test executable and returns the executable cargo
/// reports. Cargo's own locking serialises this with any other build of the target folder.
fn build(profile: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    eprintln!(
        "e2e: building the payfac binary (`cargo build -p server --bin payfac --profile {profile}`)"
    );
    let out = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(["build", "--locked", "-p", "server", "--bin", "payfac"])
        .args([
            "--profile",
            profile,
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo:?} to build payfac: {e}"));
    assert!(
        out.status.success(),
        "`cargo build -p server --bin payfac` failed ({}); its errors are above",
        out.status
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "payfac")
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no payfac executable")
}
