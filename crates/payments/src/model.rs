//! The records the payment logic reads and writes: payments, refunds, the merchant profile it
//! needs, and what it asks storage to commit atomically.

use chrono::{DateTime, Utc};
use domain::{
    Currency, EventType, GatewayAccountId, MerchantId, Money, PaymentId, PaymentMode,
    PaymentStatus, RefundId, RefundStatus, RoutingRule, StoreId, TerminalId, Wallet,
};

/// The merchant facts the payment logic needs to take a payment.
#[derive(Clone, Debug)]
pub struct MerchantProfile {
    /// The merchant.
    pub id: MerchantId,
    /// False when suspended or closed: no new payments.
    pub active: bool,
    /// CodePay `merchant_no`.
    pub merchant_no: String,
    /// CodePay `store_no`, when the merchant has several stores.
    pub store_no: Option<String>,
    /// Currency used when a request does not name one.
    pub default_currency: Currency,
    /// Wallets this merchant may take; empty means every known wallet.
    pub allowed_wallets: Vec<Wallet>,
    /// Largest amount of one payment in minor units of `default_currency`, if limited; a
    /// limited merchant takes payments in `default_currency` only.
    pub max_amount_minor: Option<i64>,
    /// The gateway account the merchant's payments go through (the platform default when
    /// `None`), unless a routing rule says otherwise.
    pub gateway_account_id: Option<GatewayAccountId>,
    /// Ordered per-currency/per-wallet overrides of `gateway_account_id`.
    pub routing: Vec<RoutingRule>,
}

/// Where in the merchant's business a payment is taken: a store, and optionally one of its
/// terminals, as resolved (owned by the merchant, enabled) by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The store.
    pub store_id: StoreId,
    /// Its CodePay `store_no`.
    pub store_no: String,
    /// The terminal, if the payment names one.
    pub terminal_id: Option<TerminalId>,
    /// Its CodePay `terminal_sn`.
    pub terminal_sn: Option<String>,
}

/// One payment (an MPM order or a CPM submission), as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Payment {
    /// payfac's id.
    pub id: PaymentId,
    /// Owner.
    pub merchant_id: MerchantId,
    /// The merchant's own reference, unique per merchant.
    pub merchant_order_id: String,
    /// MPM or CPM.
    pub mode: PaymentMode,
    /// Amount asked.
    pub amount: Money,
    /// Wallet (`pay_method_id` upstream).
    pub wallet: Wallet,
    /// Where it stands.
    pub status: PaymentStatus,
    /// CodePay merchant this order was placed for.
    pub upstream_merchant_no: String,
    /// CodePay store, if any.
    pub upstream_store_no: Option<String>,
    /// CodePay terminal, if any.
    pub upstream_terminal_sn: Option<String>,
    /// The gateway account the payment was routed through at creation (`None`: the platform's
    /// default upstream); every later operation of the payment uses the same one.
    pub gateway_account_id: Option<GatewayAccountId>,
    /// The merchant's store the payment was taken at.
    pub store_id: Option<StoreId>,
    /// The store's terminal the payment was taken at.
    pub terminal_id: Option<TerminalId>,
    /// The `merchant_order_no` payfac generated for CodePay (unique per CodePay merchant).
    pub merchant_order_no: String,
    /// CodePay's `trans_no`, once known.
    pub trans_no: Option<String>,
    /// MPM QR content.
    pub qr_code: Option<String>,
    /// Free text shown to the customer.
    pub description: Option<String>,
    /// Merchant's key/value data, returned as given.
    pub metadata: serde_json::Value,
    /// MPM: when an unpaid order is closed.
    pub expires_at: Option<DateTime<Utc>>,
    /// CPM: when polling gives up and the order is reversed.
    pub settle_deadline: Option<DateTime<Utc>>,
    /// When the money was captured.
    pub paid_at: Option<DateTime<Utc>>,
    /// payfac's stable failure code.
    pub failure_code: Option<String>,
    /// Human text, with CodePay's code/msg kept for support.
    pub failure_message: Option<String>,
    /// Sum of succeeded refunds, minor units.
    pub amount_refunded: i64,
    /// True once payfac asked CodePay to close or reverse the order: a later `trans_status 1`
    /// then means `canceled`, not `failed`.
    pub closed_by_us: bool,
    /// Optimistic-concurrency version; also the `sequence` of events about this payment.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The platform's fee, snapshotted in the change that marks the payment succeeded (none
    /// before, and for a payment that never succeeded).
    pub fee: Option<FeeSnapshot>,
}

/// What a payment was charged when it succeeded, in the payment's currency (docs/books.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeSnapshot {
    /// The platform's percentage part, rounded half up.
    pub percent_part: Money,
    /// The platform's fixed part.
    pub fixed_part: Money,
    /// The pricing version the fee was computed with (`None`: the merchant had no pricing in
    /// force at the payment's creation, so no fee).
    pub pricing_version: Option<i64>,
    /// CodePay's own fee (`trans_fee_c`) as CodePay reported it with the success, if it did.
    pub codepay_fee: Option<Money>,
}

impl FeeSnapshot {
    /// The platform's fee: percentage part + fixed part.
    pub fn total(&self) -> Money {
        // Both parts are in the payment's currency and were added once already by the ledger
        // crate when the fee was computed; a sum that no longer fits cannot have been stored.
        self.percent_part
            .checked_add(self.fixed_part)
            .unwrap_or(self.percent_part)
    }
}

/// One refund of a payment, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Refund {
    /// payfac's id.
    pub id: RefundId,
    /// The refunded payment.
    pub payment_id: PaymentId,
    /// Owner.
    pub merchant_id: MerchantId,
    /// The merchant's reference, unique per merchant.
    pub merchant_refund_id: String,
    /// Amount returned.
    pub amount: Money,
    /// Where it stands.
    pub status: RefundStatus,
    /// Why (merchant text, or payfac's own reason for automatic refunds).
    pub reason: Option<String>,
    /// The new `merchant_order_no` payfac generated for the refund order upstream.
    pub merchant_order_no: String,
    /// The CodePay merchant of the refunded payment.
    pub upstream_merchant_no: String,
    /// The payment's CodePay store.
    pub upstream_store_no: Option<String>,
    /// The payment's CodePay terminal.
    pub upstream_terminal_sn: Option<String>,
    /// The payment's gateway account, which carries the refund too.
    pub gateway_account_id: Option<GatewayAccountId>,
    /// The payment's store, copied so store-bound credentials can filter refunds.
    pub store_id: Option<StoreId>,
    /// The payment's terminal, copied likewise.
    pub terminal_id: Option<TerminalId>,
    /// CodePay's `trans_no` of the refund, once known.
    pub trans_no: Option<String>,
    /// payfac's stable failure code.
    pub failure_code: Option<String>,
    /// Human text with CodePay's code/msg.
    pub failure_message: Option<String>,
    /// The share of the payment's fee given back, set when the refund succeeds (none for the
    /// automatic late-success refund, which is booked as one journal with its payment).
    pub fee_return: Option<Money>,
    /// Optimistic-concurrency version; also the event `sequence`.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// What a background job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Query a CPM (or unknown-outcome) payment until final; reverse it past its deadline.
    PollPayment,
    /// Close an unpaid MPM order at its expiry.
    ExpirePayment,
    /// Query a refund until final (and resubmit it if CodePay never saw it).
    PollRefund,
    /// Periodic reconciliation of every unsettled payment (one job, rescheduling itself).
    Reconcile,
    /// Confirm a success reported after payfac closed the payment, and refund it (the
    /// late-success rule).
    ConfirmLateSuccess,
}

impl JobKind {
    /// The stored name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::PollPayment => "payment.poll",
            JobKind::ExpirePayment => "payment.expire",
            JobKind::PollRefund => "refund.poll",
            JobKind::Reconcile => "payment.reconcile",
            JobKind::ConfirmLateSuccess => "payment.confirm_late_success",
        }
    }

    /// From the stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            JobKind::PollPayment,
            JobKind::ExpirePayment,
            JobKind::PollRefund,
            JobKind::Reconcile,
            JobKind::ConfirmLateSuccess,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// A durable timer to create together with a change.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// What to do.
    pub kind: JobKind,
    /// The payment or refund id it is about.
    pub subject: String,
    /// Not before this time.
    pub run_at: DateTime<Utc>,
}

/// An outbox event to write together with a change.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// Owner.
    pub merchant_id: MerchantId,
    /// `payment.succeeded`, …
    pub event_type: EventType,
    /// The public object plus `sequence`.
    pub payload: serde_json::Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

/// Everything one state change writes, committed in ONE transaction or not at all.
///
/// `payment` and `refund_update` are compare-and-swap on `version`: the store writes the new
/// row only if the stored version still equals `expected_version`, otherwise the whole change is
/// refused with [`crate::error::PaymentError::VersionConflict`] and the caller re-reads and retries. Every
/// refund change also bumps its payment's version, so two refunds racing on one payment are
/// serialised exactly as a row lock would serialise them.
#[derive(Clone, Debug, Default)]
pub struct Change {
    /// A payment to insert (fails with `Duplicate` when `merchant_order_id` is taken).
    pub insert_payment: Option<Payment>,
    /// A payment to update: the new row and the version it must replace.
    pub payment: Option<(Payment, i64)>,
    /// A refund to insert (fails with `Duplicate` when `merchant_refund_id` is taken).
    pub insert_refund: Option<Refund>,
    /// A refund to update: the new row and the version it must replace.
    pub refund_update: Option<(Refund, i64)>,
    /// Outbox events.
    pub events: Vec<NewEvent>,
    /// Timers.
    pub jobs: Vec<NewJob>,
    /// Queued timers this change makes pointless, retired with it (kind, subject): a payment
    /// that became final retires its poll and expiry jobs instead of leaving them to wake up,
    /// find it final and finish.
    pub retire_jobs: Vec<(JobKind, String)>,
    /// Ledger journals the state change posts (docs/books.md), each balanced by construction.
    pub journals: Vec<ledger::Journal>,
    /// The payment's fee snapshot, stored with the change that marks it succeeded.
    pub payment_fee: Option<(PaymentId, FeeSnapshot)>,
    /// An `Idempotency-Key` record claimed or completed in the same transaction (only sent to a
    /// store built to keep them: `SqlPaymentStore::with_idempotency`).
    pub idempotency: Option<IdempotencyWrite>,
    /// Audit-log entries for an action someone asked for (a merchant's cancel or refund),
    /// written with the change it caused.
    pub audit: Vec<AuditNote>,
}

/// One audit-log entry: who asked for what, on which object.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditNote {
    /// The API key (`key_…`) that asked.
    pub actor: String,
    /// `payment.cancel`, `refund.create`, …
    pub action: &'static str,
    /// `payment`, `refund`.
    pub target_type: &'static str,
    /// The object's id.
    pub target_id: String,
    /// Its merchant.
    pub merchant_id: MerchantId,
    /// What was asked (never secrets).
    pub details: serde_json::Value,
}

/// An `Idempotency-Key` record written inside a payment change's transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyWrite {
    /// Claim `(scope, key)` first; if another request holds it, nothing of the change is
    /// written and the commit fails with `Duplicate("idempotency_key")`.
    Claim {
        /// Merchant (or operator key) the key belongs to.
        scope: String,
        /// The header value.
        key: String,
        /// Method, path and body hash.
        fingerprint: String,
    },
    /// Store the response of a key this request claimed.
    Complete {
        /// As claimed.
        scope: String,
        /// As claimed.
        key: String,
        /// HTTP status.
        status: u16,
        /// The body as the idempotency store keeps it (sealed).
        body: String,
    },
}

/// The price list in force for a payment, as read (`None`: the merchant had none yet).
pub(crate) type Prices = Option<ledger::PriceList>;
