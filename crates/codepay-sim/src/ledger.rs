//! The gateway's books: orders (sales and refunds), wallet auth codes and pending timers.
//! Everything here is plain data, serialisable into the state file.

use crate::codes::{ErrorKind, GatewayError};
use domain::TransStatus;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// CodePay `trans_type` of a sale.
pub const TRANS_TYPE_SALE: u8 = 1;
/// CodePay `trans_type` of a refund.
pub const TRANS_TYPE_REFUND: u8 = 3;

/// How a sale was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// The customer scans the merchant's QR code (`SCANQR_PAY`).
    Mpm,
    /// The merchant scans the customer's wallet code (`BSCANQR_PAY`).
    Cpm,
}

/// One order on the gateway: a sale or a refund.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    /// Gateway number.
    pub trans_no: String,
    /// The app that created it.
    pub app_id: String,
    /// The merchant it belongs to.
    pub merchant_no: String,
    /// Store, as sent (a refund: its sale's).
    #[serde(default)]
    pub store_no: Option<String>,
    /// Terminal, as sent (a refund: its sale's).
    #[serde(default)]
    pub terminal_sn: Option<String>,
    /// The merchant's number for this order (unique per merchant).
    pub merchant_order_no: String,
    /// `1` sale, `3` refund.
    pub trans_type: u8,
    /// MPM or CPM for a sale; `None` for a refund.
    pub scenario: Option<Scenario>,
    /// Wallet (`pay_method_id`).
    pub pay_method_id: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// `trans_status` wire code.
    pub status: i64,
    /// Wall-clock creation time, epoch ms.
    pub created_ms: i64,
    /// Wall-clock time the order reached a final state.
    pub end_ms: Option<i64>,
    /// MPM expiry on the scheduling clock.
    pub expire_virtual_ms: Option<i64>,
    /// MPM expiry on the wall clock (for display).
    pub expire_ms: Option<i64>,
    /// MPM QR content.
    pub qr_code: Option<String>,
    /// Where notifications go.
    pub notify_url: Option<String>,
    /// As sent.
    pub description: Option<String>,
    /// As sent; echoed in notifications.
    pub attach: Option<String>,
    /// Set when closed or failed.
    pub error_code: Option<String>,
    /// Set when closed or failed.
    pub error_msg: Option<String>,
    /// For a refund: the sale's gateway number.
    pub orig_trans_no: Option<String>,
    /// For a refund: the sale's merchant number.
    pub orig_merchant_order_no: Option<String>,
    /// For a sale: sum of its refunds that have not failed.
    pub refunded_minor: i64,
    /// Wallet user (masked) once paid.
    pub pay_user_account_id: Option<String>,
    /// Wallet-side number once paid.
    pub pay_channel_trans_no: Option<String>,
    /// CodePay's fee (`trans_fee_c`) in minor units: a sale's is fixed when it is paid and kept
    /// if it is voided or refunded; a refund's is 0 (no fee is charged or returned on refunds).
    #[serde(default)]
    pub fee_minor: Option<i64>,
}

impl Order {
    /// The status as the domain type.
    pub fn trans_status(&self) -> TransStatus {
        TransStatus::from_code(self.status)
    }

    /// True for a sale.
    pub fn is_sale(&self) -> bool {
        self.trans_type == TRANS_TYPE_SALE
    }

    /// Moves the order to `to`, refusing what CodePay never does: `9 → 0 → 2/1`, `9 → 2/1`,
    /// and a paid sale voided `2 → 3`. A final state otherwise never changes.
    pub fn transition(&mut self, to: TransStatus, now_ms: i64) -> Result<(), GatewayError> {
        use TransStatus::*;
        let allowed = match (self.trans_status(), to) {
            (Created, InProgress | Succeeded | Failed) => true,
            (InProgress, Succeeded | Failed) => true,
            (Succeeded, Canceled) => self.is_sale(),
            (Created | InProgress | Succeeded | Failed | Canceled | Unknown(_), _) => false,
        };
        if !allowed {
            return Err(ErrorKind::InvalidParameter.with(format!(
                "order {} cannot go from {} to {}",
                self.trans_no,
                self.status,
                to.code()
            )));
        }
        self.status = to.code();
        if to.is_final() {
            self.end_ms = Some(now_ms);
        }
        Ok(())
    }

    /// Closes or fails the order with a reason.
    pub fn fail(&mut self, code: &str, msg: &str, now_ms: i64) -> Result<(), GatewayError> {
        self.transition(TransStatus::Failed, now_ms)?;
        self.error_code = Some(code.to_owned());
        self.error_msg = Some(msg.to_owned());
        Ok(())
    }
}

/// What a CPM auth code does when it is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScenario {
    /// Paid at once (`2`).
    Approve,
    /// Answers `0`, then succeeds or fails after the delay.
    Pin {
        /// Outcome after the PIN.
        succeed: bool,
    },
    /// Refused at once (`1`).
    Decline,
    /// Stays `0` until revoked.
    NeverSettles,
}

/// A wallet payment code handed out by `/sim/auth-codes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthCode {
    /// What happens when it is charged.
    pub scenario: AuthScenario,
    /// PIN entry time on the scheduling clock.
    pub delay_ms: u64,
    /// The wallet the code belongs to.
    pub pay_method_id: String,
    /// Charged already (codes are single use).
    pub used: bool,
}

/// A timer the scheduler fires when the scheduling clock reaches its deadline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Close an unpaid MPM order.
    Expire {
        /// The order.
        trans_no: String,
    },
    /// The customer finished entering the PIN.
    FinishPin {
        /// The order.
        trans_no: String,
        /// Whether the payment goes through.
        succeed: bool,
    },
    /// The wallet answered the refund: money returned, or (fault `refund_fails`) refused.
    SettleRefund {
        /// The refund.
        trans_no: String,
        /// Decided at submit, so a restart from the state file keeps the outcome.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fails: bool,
    },
    /// Send (or resend) a notification.
    Notify(Notification),
    /// Send the notification held back by `reorder` if nothing overtook it in time.
    ReleaseHeld {
        /// Its `http_request_id`.
        id: String,
    },
}

/// One notification and where its delivery stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    /// `http_request_id`, stable across retries so receivers can dedupe.
    pub id: String,
    /// The order's `notify_url`.
    pub url: String,
    /// The fields, unsigned (signed afresh with a new `timestamp` for each attempt).
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Attempts made so far.
    pub attempts: u32,
    /// Send this attempt twice (fault `duplicate`).
    #[serde(default)]
    pub duplicate: bool,
}

/// Orders, their indexes, auth codes and timers.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Ledger {
    /// By `trans_no`, in creation order (numbers sort by time).
    pub orders: BTreeMap<String, Order>,
    /// `(merchant_no, merchant_order_no)` → `trans_no`, for sales and refunds alike.
    #[serde(skip)]
    pub by_order_no: HashMap<(String, String), String>,
    /// QR token → `trans_no`.
    #[serde(skip)]
    pub by_qr: HashMap<String, String>,
    /// Outstanding auth codes.
    pub auth_codes: HashMap<String, AuthCode>,
    /// `(deadline on the scheduling clock, sequence)` → job.
    #[serde(with = "jobs_as_list")]
    pub jobs: BTreeMap<(i64, u64), Job>,
    /// Next job sequence number.
    pub job_seq: u64,
    /// A notification held back by the `reorder` fault until the next one has been sent.
    #[serde(default)]
    pub held: Option<Notification>,
}

impl Ledger {
    /// Rebuilds the indexes after loading a snapshot.
    pub fn reindex(&mut self) {
        self.by_order_no.clear();
        self.by_qr.clear();
        for o in self.orders.values() {
            self.by_order_no.insert(
                (o.merchant_no.clone(), o.merchant_order_no.clone()),
                o.trans_no.clone(),
            );
            if let Some(qr) = &o.qr_code {
                self.by_qr.insert(qr.clone(), o.trans_no.clone());
            }
        }
    }

    /// Adds a new order and indexes it.
    pub fn insert(&mut self, order: Order) {
        self.by_order_no.insert(
            (order.merchant_no.clone(), order.merchant_order_no.clone()),
            order.trans_no.clone(),
        );
        if let Some(qr) = &order.qr_code {
            self.by_qr.insert(qr.clone(), order.trans_no.clone());
        }
        self.orders.insert(order.trans_no.clone(), order);
    }

    /// True when the merchant already used this `merchant_order_no`.
    pub fn order_no_taken(&self, merchant_no: &str, merchant_order_no: &str) -> bool {
        self.by_order_no
            .contains_key(&(merchant_no.to_owned(), merchant_order_no.to_owned()))
    }

    /// The merchant's order by its number or the gateway's.
    pub fn find(
        &self,
        merchant_no: &str,
        merchant_order_no: Option<&str>,
        trans_no: Option<&str>,
    ) -> Option<&Order> {
        let by_trans = trans_no.and_then(|t| self.orders.get(t));
        let by_merchant = merchant_order_no.and_then(|m| {
            self.by_order_no
                .get(&(merchant_no.to_owned(), m.to_owned()))
                .and_then(|t| self.orders.get(t))
        });
        by_trans
            .or(by_merchant)
            .filter(|o| o.merchant_no == merchant_no)
    }

    /// Schedules a job at `deadline` on the scheduling clock.
    pub fn schedule(&mut self, deadline: i64, job: Job) {
        self.job_seq = self.job_seq.wrapping_add(1);
        self.jobs.insert((deadline, self.job_seq), job);
    }

    /// Removes and returns every job due at `now`, and the next deadline after them.
    pub fn take_due(&mut self, now: i64) -> (Vec<Job>, Option<i64>) {
        let later = self.jobs.split_off(&(now.saturating_add(1), 0));
        let due = std::mem::replace(&mut self.jobs, later);
        let next = self.jobs.keys().next().map(|(d, _)| *d);
        (due.into_values().collect(), next)
    }
}

/// JSON object keys must be strings: store the timer map as a list.
mod jobs_as_list {
    use super::Job;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize)]
    struct Entry {
        deadline: i64,
        seq: u64,
        #[serde(flatten)]
        job: Job,
    }

    pub fn serialize<S: Serializer>(
        jobs: &BTreeMap<(i64, u64), Job>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let list: Vec<Entry> = jobs
            .iter()
            .map(|((deadline, seq), job)| Entry {
                deadline: *deadline,
                seq: *seq,
                job: job.clone(),
            })
            .collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<(i64, u64), Job>, D::Error> {
        let list = Vec::<Entry>::deserialize(d)?;
        Ok(list
            .into_iter()
            .map(|e| ((e.deadline, e.seq), e.job))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: TransStatus, trans_type: u8) -> Order {
        Order {
            trans_no: "T1".into(),
            app_id: "wz".into(),
            merchant_no: "M".into(),
            store_no: None,
            terminal_sn: None,
            merchant_order_no: "o1".into(),
            trans_type,
            scenario: Some(Scenario::Mpm),
            pay_method_id: "Alipay".into(),
            currency: "USD".into(),
            amount_minor: 100,
            status: status.code(),
            created_ms: 0,
            end_ms: None,
            expire_virtual_ms: None,
            expire_ms: None,
            qr_code: None,
            notify_url: None,
            description: None,
            attach: None,
            error_code: None,
            error_msg: None,
            orig_trans_no: None,
            orig_merchant_order_no: None,
            refunded_minor: 0,
            pay_user_account_id: None,
            pay_channel_trans_no: None,
            fee_minor: None,
        }
    }

    #[test]
    fn the_order_state_machine_only_moves_forward() {
        use TransStatus::*;
        let ok = [
            (Created, InProgress),
            (Created, Succeeded),
            (Created, Failed),
            (InProgress, Succeeded),
            (InProgress, Failed),
            (Succeeded, Canceled),
        ];
        let all = [Created, InProgress, Failed, Succeeded, Canceled];
        for from in all {
            for to in all {
                let mut o = order(from, TRANS_TYPE_SALE);
                let res = o.transition(to, 5);
                assert_eq!(res.is_ok(), ok.contains(&(from, to)), "{from:?} → {to:?}");
                if res.is_ok() {
                    assert_eq!(o.end_ms.is_some(), to.is_final());
                }
            }
        }
        let mut refund = order(Succeeded, TRANS_TYPE_REFUND);
        assert!(
            refund.transition(Canceled, 1).is_err(),
            "refunds are not voided"
        );
    }

    #[test]
    fn due_jobs_come_out_in_deadline_order() {
        let mut l = Ledger::default();
        l.schedule(
            30,
            Job::SettleRefund {
                trans_no: "c".into(),
                fails: false,
            },
        );
        l.schedule(
            10,
            Job::SettleRefund {
                trans_no: "a".into(),
                fails: true,
            },
        );
        l.schedule(
            20,
            Job::Expire {
                trans_no: "b".into(),
            },
        );
        let (due, next) = l.take_due(20);
        assert_eq!(due.len(), 2);
        assert!(matches!(&due[0], Job::SettleRefund { trans_no, fails: true } if trans_no == "a"));
        assert_eq!(next, Some(30));
        let json = serde_json::to_string(&l).expect("serialisable");
        let back: Ledger = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back.jobs.len(), 1);
    }
}
