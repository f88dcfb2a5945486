//! The payment state machine.
//!
//! `pending → processing → succeeded | failed | canceled`, and `pending → canceled` (closed or
//! expired). A payment may also jump from `pending` straight to a final state because CodePay
//! notifications and polls can skip the in-progress state. A final state never changes.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How the QR code travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMode {
    /// Merchant-presented: payfac shows a QR code, the customer scans it.
    Mpm,
    /// Customer-presented: the merchant scans the customer's wallet code (`auth_code`).
    Cpm,
}

impl PaymentMode {
    /// The wire name (`mpm`/`cpm`).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMode::Mpm => "mpm",
            PaymentMode::Cpm => "cpm",
        }
    }
}

impl FromStr for PaymentMode {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mpm" => Ok(PaymentMode::Mpm),
            "cpm" => Ok(PaymentMode::Cpm),
            _ => Err(DomainError::UnknownValue {
                kind: "mode",
                value: s.to_owned(),
            }),
        }
    }
}

/// Where a payment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    /// Created upstream, nothing paid yet (MPM QR shown, CPM not yet answered).
    Pending,
    /// The customer is paying (entering a PIN) or the outcome is not yet known.
    Processing,
    /// Money captured. Final.
    Succeeded,
    /// Declined or closed by the wallet. Final.
    Failed,
    /// Closed unpaid, expired or reversed. Final.
    Canceled,
}

/// What applying a transition did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The state changed; the caller writes the row and the event.
    Moved,
    /// Already there: a duplicate or stale signal; nothing to write, nothing to announce.
    Unchanged,
}

impl PaymentStatus {
    /// All states, for exhaustive tests and listings.
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Pending,
        PaymentStatus::Processing,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Canceled,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Processing => "processing",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Canceled => "canceled",
        }
    }

    /// True for states that never change again.
    pub fn is_final(self) -> bool {
        match self {
            PaymentStatus::Pending | PaymentStatus::Processing => false,
            PaymentStatus::Succeeded | PaymentStatus::Failed | PaymentStatus::Canceled => true,
        }
    }

    /// The one transition function: may a payment in `self` move to `to`?
    ///
    /// Moving to the state it is already in is [`Step::Unchanged`] (duplicates are harmless);
    /// going back to `processing` from a final state, or between final states, is refused.
    pub fn transition(self, to: PaymentStatus) -> Result<Step, DomainError> {
        use PaymentStatus::*;
        if self == to {
            return Ok(Step::Unchanged);
        }
        let allowed = match self {
            Pending => matches!(to, Processing | Succeeded | Failed | Canceled),
            Processing => matches!(to, Succeeded | Failed | Canceled),
            Succeeded | Failed | Canceled => false,
        };
        if allowed {
            Ok(Step::Moved)
        } else {
            Err(DomainError::InvalidTransition {
                entity: "payment",
                from: self.as_str(),
                to: to.as_str(),
            })
        }
    }

    /// Whether a payment in this state may be refunded.
    pub fn is_refundable(self) -> bool {
        matches!(self, PaymentStatus::Succeeded)
    }

    /// Whether the merchant may still cancel it (close it upstream).
    pub fn is_cancelable(self) -> bool {
        !self.is_final()
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PaymentStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| DomainError::UnknownValue {
                kind: "payment status",
                value: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_status() -> impl Strategy<Value = PaymentStatus> {
        prop::sample::select(PaymentStatus::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn a_final_state_never_changes(path in prop::collection::vec(any_status(), 1..20)) {
            let mut state = PaymentStatus::Pending;
            let mut final_seen: Option<PaymentStatus> = None;
            for to in path {
                if let Ok(Step::Moved) = state.transition(to) {
                    state = to;
                }
                if let Some(f) = final_seen {
                    prop_assert_eq!(state, f);
                }
                if state.is_final() {
                    final_seen = Some(state);
                }
            }
        }
    }

    #[test]
    fn the_documented_paths_are_allowed() {
        use PaymentStatus::*;
        assert_eq!(Pending.transition(Processing), Ok(Step::Moved));
        assert_eq!(Processing.transition(Succeeded), Ok(Step::Moved));
        assert_eq!(Pending.transition(Canceled), Ok(Step::Moved));
        assert_eq!(Succeeded.transition(Succeeded), Ok(Step::Unchanged));
        assert!(Succeeded.transition(Canceled).is_err());
        assert!(Processing.transition(Pending).is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in PaymentStatus::ALL {
            assert_eq!(s.as_str().parse::<PaymentStatus>(), Ok(s));
        }
    }
}
