//! CodePay's `trans_status` and how it maps onto payfac's states.

use crate::{PaymentStatus, RefundStatus};

/// CodePay's `trans_status` integer, with unknown values kept rather than rejected
/// (one integrator reports `4`; anything unrecognised is treated as not final).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransStatus {
    /// `9`: created, unpaid.
    Created,
    /// `0`: in progress (customer paying, PIN entry, refund under way). Not final.
    InProgress,
    /// `1`: closed or failed.
    Failed,
    /// `2`: success.
    Succeeded,
    /// `3`: cancelled or voided.
    Canceled,
    /// Anything else: logged, treated as not final.
    Unknown(i64),
}

/// The mapping as data: wire code ↔ status.
const CODES: [(i64, TransStatus); 5] = [
    (9, TransStatus::Created),
    (0, TransStatus::InProgress),
    (1, TransStatus::Failed),
    (2, TransStatus::Succeeded),
    (3, TransStatus::Canceled),
];

impl TransStatus {
    /// From the wire integer.
    pub fn from_code(code: i64) -> Self {
        CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, s)| *s)
            .unwrap_or(TransStatus::Unknown(code))
    }

    /// To the wire integer.
    pub fn code(self) -> i64 {
        match self {
            TransStatus::Unknown(c) => c,
            known => CODES
                .iter()
                .find(|(_, s)| *s == known)
                .map(|(c, _)| *c)
                .unwrap_or(-1),
        }
    }

    /// True when CodePay will not change this order again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TransStatus::Failed | TransStatus::Succeeded | TransStatus::Canceled
        )
    }

    /// The payment state this upstream status means. `1` means `canceled` when payfac closed the
    /// order itself (expiry, merchant cancel, CPM reversal) and `failed` otherwise. Unknown codes
    /// map to `processing`: not final, keep polling.
    pub fn payment_status(self, closed_by_us: bool) -> PaymentStatus {
        match self {
            TransStatus::Created => PaymentStatus::Pending,
            TransStatus::InProgress | TransStatus::Unknown(_) => PaymentStatus::Processing,
            TransStatus::Succeeded => PaymentStatus::Succeeded,
            TransStatus::Failed if closed_by_us => PaymentStatus::Canceled,
            TransStatus::Failed => PaymentStatus::Failed,
            TransStatus::Canceled => PaymentStatus::Canceled,
        }
    }

    /// The refund state this upstream status means for a refund order.
    pub fn refund_status(self) -> RefundStatus {
        match self {
            TransStatus::Created | TransStatus::InProgress | TransStatus::Unknown(_) => {
                RefundStatus::Pending
            }
            TransStatus::Succeeded => RefundStatus::Succeeded,
            TransStatus::Failed | TransStatus::Canceled => RefundStatus::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trans_status_maps_onto_payment_status() {
        assert_eq!(
            TransStatus::from_code(9).payment_status(false),
            PaymentStatus::Pending
        );
        assert_eq!(
            TransStatus::from_code(0).payment_status(false),
            PaymentStatus::Processing
        );
        assert_eq!(
            TransStatus::from_code(2).payment_status(false),
            PaymentStatus::Succeeded
        );
        assert_eq!(
            TransStatus::from_code(1).payment_status(false),
            PaymentStatus::Failed
        );
        assert_eq!(
            TransStatus::from_code(1).payment_status(true),
            PaymentStatus::Canceled
        );
        assert_eq!(
            TransStatus::from_code(3).payment_status(false),
            PaymentStatus::Canceled
        );
        assert_eq!(TransStatus::from_code(4), TransStatus::Unknown(4));
        assert!(!TransStatus::from_code(4).is_final());
        for c in [9, 0, 1, 2, 3, 4, -7] {
            assert_eq!(TransStatus::from_code(c).code(), c);
        }
    }
}
