//! A CodePay Gateway simulator: the server side of the contract in `docs/codepay.md`, strict
//! where CodePay is (signatures, ±15 min timestamps, known apps and merchants, order numbers,
//! amounts, refund totals), with signed notifications on CodePay's retry schedule, a control API
//! under `/sim/` that plays the customer and injects faults, and a clock tests can compress.
//!
//! Mount it anywhere with [`Simulator::configure`] (payfac's embedded sandbox uses
//! `web::scope("/sandbox/codepay")`), or run it alone with [`run_standalone`].

mod actions;
mod clock;
pub mod codes;
mod config;
mod control;
mod entry;
mod error;
mod faults;
mod fees;
mod fields;
mod ledger;
mod notify;
mod ops;
mod refunds;
mod scheduler;
mod sim;
mod stores;

pub use actions::WalletAction;
pub use clock::MAX_TIME_SCALE;
pub use config::{AppConfig, DEFAULT_FEE_BPS, MAX_FEE_BPS, MerchantConfig, SimConfig};
pub use error::SimError;
pub use faults::{Fault, FaultKind, NOTIFY_METHOD, REFUND_METHOD};
pub use ledger::AuthScenario;
pub use notify::{AttemptRecord, RETRY_SCHEDULE_SECS};
pub use ops::METHODS;
pub use refunds::REFUND_FAILED;
pub use sim::Simulator;

use actix_web::{App, HttpServer, web};
use std::net::SocketAddr;

impl Simulator {
    /// Registers `/api/entry`, `/api/entry/{anything}` and the `/sim/…` control API relative to
    /// wherever the caller mounts them. The routes carry no authentication: a caller that
    /// exposes them (payfac's sandbox mode) guards the operator ones with
    /// [`is_operator_control_path`].
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        // App factories run inside each worker's runtime: timers restored from a state file
        // resume without waiting for the first request.
        self.start();
        let mpm =
            |action: WalletAction| web::post().to(move |sim, body| control::mpm(sim, action, body));
        // Control API callers get `{"error": …}` and a 400 for a malformed body, like every
        // other refusal. The error keeps its 400 status (not `InternalError::from_response`,
        // whose status reads as 500): mounted inside payfac, the error envelope middleware
        // re-renders errors by their status, and a bad body must stay a client error there.
        let json_errors = web::JsonConfig::default()
            .error_handler(|err, _req| control::BadBody(err.to_string()).into());
        cfg.app_data(web::Data::new(self.clone()))
            .app_data(json_errors)
            .route("/api/entry", web::post().to(entry::entry))
            .route("/api/entry/{anything:.*}", web::post().to(entry::entry))
            .route("/sim/apps", web::post().to(control::register_app))
            .route("/sim/apps", web::get().to(control::list_apps))
            .route("/sim/merchants", web::post().to(control::register_merchant))
            .route("/sim/merchants", web::get().to(control::list_merchants))
            .route(
                "/sim/merchants/{merchant_no}",
                web::patch().to(control::change_merchant),
            )
            .route(
                "/sim/merchants/{merchant_no}/stores",
                web::post().to(control::register_store),
            )
            .route(
                "/sim/merchants/{merchant_no}/stores/{store_no}/terminals",
                web::post().to(control::register_terminal),
            )
            .route("/sim/gateway-key", web::get().to(control::gateway_key))
            .route("/sim/mpm/scan", mpm(WalletAction::Scan))
            .route("/sim/mpm/pay", mpm(WalletAction::Pay))
            .route("/sim/mpm/decline", mpm(WalletAction::Decline))
            .route("/sim/auth-codes", web::post().to(control::new_auth_code))
            .route("/sim/faults", web::post().to(control::add_fault))
            .route("/sim/faults", web::get().to(control::list_faults))
            .route("/sim/faults", web::delete().to(control::clear_faults))
            .route("/sim/orders", web::get().to(control::orders))
            .route("/sim/notifications", web::get().to(control::notifications))
            .route("/sim/clock", web::post().to(control::set_clock))
            .route("/sim/clock", web::get().to(control::get_clock));
    }

    /// What an integrator needs to talk to this gateway, for printing at start.
    pub fn summary(&self, base_url: &str) -> String {
        let mut out = format!("CodePay simulator at {base_url}/api/entry\n");
        let apps = self.app_ids();
        if apps.is_empty() {
            out.push_str(&format!(
                "app_id: none yet: POST {base_url}/sim/apps {{\"public_key\": \"<your app's PEM>\"}}\n"
            ));
        }
        for a in apps {
            out.push_str(&format!("app_id: {a}\n"));
        }
        for m in self.merchants() {
            let fee = m.fee_bps.unwrap_or(self.inner.cfg.default_fee_bps);
            match m.store_no {
                Some(s) => out.push_str(&format!(
                    "merchant_no: {} (store_no {s}, fee {fee} bps)\n",
                    m.merchant_no
                )),
                None => out.push_str(&format!("merchant_no: {} (fee {fee} bps)\n", m.merchant_no)),
            }
        }
        out.push_str("gateway public key:\n");
        out.push_str(&self.gateway_public_key_pem());
        out
    }
}

/// True for the control routes that change or reveal the simulator's setup rather than act as a
/// customer's wallet: apps (their keys), merchants (with their fee rates, stores and terminals),
/// faults, the clock, the order ledger and the notification log. `path` is relative to where [`Simulator::configure`] was mounted. Wallet
/// actions (`/sim/mpm/…`, `/sim/auth-codes`), the gateway's public key and `/api/entry` (which
/// checks signatures itself) are not.
pub fn is_operator_control_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/sim/") else {
        return false;
    };
    let first = rest.split('/').next().unwrap_or_default();
    !matches!(first, "mpm" | "auth-codes" | "gateway-key")
}

/// Runs the simulator as its own HTTP server (`payfac sim --listen ADDR`): registers a merchant
/// when none is configured, prints the summary, serves until stopped.
pub async fn run_standalone(sim: Simulator, listen: SocketAddr) -> std::io::Result<()> {
    standalone_server(sim, listen)?.await
}

/// Everything but the serving, kept synchronous so that `run_standalone`'s future is `Send`.
fn standalone_server(
    sim: Simulator,
    listen: SocketAddr,
) -> std::io::Result<actix_web::dev::Server> {
    if sim.merchants().is_empty() {
        sim.register_merchant(None, None)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    let served = sim.clone();
    let server =
        HttpServer::new(move || App::new().configure(|cfg| served.configure(cfg))).bind(listen)?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    println!("{}", sim.summary(&format!("http://{addr}")));
    Ok(server.run())
}

#[cfg(test)]
mod tests {
    use super::is_operator_control_path;

    #[test]
    fn setup_routes_are_operator_only_and_wallet_routes_are_open() {
        for path in [
            "/sim/apps",
            "/sim/merchants",
            "/sim/merchants/800000000000001",
            "/sim/merchants/800000000000001/stores",
            "/sim/merchants/800000000000001/stores/S1/terminals",
            "/sim/faults",
            "/sim/orders",
            "/sim/notifications",
            "/sim/clock",
        ] {
            assert!(is_operator_control_path(path), "{path}");
        }
        for path in [
            "/sim/mpm/pay",
            "/sim/auth-codes",
            "/sim/gateway-key",
            "/api/entry",
        ] {
            assert!(!is_operator_control_path(path), "{path}");
        }
    }
}
