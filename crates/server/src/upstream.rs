//! The CodePay upstream: the real gateway from config, or the built-in simulator (sandbox).

use crate::config::Config;
use anyhow::{Context, bail};
use codepay_sim::{SimConfig, Simulator};
use domain::Secret;
use gateway_client::signing::{PrivateKey, PublicKey};
use gateway_client::{GatewayClient, GatewayConfig, GatewayMetrics};
use std::path::Path;
use std::time::Duration;
use store::gateway_accounts::{self, NewGatewayAccount};
use store::sealing::MasterKeyring;
use store::{Database, clock};

/// Name of the gateway account row that holds the sandbox app's key.
const SANDBOX_ACCOUNT: &str = "sandbox";
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
        let (app_id, private_key) = sandbox_app(db, keyring, &sim, &sim_base).await?;
        sim.register_app(Some(&app_id), &private_key.public_key().to_pem())
            .context("cannot register payfac's app with the sandbox")?;
        let gateway_public_key = PublicKey::from_pem_or_base64(&sim.gateway_public_key_pem())
            .context("sandbox gateway key")?;
        let mut gw = GatewayConfig::new(sim_base, app_id, private_key, gateway_public_key.clone());
        gw.timeout = timeout;
        let client = GatewayClient::new(gw, metrics).context("CodePay client")?;
        return Ok(Upstream {
            client,
            gateway_public_key,
            sandbox: Some(sim),
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
    let client = GatewayClient::new(gw, metrics).context("CodePay client")?;
    Ok(Upstream {
        client,
        gateway_public_key,
        sandbox: None,
    })
}

fn inline_or_file(inline: Option<&str>, file: Option<&Path>, key: &str) -> anyhow::Result<String> {
    match (inline, file) {
        (Some(value), _) => Ok(value.to_owned()),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("{key}_file: cannot read {}", path.display())),
        (None, None) => bail!("{key} is not configured"),
    }
}

/// The sandbox app's id and private key: made once, kept sealed in `gateway_accounts`.
async fn sandbox_app(
    db: &Database,
    keyring: &MasterKeyring,
    sim: &Simulator,
    sim_base: &str,
) -> anyhow::Result<(String, PrivateKey)> {
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
        return Ok((account.app_id, key));
    }
    let key = PrivateKey::generate_2048().context("cannot generate the sandbox app key")?;
    let id = domain::GatewayAccountId::generate().into_string();
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
                request_timeout_ms: 10_000,
                enabled: true,
                created_at: now,
                updated_at: now,
            },
        )
    })
    .await?;
    tracing::info!(%app_id, "created the sandbox CodePay app");
    Ok((app_id, key))
}
