//! The CodePay simulator, standalone (`payfac sim`) or as the embedded default's upstream, and
//! sandbox onboarding (a fresh simulator merchant for each merchant created without one).

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
        default_fee_bps: args.fee_bps,
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
    config.merchants = args.merchant_nos.iter().map(MerchantConfig::new).collect();
    let sim = Simulator::new(config).context("cannot start the simulator")?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(codepay_sim::run_standalone(sim, listen))
        .with_context(|| format!("simulator on {listen}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Registers sandbox merchants with the in-process simulator, so onboarding in sandbox mode
/// needs nothing from CodePay.
pub struct SimulatorRegistrar(pub Simulator);

#[async_trait::async_trait]
impl tenant_api::SandboxRegistrar for SimulatorRegistrar {
    async fn register_merchant(&self, _name: &str) -> tenant_api::Result<String> {
        self.0
            .register_merchant(None, None)
            .map(|m| m.merchant_no)
            .map_err(|e| tenant_api::Error::Upstream {
                code: "sandbox_unavailable",
                message: format!("the sandbox could not register a merchant: {e}"),
            })
    }
}

/// Guards the operator part of the sandbox control API mounted at `/sandbox/codepay` in
/// sandbox mode ([`codepay_sim::is_operator_control_path`]): without this anyone who reaches
/// payfac could add faults, move the clock or re-key payfac's own sandbox app. Wallet actions
/// stay open so a customer (or a demo) can pay a QR code without credentials. Refusals use the
/// API's error envelope (rendered by the request-id middleware) and a 401/403 status.
pub async fn guard_control(
    state: actix_web::web::Data<tenant_api::AppState>,
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let path = req
        .path()
        .strip_prefix(SANDBOX_PREFIX)
        .unwrap_or(req.path());
    if !codepay_sim::is_operator_control_path(path) {
        return next.call(req).await;
    }
    let bearer = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned);
    let allowed = match bearer {
        None => Err(tenant_api::Error::Unauthenticated {
            code: "missing_api_key",
            message: "the sandbox control API needs `Authorization: Bearer <operator key>`"
                .to_owned(),
        }),
        Some(bearer) => tenant_api::auth::authenticate(&state, &bearer)
            .await
            .and_then(|p| p.operator()),
    };
    match allowed {
        Ok(()) => next.call(req).await,
        Err(e) => Ok(req.error_response(e)),
    }
}

/// Where payfac mounts the in-process simulator in sandbox mode.
pub const SANDBOX_PREFIX: &str = "/sandbox/codepay";
