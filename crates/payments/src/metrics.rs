//! Counters of committed state changes, for the operator's dashboards.

use domain::{PaymentStatus, RefundStatus};
use prometheus::{IntCounterVec, Opts, Registry};

/// `payfac_payment_transitions_total{from,to}` and `payfac_refund_transitions_total{from,to}`.
#[derive(Clone, Debug)]
pub struct TransitionMetrics {
    payments: IntCounterVec,
    refunds: IntCounterVec,
}

impl TransitionMetrics {
    /// Creates both counters and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let payments = IntCounterVec::new(
            Opts::new(
                "payfac_payment_transitions_total",
                "Payment status changes committed, by from and to status.",
            ),
            &["from", "to"],
        )?;
        let refunds = IntCounterVec::new(
            Opts::new(
                "payfac_refund_transitions_total",
                "Refund status changes committed, by from and to status.",
            ),
            &["from", "to"],
        )?;
        registry.register(Box::new(payments.clone()))?;
        registry.register(Box::new(refunds.clone()))?;
        Ok(Self { payments, refunds })
    }

    /// Counts one committed payment transition.
    pub fn payment(&self, from: PaymentStatus, to: PaymentStatus) {
        self.payments
            .with_label_values(&[from.as_str(), to.as_str()])
            .inc();
    }

    /// Counts one committed refund transition.
    pub fn refund(&self, from: RefundStatus, to: RefundStatus) {
        self.refunds
            .with_label_values(&[from.as_str(), to.as_str()])
            .inc();
    }
}
