//! The CodePay upstream: the real gateway from config, or the built-in simulator (sandbox), and
//! the gateway account that stands for it, the **default account**: payments whose merchant
//! names no account and matches no routing rule go through it, and so do the payments recorded
//! before payments carried an account. In sandbox mode it is the `sandbox` row (the embedded
//! simulator's app); otherwise the `default` row, written from the `codepay_*` settings at every
//! start (so the configuration stays the source of its credentials; a row that already matches
//! is left untouched).

use crate::config::Config;
use anyhow::{Context, bail};
use codepay_sim::{SimConfig, Simulator};
use domain::{GatewayAccountId, Secret};
use gateway_client::signing::{PrivateKey, PublicKey};
use gateway_client::{GatewayClient, GatewayConfig, GatewayMetrics};
use std::path::Path;
use std::time::Duration;
use store::gateway_accounts::{self, NewGatewayAccount};
use store::sealing::MasterKeyring;
use store::{Database, clock};

/// Name of the gateway account row that holds the sandbox app's key.
const SANDBOX_ACCOUNT: &str = "sandbox";
/// Name of the gateway account row that mirrors the `codepay_*` settings.
pub const DEFAULT_ACCOUNT: &str = "default";
/// Who the audit log names for the `default` row's writes.
const CONFIG_ACTOR: &str = "config";
/// File (in `data_dir`) where the embedded simulator keeps its keys, merchants and ledger.
const SANDBOX_STATE_FILE: &str = "codepay-sandbox.json";

/// The configured upstream.
pub struct Upstream {
    /// The signed CodePay client.
    pub client: GatewayClient,
    /// The gateway's key, which also verifies notifications.
    pub gateway_public_key: PublicKey,
    /// The in-process simulator, in sandbox mode.
    pub sandbox: Option<Simulator>,
    /// The default account's row (`sandbox` or `default`, see the module doc).
    pub default_account: GatewayAccountId,
    /// Counts every gateway account's calls.
    pub metrics: Option<GatewayMetrics>,
}

fn seal_binding(id: &str) -> String {
    store::sealing::binding::gateway_private_key(id)
}

/// The embedded simulator (sandbox mode), its state kept in `data_dir`. Its timers run on the
/// caller's runtime, so they outlive the HTTP servers that mount it.
pub fn open_sandbox(config: &Config) -> anyhow::Result<Simulator> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let sim = Simulator::new(SimConfig {
        state_file: Some(config.data_dir.join(SANDBOX_STATE_FILE)),
        ..SimConfig::default()
    })
    .context("cannot start the CodePay sandbox")?;
    sim.start();
    Ok(sim)
}

/// Builds the upstream: the real gateway from config, or `sandbox` (the simulator and the base
/// URL where it is served over real HTTP, exactly like the real gateway).
pub async fn setup(
    config: &Config,
    db: &Database,
    keyring: &MasterKeyring,
    metrics: Option<GatewayMetrics>,
    sandbox: Option<(Simulator, String)>,
) -> anyhow::Result<Upstream> {
    let timeout = Duration::from_millis(config.codepay_timeout_ms);
    if let Some((sim, sim_base)) = sandbox {
        let (default_account, app_id, private_key) =
            sandbox_app(db, keyring, &sim, &sim_base, config.codepay_timeout_ms).await?;
        sim.register_app(Some(&app_id), &private_key.public_key().to_pem())
            .context("cannot register payfac's app with the sandbox")?;
        let gateway_public_key = PublicKey::from_pem_or_base64(&sim.gateway_public_key_pem())
            .context("sandbox gateway key")?;
        let mut gw = GatewayConfig::new(sim_base, app_id, private_key, gateway_public_key.clone());
        gw.timeout = timeout;
        let client = GatewayClient::new(gw, metrics.clone())
            .context("CodePay client")?
            .with_wait_hook(store::waits::upstream);
        return Ok(Upstream {
            client,
            gateway_public_key,
            sandbox: Some(sim),
            default_account,
            metrics,
        });
    }

    let missing: Vec<&str> = [
        ("codepay_base_url", config.codepay_base_url.is_none()),
        ("codepay_app_id", config.codepay_app_id.is_none()),
        (
            "codepay_private_key(_file)",
            config.codepay_private_key.is_none() && config.codepay_private_key_file.is_none(),
        ),
        (
            "codepay_gateway_public_key(_file)",
            config.codepay_gateway_public_key.is_none()
                && config.codepay_gateway_public_key_file.is_none(),
        ),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    if !missing.is_empty() {
        bail!(
            "CodePay is not fully configured (sandbox is off): missing {}",
            missing.join(", ")
        );
    }
    let private_pem = Secret::new(inline_or_file(
        config.codepay_private_key.as_ref().map(Secret::expose),
        config.codepay_private_key_file.as_deref(),
        "codepay_private_key",
    )?);
    let public_pem = inline_or_file(
        config.codepay_gateway_public_key.as_deref(),
        config.codepay_gateway_public_key_file.as_deref(),
        "codepay_gateway_public_key",
    )?;
    let private_key =
        PrivateKey::from_pem_or_base64(private_pem.expose()).context("codepay_private_key")?;
    let gateway_public_key =
        PublicKey::from_pem_or_base64(&public_pem).context("codepay_gateway_public_key")?;
    let mut gw = GatewayConfig::new(
        config
            .codepay_base_url
            .as_ref()
            .map(|url| url.expose().to_owned())
            .unwrap_or_default(),
        config.codepay_app_id.clone().unwrap_or_default(),
        private_key,
        gateway_public_key.clone(),
    );
    gw.timeout = timeout;
    let default_account = upsert_default_account(db, keyring, &gw, config.codepay_timeout_ms)
        .await
        .context("cannot write the `default` gateway account")?;
    let client = GatewayClient::new(gw, metrics.clone())
        .context("CodePay client")?
        .with_wait_hook(store::waits::upstream);
    Ok(Upstream {
        client,
        gateway_public_key,
        sandbox: None,
        default_account,
        metrics,
    })
}

/// The `default` gateway account, written from the configured gateway `gw` when it differs
/// (or is missing); returns its id. When two processes starting at once both insert one, every
/// process settles on the oldest row of that name.
pub async fn upsert_default_account(
    db: &Database,
    keyring: &MasterKeyring,
    gw: &GatewayConfig,
    timeout_ms: u64,
) -> anyhow::Result<GatewayAccountId> {
    let timeout_ms = i64::try_from(timeout_ms)
        .unwrap_or(i64::MAX)
        .clamp(1, 120_000);
    let gateway_pem = gw.gateway_public_key.to_pem();
    let app_public = gw.private_key.public_key().to_pem();
    let rows = db.read(gateway_accounts::list).await?;
    let existing = rows.into_iter().find(|a| a.name == DEFAULT_ACCOUNT);
    if let Some(row) = &existing {
        let same_key = keyring
            .open(row.private_key_ciphertext.expose(), &seal_binding(&row.id))
            .ok()
            .and_then(|pem| PrivateKey::from_pem_or_base64(pem.expose()).ok())
            .is_some_and(|k| k.public_key().to_pem() == app_public);
        let same_gateway = PublicKey::from_pem_or_base64(&row.gateway_public_key)
            .is_ok_and(|k| k.to_pem() == gateway_pem);
        if same_key
            && same_gateway
            && row.base_url == gw.base_url
            && row.app_id == gw.app_id
            && row.request_timeout_ms == timeout_ms
        {
            return GatewayAccountId::parse(&row.id).context("default account id");
        }
    }
    let id = match &existing {
        Some(row) => row.id.clone(),
        None => GatewayAccountId::generate().into_string(),
    };
    let sealed = keyring.seal(
        gw.private_key.to_pkcs8_pem().expose().as_bytes(),
        &seal_binding(&id),
    )?;
    let (base_url, app_id) = (gw.base_url.clone(), gw.app_id.clone());
    db.write(move |tx| {
        let now = clock::now_ms();
        let mut row = NewGatewayAccount {
            id: &id,
            name: DEFAULT_ACCOUNT,
            base_url: &base_url,
            app_id: &app_id,
            private_key_ciphertext: &sealed,
            gateway_public_key: &gateway_pem,
            connect_timeout_ms: 2_000,
            request_timeout_ms: timeout_ms,
            enabled: true,
            created_at: now,
            updated_at: now,
        };
        let action = match &existing {
            Some(old) => {
                // Only the credentials and the timeout come from the configuration; an operator
                // may have disabled the account or changed its connect timeout.
                row.enabled = old.enabled;
                row.connect_timeout_ms = old.connect_timeout_ms;
                row.created_at = old.created_at;
                gateway_accounts::update(tx, &row)?;
                "gateway_account.update"
            }
            None => {
                gateway_accounts::insert(tx, &row)?;
                "gateway_account.create"
            }
        };
        store::audit::record(
            tx,
            CONFIG_ACTOR,
            action,
            ("gateway_account", &id),
            None,
            &serde_json::json!({
                "name": DEFAULT_ACCOUNT,
                "base_url": domain::SecretUrl::new(base_url.clone()).masked(),
                "app_id": app_id,
                "private_key_rotated": true,
            }),
            now,
        )?;
        Ok(())
    })
    .await?;
    let oldest = db
        .read(gateway_accounts::list)
        .await?
        .into_iter()
        .find(|a| a.name == DEFAULT_ACCOUNT)
        .context("the `default` gateway account vanished")?;
    tracing::info!(gateway_account_id = %oldest.id, app_id = %oldest.app_id, "default gateway account written from the codepay_* settings");
    GatewayAccountId::parse(&oldest.id).context("default account id")
}

fn inline_or_file(inline: Option<&str>, file: Option<&Path>, key: &str) -> anyhow::Result<String> {
    match (inline, file) {
        (Some(value), _) => Ok(value.to_owned()),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("{key}_file: cannot read {}", path.display())),
        (None, None) => bail!("{key} is not configured"),
    }
}

/// The sandbox app's gateway account, app id and private key: made once, kept sealed in
/// `gateway_accounts`. The row follows the simulator's address (a new loopback port at every
/// start), its gateway key and `codepay_timeout_ms`, since payments go through the row.
async fn sandbox_app(
    db: &Database,
    keyring: &MasterKeyring,
    sim: &Simulator,
    sim_base: &str,
    timeout_ms: u64,
) -> anyhow::Result<(GatewayAccountId, String, PrivateKey)> {
    let timeout_ms = i64::try_from(timeout_ms)
        .unwrap_or(i64::MAX)
        .clamp(1, 120_000);
    let existing = db
        .read(gateway_accounts::list)
        .await?
        .into_iter()
        .find(|a| a.name == SANDBOX_ACCOUNT);
    if let Some(account) = existing {
        let pem = keyring
            .open(
                account.private_key_ciphertext.expose(),
                &seal_binding(&account.id),
            )
            .context("cannot open the sandbox app key (was the master key changed?)")?;
        let key = PrivateKey::from_pem_or_base64(pem.expose()).context("sandbox app key")?;
        let id = GatewayAccountId::parse(&account.id).context("sandbox account id")?;
        let gateway_pem = sim.gateway_public_key_pem();
        if account.base_url != sim_base
            || account.gateway_public_key != gateway_pem
            || account.request_timeout_ms != timeout_ms
        {
            let base_url = sim_base.to_owned();
            db.write(move |tx| {
                gateway_accounts::update(
                    tx,
                    &NewGatewayAccount {
                        id: &account.id,
                        name: &account.name,
                        base_url: &base_url,
                        app_id: &account.app_id,
                        private_key_ciphertext: account.private_key_ciphertext.expose(),
                        gateway_public_key: &gateway_pem,
                        connect_timeout_ms: account.connect_timeout_ms,
                        request_timeout_ms: timeout_ms,
                        enabled: account.enabled,
                        created_at: account.created_at,
                        updated_at: clock::now_ms(),
                    },
                )
                .map(|_| account.app_id)
            })
            .await
            .map(|app_id| (id, app_id, key))
            .map_err(Into::into)
        } else {
            Ok((id, account.app_id, key))
        }
    } else {
        new_sandbox_app(db, keyring, sim, sim_base, timeout_ms).await
    }
}

/// Makes the sandbox app: a fresh key, registered with the simulator, sealed in a new row.
async fn new_sandbox_app(
    db: &Database,
    keyring: &MasterKeyring,
    sim: &Simulator,
    sim_base: &str,
    timeout_ms: i64,
) -> anyhow::Result<(GatewayAccountId, String, PrivateKey)> {
    let key = PrivateKey::generate_2048().context("cannot generate the sandbox app key")?;
    let account = GatewayAccountId::generate();
    let id = account.to_string();
    let app_id = sim.register_app(None, &key.public_key().to_pem())?;
    let sealed = keyring.seal(key.to_pkcs8_pem().expose().as_bytes(), &seal_binding(&id))?;
    let gateway_pem = sim.gateway_public_key_pem();
    let base_url = sim_base.to_owned();
    let row_app_id = app_id.clone();
    db.write(move |tx| {
        let now = clock::now_ms();
        gateway_accounts::insert(
            tx,
            &NewGatewayAccount {
                id: &id,
                name: SANDBOX_ACCOUNT,
                base_url: &base_url,
                app_id: &row_app_id,
                private_key_ciphertext: &sealed,
                gateway_public_key: &gateway_pem,
                connect_timeout_ms: 2_000,
                request_timeout_ms: timeout_ms,
                enabled: true,
                created_at: now,
                updated_at: now,
            },
        )
    })
    .await?;
    tracing::info!(%app_id, "created the sandbox CodePay app");
    Ok((account, app_id, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(key: &PrivateKey) -> GatewayConfig {
        GatewayConfig::new(
            "https://codepay.example",
            "wz_app",
            key.clone(),
            test_support::gateway_key().public_key(),
        )
    }

    async fn row(db: &Database, id: &GatewayAccountId) -> gateway_accounts::GatewayAccount {
        let id = id.clone();
        db.read(move |c| gateway_accounts::get(c, &id))
            .await
            .expect("row")
    }

    #[tokio::test]
    async fn the_default_account_mirrors_the_codepay_settings() {
        let (db, _dir) = test_support::fresh_sqlite().await;
        let keyring = test_support::keyring();
        let first =
            upsert_default_account(&db, &keyring, &configured(test_support::app_key()), 1500)
                .await
                .expect("created");
        let created = row(&db, &first).await;
        assert_eq!(
            (created.name.as_str(), created.app_id.as_str()),
            (DEFAULT_ACCOUNT, "wz_app")
        );
        assert_eq!(created.request_timeout_ms, 1500);
        assert!(created.enabled);

        // Unchanged settings: the same row, not rewritten.
        let again =
            upsert_default_account(&db, &keyring, &configured(test_support::app_key()), 1500)
                .await
                .expect("kept");
        assert_eq!(again, first);
        assert_eq!(row(&db, &first).await.updated_at, created.updated_at);

        // A new key in the configuration re-seals it in the same row; the operator's switch stays.
        let old = created.clone();
        db.write(move |c| {
            gateway_accounts::update(
                c,
                &NewGatewayAccount {
                    id: &old.id,
                    name: &old.name,
                    base_url: &old.base_url,
                    app_id: &old.app_id,
                    private_key_ciphertext: old.private_key_ciphertext.expose(),
                    gateway_public_key: &old.gateway_public_key,
                    connect_timeout_ms: old.connect_timeout_ms,
                    request_timeout_ms: old.request_timeout_ms,
                    enabled: false,
                    created_at: old.created_at,
                    updated_at: old.updated_at,
                },
            )
        })
        .await
        .expect("disable");
        let rotated =
            upsert_default_account(&db, &keyring, &configured(test_support::other_key()), 1500)
                .await
                .expect("rotated");
        assert_eq!(rotated, first);
        let after = row(&db, &first).await;
        assert!(!after.enabled, "the operator's switch is kept");
        let pem = keyring
            .open(
                after.private_key_ciphertext.expose(),
                &seal_binding(&after.id),
            )
            .expect("opens");
        let key = PrivateKey::from_pem_or_base64(pem.expose()).expect("key");
        assert_eq!(
            key.public_key().to_pem(),
            test_support::other_key().public_key().to_pem()
        );
        let rows = db.read(gateway_accounts::list).await.expect("list");
        assert_eq!(rows.len(), 1);
    }
}
