//! The master keyring: from config, or generated once for the embedded mode.

use crate::config::{Config, DatabaseTarget};
use anyhow::{Context, bail};
use std::path::Path;
use store::sealing::MasterKeyring;

const KEY_FILE: &str = "master.key";

/// Builds the keyring from `master_key` (+ `master_key_previous`).
///
/// Without a configured key the embedded SQLite mode keeps one in `data_dir/master.key`
/// (created 0600 at first start): the database and its key then live side by side, which is
/// fine for a sandbox and is why PostgreSQL deployments must configure the key explicitly.
pub fn master_keyring(config: &Config) -> anyhow::Result<MasterKeyring> {
    let previous: Vec<String> = config
        .master_key_previous
        .as_ref()
        .map_or("", |keys| keys.expose())
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(key) = &config.master_key {
        return MasterKeyring::new(key.expose(), &previous).context("master_key");
    }
    if let DatabaseTarget::Postgres(_) = config.database_target()? {
        bail!(
            "master_key is required with PostgreSQL (PAYFAC_MASTER_KEY: base64 of 32 random bytes, e.g. `openssl rand -base64 32`)"
        );
    }
    let key = load_or_create(&config.data_dir.join(KEY_FILE))?;
    MasterKeyring::new(&key, &previous).context("master key file")
}

fn load_or_create(path: &Path) -> anyhow::Result<String> {
    if path.is_file() {
        return std::fs::read_to_string(path)
            .map(|k| k.trim().to_owned())
            .with_context(|| format!("cannot read {}", path.display()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let key = MasterKeyring::generate_key()?;
    write_private(path, key.expose())?;
    tracing::info!(path = %path.display(), "generated a master key for the embedded mode");
    Ok(key.expose().to_owned())
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
