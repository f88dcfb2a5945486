//! The simulator handle: shared state, registration of apps and merchants, the timer loop and
//! persistence. Operations live in `ops`/`refunds`, HTTP in `entry`/`control`.

use crate::clock::SimClock;
use crate::config::{AppConfig, MerchantConfig, SimConfig};
use crate::error::SimError;
use crate::faults::Faults;
use crate::ledger::Ledger;
use crate::notify::AttemptRecord;
use crate::stores::{StoreRecord, Stores};
use gateway_client::{PrivateKey, PublicKey};
use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Most notification attempts kept for `GET /sim/notifications`.
const ATTEMPT_LOG_LIMIT: usize = 10_000;
/// How long changes gather before the state file is rewritten.
const PERSIST_DEBOUNCE: Duration = Duration::from_millis(200);

/// A registered app.
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub key: PublicKey,
    pub pem: String,
}

/// Everything behind the lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub apps: BTreeMap<String, App>,
    pub merchants: BTreeMap<String, MerchantConfig>,
    /// Each merchant's stores and their terminals.
    pub stores: Stores,
    /// Merchants whose wallets refuse partial refunds (`E04132`). Kept apart from
    /// [`MerchantConfig`] so that code building that struct field by field keeps compiling.
    pub whole_refunds_only: BTreeSet<String>,
    pub ledger: Ledger,
    pub faults: Faults,
    pub attempts: VecDeque<AttemptRecord>,
}

impl State {
    /// Adds or updates a merchant. Its `store_no` becomes one of its stores; an absent `fee_bps`
    /// keeps the current rate of a known merchant and is `default_fee_bps` for a new one.
    fn put_merchant(
        &mut self,
        mut m: MerchantConfig,
        default_fee_bps: u32,
    ) -> Result<MerchantConfig, SimError> {
        check_identifier("merchant_no", &m.merchant_no)?;
        if let Some(s) = &m.store_no {
            check_identifier("store_no", s)?;
        }
        if let Some(bps) = m.fee_bps {
            crate::fees::check_fee_bps(bps)?;
        }
        let current = self.merchants.get(&m.merchant_no).and_then(|c| c.fee_bps);
        m.fee_bps = Some(m.fee_bps.or(current).unwrap_or(default_fee_bps));
        if let Some(s) = &m.store_no {
            self.stores.add_store(&m.merchant_no, s);
        }
        self.merchants.insert(m.merchant_no.clone(), m.clone());
        Ok(m)
    }

    pub fn log_attempt(&mut self, record: AttemptRecord) {
        if self.attempts.len() >= ATTEMPT_LOG_LIMIT {
            self.attempts.pop_front();
        }
        self.attempts.push_back(record);
    }
}

pub(crate) struct Inner {
    pub cfg: SimConfig,
    pub gateway_key: PrivateKey,
    pub clock: SimClock,
    pub state: Mutex<State>,
    pub wake: Notify,
    pub http: reqwest::Client,
    started: AtomicBool,
    seq: AtomicU64,
    persist_path: Option<PathBuf>,
    dirty: Notify,
}

/// A CodePay Gateway simulator. Cheap to clone: clones share one gateway.
#[derive(Clone)]
pub struct Simulator {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("time_scale", &self.inner.clock.scale())
            .finish_non_exhaustive()
    }
}

/// What the state file holds.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    gateway_private_key: String,
    apps: Vec<AppConfig>,
    merchants: Vec<MerchantConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stores: Vec<StoreRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    whole_refunds_only: Vec<String>,
    ledger: Ledger,
}

/// An identifier CodePay would accept for an app, merchant, store or terminal.
pub(crate) fn check_identifier(what: &str, value: &str) -> Result<(), SimError> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SimError::Invalid(format!(
            "{what} must be 1 to 32 of [A-Za-z0-9_-], got {value:?}"
        )))
    }
}

impl Simulator {
    /// Builds a simulator: loads the state file if there is one, else starts empty; registers
    /// the configured apps and merchants; generates the gateway key when none is given or saved.
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        crate::fees::check_fee_bps(cfg.default_fee_bps)?;
        let snapshot = match &cfg.state_file {
            Some(path) if path.exists() => {
                let text = std::fs::read(path).map_err(|source| SimError::StateFile {
                    path: path.display().to_string(),
                    source,
                })?;
                Some(serde_json::from_slice::<Snapshot>(&text).map_err(|source| {
                    SimError::Snapshot {
                        path: path.display().to_string(),
                        source,
                    }
                })?)
            }
            _ => None,
        };
        let gateway_key = match (&cfg.gateway_private_key, &snapshot) {
            (Some(k), _) => PrivateKey::from_pem_or_base64(k.expose())?,
            (None, Some(s)) => PrivateKey::from_pem_or_base64(&s.gateway_private_key)?,
            (None, None) => PrivateKey::generate_2048()?,
        };
        let mut state = State::default();
        let mut apps = Vec::new();
        let mut merchants = Vec::new();
        if let Some(s) = snapshot {
            apps = s.apps;
            merchants = s.merchants;
            state.stores = Stores::from_records(s.stores);
            state.whole_refunds_only = s.whole_refunds_only.into_iter().collect();
            state.ledger = s.ledger;
            state.ledger.reindex();
        }
        apps.extend(cfg.apps.iter().cloned());
        merchants.extend(cfg.merchants.iter().cloned());
        for a in apps {
            check_identifier("app_id", &a.app_id)?;
            let key = PublicKey::from_pem_or_base64(&a.public_key)?;
            state.apps.insert(
                a.app_id,
                App {
                    pem: key.to_pem(),
                    key,
                },
            );
        }
        // Saved merchants first: a configured one without a fee rate keeps its saved rate.
        for m in merchants {
            state.put_merchant(m, cfg.default_fee_bps)?;
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.notify_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SimError::Invalid(format!("http client: {e}")))?;
        let sim = Simulator {
            inner: Arc::new(Inner {
                clock: SimClock::new(cfg.time_scale),
                persist_path: cfg.state_file.clone(),
                cfg,
                gateway_key,
                state: Mutex::new(state),
                wake: Notify::new(),
                http,
                started: AtomicBool::new(false),
                seq: AtomicU64::new(rand::rng().random_range(0..10_000_000)),
                dirty: Notify::new(),
            }),
        };
        sim.save_now()?;
        Ok(sim)
    }

    /// Registers (or re-keys) an app; returns its `app_id` (generated as `wz` + 16 hex when absent).
    pub fn register_app(
        &self,
        app_id: Option<&str>,
        public_key_pem: &str,
    ) -> Result<String, SimError> {
        let key = PublicKey::from_pem_or_base64(public_key_pem)?;
        let app_id = match app_id {
            Some(id) => {
                check_identifier("app_id", id)?;
                id.to_owned()
            }
            None => format!("wz{:016x}", rand::rng().random::<u64>()),
        };
        self.inner.state.lock().apps.insert(
            app_id.clone(),
            App {
                pem: key.to_pem(),
                key,
            },
        );
        self.save_now()?;
        Ok(app_id)
    }

    /// Registers a merchant (a fresh 15-digit number when none is given) at the default fee
    /// rate; registering a known number again updates its store and keeps its rate. A given
    /// `store_no` becomes one of its stores (stores are never unregistered).
    pub fn register_merchant(
        &self,
        merchant_no: Option<&str>,
        store_no: Option<&str>,
    ) -> Result<MerchantConfig, SimError> {
        self.register_merchant_with_fee(merchant_no, store_no, None)
    }

    /// [`Simulator::register_merchant`] with a fee rate in basis points (0..=10 000; `None`:
    /// [`SimConfig::default_fee_bps`] for a new merchant, unchanged for a known one).
    pub fn register_merchant_with_fee(
        &self,
        merchant_no: Option<&str>,
        store_no: Option<&str>,
        fee_bps: Option<u32>,
    ) -> Result<MerchantConfig, SimError> {
        let merchant = {
            let mut st = self.inner.state.lock();
            let merchant_no = match merchant_no {
                Some(m) => m.to_owned(),
                None => loop {
                    let candidate = format!(
                        "8{:014}",
                        rand::rng().random_range(0..100_000_000_000_000u64)
                    );
                    if !st.merchants.contains_key(&candidate) {
                        break candidate;
                    }
                },
            };
            let m = MerchantConfig {
                merchant_no,
                store_no: store_no.map(str::to_owned),
                fee_bps,
            };
            st.put_merchant(m, self.inner.cfg.default_fee_bps)?
        };
        self.save_now()?;
        Ok(merchant)
    }

    /// Whether the merchant's refunds may be partial (the default); when not, a refund of less
    /// than the whole sale is refused with `E04132`.
    pub fn set_partial_refunds(&self, merchant_no: &str, allowed: bool) -> Result<(), SimError> {
        {
            let mut st = self.inner.state.lock();
            if !st.merchants.contains_key(merchant_no) {
                return Err(SimError::UnknownMerchant(merchant_no.to_owned()));
            }
            if allowed {
                st.whole_refunds_only.remove(merchant_no);
            } else {
                st.whole_refunds_only.insert(merchant_no.to_owned());
            }
        }
        self.save_now()
    }

    /// Whether the merchant's refunds may be partial.
    pub fn partial_refunds(&self, merchant_no: &str) -> bool {
        !self
            .inner
            .state
            .lock()
            .whole_refunds_only
            .contains(merchant_no)
    }

    /// The gateway's public key, SPKI PEM: what integrators configure to verify responses.
    pub fn gateway_public_key_pem(&self) -> String {
        self.inner.gateway_key.public_key().to_pem()
    }

    /// Registered app ids.
    pub fn app_ids(&self) -> Vec<String> {
        self.inner.state.lock().apps.keys().cloned().collect()
    }

    /// Registered merchants.
    pub fn merchants(&self) -> Vec<MerchantConfig> {
        self.inner
            .state
            .lock()
            .merchants
            .values()
            .cloned()
            .collect()
    }

    /// Compresses the gateway's delays (1 = real time).
    pub fn set_time_scale(&self, scale: u32) {
        self.inner.clock.set_scale(scale);
        self.inner.wake.notify_one();
    }

    /// Jumps the gateway clock (wall and scheduling) by `seconds`.
    pub fn advance_clock(&self, seconds: i64) {
        self.inner.clock.advance(seconds);
        self.inner.wake.notify_one();
    }

    /// Starts the timer loop and the persister on the current tokio runtime; idempotent. Handlers
    /// call it on every request, so mounting the routes is enough.
    pub fn start(&self) {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            self.inner.started.store(false, Ordering::SeqCst);
            return;
        }
        // Timers hold a weak reference so that dropping the last handle ends them.
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(crate::scheduler::run(weak.clone()));
        if self.inner.persist_path.is_some() {
            tokio::spawn(persister(weak));
        }
    }

    /// A fresh number: 14 digits of UTC time plus 8 of sequence, unique and sortable.
    pub(crate) fn next_number(&self, prefix: &str) -> String {
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed) % 100_000_000;
        let now = self.inner.clock.now_ms();
        let stamp = chrono::DateTime::from_timestamp_millis(now)
            .map(|t| t.format("%Y%m%d%H%M%S").to_string())
            .unwrap_or_default();
        format!("{prefix}{stamp}{seq:08}")
    }

    /// Marks the state changed (debounced write) and wakes the timer loop.
    pub(crate) fn changed(&self) {
        self.inner.wake.notify_one();
        if self.inner.persist_path.is_some() {
            self.inner.dirty.notify_one();
        }
    }

    /// Writes the state file now (no-op without one).
    pub(crate) fn save_now(&self) -> Result<(), SimError> {
        save(&self.inner)
    }
}

fn save(inner: &Inner) -> Result<(), SimError> {
    let Some(path) = &inner.persist_path else {
        return Ok(());
    };
    let bytes = {
        let st = inner.state.lock();
        let snapshot = Snapshot {
            gateway_private_key: inner.gateway_key.to_pkcs8_pem().expose().to_owned(),
            apps: st
                .apps
                .iter()
                .map(|(id, a)| AppConfig {
                    app_id: id.clone(),
                    public_key: a.pem.clone(),
                })
                .collect(),
            merchants: st.merchants.values().cloned().collect(),
            stores: st.stores.to_records(),
            whole_refunds_only: st.whole_refunds_only.iter().cloned().collect(),
            ledger: st.ledger.clone(),
        };
        serde_json::to_vec(&snapshot).map_err(|e| SimError::Invalid(e.to_string()))?
    };
    let io = |source| SimError::StateFile {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Write aside and rename, so a crash mid-write never leaves half a snapshot.
    let tmp = path.with_extension("tmp");
    write_private(&tmp, &bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The snapshot holds the gateway's private key: readable by the owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

async fn persister(weak: std::sync::Weak<Inner>) {
    loop {
        // Holds the simulator only while waiting a bounded time, so dropping it ends the task.
        let Some(inner) = weak.upgrade() else { return };
        let changed = tokio::time::timeout(Duration::from_secs(5), inner.dirty.notified())
            .await
            .is_ok();
        if !changed {
            continue;
        }
        tokio::time::sleep(PERSIST_DEBOUNCE).await;
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || save(&inner)).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "codepay-sim: state file not written"),
            Err(e) => tracing::warn!(error = %e, "codepay-sim: state writer failed"),
            Ok(Ok(())) => {}
        }
        // A big ledger under load must not turn into back-to-back rewrites: spend at most
        // about a fifth of the time writing.
        tokio::time::sleep(started.elapsed().saturating_mul(4)).await;
    }
}
