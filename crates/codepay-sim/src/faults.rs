//! Fault injection: what the next calls of a method (or the next notifications) suffer.

use serde::{Deserialize, Serialize};

/// The `method` under which notification faults are registered.
pub const NOTIFY_METHOD: &str = "payment.result.notify";

/// The operation whose outcome the `refund_fails` fault changes.
pub const REFUND_METHOD: &str = "order.refund.submit";

/// Default hold of `timeout`, real time: longer than any sane client timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default delay of `slow`, real time.
pub const DEFAULT_SLOW_MS: u64 = 3_000;
/// Default delay of the notification fault `delay`, on the scheduling clock.
pub const DEFAULT_NOTIFY_DELAY_MS: u64 = 60_000;

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 500 with no envelope; the operation is not applied.
    #[serde(rename = "http_500")]
    Http500,
    /// The operation is applied, the answer held back `delay_ms` (real time).
    Timeout,
    /// The operation is applied, then the connection is cut with no complete response.
    DropResponseAfterCommit,
    /// A normal answer without `sign`.
    Unsigned,
    /// A normal answer whose `sign` does not verify.
    BadSignature,
    /// A normal answer after `delay_ms` (real time).
    Slow,
    /// Notification never sent.
    Drop,
    /// Notification sent twice.
    Duplicate,
    /// Notification held back until the next notification has been sent.
    Reorder,
    /// Notification's first attempt postponed `delay_ms` (scheduling clock).
    Delay,
    /// The next accepted refund settles to `1` (failed) instead of `2`; refused submits do not
    /// use it up.
    RefundFails,
}

impl FaultKind {
    /// True for the kinds that change what an accepted operation leads to, rather than how the
    /// call is answered: the operation consumes them itself, only when it succeeds.
    pub fn is_outcome_fault(self) -> bool {
        matches!(self, FaultKind::RefundFails)
    }

    /// True for the kinds that apply to notifications rather than to `/api/entry` calls.
    pub fn is_notification_fault(self) -> bool {
        matches!(
            self,
            FaultKind::Drop | FaultKind::Duplicate | FaultKind::Reorder | FaultKind::Delay
        )
    }
}

/// A registered fault with the number of uses left.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fault {
    /// The operation it hits (`*` for all operations), or [`NOTIFY_METHOD`].
    pub method: String,
    /// What happens.
    pub kind: FaultKind,
    /// Uses left.
    pub count: u32,
    /// Delay for `timeout`, `slow` and `delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl Fault {
    /// The delay this fault applies, with the kind's default.
    pub fn delay(&self) -> u64 {
        self.delay_ms.unwrap_or(match self.kind {
            FaultKind::Timeout => DEFAULT_TIMEOUT_MS,
            FaultKind::Delay => DEFAULT_NOTIFY_DELAY_MS,
            _ => DEFAULT_SLOW_MS,
        })
    }
}

/// The registered faults, consumed in registration order.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    list: Vec<Fault>,
}

impl Faults {
    /// Adds a fault; an operation fault under the notification method (or the reverse) is refused.
    pub fn add(&mut self, fault: Fault) -> Result<(), String> {
        if fault.kind.is_outcome_fault() && fault.method != REFUND_METHOD {
            return Err(format!(
                "fault {:?} applies to method {REFUND_METHOD} only",
                fault.kind
            ));
        }
        let for_notify = fault.method == NOTIFY_METHOD;
        if fault.kind.is_notification_fault() != for_notify {
            return Err(format!(
                "fault {:?} applies to {}",
                fault.kind,
                if for_notify {
                    "operations, not notifications"
                } else {
                    "notifications: use method payment.result.notify"
                }
            ));
        }
        if fault.count == 0 {
            return Err("count must be at least 1".into());
        }
        self.list.push(fault);
        Ok(())
    }

    /// Consumes one use of the first call or notification fault for `method`, if any.
    pub fn take(&mut self, method: &str) -> Option<Fault> {
        let pos = self.list.iter().position(|f| {
            !f.kind.is_outcome_fault()
                && (f.method == method || (f.method == "*" && method != NOTIFY_METHOD))
        })?;
        self.use_at(pos)
    }

    /// Consumes one use of the first outcome fault of `kind` for `method`, if any.
    pub fn take_outcome(&mut self, method: &str, kind: FaultKind) -> Option<Fault> {
        let pos = self
            .list
            .iter()
            .position(|f| f.kind == kind && f.method == method)?;
        self.use_at(pos)
    }

    fn use_at(&mut self, pos: usize) -> Option<Fault> {
        let fault = self.list.get_mut(pos)?;
        fault.count -= 1;
        let taken = fault.clone();
        if fault.count == 0 {
            self.list.remove(pos);
        }
        Some(taken)
    }

    /// The faults still armed.
    pub fn list(&self) -> &[Fault] {
        &self.list
    }

    /// Disarms everything.
    pub fn clear(&mut self) {
        self.list.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(method: &str, kind: FaultKind, count: u32) -> Fault {
        Fault {
            method: method.into(),
            kind,
            count,
            delay_ms: None,
        }
    }

    #[test]
    fn kinds_have_their_wire_names() {
        let kind: FaultKind = serde_json::from_str("\"http_500\"").expect("http_500");
        assert_eq!(kind, FaultKind::Http500);
        let kind: FaultKind = serde_json::from_str("\"drop_response_after_commit\"").expect("drop");
        assert_eq!(kind, FaultKind::DropResponseAfterCommit);
    }

    #[test]
    fn faults_are_consumed_per_use() {
        let mut f = Faults::default();
        f.add(fault("order.query", FaultKind::Http500, 2))
            .expect("valid");
        assert!(f.take("order.refund.query").is_none());
        assert_eq!(
            f.take("order.query").map(|x| x.kind),
            Some(FaultKind::Http500)
        );
        assert!(f.take("order.query").is_some());
        assert!(f.take("order.query").is_none());
    }

    #[test]
    fn wildcard_hits_operations_but_not_notifications() {
        let mut f = Faults::default();
        f.add(fault("*", FaultKind::Slow, 1)).expect("valid");
        assert!(f.take(NOTIFY_METHOD).is_none());
        assert!(f.take("order.query").is_some());
    }

    #[test]
    fn kinds_are_checked_against_their_target() {
        let mut f = Faults::default();
        assert!(f.add(fault(NOTIFY_METHOD, FaultKind::Http500, 1)).is_err());
        assert!(f.add(fault("order.query", FaultKind::Drop, 1)).is_err());
        assert!(f.add(fault(NOTIFY_METHOD, FaultKind::Drop, 0)).is_err());
        assert!(f.add(fault(NOTIFY_METHOD, FaultKind::Drop, 1)).is_ok());
        assert!(f.add(fault("*", FaultKind::RefundFails, 1)).is_err());
        assert!(
            f.add(fault(NOTIFY_METHOD, FaultKind::RefundFails, 1))
                .is_err()
        );
        assert!(
            f.add(fault(REFUND_METHOD, FaultKind::RefundFails, 1))
                .is_ok()
        );
    }

    #[test]
    fn outcome_faults_are_left_to_the_operation() {
        let mut f = Faults::default();
        f.add(fault(REFUND_METHOD, FaultKind::RefundFails, 1))
            .expect("valid");
        f.add(fault("*", FaultKind::Slow, 1)).expect("valid");
        assert_eq!(f.take(REFUND_METHOD).map(|x| x.kind), Some(FaultKind::Slow));
        assert!(f.take(REFUND_METHOD).is_none());
        assert!(
            f.take_outcome(REFUND_METHOD, FaultKind::RefundFails)
                .is_some()
        );
        assert!(
            f.take_outcome(REFUND_METHOD, FaultKind::RefundFails)
                .is_none()
        );
    }
}
