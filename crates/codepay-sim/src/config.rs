//! How a simulator is built: keys, registered apps and merchants, delays, persistence.

use domain::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// An integration registered with the gateway: its id and the public half of its key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppConfig {
    /// `app_id` (≤32 of `[A-Za-z0-9_-]`).
    pub app_id: String,
    /// PEM (PKCS#8 or PKCS#1) or bare base64 of the app's RSA public key.
    pub public_key: String,
}

/// The fee rate of a merchant registered without one: 60 basis points (0.60 %).
pub const DEFAULT_FEE_BPS: u32 = 60;
/// The highest fee rate accepted: 10 000 basis points, the whole amount.
pub const MAX_FEE_BPS: u32 = 10_000;

/// A merchant known to the gateway.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MerchantConfig {
    /// `merchant_no` (≤32 of `[A-Za-z0-9_-]`).
    pub merchant_no: String,
    /// Optional `store_no`; it is one of the merchant's registered stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_no: Option<String>,
    /// CodePay's fee rate on this merchant's payments, basis points (0..=[`MAX_FEE_BPS`]). `None`
    /// when registering: [`SimConfig::default_fee_bps`] for a new merchant, the current rate for
    /// a known one. Merchants the simulator returns always have it set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_bps: Option<u32>,
}

impl MerchantConfig {
    /// A merchant without store, at the default fee rate.
    pub fn new(merchant_no: impl Into<String>) -> Self {
        Self {
            merchant_no: merchant_no.into(),
            store_no: None,
            fee_bps: None,
        }
    }
}

/// Everything a [`crate::Simulator`] is built from; [`SimConfig::default`] gives a working sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// The gateway's RSA private key (PEM or base64); generated at first start when absent
    /// (and kept in the state file, if there is one).
    pub gateway_private_key: Option<Secret>,
    /// Apps registered at start.
    pub apps: Vec<AppConfig>,
    /// Merchants registered at start.
    pub merchants: Vec<MerchantConfig>,
    /// Compression of the gateway's delays (1 = real time).
    pub time_scale: u32,
    /// JSON snapshot of the whole simulator, loaded at start and rewritten after changes.
    pub state_file: Option<PathBuf>,
    /// MPM `expires` when the request has none, seconds.
    pub default_expires_secs: u64,
    /// Time from `order.refund.submit` to the refund settling, ms on the scheduling clock.
    pub refund_settle_ms: u64,
    /// PIN entry time of `pin` auth codes without `delay_ms`, ms on the scheduling clock.
    pub pin_delay_ms: u64,
    /// Prefix of MPM QR contents; the token follows after `/q/`.
    pub qr_base_url: String,
    /// Accepted distance between a request's `timestamp` and the gateway clock, seconds.
    pub timestamp_window_secs: i64,
    /// Timeout for one notification POST (CodePay gives the receiver 5 s), real ms.
    pub notify_timeout_ms: u64,
    /// Fee rate, basis points, of merchants registered without one.
    pub default_fee_bps: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            gateway_private_key: None,
            apps: Vec::new(),
            merchants: Vec::new(),
            time_scale: 1,
            state_file: None,
            default_expires_secs: 1800,
            refund_settle_ms: 5_000,
            pin_delay_ms: 5_000,
            qr_base_url: "https://qr.sandbox.codepay.local".into(),
            timestamp_window_secs: 15 * 60,
            notify_timeout_ms: 5_000,
            default_fee_bps: DEFAULT_FEE_BPS,
        }
    }
}
