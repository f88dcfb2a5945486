//! The CodePay simulator, standalone (`payfac sim`) or as the embedded default's upstream.

use crate::cli::SimArgs;
use anyhow::Context;
use codepay_sim::{AppConfig, MerchantConfig, SimConfig, Simulator};
use domain::Secret;
use std::process::ExitCode;

/// `payfac sim --listen ADDR …`.
pub fn run_standalone(args: SimArgs) -> anyhow::Result<ExitCode> {
    let listen = args.listen.parse().with_context(|| {
        format!(
            "--listen `{}` is not an address such as 127.0.0.1:8090",
            args.listen
        )
    })?;
    let read = |path: &std::path::PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut config = SimConfig {
        state_file: args.state_file.clone(),
        time_scale: args.time_scale,
        ..SimConfig::default()
    };
    if let Some(path) = &args.gateway_private_key {
        config.gateway_private_key = Some(Secret::new(read(path)?));
    }
    if let (Some(app_id), Some(path)) = (&args.app_id, &args.app_public_key) {
        config.apps.push(AppConfig {
            app_id: app_id.clone(),
            public_key: read(path)?,
        });
    }
    config.merchants = args
        .merchant_nos
        .iter()
        .map(|no| MerchantConfig {
            merchant_no: no.clone(),
            store_no: None,
        })
        .collect();
    let sim = Simulator::new(config).context("cannot start the simulator")?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(codepay_sim::run_standalone(sim, listen))
        .with_context(|| format!("simulator on {listen}"))?;
    Ok(ExitCode::SUCCESS)
}
