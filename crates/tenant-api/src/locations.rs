//! A merchant's stores and their terminals as the API sees them, the storage trait behind
//! them, and the one resolver every route uses to turn a named `store_id` / `terminal_id` into
//! rows of the caller's merchant.

use crate::audit::Audit;
use crate::error::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{MerchantId, StoreId, TerminalId};

/// 409 code of a store whose `store_no` the merchant already uses.
pub const STORE_NO_TAKEN: &str = "store_no_taken";
/// 409 code of a terminal whose `terminal_sn` its store already uses.
pub const TERMINAL_SN_TAKEN: &str = "terminal_sn_taken";

/// What a terminal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminalKind {
    /// A point-of-sale device.
    Pos,
    /// A staffed counter.
    Counter,
    /// A self-service kiosk.
    Kiosk,
    /// Anything else.
    Other,
}

impl TerminalKind {
    /// Every kind, in wire order.
    pub const ALL: [TerminalKind; 4] = [Self::Pos, Self::Counter, Self::Kiosk, Self::Other];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TerminalKind::Pos => "pos",
            TerminalKind::Counter => "counter",
            TerminalKind::Kiosk => "kiosk",
            TerminalKind::Other => "other",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A store, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRecord {
    /// `store_…`.
    pub id: StoreId,
    /// Owner.
    pub merchant_id: MerchantId,
    /// Display name.
    pub name: String,
    /// CodePay `store_no` (unique per merchant), sent with every order taken here.
    pub store_no: String,
    /// Free-text address.
    pub address: Option<String>,
    /// IANA-style time zone name (informational).
    pub timezone: Option<String>,
    /// False: no new payment may name it.
    pub enabled: bool,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A terminal, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminalRecord {
    /// `term_…`.
    pub id: TerminalId,
    /// The store it stands in.
    pub store_id: StoreId,
    /// Owner (the store's merchant).
    pub merchant_id: MerchantId,
    /// Display name.
    pub name: String,
    /// CodePay `terminal_sn` (unique per store), sent with every order taken here.
    pub terminal_sn: String,
    /// What it is.
    pub kind: TerminalKind,
    /// False: no new payment may name it.
    pub enabled: bool,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Changes to a store; `None` leaves a field, `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorePatch {
    /// New name.
    pub name: Option<String>,
    /// New or cleared address.
    pub address: Option<Option<String>>,
    /// New or cleared time zone.
    pub timezone: Option<Option<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Changes to a terminal; `None` leaves a field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TerminalPatch {
    /// New name.
    pub name: Option<String>,
    /// New kind.
    pub kind: Option<TerminalKind>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// What the API needs from storage for stores and terminals; every write carries its audit
/// entry, written in the same transaction. Lookups by id answer whoever owns
/// the row: callers check the merchant, so a foreign id and a missing one answer alike.
#[async_trait]
pub trait LocationStore: Send + Sync + 'static {
    /// Inserts a store (409 [`STORE_NO_TAKEN`] when the merchant already uses its `store_no`).
    async fn insert_store(&self, s: &StoreRecord, audit: &Audit) -> Result<()>;
    /// A store by id.
    async fn store(&self, id: &StoreId) -> Result<Option<StoreRecord>>;
    /// A page of at most `limit` (≤ 100) of a merchant's stores, newest first, strictly older
    /// than `starting_after`, and whether more follow.
    async fn list_stores(
        &self,
        merchant: &MerchantId,
        starting_after: Option<&StoreId>,
        limit: usize,
    ) -> Result<(Vec<StoreRecord>, bool)>;
    /// Applies `patch`; the store as it now is (404 when gone).
    async fn update_store(
        &self,
        id: &StoreId,
        patch: &StorePatch,
        audit: &Audit,
    ) -> Result<StoreRecord>;
    /// Inserts a terminal (409 [`TERMINAL_SN_TAKEN`] when its store already uses its
    /// `terminal_sn`).
    async fn insert_terminal(&self, t: &TerminalRecord, audit: &Audit) -> Result<()>;
    /// A terminal by id.
    async fn terminal(&self, id: &TerminalId) -> Result<Option<TerminalRecord>>;
    /// A page of at most `limit` (≤ 100) of a store's terminals, newest first, strictly older
    /// than `starting_after`, and whether more follow.
    async fn list_terminals(
        &self,
        store: &StoreId,
        starting_after: Option<&TerminalId>,
        limit: usize,
    ) -> Result<(Vec<TerminalRecord>, bool)>;
    /// Applies `patch`; the terminal as it now is (404 when gone).
    async fn update_terminal(
        &self,
        id: &TerminalId,
        patch: &TerminalPatch,
        audit: &Audit,
    ) -> Result<TerminalRecord>;
}

/// The state's [`LocationStore`], or 503 when this deployment keeps no stores.
pub fn locations(state: &crate::AppState) -> Result<&dyn LocationStore> {
    state
        .accounts
        .locations()
        .ok_or_else(|| Error::Unavailable("stores and terminals are not configured".to_owned()))
}

/// The store `id` (as given) of `merchant`; a malformed, missing or foreign id is a 404.
pub async fn store_of(
    locations: &dyn LocationStore,
    merchant: &MerchantId,
    id: &str,
) -> Result<StoreRecord> {
    let missing = || Error::not_found("store", id);
    let sid = StoreId::parse(id).map_err(|_| missing())?;
    locations
        .store(&sid)
        .await?
        .filter(|s| &s.merchant_id == merchant)
        .ok_or_else(missing)
}

/// The terminal `id` (as given) of `merchant`; a malformed, missing or foreign id is a 404.
pub async fn terminal_of(
    locations: &dyn LocationStore,
    merchant: &MerchantId,
    id: &str,
) -> Result<TerminalRecord> {
    let missing = || Error::not_found("terminal", id);
    let tid = TerminalId::parse(id).map_err(|_| missing())?;
    locations
        .terminal(&tid)
        .await?
        .filter(|t| &t.merchant_id == merchant)
        .ok_or_else(missing)
}

/// What a request names, resolved against `merchant`: a store, or a terminal (which implies its
/// store), or both (which must agree: 422 `terminal_store_mismatch`). `None` when it names
/// neither; a malformed, missing or foreign id is a 404.
pub async fn resolve(
    locations: &dyn LocationStore,
    merchant: &MerchantId,
    store_id: Option<&str>,
    terminal_id: Option<&str>,
) -> Result<Option<(StoreRecord, Option<TerminalRecord>)>> {
    let terminal = match terminal_id {
        Some(t) => Some(terminal_of(locations, merchant, t).await?),
        None => None,
    };
    if let (Some(t), Some(s)) = (&terminal, store_id)
        && t.store_id.as_str() != s
    {
        return Err(Error::unprocessable(
            "terminal_store_mismatch",
            format!("terminal {} is not in store {s}", t.id),
            Some("terminal_id"),
        ));
    }
    let store_id = match &terminal {
        Some(t) => Some(t.store_id.to_string()),
        None => store_id.map(str::to_owned),
    };
    match store_id {
        Some(s) => Ok(Some((store_of(locations, merchant, &s).await?, terminal))),
        None => Ok(None),
    }
}

/// A binding for a key or token from what its request names (checked against `merchant`).
pub async fn binding_of(
    locations: &dyn LocationStore,
    merchant: &MerchantId,
    store_id: Option<&str>,
    terminal_id: Option<&str>,
) -> Result<Option<crate::auth::Binding>> {
    Ok(resolve(locations, merchant, store_id, terminal_id)
        .await?
        .map(|(s, t)| crate::auth::Binding {
            store_id: s.id,
            terminal_id: t.map(|t| t.id),
        }))
}

/// CodePay's identifier alphabet for `store_no` and `terminal_sn` (as for `merchant_no`): 1 to
/// 32 of letters, digits, `_` and `-`.
pub fn check_codepay_identifier(value: &str, param: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "parameter_invalid",
            format!("{param} must be 1 to 32 letters, digits, `_` or `-`"),
            Some(param),
        ))
    }
}

/// A time zone name of the IANA database's shape: `UTC`, or `Area/Location` (up to three
/// segments, e.g. `America/Argentina/Buenos_Aires`, `Etc/GMT+8`), ≤ 64 bytes. The name is not
/// looked up in a tz database (payfac carries none); it is informational.
pub fn is_timezone_name(tz: &str) -> bool {
    if tz == "UTC" {
        return true;
    }
    let segments: Vec<&str> = tz.split('/').collect();
    tz.len() <= 64
        && (2..=3).contains(&segments.len())
        && segments.iter().all(|s| {
            s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_shaped_names_pass_and_others_do_not() {
        for ok in [
            "UTC",
            "Asia/Hong_Kong",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+8",
            "America/Port-au-Prince",
        ] {
            assert!(is_timezone_name(ok), "{ok}");
        }
        for bad in [
            "",
            "utc",
            "Hong Kong",
            "Asia/",
            "/Asia",
            "asia/hong_kong",
            "A/B/C/D",
            "Europe/../etc",
        ] {
            assert!(!is_timezone_name(bad), "{bad}");
        }
    }

    #[test]
    fn codepay_identifiers_follow_the_merchant_no_alphabet() {
        assert!(check_codepay_identifier("S-01_a", "codepay.store_no").is_ok());
        assert!(check_codepay_identifier("", "codepay.store_no").is_err());
        assert!(check_codepay_identifier("a b", "codepay.store_no").is_err());
        assert!(check_codepay_identifier(&"x".repeat(33), "codepay.store_no").is_err());
        assert!(check_codepay_identifier(&"x".repeat(32), "codepay.store_no").is_ok());
    }
}
