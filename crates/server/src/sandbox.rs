//! The CodePay simulator, standalone (`payfac sim`) or as the embedded default's upstream, and
//! sandbox onboarding (a fresh simulator merchant for each merchant created without one).

use crate::cli::SimArgs;
use anyhow::Context;
use codepay_sim::{AppConfig, MerchantConfig, SimConfig, SimError, Simulator};
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
            .map_err(|e| unavailable("merchant", e))
    }

    async fn register_store(
        &self,
        merchant_no: &str,
        store_no: Option<&str>,
    ) -> tenant_api::Result<String> {
        self.0
            .register_store(merchant_no, store_no)
            .map_err(|e| refused("store", e))
    }

    async fn register_terminal(
        &self,
        merchant_no: &str,
        store_no: &str,
        terminal_sn: Option<&str>,
    ) -> tenant_api::Result<String> {
        self.0
            .register_terminal(merchant_no, store_no, terminal_sn)
            .map_err(|e| refused("terminal", e))
    }
}

/// The sandbox's refusal to register a store or terminal (`what`): 422
/// `sandbox_merchant_unknown` when it does not know the merchant (or store) the new one belongs
/// to — a merchant onboarded with a `merchant_no` of its own is not registered with the
/// sandbox, and no retry changes that — otherwise the API's 502.
fn refused(what: &str, e: SimError) -> tenant_api::Error {
    match e {
        SimError::UnknownMerchant(_) | SimError::UnknownStore { .. } => {
            tenant_api::Error::unprocessable(
                "sandbox_merchant_unknown",
                format!("the sandbox cannot register a {what}: {e}"),
                None,
            )
        }
        e => unavailable(what, e),
    }
}

/// The sandbox's failure to register a `what`, as the API's 502.
fn unavailable(what: &str, e: impl std::fmt::Display) -> tenant_api::Error {
    tenant_api::Error::Upstream {
        code: "sandbox_unavailable",
        message: format!("the sandbox could not register a {what}: {e}"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use tenant_api::SandboxRegistrar;

    fn status_and_code(e: &tenant_api::Error) -> (u16, String) {
        use actix_web::ResponseError;
        (e.status_code().as_u16(), e.body().error.code)
    }

    #[tokio::test]
    async fn a_store_of_a_merchant_the_sandbox_does_not_know_is_a_422_not_a_502() {
        let sim = Simulator::new(SimConfig::default()).expect("simulator");
        let registrar = SimulatorRegistrar(sim);
        let e = registrar
            .register_store("not-registered", None)
            .await
            .expect_err("an unknown merchant has no stores");
        assert_eq!(
            status_and_code(&e),
            (422, "sandbox_merchant_unknown".to_owned())
        );
        let merchant_no = registrar.register_merchant("shop").await.expect("merchant");
        let e = registrar
            .register_terminal(&merchant_no, "S-unknown", None)
            .await
            .expect_err("an unknown store has no terminals");
        assert_eq!(
            status_and_code(&e),
            (422, "sandbox_merchant_unknown".to_owned())
        );
        let store_no = registrar
            .register_store(&merchant_no, None)
            .await
            .expect("a registered merchant's store");
        registrar
            .register_terminal(&merchant_no, &store_no, None)
            .await
            .expect("a registered store's terminal");
    }
}
