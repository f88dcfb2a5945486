//! The refund state machine and the refund-total rule.

use crate::payment::Step;
use crate::{DomainError, Money};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a refund stands: `pending → succeeded | failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefundStatus {
    /// Submitted upstream, not yet settled.
    Pending,
    /// Money returned. Final.
    Succeeded,
    /// Refused or failed upstream. Final; its amount no longer counts against the payment.
    Failed,
}

impl RefundStatus {
    /// All states.
    pub const ALL: [RefundStatus; 3] = [
        RefundStatus::Pending,
        RefundStatus::Succeeded,
        RefundStatus::Failed,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    /// True for states that never change again.
    pub fn is_final(self) -> bool {
        match self {
            RefundStatus::Pending => false,
            RefundStatus::Succeeded | RefundStatus::Failed => true,
        }
    }

    /// Whether this refund's amount counts against the captured amount.
    pub fn counts_against_capture(self) -> bool {
        match self {
            RefundStatus::Pending | RefundStatus::Succeeded => true,
            RefundStatus::Failed => false,
        }
    }

    /// The one transition function for refunds.
    pub fn transition(self, to: RefundStatus) -> Result<Step, DomainError> {
        use RefundStatus::*;
        if self == to {
            return Ok(Step::Unchanged);
        }
        match (self, to) {
            (Pending, Succeeded | Failed) => Ok(Step::Moved),
            (Pending, Pending) | (Succeeded | Failed, _) => Err(DomainError::InvalidTransition {
                entity: "refund",
                from: self.as_str(),
                to: to.as_str(),
            }),
        }
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RefundStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RefundStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| DomainError::UnknownValue {
                kind: "refund status",
                value: s.to_owned(),
            })
    }
}

/// Why a refund request is refused before it reaches CodePay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundRefusal {
    /// The amount is zero.
    ZeroAmount,
    /// The refund is in another currency than the payment.
    CurrencyMismatch,
    /// Captured minus already-committed refunds is less than asked; carries what is left.
    ExceedsRefundable {
        /// What may still be refunded.
        remaining: Money,
    },
}

/// The refund-total rule: the sum of non-failed refunds never exceeds the captured amount.
///
/// `committed` is the sum of every pending and succeeded refund of the payment. Callers must
/// evaluate this under the payment's row lock (or an equivalent serialisation) so that two
/// racing refunds cannot both pass.
pub fn check_refund(
    captured: Money,
    committed: Money,
    requested: Money,
) -> Result<(), RefundRefusal> {
    if requested.currency() != captured.currency() || committed.currency() != captured.currency() {
        return Err(RefundRefusal::CurrencyMismatch);
    }
    if requested.is_zero() {
        return Err(RefundRefusal::ZeroAmount);
    }
    let remaining = captured
        .checked_sub(committed)
        .unwrap_or_else(|_| Money::zero(captured.currency()));
    if requested.minor() > remaining.minor() {
        return Err(RefundRefusal::ExceedsRefundable { remaining });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;
    use proptest::prelude::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::from_code("USD").expect("usd")).expect("non-negative")
    }

    #[test]
    fn refunds_up_to_the_capture_pass_and_beyond_fail() {
        assert_eq!(check_refund(usd(1000), usd(0), usd(1000)), Ok(()));
        assert_eq!(check_refund(usd(1000), usd(400), usd(600)), Ok(()));
        assert_eq!(
            check_refund(usd(1000), usd(400), usd(601)),
            Err(RefundRefusal::ExceedsRefundable {
                remaining: usd(600)
            })
        );
        assert_eq!(
            check_refund(usd(1000), usd(0), usd(0)),
            Err(RefundRefusal::ZeroAmount)
        );
    }

    proptest! {
        #[test]
        fn accepted_refunds_never_sum_above_capture(captured in 1i64..1_000_000, asks in prop::collection::vec(1i64..400_000, 1..20)) {
            let mut committed = 0i64;
            for ask in asks {
                if check_refund(usd(captured), usd(committed), usd(ask)).is_ok() {
                    committed += ask;
                }
                prop_assert!(committed <= captured);
            }
        }

        #[test]
        fn a_final_refund_never_changes(path in prop::collection::vec(prop::sample::select(RefundStatus::ALL.to_vec()), 1..10)) {
            let mut state = RefundStatus::Pending;
            let mut final_seen = None;
            for to in path {
                if let Ok(Step::Moved) = state.transition(to) { state = to; }
                if let Some(f) = final_seen { prop_assert_eq!(state, f); }
                if state.is_final() { final_seen = Some(state); }
            }
        }
    }
}
