//! The CodePay simulator (`codepay-sim`) served over real HTTP on an ephemeral port.

use actix_web::{App, HttpServer, web};
use codepay_sim::{SimConfig, Simulator};
use domain::Secret;
use gateway_client::PublicKey;
use std::net::TcpListener;

/// A simulator configuration that signs with [`gateway_key`](crate::gateway_key) and runs its
/// clocks (PIN entry, refund settlement, notification retries) `time_scale` times faster.
pub fn sim_config(time_scale: u32) -> SimConfig {
    SimConfig {
        gateway_private_key: Some(Secret::new(
            crate::gateway_key().to_pkcs8_pem().expose().to_owned(),
        )),
        time_scale,
        ..SimConfig::default()
    }
}

/// A simulator served on `127.0.0.1:<ephemeral>` under `/sandbox/codepay`, with one app (signing
/// with [`app_key`](crate::app_key)) and one merchant registered.
///
/// The server is a task of the current tokio runtime: start it inside the test's runtime; it
/// stops with the runtime.
pub struct SimServer {
    /// The simulator itself, for direct calls (registering more apps, inspecting orders).
    pub sim: Simulator,
    /// `http://127.0.0.1:PORT/sandbox/codepay`: `/api/entry` and `/sim/...` are below it.
    pub base: String,
    /// The registered app.
    pub app_id: String,
    /// The registered merchant.
    pub merchant_no: String,
}

impl SimServer {
    /// Starts a simulator from [`sim_config`]`(time_scale)`.
    pub fn start(time_scale: u32) -> Self {
        Self::start_with(sim_config(time_scale))
    }

    /// Starts a simulator from `cfg` and registers [`app_key`](crate::app_key)'s app and a
    /// merchant.
    pub fn start_with(cfg: SimConfig) -> Self {
        let sim = Simulator::new(cfg).expect("simulator");
        let app_id = sim
            .register_app(None, &crate::app_key().public_key().to_pem())
            .expect("app");
        let merchant_no = sim
            .register_merchant(None, None)
            .expect("merchant")
            .merchant_no;
        Self::serve(sim, app_id, merchant_no)
    }

    /// Serves an existing simulator, to be called as `app_id` for `merchant_no`.
    pub fn serve(sim: Simulator, app_id: String, merchant_no: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let served = sim.clone();
        let server = HttpServer::new(move || {
            let s = served.clone();
            App::new().service(web::scope("/sandbox/codepay").configure(move |c| s.configure(c)))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self {
            sim,
            base: format!("http://{addr}/sandbox/codepay"),
            app_id,
            merchant_no,
        }
    }

    /// The public half of the key the simulator signs its answers and notifications with.
    pub fn gateway_public_key(&self) -> PublicKey {
        PublicKey::from_pem_or_base64(&self.sim.gateway_public_key_pem()).expect("gateway key")
    }
}
