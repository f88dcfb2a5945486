//! The serving subcommands: open the backends, start HTTP and the workers, shut down gracefully.

use crate::config::{Config, DatabaseTarget};
use crate::health::{self, Health, Probe};
use crate::instance::Heartbeat;
use crate::metrics::{self, HttpMetrics};
use crate::{bootstrap, keys, runner, telemetry, upstream, wiring};
use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context as _;
use codepay_sim::Simulator;
use domain::SecretUrl;
use payments::Engine;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use store::sealing::MasterKeyring;
use store::{Coordinator, Database, InProcessCoordinator, RedisCoordinator};
use tenant_api::AppState;
use tenant_api::routes::books::BooksApi;
use tenant_api::routes::webhooks::WebhookApi;
use tokio::task::JoinHandle;
use webhook_fanout::{DeliveryWorker, FanoutConfig};

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
    let db = db
        .with_enqueue_hook(crate::wake::enqueue_waker(coordinator.clone()))
        .with_event_hook(crate::wake::event_waker(coordinator.clone()));
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

/// Starts what `role` runs, serves until SIGTERM or SIGINT, then drains and stops.
async fn serve_async(config: Config, role: Role) -> anyhow::Result<ExitCode> {
    let ctx = Context::open(config, role).await?;
    // Beating before anything can claim an Idempotency-Key: a claim of a live process must never
    // look like a dead one's.
    let heartbeat = Heartbeat::start(ctx.backends.db.clone()).await?;
    let listen = ctx.config.listen_addr()?;
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    let metrics_listener = match ctx.config.metrics_listen_addr()? {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr} (metrics_listen)"))?,
        ),
        None => None,
    };
    let public = public_base_url(ctx.config.public_url.as_deref(), bound);
    let welcome = bootstrap::ensure_operator_keys(&ctx.config, &ctx.backends.db).await?;
    let metrics = Metrics::register()?;
    let health = ctx.readiness();
    let (sandbox, sandbox_server) = ctx.start_sandbox()?.unzip();
    let app = ctx
        .build_app(
            metrics.gateway,
            &metrics.registry,
            sandbox,
            &public,
            heartbeat.id(),
        )
        .await?;
    let delivery_worker = ctx.delivery_worker(metrics.webhooks)?;
    let grace = ctx.grace();
    let http = start_http(
        AppParts {
            health: health.clone(),
            registry: metrics.registry.clone(),
            http_metrics: metrics.http,
            webhooks: app.webhooks,
            books: app.books.clone(),
            state: app.state,
            sandbox: app.sandbox,
            runs_api: role.runs_api(),
            ops_routes: metrics_listener.is_none(),
        },
        listener,
        grace,
    )
    .with_context(|| format!("cannot listen on {listen}"))?;
    let ops = match metrics_listener {
        Some(l) => Some(start_ops_http(health.clone(), metrics.registry.clone(), l)?),
        None => None,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let gauges = tokio::spawn({
        let queue = metrics.queue.refresh_loop(
            ctx.backends.db.clone(),
            Duration::from_secs(5),
            stopped.clone(),
        );
        let breaks = wiring::break_gauge_loop(
            metrics.breaks,
            ctx.backends.db.clone(),
            Duration::from_secs(30),
            stopped.clone(),
        );
        async move {
            tokio::join!(queue, breaks);
        }
    });
    let running = Running {
        http,
        stop,
        workers: ctx.start_workers(
            &app.engine,
            &app.books,
            delivery_worker,
            stopped,
            heartbeat.id(),
        ),
        sandbox: sandbox_server,
        ops,
        gauges,
        heartbeat,
    };

    tracing::info!(listen = %bound, public_url = %public, role = ?role, sandbox = ctx.config.is_sandbox(), "payfac is serving");
    if let Some(welcome) = welcome {
        println!("{}", welcome.render(&public));
    }

    wait_for_shutdown_signal().await;
    let drain = Duration::from_millis(ctx.config.shutdown_drain_ms);
    running.shut_down(&health, drain).await;
    Ok(ExitCode::SUCCESS)
}

/// What is running once payfac serves, in the order it stops.
struct Running {
    http: ServerTask,
    stop: tokio::sync::watch::Sender<bool>,
    workers: Workers,
    sandbox: Option<ServerTask>,
    /// The separate metrics/readiness listener, stopped last so scrapes see the drain.
    ops: Option<ServerTask>,
    gauges: JoinHandle<()>,
    heartbeat: Heartbeat,
}

impl Running {
    /// Turns readiness false, keeps accepting for `drain`, then stops everything gracefully.
    async fn shut_down(self, health: &Health, drain: Duration) {
        tracing::info!("shutdown requested: draining");
        health.begin_shutdown();
        tokio::time::sleep(drain).await;
        // HTTP drains first while the runner keeps settling jobs: a POS blocked on `?wait=`
        // needs the poller to finish its payment. Then the runner drains and hands back its
        // leases.
        stop_server(self.http).await;
        let _ = self.stop.send(true);
        self.workers.join().await;
        if let Some(server) = self.sandbox {
            stop_server(server).await;
        }
        if let Some(server) = self.ops {
            stop_server(server).await;
        }
        let _ = self.gauges.await;
        // Last: nothing of this process holds a claim any more, so deleting its row lets no
        // running request's duplicate through.
        self.heartbeat.stop().await;
        tracing::info!("stopped cleanly");
    }
}

/// What start-up has opened and read so far, for the steps that follow.
struct Context {
    config: Config,
    role: Role,
    backends: Backends,
    keyring: Arc<MasterKeyring>,
    fanout: FanoutConfig,
}

/// The Prometheus registry and the metrics registered on it at start.
struct Metrics {
    registry: prometheus::Registry,
    http: HttpMetrics,
    gateway: gateway_client::GatewayMetrics,
    queue: runner::QueueGauges,
    webhooks: webhook_fanout::WebhookMetrics,
    breaks: payments::metrics::BreakGauge,
}

impl Metrics {
    fn register() -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        metrics::register_build_info(&registry)?;
        Ok(Self {
            http: HttpMetrics::register(&registry)?,
            gateway: gateway_client::GatewayMetrics::new(&registry)?,
            queue: runner::QueueGauges::register(&registry)?,
            webhooks: webhook_fanout::WebhookMetrics::register(&registry)?,
            breaks: payments::metrics::BreakGauge::register(&registry)?,
            registry,
        })
    }
}

/// The API's state and what the HTTP app mounts beside it.
struct BuiltApp {
    state: web::Data<AppState>,
    engine: Engine,
    webhooks: web::Data<WebhookApi>,
    books: web::Data<BooksApi>,
    sandbox: Option<Simulator>,
}

/// The worker role's tasks; each stops when the shutdown channel turns true.
struct Workers {
    runner: Option<JoinHandle<()>>,
    pump: Option<JoinHandle<()>>,
    retention: Option<JoinHandle<()>>,
}

impl Workers {
    /// Waits until every task has drained and handed back its leases.
    async fn join(self) {
        if let Some(task) = self.runner {
            let _ = task.await;
        }
        if let Some(task) = self.pump {
            let _ = task.await;
        }
        if let Some(task) = self.retention {
            let _ = task.await;
        }
    }
}

impl Context {
    /// Opens the backends (migrating by default only for `serve`) and reads the keyring and
    /// the webhook settings, logging the latter's warnings.
    async fn open(config: Config, role: Role) -> anyhow::Result<Self> {
        let migrate = config.auto_migrate.unwrap_or(role == Role::All);
        let backends = open_backends(&config, migrate).await?;
        let keyring = Arc::new(keys::master_keyring(&config)?);
        let fanout = wiring::fanout_config(&config)?;
        for warning in fanout.startup_warnings() {
            tracing::warn!("{warning}");
        }
        Ok(Self {
            config,
            role,
            backends,
            keyring,
            fanout,
        })
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(self.config.shutdown_grace_seconds)
    }

    /// Readiness over the database and, when configured, Redis.
    fn readiness(&self) -> Health {
        let mut probes: Vec<Box<dyn Probe>> =
            vec![Box::new(DatabaseProbe(self.backends.db.clone()))];
        if self.backends.redis {
            probes.push(Box::new(RedisProbe(self.backends.coordinator.clone())));
        }
        Health::new(probes)
    }

    /// In sandbox mode, starts the simulator on a loopback listener of its own for payfac's
    /// upstream calls, and returns it with its base URL, and its server. That server is
    /// stopped last: in-flight payments keep settling while the public listener drains.
    fn start_sandbox(&self) -> anyhow::Result<Option<((Simulator, String), ServerTask)>> {
        if !self.config.is_sandbox() {
            return Ok(None);
        }
        let sim = upstream::open_sandbox(&self.config)?;
        let (base, server) = serve_sandbox(sim.clone())?;
        Ok(Some(((sim, base), server)))
    }

    /// Sets up the upstream, wires the API state and seeds the recurring jobs.
    async fn build_app(
        &self,
        gateway_metrics: gateway_client::GatewayMetrics,
        registry: &prometheus::Registry,
        sandbox: Option<(Simulator, String)>,
        public: &str,
        instance: &str,
    ) -> anyhow::Result<BuiltApp> {
        let (config, backends, keyring) = (&self.config, &self.backends, &self.keyring);
        let upstream = upstream::setup(
            config,
            &backends.db,
            keyring,
            Some(gateway_metrics),
            sandbox,
        )
        .await?;
        let sandbox = upstream.sandbox.clone();
        let state = wiring::build(
            config,
            backends,
            keyring,
            registry,
            upstream,
            wiring::Process {
                public_url: public,
                instance,
            },
        )?;
        // The gateway accounts' clients are built before the first request (afterwards they are
        // refreshed every `payments::gateways::REFRESH_INTERVAL`).
        state.engine.gateway_accounts_changed().await;
        payments::jobs::seed_jobs(&backends.db)
            .await
            .map_err(|e| anyhow::anyhow!("cannot seed the reconciliation job: {e}"))?;
        let books = wiring::books_api(config, &backends.db)?;
        payments::jobs::seed_books_jobs(&backends.db, books.books.cutoff())
            .await
            .map_err(|e| anyhow::anyhow!("cannot seed the settlement job: {e}"))?;
        let webhooks = wiring::webhook_api(
            backends.db.clone(),
            keyring.clone(),
            &self.fanout,
            wiring::webhook_limits(config),
        );
        Ok(BuiltApp {
            engine: state.engine.clone(),
            state,
            webhooks: web::Data::new(webhooks),
            books: web::Data::new(books),
            sandbox,
        })
    }

    /// The webhook sender the delivery pump drives (built for every role, so a bad webhook
    /// setting fails at start whatever the role).
    fn delivery_worker(
        &self,
        metrics: webhook_fanout::WebhookMetrics,
    ) -> anyhow::Result<Arc<DeliveryWorker>> {
        let worker = DeliveryWorker::build(
            self.backends.db.clone(),
            self.keyring.clone(),
            Some(metrics),
            self.fanout.clone(),
        )
        .map_err(|e| anyhow::anyhow!("webhook delivery: {e}"))?;
        Ok(Arc::new(worker))
    }

    /// When the role runs workers, starts the job runner and the webhook delivery pump.
    fn start_workers(
        &self,
        engine: &Engine,
        books: &BooksApi,
        delivery_worker: Arc<DeliveryWorker>,
        stopped: tokio::sync::watch::Receiver<bool>,
        instance: &str,
    ) -> Workers {
        let (db, coordinator, grace) =
            (&self.backends.db, &self.backends.coordinator, self.grace());
        let owner = format!("{}:{instance}", hostname());
        let lease = self.fanout.job_lease().max(Duration::from_secs(60));
        let runner = self.role.runs_workers().then(|| {
            let mut runner = runner::Runner::new(
                db.clone(),
                coordinator.clone(),
                runner::RunnerConfig {
                    owner: owner.clone(),
                    lease,
                    concurrency: usize::try_from(self.config.worker_concurrency).unwrap_or(32),
                    poll_interval: Duration::from_millis(500),
                },
            );
            wiring::register_payment_jobs(&mut runner, engine);
            wiring::register_books_jobs(&mut runner, engine, books, lease);
            wiring::register_fanout_job(&mut runner, db);
            tokio::spawn(runner.run(stopped.clone(), grace))
        });
        // Webhook deliveries go through their own batched pump (own lease owner, so each hands
        // back only its own leases at shutdown).
        let pump = self.role.runs_workers().then(|| {
            let pump =
                wiring::webhook_pump(delivery_worker, &self.fanout, format!("{owner}:webhooks"));
            tokio::spawn(pump.run(Some(coordinator.clone()), stopped.clone(), grace))
        });
        // Validated at start (`Config::validate`), so this only fails on a config built in code.
        let retention = self
            .role
            .runs_workers()
            .then(|| crate::retention::Retention::from_config(&self.config))
            .transpose()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "retention disabled");
                None
            })
            .map(|r| tokio::spawn(r.run(db.clone(), stopped)));
        Workers {
            runner,
            pump,
            retention,
        }
    }
}

/// The externally reachable base URL: `public_url`, else the bound address (loopback when
/// bound to all interfaces).
fn public_base_url(public_url: Option<&str>, bound: SocketAddr) -> String {
    match public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if bound.ip().is_unspecified() => format!("http://127.0.0.1:{}", bound.port()),
        None => format!("http://{bound}"),
    }
}

/// What every HTTP worker thread builds its app from.
#[derive(Clone)]
struct AppParts {
    health: Health,
    registry: prometheus::Registry,
    http_metrics: HttpMetrics,
    webhooks: web::Data<WebhookApi>,
    books: web::Data<BooksApi>,
    state: web::Data<AppState>,
    sandbox: Option<Simulator>,
    runs_api: bool,
    /// Whether `/readyz` and `/metrics` are served here (no separate `metrics_listen`).
    ops_routes: bool,
}

/// Serves health, metrics, the sandbox gateway (in sandbox mode) and, when the role runs it,
/// the API on `listener`.
fn start_http(
    parts: AppParts,
    listener: std::net::TcpListener,
    grace: Duration,
) -> std::io::Result<ServerTask> {
    let server = HttpServer::new(move || {
        let parts = parts.clone();
        let mut app = App::new()
            .app_data(web::Data::new(parts.health))
            .app_data(web::Data::new(parts.registry))
            .app_data(web::Data::new(parts.http_metrics))
            .app_data(parts.webhooks)
            .app_data(parts.books)
            .wrap(middleware::from_fn(telemetry::request_span))
            .wrap(middleware::from_fn(metrics::record))
            .wrap(middleware::from_fn(tenant_api::request_id::middleware))
            .route("/healthz", web::get().to(health::healthz));
        if parts.ops_routes {
            app = app
                .route("/readyz", web::get().to(health::readyz))
                .route("/metrics", web::get().to(metrics::endpoint));
        }
        if let Some(sim) = parts.sandbox {
            let state = parts.state.clone();
            app = app.service(
                web::scope(crate::sandbox::SANDBOX_PREFIX)
                    .wrap(middleware::from_fn(move |req, next| {
                        crate::sandbox::guard_control(state.clone(), req, next)
                    }))
                    .configure(move |cfg| sim.configure(cfg)),
            );
        }
        let (state, runs_api) = (parts.state, parts.runs_api);
        app.configure(move |cfg| {
            if runs_api {
                tenant_api::configure(cfg, state)
            }
        })
    })
    // Signals are ours: readiness must turn false before the listener closes.
    .disable_signals()
    .shutdown_timeout(grace.as_secs())
    .listen(listener)?
    .run();
    Ok((server.handle(), tokio::spawn(server)))
}

/// Serves only `/healthz`, `/readyz` and `/metrics` on `listener` (`metrics_listen`): the
/// address the chart's probes and ServiceMonitor use and its Ingress never routes.
fn start_ops_http(
    health: Health,
    registry: prometheus::Registry,
    listener: std::net::TcpListener,
) -> std::io::Result<ServerTask> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(health.clone()))
            .app_data(web::Data::new(registry.clone()))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route("/metrics", web::get().to(metrics::endpoint))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((server.handle(), tokio::spawn(server)))
}

/// Stops a server gracefully and waits for it.
async fn stop_server((handle, task): ServerTask) {
    handle.stop(true).await;
    let _ = task.await;
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

/// `payfac admin operator-keys list|create|revoke`.
pub fn operator_keys(
    config: Config,
    cmd: crate::cli::OperatorKeysCommand,
) -> anyhow::Result<ExitCode> {
    use crate::cli::OperatorKeysCommand as C;
    if let C::Create { label } = &cmd {
        return create_operator_key(config, label);
    }
    runtime()?.block_on(async {
        let db = Database::connect(database_url(&config)?.expose(), 1).await?;
        match cmd {
            C::Create { .. } => unreachable!("handled above"),
            C::List => {
                let keys = db
                    .read(|tx| {
                        let mut all = Vec::new();
                        let mut page = store::PageRequest::first(100);
                        loop {
                            let got = store::api_keys::list(tx, None, &page)?;
                            let last = got.items.last().map(|k| k.id.clone());
                            all.extend(got.items);
                            match (got.has_more, last) {
                                (true, Some(last)) => page.starting_after = Some(last),
                                _ => break,
                            }
                        }
                        Ok(all)
                    })
                    .await?;
                println!("ID\tPREFIX\tLABEL\tCREATED\tLAST_USED\tREVOKED");
                for k in keys {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        k.id,
                        k.prefix,
                        k.label,
                        format_ms(Some(k.created_at)),
                        format_ms(k.last_used_at),
                        format_ms(k.revoked_at)
                    );
                }
            }
            C::Revoke { id } => {
                let key_id = domain::ApiKeyId::parse(&id)
                    .map_err(|_| anyhow::anyhow!("`{id}` is not a key id (key_…)"))?;
                let revoked = db
                    .write(move |tx| {
                        store::api_keys::revoke(tx, None, &key_id, store::clock::now_ms())
                    })
                    .await?;
                if !revoked {
                    anyhow::bail!("no active operator key {id}");
                }
                println!("revoked operator key {id}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Unix ms as RFC 3339, `-` for none.
fn format_ms(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
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
