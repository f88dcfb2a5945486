//! The customer's and the tester's actions as Rust methods: what `/sim/mpm/…`, `/sim/auth-codes`
//! and `/sim/faults` do, for in-process callers. The HTTP handlers in `control` call these.

use crate::error::SimError;
use crate::faults::Fault;
use crate::ledger::{AuthCode, AuthScenario};
use crate::ops;
use crate::sim::Simulator;
use domain::{Secret, TransStatus, Wallet};
use rand::Rng;
use serde_json::{Map, Value};

/// What the wallet does with a scanned MPM code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletAction {
    /// Customer opened the code and is confirming: `9` → `0`.
    Scan,
    /// Customer paid: → `2`.
    Pay,
    /// Customer refused: → `1` (`USER_DECLINED`).
    Decline,
}

/// First digits of real payment codes per wallet, so codes look like what a scanner reads.
const AUTH_CODE_PREFIXES: &[(&str, &str)] = &[
    ("Alipay", "28"),
    ("Alipay+", "28"),
    ("WeChatPay", "13"),
    ("UnionPay", "62"),
];

impl Simulator {
    /// The customer acts on an MPM order's QR content (`qrcode_url`); returns the order as
    /// `order.query` shows it. [`SimError::UnknownQrCode`] for a code the gateway never issued,
    /// [`SimError::NotPayable`] when the order's state does not allow the action.
    pub fn mpm_action(
        &self,
        qr_code: &str,
        action: WalletAction,
    ) -> Result<Map<String, Value>, SimError> {
        self.start();
        let now_ms = self.inner.clock.now_ms();
        let now_virtual = self.inner.clock.virtual_ms();
        let res = {
            let mut st = self.inner.state.lock();
            let trans_no = st
                .ledger
                .by_qr
                .get(qr_code)
                .cloned()
                .ok_or(SimError::UnknownQrCode)?;
            ops::expire_if_due(self, &mut st, &trans_no, now_virtual, now_ms);
            let res = match action {
                WalletAction::Pay => ops::settle_sale(self, &mut st, &trans_no, now_ms),
                WalletAction::Decline => ops::fail_sale(
                    self,
                    &mut st,
                    &trans_no,
                    ("USER_DECLINED", "the customer declined the payment"),
                    now_ms,
                ),
                WalletAction::Scan => st
                    .ledger
                    .orders
                    .get_mut(&trans_no)
                    .map_or(Ok(()), |o| o.transition(TransStatus::InProgress, now_ms)),
            };
            let view = st
                .ledger
                .orders
                .get(&trans_no)
                .map(ops::sale_view)
                .unwrap_or_default();
            res.map(|()| view)
        };
        self.changed();
        res.map_err(|e| SimError::NotPayable(e.msg))
    }

    /// The customer pays an MPM order (→ `2`); see [`Simulator::mpm_action`].
    pub fn pay_mpm(&self, qr_code: &str) -> Result<Map<String, Value>, SimError> {
        self.mpm_action(qr_code, WalletAction::Pay)
    }

    /// The customer declines an MPM order (→ `1`); see [`Simulator::mpm_action`].
    pub fn decline_mpm(&self, qr_code: &str) -> Result<Map<String, Value>, SimError> {
        self.mpm_action(qr_code, WalletAction::Decline)
    }

    /// A fresh single-use CPM auth code of `pay_method_id` (default `Alipay`) that behaves as
    /// `scenario` when charged; `delay_ms` is the PIN entry time (default `pin_delay_ms`).
    pub fn new_auth_code(
        &self,
        scenario: AuthScenario,
        pay_method_id: Option<&str>,
        delay_ms: Option<u64>,
    ) -> Result<Secret, SimError> {
        let pay_method_id = pay_method_id.unwrap_or("Alipay");
        if Wallet::from_pay_method_id(pay_method_id).is_err() {
            return Err(SimError::Invalid(format!(
                "unknown pay_method_id {pay_method_id:?}"
            )));
        }
        let prefix = AUTH_CODE_PREFIXES
            .iter()
            .find(|(w, _)| *w == pay_method_id)
            .map_or("99", |(_, p)| p);
        let mut st = self.inner.state.lock();
        let code = loop {
            let candidate = format!(
                "{prefix}{:016}",
                rand::rng().random_range(0..10_000_000_000_000_000u64)
            );
            if !st.ledger.auth_codes.contains_key(&candidate) {
                break candidate;
            }
        };
        st.ledger.auth_codes.insert(
            code.clone(),
            AuthCode {
                scenario,
                delay_ms: delay_ms.unwrap_or(self.inner.cfg.pin_delay_ms),
                pay_method_id: pay_method_id.to_owned(),
                used: false,
            },
        );
        drop(st);
        self.changed();
        Ok(Secret::new(code))
    }

    /// Arms a fault (what `POST /sim/faults` does); refused when the kind does not fit the method
    /// or `count` is 0.
    pub fn add_fault(&self, fault: Fault) -> Result<(), SimError> {
        self.inner
            .state
            .lock()
            .faults
            .add(fault)
            .map_err(SimError::Invalid)
    }

    /// The faults still armed.
    pub fn faults(&self) -> Vec<Fault> {
        self.inner.state.lock().faults.list().to_vec()
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.inner.state.lock().faults.clear();
    }
}
