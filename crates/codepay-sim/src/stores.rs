//! Each merchant's stores (`store_no`) and each store's terminals (`terminal_sn`), as CodePay
//! keeps them: a request naming a store or terminal the merchant does not have is refused before
//! the operation runs.

use crate::codes::{ErrorKind, GatewayError};
use crate::error::SimError;
use crate::sim::{Simulator, check_identifier};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Stores by merchant, terminals by store.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stores(BTreeMap<String, BTreeMap<String, BTreeSet<String>>>);

/// One store as the state file keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoreRecord {
    merchant_no: String,
    store_no: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    terminal_sns: Vec<String>,
}

impl Stores {
    /// Adds a store (no-op when the merchant has it).
    pub fn add_store(&mut self, merchant_no: &str, store_no: &str) {
        self.0
            .entry(merchant_no.to_owned())
            .or_default()
            .entry(store_no.to_owned())
            .or_default();
    }

    /// The terminals of a store the merchant has.
    fn terminals(&self, merchant_no: &str, store_no: &str) -> Option<&BTreeSet<String>> {
        self.0.get(merchant_no)?.get(store_no)
    }

    /// Whether the merchant has the store.
    pub fn has_store(&self, merchant_no: &str, store_no: &str) -> bool {
        self.terminals(merchant_no, store_no).is_some()
    }

    /// The `store_no` / `terminal_sn` of a request for `merchant_no`, or why the gateway refuses
    /// them: a store the merchant does not have, a terminal that store does not have, or a
    /// terminal without a store.
    pub fn check(
        &self,
        merchant_no: &str,
        store_no: Option<&str>,
        terminal_sn: Option<&str>,
    ) -> Result<(), GatewayError> {
        let unknown = ErrorKind::UnknownStoreOrTerminal;
        let Some(store_no) = store_no else {
            return match terminal_sn {
                Some(t) => Err(unknown.with(format!("terminal_sn {t} sent without store_no"))),
                None => Ok(()),
            };
        };
        let terminals = self
            .terminals(merchant_no, store_no)
            .ok_or_else(|| unknown.with(format!("store_no {store_no}")))?;
        match terminal_sn {
            Some(t) if !terminals.contains(t) => {
                Err(unknown.with(format!("terminal_sn {t} in store_no {store_no}")))
            }
            _ => Ok(()),
        }
    }

    /// Every store, for the state file.
    pub fn to_records(&self) -> Vec<StoreRecord> {
        self.0
            .iter()
            .flat_map(|(merchant_no, stores)| {
                stores.iter().map(move |(store_no, terminals)| StoreRecord {
                    merchant_no: merchant_no.clone(),
                    store_no: store_no.clone(),
                    terminal_sns: terminals.iter().cloned().collect(),
                })
            })
            .collect()
    }

    /// Stores read back from the state file.
    pub fn from_records(records: Vec<StoreRecord>) -> Self {
        let mut stores = Self::default();
        for r in records {
            stores
                .0
                .entry(r.merchant_no)
                .or_default()
                .entry(r.store_no)
                .or_default()
                .extend(r.terminal_sns);
        }
        stores
    }
}

/// A fresh number of `prefix` + `digits` digits that `taken` does not know.
fn fresh_number(prefix: &str, digits: u32, mut taken: impl FnMut(&str) -> bool) -> String {
    let bound = 10u64.pow(digits);
    loop {
        let n = rand::rng().random_range(0..bound);
        let candidate = format!("{prefix}{n:0width$}", width = digits as usize);
        if !taken(&candidate) {
            return candidate;
        }
    }
}

impl Simulator {
    /// Registers a store of a registered merchant and returns its `store_no` (`S` + 9 digits
    /// when none is given). Registering a store the merchant has is a no-op that returns it.
    /// [`SimError::UnknownMerchant`] for a merchant the gateway does not know,
    /// [`SimError::Invalid`] for a malformed `store_no`.
    pub fn register_store(
        &self,
        merchant_no: &str,
        store_no: Option<&str>,
    ) -> Result<String, SimError> {
        if let Some(s) = store_no {
            check_identifier("store_no", s)?;
        }
        let store_no = {
            let mut st = self.inner.state.lock();
            if !st.merchants.contains_key(merchant_no) {
                return Err(SimError::UnknownMerchant(merchant_no.to_owned()));
            }
            let store_no = match store_no {
                Some(s) => s.to_owned(),
                None => fresh_number("S", 9, |s| st.stores.has_store(merchant_no, s)),
            };
            st.stores.add_store(merchant_no, &store_no);
            store_no
        };
        self.save_now()?;
        Ok(store_no)
    }

    /// Registers a terminal in a registered store and returns its `terminal_sn` (`T` + 12
    /// digits when none is given). Registering a terminal the store has is a no-op that returns
    /// it. [`SimError::UnknownMerchant`] / [`SimError::UnknownStore`] when the merchant or the
    /// store is not registered, [`SimError::Invalid`] for a malformed `terminal_sn`.
    pub fn register_terminal(
        &self,
        merchant_no: &str,
        store_no: &str,
        terminal_sn: Option<&str>,
    ) -> Result<String, SimError> {
        if let Some(t) = terminal_sn {
            check_identifier("terminal_sn", t)?;
        }
        let terminal_sn = {
            let mut st = self.inner.state.lock();
            if !st.merchants.contains_key(merchant_no) {
                return Err(SimError::UnknownMerchant(merchant_no.to_owned()));
            }
            let terminals = st
                .stores
                .0
                .get_mut(merchant_no)
                .and_then(|s| s.get_mut(store_no))
                .ok_or_else(|| SimError::UnknownStore {
                    merchant_no: merchant_no.to_owned(),
                    store_no: store_no.to_owned(),
                })?;
            let terminal_sn = match terminal_sn {
                Some(t) => t.to_owned(),
                None => fresh_number("T", 12, |t| terminals.contains(t)),
            };
            terminals.insert(terminal_sn.clone());
            terminal_sn
        };
        self.save_now()?;
        Ok(terminal_sn)
    }

    /// The merchant's stores, each with its terminals (empty for an unknown merchant).
    pub fn stores(&self, merchant_no: &str) -> BTreeMap<String, Vec<String>> {
        self.inner
            .state
            .lock()
            .stores
            .0
            .get(merchant_no)
            .map(|stores| {
                stores
                    .iter()
                    .map(|(s, t)| (s.clone(), t.iter().cloned().collect()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_only_stores_and_terminals_the_merchant_has() {
        let mut s = Stores::default();
        s.add_store("M1", "S1");
        s.0.get_mut("M1")
            .and_then(|m| m.get_mut("S1"))
            .map(|t| t.insert("T1".to_owned()));
        let code = |r: Result<(), GatewayError>| r.map_err(|e| e.code);
        assert_eq!(code(s.check("M1", None, None)), Ok(()));
        assert_eq!(code(s.check("M1", Some("S1"), None)), Ok(()));
        assert_eq!(code(s.check("M1", Some("S1"), Some("T1"))), Ok(()));
        let refused = Err("E01007");
        assert_eq!(code(s.check("M1", Some("S2"), None)), refused);
        assert_eq!(
            code(s.check("M2", Some("S1"), None)),
            refused,
            "another merchant's"
        );
        assert_eq!(code(s.check("M1", Some("S1"), Some("T2"))), refused);
        assert_eq!(
            code(s.check("M1", None, Some("T1"))),
            refused,
            "terminal alone"
        );
    }

    #[test]
    fn stores_survive_the_state_file_round_trip() {
        let mut s = Stores::default();
        s.add_store("M1", "S1");
        s.add_store("M1", "S2");
        s.0.get_mut("M1")
            .and_then(|m| m.get_mut("S2"))
            .map(|t| t.insert("T9".to_owned()));
        let json = serde_json::to_string(&s.to_records()).expect("serialise");
        let back = Stores::from_records(serde_json::from_str(&json).expect("parse"));
        assert!(back.has_store("M1", "S1"));
        assert!(back.check("M1", Some("S2"), Some("T9")).is_ok());
        assert!(back.check("M1", Some("S1"), Some("T9")).is_err());
    }

    #[test]
    fn fresh_numbers_have_their_shape_and_avoid_taken_ones() {
        let n = fresh_number("S", 9, |_| false);
        assert_eq!(n.len(), 10);
        assert!(n.starts_with('S') && n[1..].bytes().all(|b| b.is_ascii_digit()));
        let mut calls = 0;
        let first_taken = fresh_number("T", 2, |_| {
            calls += 1;
            calls == 1
        });
        assert_eq!(calls, 2, "a taken number is drawn again: {first_taken}");
    }
}
