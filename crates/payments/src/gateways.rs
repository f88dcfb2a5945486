//! Routing to gateway accounts: one signed CodePay client per `gateway_accounts` row, and the
//! [`Upstream`] that sends every order through the account its payment was routed to at
//! creation (`Payment::gateway_account_id`, never derived again, so a later routing change
//! does not move an existing payment).
//!
//! Clients are built from the rows (the app key opened with the master keyring under
//! `gateway_accounts:<id>:private_key`) and kept in memory: taking or settling a payment reads no
//! account row. [`Gateways::refresh`] reads every row and rebuilds the clients of the rows that
//! changed. The API calls it after its own writes ([`Upstream::accounts_changed`]), so a key
//! rotated through one process is used by that process's next payment; every process also
//! refreshes each [`REFRESH_INTERVAL`] ([`Gateways::spawn_refresher`]), so the others follow
//! within about that long. A payment routed to an account unknown to the map (created a moment
//! ago elsewhere) makes it look once more before it is refused; a notification does not (the
//! callback is public: an unknown id costs no database read).
//!
//! A disabled account takes no new payment ([`Upstream::admit`] refuses it with
//! `gateway_account_disabled`), but its client stays: its existing payments keep being queried,
//! closed and refunded through it.
//!
//! Each account's orders carry `notify_url = {public_url}/callbacks/codepay/{account id}`; the
//! notification intake ([`crate::intake`]) verifies what arrives there with that account's
//! gateway key ([`Gateways::verifiers`]).

use crate::codepay::CodePayUpstream;
use crate::error::PaymentError;
use crate::ports::{
    AccountScope, CpmOrder, Outcome, QrCreated, QrOrder, RefundOrder, Upstream, UpstreamMerchant,
    UpstreamOrder,
};
use async_trait::async_trait;
use domain::GatewayAccountId;
use gateway_client::{GatewayClient, GatewayConfig, GatewayMetrics, PrivateKey, PublicKey};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store::gateway_accounts::GatewayAccount;
use store::sealing::MasterKeyring;

/// How often every process re-reads the gateway accounts: a change made through another process
/// (a rotated key, a disabled account) is in use here within about this long.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Where the accounts' clients are built from.
pub struct AccountSource {
    /// The database holding `gateway_accounts`.
    pub db: store::Database,
    /// Opens the sealed app keys.
    pub keyring: Arc<MasterKeyring>,
    /// payfac's external base URL, without trailing `/`: each account's orders carry
    /// `notify_url = {public_url}/callbacks/codepay/{account id}`.
    pub public_url: String,
    /// Counts every account's calls, when given.
    pub metrics: Option<GatewayMetrics>,
}

/// One account's signed client and what routing and notifications need of it.
struct Gateway {
    upstream: CodePayUpstream,
    gateway_key: PublicKey,
}

/// An account as last read: whether it takes new payments, its app, and its client (or why
/// none could be built, e.g. a key sealed under a master key this process does not hold).
struct Loaded {
    /// Everything the client is built from: an equal row is not rebuilt.
    fingerprint: Fingerprint,
    enabled: bool,
    app_id: String,
    client: Result<Arc<Gateway>, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Fingerprint {
    updated_at: i64,
    base_url: String,
    app_id: String,
    ciphertext: String,
    gateway_public_key: String,
    request_timeout_ms: i64,
    enabled: bool,
}

impl Fingerprint {
    fn of(row: &GatewayAccount) -> Self {
        Self {
            updated_at: row.updated_at,
            base_url: row.base_url.clone(),
            app_id: row.app_id.clone(),
            ciphertext: row.private_key_ciphertext.expose().to_owned(),
            gateway_public_key: row.gateway_public_key.clone(),
            request_timeout_ms: row.request_timeout_ms,
            enabled: row.enabled,
        }
    }
}

/// The key a notification is verified with and the orders it may then touch.
pub struct NotificationVerifier {
    /// The account's orders.
    pub scope: AccountScope,
    /// CodePay's public key of that account.
    pub gateway_key: PublicKey,
}

/// Every gateway account's client, and the [`Upstream`] that dispatches on the payment's
/// account (module doc).
pub struct Gateways {
    source: Option<AccountSource>,
    /// The account payments whose merchant names none go through, and that carries the orders
    /// recorded before payments carried an account.
    default_account: Option<GatewayAccountId>,
    /// The one configured upstream of a deployment without a default account row (tests, tools):
    /// it carries the payments recorded without an account.
    fallback: Option<(String, Arc<Gateway>)>,
    accounts: RwLock<Arc<HashMap<GatewayAccountId, Arc<Loaded>>>>,
    /// One refresh at a time: a burst of writes rebuilds each changed client once.
    refreshing: tokio::sync::Mutex<()>,
}

impl Gateways {
    /// The accounts stored in `source.db`. Payments whose merchant names no account go through
    /// `default_account`; without one, through `fallback` (a client, its gateway key and its
    /// `notify_url`), recorded with no account. Nothing is read until [`Gateways::refresh`]
    /// (or the first payment).
    pub fn new(
        source: AccountSource,
        default_account: Option<GatewayAccountId>,
        fallback: Option<(GatewayClient, PublicKey, Option<String>)>,
    ) -> Self {
        Self {
            source: Some(source),
            // With a default account the configured upstream is that account's row.
            fallback: fallback.filter(|_| default_account.is_none()).map(
                |(client, gateway_key, notify_url)| {
                    let app_id = client.config().app_id.clone();
                    let gateway = Gateway {
                        upstream: CodePayUpstream::new(client, notify_url),
                        gateway_key,
                    };
                    (app_id, Arc::new(gateway))
                },
            ),
            default_account,
            accounts: RwLock::new(Arc::new(HashMap::new())),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The default account, if the deployment has one.
    pub fn default_account(&self) -> Option<&GatewayAccountId> {
        self.default_account.as_ref()
    }

    /// Re-reads every account and rebuilds the clients of the rows that changed (kept ones are
    /// shared, so calls in flight finish on the client they started with).
    pub async fn refresh(&self) -> Result<(), String> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let _one = self.refreshing.lock().await;
        let rows = source
            .db
            .read(store::gateway_accounts::list)
            .await
            .map_err(|e| format!("cannot read the gateway accounts: {e}"))?;
        let current = self.accounts.read().clone();
        let mut next = HashMap::with_capacity(rows.len());
        let mut changed = false;
        for row in rows {
            let Ok(id) = GatewayAccountId::parse(&row.id) else {
                tracing::warn!(id = %row.id, "gateway account with a malformed id skipped");
                continue;
            };
            let fingerprint = Fingerprint::of(&row);
            let loaded = match current.get(&id) {
                Some(l) if l.fingerprint == fingerprint => l.clone(),
                _ => {
                    changed = true;
                    let loaded = Arc::new(load(source, &row, fingerprint));
                    match &loaded.client {
                        Ok(_) => tracing::info!(
                            gateway_account_id = %id, app_id = %row.app_id, enabled = row.enabled,
                            "gateway account loaded"
                        ),
                        Err(reason) => tracing::error!(
                            gateway_account_id = %id, %reason,
                            "gateway account cannot be used"
                        ),
                    }
                    loaded
                }
            };
            next.insert(id, loaded);
        }
        if changed || next.len() != current.len() {
            *self.accounts.write() = Arc::new(next);
        }
        Ok(())
    }

    /// Refreshes every `every` until the last handle to these gateways is dropped.
    pub fn spawn_refresher(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(gateways) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = gateways.refresh().await {
                    tracing::warn!(error = %e, "gateway accounts not refreshed");
                }
            }
        })
    }

    /// The account `id` as the last refresh read it.
    fn known(&self, id: &GatewayAccountId) -> Option<Arc<Loaded>> {
        self.accounts.read().get(id).cloned()
    }

    /// The account `id` as last read; one refresh first when it is not known yet (created a
    /// moment ago through another process).
    async fn account(&self, id: &GatewayAccountId) -> Option<Arc<Loaded>> {
        if let Some(l) = self.known(id) {
            return Some(l);
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "gateway accounts not refreshed");
        }
        self.accounts.read().get(id).cloned()
    }

    /// The client an order of a payment routed to `account` goes through.
    async fn gateway(&self, account: Option<&GatewayAccountId>) -> Result<Arc<Gateway>, String> {
        let id = match (account, &self.default_account, &self.fallback) {
            (Some(id), _, _) | (None, Some(id), _) => id,
            (None, None, Some((_, fallback))) => return Ok(fallback.clone()),
            (None, None, None) => return Err("no default gateway account".to_owned()),
        };
        match self.account(id).await {
            Some(l) => l.client.clone(),
            None => Err(format!("unknown gateway account {id}")),
        }
    }

    /// The keys a notification may be verified with, and whose orders each lets it touch.
    ///
    /// Posted to `/callbacks/codepay/{account}` (`account` is that path segment): that account's
    /// key only, and a notification naming another `app_id` than the account's is refused.
    /// Posted to the account-less `/callbacks/codepay` (orders created before each account had
    /// its own URL): the accounts whose `app_id` it names, the default first; the default
    /// account when it names none.
    pub fn verifiers(
        &self,
        account: Option<&str>,
        app_id: Option<&str>,
    ) -> Result<Vec<NotificationVerifier>, String> {
        if let Some(text) = account {
            let id = GatewayAccountId::parse(text).map_err(|_| {
                let shown: String = text.chars().take(40).collect();
                format!("unknown gateway account `{shown}`")
            })?;
            // Only what the last refresh read: the route is public, and an unknown id must not
            // cost a database read (an account created a moment ago elsewhere is known here
            // within a refresh; CodePay retries a refused notification).
            let loaded = self
                .known(&id)
                .ok_or_else(|| format!("unknown gateway account {id}"))?;
            if let Some(named) = app_id
                && named != loaded.app_id
            {
                return Err(format!(
                    "the notification names app_id {named}, not gateway account {id}'s"
                ));
            }
            let gateway = loaded.client.clone()?;
            let is_default = self.default_account.as_ref() == Some(&id);
            return Ok(vec![NotificationVerifier {
                scope: AccountScope::of(id, is_default),
                gateway_key: gateway.gateway_key.clone(),
            }]);
        }
        let mut found = Vec::new();
        if let Some(default) = &self.default_account
            && let Some(loaded) = self.known(default)
            && app_id.is_none_or(|a| a == loaded.app_id)
            && let Ok(gateway) = &loaded.client
        {
            found.push(NotificationVerifier {
                scope: AccountScope::of(default.clone(), true),
                gateway_key: gateway.gateway_key.clone(),
            });
        }
        if let Some((fallback_app, gateway)) = &self.fallback
            && app_id.is_none_or(|a| a == fallback_app)
        {
            found.push(NotificationVerifier {
                scope: AccountScope::unrouted(),
                gateway_key: gateway.gateway_key.clone(),
            });
        }
        if let Some(named) = app_id {
            let accounts = self.accounts.read().clone();
            let mut others: Vec<_> = accounts
                .iter()
                .filter(|(id, l)| Some(*id) != self.default_account.as_ref() && l.app_id == named)
                .collect();
            others.sort_by(|a, b| a.0.cmp(b.0));
            for (id, loaded) in others {
                if let Ok(gateway) = &loaded.client {
                    found.push(NotificationVerifier {
                        scope: AccountScope::of(id.clone(), false),
                        gateway_key: gateway.gateway_key.clone(),
                    });
                }
            }
        }
        if found.is_empty() {
            return Err(match app_id {
                Some(a) => format!("no gateway account has app_id {a}"),
                None => "no default gateway account to verify with".to_owned(),
            });
        }
        Ok(found)
    }
}

/// Builds an account's client from its row.
fn load(source: &AccountSource, row: &GatewayAccount, fingerprint: Fingerprint) -> Loaded {
    let client = build(source, row).map(Arc::new);
    Loaded {
        fingerprint,
        enabled: row.enabled,
        app_id: row.app_id.clone(),
        client,
    }
}

fn build(source: &AccountSource, row: &GatewayAccount) -> Result<Gateway, String> {
    let binding = store::sealing::binding::gateway_private_key(&row.id);
    // Messages name what failed, never key material.
    let pem = source
        .keyring
        .open(row.private_key_ciphertext.expose(), &binding)
        .map_err(|_| "its private key does not open with the configured master keys".to_owned())?;
    let private_key = PrivateKey::from_pem_or_base64(pem.expose())
        .map_err(|e| format!("its private key is not usable: {e}"))?;
    let gateway_key = PublicKey::from_pem_or_base64(&row.gateway_public_key)
        .map_err(|e| format!("its gateway public key is not usable: {e}"))?;
    let mut config = GatewayConfig::new(
        row.base_url.clone(),
        row.app_id.clone(),
        private_key,
        gateway_key.clone(),
    );
    config.timeout =
        Duration::from_millis(u64::try_from(row.request_timeout_ms.max(1)).unwrap_or(1));
    let client = GatewayClient::new(config, source.metrics.clone())
        .map_err(|e| format!("its client cannot be built: {e}"))?
        .with_wait_hook(store::waits::upstream);
    let notify_url = format!("{}/callbacks/codepay/{}", source.public_url, row.id);
    Ok(Gateway {
        upstream: CodePayUpstream::new(client, Some(notify_url)),
        gateway_key,
    })
}

#[async_trait]
impl Upstream for Gateways {
    async fn admit(
        &self,
        routed: Option<&GatewayAccountId>,
    ) -> Result<Option<GatewayAccountId>, PaymentError> {
        let id = match (routed, &self.default_account) {
            (Some(id), _) | (None, Some(id)) => id,
            // No default account: the configured upstream, recorded as no account.
            (None, None) => return Ok(None),
        };
        let Some(loaded) = self.account(id).await else {
            return Err(PaymentError::unprocessable(
                "gateway_account_unknown",
                format!("this payment is routed to gateway account {id}, which does not exist"),
                Some("gateway_account_id"),
            ));
        };
        if !loaded.enabled {
            return Err(PaymentError::unprocessable(
                "gateway_account_disabled",
                format!(
                    "this payment is routed to gateway account {id}, which is disabled; enable it or change the merchant's routing"
                ),
                Some("gateway_account_id"),
            ));
        }
        if let Err(reason) = &loaded.client {
            return Err(PaymentError::Upstream {
                code: "gateway_account_unavailable",
                message: format!("gateway account {id} cannot be used: {reason}"),
            });
        }
        Ok(Some(id.clone()))
    }

    async fn accounts_changed(&self) {
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "gateway accounts not refreshed after a change");
        }
    }

    async fn create_qr(&self, o: &QrOrder) -> Outcome<QrCreated> {
        match self.gateway(o.merchant.gateway_account_id.as_ref()).await {
            Ok(g) => g.upstream.create_qr(o).await,
            Err(reason) => Outcome::unknown(reason),
        }
    }

    async fn submit_cpm(&self, o: &CpmOrder) -> Outcome<UpstreamOrder> {
        match self.gateway(o.merchant.gateway_account_id.as_ref()).await {
            Ok(g) => g.upstream.submit_cpm(o).await,
            Err(reason) => Outcome::unknown(reason),
        }
    }

    async fn query(&self, m: &UpstreamMerchant, no: &str) -> Outcome<UpstreamOrder> {
        match self.gateway(m.gateway_account_id.as_ref()).await {
            Ok(g) => g.upstream.query(m, no).await,
            Err(reason) => Outcome::unknown(reason),
        }
    }

    async fn revoke(&self, m: &UpstreamMerchant, no: &str) -> Outcome<()> {
        match self.gateway(m.gateway_account_id.as_ref()).await {
            Ok(g) => g.upstream.revoke(m, no).await,
            Err(reason) => Outcome::unknown(reason),
        }
    }

    async fn submit_refund(&self, o: &RefundOrder) -> Outcome<Option<String>> {
        match self.gateway(o.merchant.gateway_account_id.as_ref()).await {
            Ok(g) => g.upstream.submit_refund(o).await,
            Err(reason) => Outcome::unknown(reason),
        }
    }

    async fn query_refund(&self, m: &UpstreamMerchant, no: &str) -> Outcome<UpstreamOrder> {
        match self.gateway(m.gateway_account_id.as_ref()).await {
            Ok(g) => g.upstream.query_refund(m, no).await,
            Err(reason) => Outcome::unknown(reason),
        }
    }
}
