//! Counters of committed state changes and of upstream anomalies, for the operator's
//! dashboards and alerts.

use domain::{PaymentStatus, RefundStatus};
use prometheus::{IntCounterVec, Opts, Registry};

/// `payfac_payment_transitions_total{from,to}`, `payfac_refund_transitions_total{from,to}` and
/// `payfac_upstream_anomalies_total{kind}`.
#[derive(Clone, Debug)]
pub struct TransitionMetrics {
    payments: IntCounterVec,
    refunds: IntCounterVec,
    anomalies: IntCounterVec,
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
        let anomalies = IntCounterVec::new(
            Opts::new(
                "payfac_upstream_anomalies_total",
                "Answers from CodePay that payfac refused to take as they were, by kind \
                 (upstream_amount_mismatch: the order was reversed).",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(payments.clone()))?;
        registry.register(Box::new(refunds.clone()))?;
        registry.register(Box::new(anomalies.clone()))?;
        Ok(Self {
            payments,
            refunds,
            anomalies,
        })
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

    /// Counts one upstream anomaly of `kind` (a payment `failure_code`).
    pub fn anomaly(&self, kind: &str) {
        self.anomalies.with_label_values(&[kind]).inc();
    }
}

/// `payfac_reconciliation_breaks_open{kind}`: reconciliation breaks left open for an operator
/// (docs/books.md), refreshed from the database.
#[derive(Clone, Debug)]
pub struct BreakGauge {
    open: prometheus::IntGaugeVec,
}

/// The break kinds the gauge always reports (0 when none is open), so an alert can tell "no
/// break" from "no data".
const BREAK_KINDS: [&str; 4] = [
    "missing_upstream",
    "status_mismatch",
    "amount_mismatch",
    "fee_mismatch",
];

impl BreakGauge {
    /// Creates the gauge and registers it on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let open = prometheus::IntGaugeVec::new(
            Opts::new(
                "payfac_reconciliation_breaks_open",
                "Reconciliation breaks with CodePay left open for an operator, by kind.",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(open.clone()))?;
        for kind in BREAK_KINDS {
            open.with_label_values(&[kind]).set(0);
        }
        Ok(Self { open })
    }

    /// Reads the open breaks per kind from `db` and sets the gauge.
    pub async fn refresh(&self, db: &store::Database) -> crate::Result<()> {
        let counts = db
            .read(store::reconciliation::count_open_by_kind)
            .await
            .map_err(|e| crate::PaymentError::Unavailable(e.to_string()))?;
        for kind in BREAK_KINDS {
            let n = counts
                .iter()
                .find(|(k, _)| k == kind)
                .map_or(0, |(_, n)| *n);
            self.open.with_label_values(&[kind]).set(n);
        }
        Ok(())
    }
}
