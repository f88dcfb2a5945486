//! The serving subcommands: open the backends, start HTTP and the workers, shut down gracefully.

use crate::config::{Config, DatabaseTarget};
use crate::health::{self, Health, Probe};
use crate::metrics::{self, HttpMetrics};
use crate::{bootstrap, keys, runner, telemetry, upstream, wiring};
use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context;
use domain::SecretUrl;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use store::{Coordinator, Database, InProcessCoordinator, RedisCoordinator};

/// Which parts of payfac this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// API and workers (`payfac serve`).
    All,
    /// Only the HTTP API (`payfac api`).
    Api,
    /// Only the workers, plus health and metrics (`payfac worker`).
    Worker,
}

impl Role {
    fn runs_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    fn runs_workers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

/// The opened backends every role shares.
pub struct Backends {
    /// The database pool.
    pub db: Database,
    /// Redis or in-process coordination.
    pub coordinator: Arc<dyn Coordinator>,
    /// Whether coordination goes through Redis.
    pub redis: bool,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("payfac")
        .build()
        .context("cannot start the async runtime")
}

/// The database URL the config selects (the embedded SQLite file when unset).
pub fn database_url(config: &Config) -> anyhow::Result<SecretUrl> {
    Ok(match config.database_target()? {
        DatabaseTarget::Postgres(url) => url,
        DatabaseTarget::Sqlite(path) => SecretUrl::new(format!("sqlite://{}", path.display())),
    })
}

/// Opens the database (and migrates when asked) and the coordinator.
pub async fn open_backends(config: &Config, migrate: bool) -> anyhow::Result<Backends> {
    let db = Database::connect(database_url(config)?.expose(), config.db_pool_size).await?;
    if migrate {
        let applied = db.migrate().await?;
        if !applied.is_empty() {
            tracing::info!(
                count = applied.len(),
                target = db.target(),
                "applied database migrations"
            );
        }
    }
    let (coordinator, redis): (Arc<dyn Coordinator>, bool) = match &config.redis_url {
        Some(url) => {
            let coordinator =
                RedisCoordinator::connect(url.expose(), "payfac:", Duration::from_millis(500))
                    .await
                    .with_context(|| format!("cannot reach Redis at {url}"))?;
            (Arc::new(coordinator), true)
        }
        None => (Arc::new(InProcessCoordinator::new()), false),
    };
    let db = db.with_enqueue_hook(crate::wake::enqueue_waker(coordinator.clone()));
    Ok(Backends {
        db,
        coordinator,
        redis,
    })
}

struct DatabaseProbe(Database);

#[async_trait::async_trait]
impl Probe for DatabaseProbe {
    fn name(&self) -> &'static str {
        "database"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}

struct RedisProbe(Arc<dyn Coordinator>);

#[async_trait::async_trait]
impl Probe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}

/// `payfac serve|api|worker`.
pub fn serve(config: Config, role: Role) -> anyhow::Result<ExitCode> {
    telemetry::init(&config);
    runtime()?.block_on(serve_async(config, role))
}

async fn serve_async(config: Config, role: Role) -> anyhow::Result<ExitCode> {
    let migrate = config.auto_migrate.unwrap_or(role == Role::All);
    let backends = open_backends(&config, migrate).await?;
    let keyring = Arc::new(keys::master_keyring(&config)?);
    let fanout = wiring::fanout_config(&config)?;
    for warning in fanout.startup_warnings() {
        tracing::warn!("{warning}");
    }
    let listen = config.listen_addr()?;
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    let self_base = match bound.ip().is_unspecified() {
        true => format!("http://127.0.0.1:{}", bound.port()),
        false => format!("http://{bound}"),
    };
    let public = config
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| self_base.clone());
    let welcome = bootstrap::ensure_operator_keys(&config, &backends.db).await?;

    let registry = prometheus::Registry::new();
    metrics::register_build_info(&registry)?;
    let http_metrics = HttpMetrics::register(&registry)?;
    let gateway_metrics = gateway_client::GatewayMetrics::new(&registry)?;
    let queue_gauges = runner::QueueGauges::register(&registry)?;
    let webhook_metrics = webhook_fanout::WebhookMetrics::register(&registry)?;
    let mut probes: Vec<Box<dyn Probe>> = vec![Box::new(DatabaseProbe(backends.db.clone()))];
    if backends.redis {
        probes.push(Box::new(RedisProbe(backends.coordinator.clone())));
    }
    let health = Health::new(probes);

    // The sandbox gets a loopback listener of its own for payfac's upstream calls, stopped
    // last: in-flight payments keep settling while the public listener drains.
    let (sandbox, sandbox_server) = match config.is_sandbox() {
        true => {
            let sim = upstream::open_sandbox(&config)?;
            let (base, server) = serve_sandbox(sim.clone())?;
            (Some((sim, base)), Some(server))
        }
        false => (None, None),
    };
    let upstream = upstream::setup(
        &config,
        &backends.db,
        &keyring,
        Some(gateway_metrics),
        sandbox,
    )
    .await?;
    let sandbox = upstream.sandbox.clone();
    let state = wiring::build(&config, &backends, &keyring, &registry, upstream, &public)?;
    tenant_api::adapters::wiring::seed_jobs(&backends.db)
        .await
        .map_err(|e| anyhow::anyhow!("cannot seed the reconciliation job: {e}"))?;
    let engine = state.engine.clone();
    let webhooks = web::Data::new(wiring::webhook_api(
        backends.db.clone(),
        keyring.clone(),
        &fanout,
    ));
    let lease = fanout.job_lease().max(Duration::from_secs(60));
    let delivery_worker = Arc::new(
        webhook_fanout::DeliveryWorker::build(
            backends.db.clone(),
            keyring.clone(),
            Some(webhook_metrics),
            fanout.clone(),
        )
        .map_err(|e| anyhow::anyhow!("webhook delivery: {e}"))?,
    );
    let owner = format!("{}:{}", hostname(), ulid::Ulid::new());

    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    let app_health = health.clone();
    let app_registry = registry.clone();
    let runs_api = role.runs_api();
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(web::Data::new(app_health.clone()))
            .app_data(web::Data::new(app_registry.clone()))
            .app_data(web::Data::new(http_metrics.clone()))
            .app_data(webhooks.clone())
            .wrap(middleware::from_fn(telemetry::request_span))
            .wrap(middleware::from_fn(metrics::record))
            .wrap(middleware::from_fn(tenant_api::request_id::middleware))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route("/metrics", web::get().to(metrics::endpoint));
        if let Some(sim) = sandbox.clone() {
            app = app
                .service(web::scope("/sandbox/codepay").configure(move |cfg| sim.configure(cfg)));
        }
        let state = state.clone();
        app.configure(move |cfg| {
            if runs_api {
                tenant_api::configure(cfg, state)
            }
        })
    })
    // Signals are ours: readiness must turn false before the listener closes.
    .disable_signals()
    .shutdown_timeout(grace.as_secs())
    .listen(listener)
    .with_context(|| format!("cannot listen on {listen}"))?
    .run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let gauges_task = tokio::spawn(queue_gauges.refresh_loop(
        backends.db.clone(),
        Duration::from_secs(5),
        stopped.clone(),
    ));
    let runner_task = role.runs_workers().then(|| {
        let mut runner = runner::Runner::new(
            backends.db.clone(),
            backends.coordinator.clone(),
            runner::RunnerConfig {
                owner: owner.clone(),
                lease,
                concurrency: usize::try_from(config.worker_concurrency).unwrap_or(32),
                poll_interval: Duration::from_millis(500),
            },
        );
        wiring::register_payment_jobs(&mut runner, &engine);
        tokio::spawn(runner.run(stopped.clone(), grace))
    });
    // Webhook deliveries go through their own batched pump (own lease owner, so each hands
    // back only its own leases at shutdown).
    let pump_task = role.runs_workers().then(|| {
        let pump = wiring::webhook_pump(
            delivery_worker.clone(),
            &fanout,
            format!("{owner}:webhooks"),
        );
        tokio::spawn(pump.run(Some(backends.coordinator.clone()), stopped.clone(), grace))
    });

    tracing::info!(listen = %bound, public_url = %public, role = ?role, sandbox = config.is_sandbox(), "payfac is serving");
    if let Some(welcome) = welcome {
        println!("{}", welcome.render(&public));
    }

    wait_for_shutdown_signal().await;
    tracing::info!("shutdown requested: draining");
    health.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(config.shutdown_drain_ms)).await;
    // HTTP drains first while the runner keeps settling jobs: a POS blocked on `?wait=` needs
    // the poller to finish its payment. Then the runner drains and hands back its leases.
    handle.stop(true).await;
    let _ = server_task.await;
    let _ = stop.send(true);
    if let Some(task) = runner_task {
        let _ = task.await;
    }
    if let Some(task) = pump_task {
        let _ = task.await;
    }
    if let Some((handle, task)) = sandbox_server {
        handle.stop(true).await;
        let _ = task.await;
    }
    let _ = gauges_task.await;
    tracing::info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

type ServerTask = (
    actix_web::dev::ServerHandle,
    tokio::task::JoinHandle<std::io::Result<()>>,
);

/// Serves the simulator on an ephemeral loopback port; returns its base URL.
fn serve_sandbox(sim: codepay_sim::Simulator) -> anyhow::Result<(String, ServerTask)> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind the sandbox listener")?;
    let base = format!("http://{}/sandbox/codepay", listener.local_addr()?);
    let server = HttpServer::new(move || {
        let sim = sim.clone();
        App::new().service(web::scope("/sandbox/codepay").configure(move |cfg| sim.configure(cfg)))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    Ok((base, (handle, tokio::spawn(server))))
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "payfac".to_owned())
}

/// The externally reachable base URL (`public_url`, else derived from the listen address).
pub fn public_url(config: &Config) -> String {
    if let Some(url) = &config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    match config.listen_addr() {
        Ok(addr) if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
        Ok(addr) => format!("http://{addr}"),
        Err(_) => format!("http://{}", config.listen),
    }
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `payfac migrate`.
pub fn migrate(config: Config) -> anyhow::Result<ExitCode> {
    telemetry::init(&config);
    runtime()?.block_on(async {
        let db = Database::connect(database_url(&config)?.expose(), 1).await?;
        let applied = db.migrate().await?;
        println!("{} migration(s) applied on {}", applied.len(), db.target());
        Ok(ExitCode::SUCCESS)
    })
}

/// `payfac admin create-operator-key`.
pub fn create_operator_key(config: Config, label: &str) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let db = Database::connect(database_url(&config)?.expose(), 1).await?;
        db.migrate().await?;
        let (id, secret) = bootstrap::create_operator_key(&db, label, None).await?;
        println!(
            "operator key {id} (shown once, store it now):\n{}",
            secret.expose()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// `payfac admin rewrap-secrets`.
pub fn rewrap_secrets(config: Config) -> anyhow::Result<ExitCode> {
    let keyring = keys::master_keyring(&config)?;
    runtime()?.block_on(async {
        let db = Database::connect(database_url(&config)?.expose(), 1).await?;
        let report = db
            .write(move |tx| store::rewrap::rewrap_all(tx, &keyring))
            .await?;
        println!(
            "re-sealed {} secret(s) under the current master key; {} could not be opened",
            report.resealed, report.unreadable
        );
        Ok(if report.unreadable == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
