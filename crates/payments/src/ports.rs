//! The narrow traits the payment logic needs from storage and from the gateway, so it can be
//! tested without either.

use super::model::{Change, Payment, Refund};
use crate::error::PaymentError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{GatewayAccountId, MerchantId, Money, PaymentId, RefundId, TransStatus, Wallet};

/// What the payment logic reads and writes.
#[async_trait]
pub trait PaymentStore: Send + Sync + 'static {
    /// A payment by id, whoever owns it.
    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>, PaymentError>;
    /// A payment by the upstream `merchant_order_no` payfac generated, only when it was routed
    /// through an account `scope` covers (a notification touches its own account's orders).
    async fn payment_by_order_no(
        &self,
        scope: &AccountScope,
        merchant_no: &str,
        merchant_order_no: &str,
    ) -> Result<Option<Payment>, PaymentError>;
    /// A refund by id.
    async fn refund(&self, id: &RefundId) -> Result<Option<Refund>, PaymentError>;
    /// A refund by its upstream `merchant_order_no`, only when it was routed through an account
    /// `scope` covers.
    async fn refund_by_order_no(
        &self,
        scope: &AccountScope,
        merchant_no: &str,
        merchant_order_no: &str,
    ) -> Result<Option<Refund>, PaymentError>;
    /// A refund by the merchant's reference.
    async fn refund_by_merchant_ref(
        &self,
        merchant: &MerchantId,
        merchant_refund_id: &str,
    ) -> Result<Option<Refund>, PaymentError>;
    /// Every refund of a payment, oldest first.
    async fn refunds_of(&self, payment: &PaymentId) -> Result<Vec<Refund>, PaymentError>;
    /// Payments not yet final created before `before`, oldest first (reconciliation).
    async fn unsettled_payments(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Payment>, PaymentError>;
    /// Refunds still pending created before `before`, oldest first (reconciliation).
    async fn unsettled_refunds(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Refund>, PaymentError>;
    /// The price list of `merchant` in force at `at` (a payment's creation): the newest version
    /// effective then; `None` before the merchant's first one.
    async fn price_list_at(
        &self,
        merchant: &MerchantId,
        at: DateTime<Utc>,
    ) -> Result<Option<ledger::PriceList>, PaymentError>;
    /// Payments matching `filter` (scoped to a merchant by `filter.merchant_id`), newest
    /// first, with `id < starting_after` when given.
    async fn list_payments(
        &self,
        filter: &PaymentFilter,
        limit: usize,
    ) -> Result<Vec<Payment>, PaymentError>;
    /// Refunds matching `filter` (scoped to a merchant by `filter.merchant_id`), newest first,
    /// with `id < starting_after` when given.
    async fn list_refunds(
        &self,
        filter: &RefundFilter,
        limit: usize,
    ) -> Result<Vec<Refund>, PaymentError>;
    /// Commits a change atomically (see [`Change`]): `VersionConflict` when a compare-and-swap
    /// lost, `Duplicate` when a unique reference is taken, `Unavailable` when storage failed.
    async fn commit(&self, change: Change) -> Result<(), PaymentError>;
    /// Commits `change` and reads the price list of `merchant` in force at `at` in the same
    /// transaction where the store can: a CPM create, which CodePay may answer paid at once,
    /// then needs no read of its own to price the success. The default commits, then reads.
    async fn commit_and_price(
        &self,
        change: Change,
        merchant: &MerchantId,
        at: DateTime<Utc>,
    ) -> Result<Option<ledger::PriceList>, PaymentError> {
        self.commit(change).await?;
        self.price_list_at(merchant, at).await
    }
}

/// Filters of `GET /v1/payments` (a merchant's own list, or an operator's search).
#[derive(Clone, Debug, Default)]
pub struct PaymentFilter {
    /// Only this merchant's (always set for a merchant's own list).
    pub merchant_id: Option<MerchantId>,
    /// Only this store's.
    pub store_id: Option<domain::StoreId>,
    /// Only this terminal's.
    pub terminal_id: Option<domain::TerminalId>,
    /// Only this wallet.
    pub wallet: Option<Wallet>,
    /// Only this mode.
    pub mode: Option<domain::PaymentMode>,
    /// Only this currency.
    pub currency: Option<domain::Currency>,
    /// Amount at least (minor units).
    pub amount_gte: Option<i64>,
    /// Amount at most (minor units).
    pub amount_lte: Option<i64>,
    /// CodePay's `merchant_order_no` (payfac generated it).
    pub merchant_order_no: Option<String>,
    /// CodePay's `trans_no`.
    pub trans_no: Option<String>,
    /// Only payments routed through this gateway account.
    pub gateway_account_id: Option<domain::GatewayAccountId>,
    /// Exact merchant reference.
    pub merchant_order_id: Option<String>,
    /// Exact status.
    pub status: Option<domain::PaymentStatus>,
    /// Created at or after.
    pub created_gte: Option<DateTime<Utc>>,
    /// Created before.
    pub created_lt: Option<DateTime<Utc>>,
    /// Cursor: only ids strictly older than this one.
    pub starting_after: Option<PaymentId>,
}

/// The orders a CodePay notification may touch: those routed through the gateway account that
/// verified it, plus, for the default account, those recorded before payments carried an
/// account (`gateway_account_id` null).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountScope {
    /// The account that verified the notification (`None`: the one configured upstream of a
    /// deployment without accounts).
    pub account: Option<GatewayAccountId>,
    /// Whether orders recorded without an account are covered too.
    pub includes_unrouted: bool,
}

impl AccountScope {
    /// The orders of `account`; `is_default` adds those recorded without an account.
    pub fn of(account: GatewayAccountId, is_default: bool) -> Self {
        Self {
            account: Some(account),
            includes_unrouted: is_default,
        }
    }

    /// Only the orders recorded without an account (one upstream, no accounts).
    pub fn unrouted() -> Self {
        Self {
            account: None,
            includes_unrouted: true,
        }
    }

    /// True when an order recorded with `account` is covered.
    pub fn covers(&self, account: Option<&GatewayAccountId>) -> bool {
        match account {
            Some(a) => self.account.as_ref() == Some(a),
            None => self.includes_unrouted,
        }
    }
}

/// Filters of `GET /v1/refunds` (a merchant's own list, or an operator's search). `wallet`,
/// `mode` and `merchant_order_id` match the refunded payment.
#[derive(Clone, Debug, Default)]
pub struct RefundFilter {
    /// Only this merchant's (always set for a merchant's own list).
    pub merchant_id: Option<MerchantId>,
    /// Only refunds of this payment.
    pub payment_id: Option<PaymentId>,
    /// Exact status.
    pub status: Option<domain::RefundStatus>,
    /// The merchant's refund reference.
    pub merchant_refund_id: Option<String>,
    /// Only this store's.
    pub store_id: Option<domain::StoreId>,
    /// Only this terminal's.
    pub terminal_id: Option<domain::TerminalId>,
    /// Only refunds of payments in this wallet.
    pub wallet: Option<Wallet>,
    /// Only refunds of payments of this mode.
    pub mode: Option<domain::PaymentMode>,
    /// Only refunds of the payment with this merchant reference.
    pub merchant_order_id: Option<String>,
    /// Only this currency.
    pub currency: Option<domain::Currency>,
    /// Amount at least (minor units).
    pub amount_gte: Option<i64>,
    /// Amount at most (minor units).
    pub amount_lte: Option<i64>,
    /// The refund order's CodePay `merchant_order_no` (its refund number, payfac generated it).
    pub merchant_order_no: Option<String>,
    /// The refund's CodePay `trans_no`.
    pub trans_no: Option<String>,
    /// Only refunds carried by this gateway account.
    pub gateway_account_id: Option<domain::GatewayAccountId>,
    /// Created at or after.
    pub created_gte: Option<DateTime<Utc>>,
    /// Created before.
    pub created_lt: Option<DateTime<Utc>>,
    /// Cursor.
    pub starting_after: Option<RefundId>,
}

/// Where an order goes upstream: the gateway account that carries it and the CodePay
/// merchant, store and terminal it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamMerchant {
    /// The gateway account (`None`: the platform's default upstream).
    pub gateway_account_id: Option<domain::GatewayAccountId>,
    /// CodePay `merchant_no`.
    pub merchant_no: String,
    /// CodePay `store_no`.
    pub store_no: Option<String>,
    /// CodePay `terminal_sn`.
    pub terminal_sn: Option<String>,
}

/// The three outcomes of every CodePay call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    /// CodePay answered `code "0"` with a verified body.
    Success(T),
    /// CodePay answered with a business error: nothing happened upstream.
    Declined {
        /// CodePay's code (`E04111`…).
        code: String,
        /// CodePay's message.
        msg: String,
    },
    /// No trustworthy answer (timeout, 5xx, bad signature): the order's fate is unknown.
    Unknown {
        /// Why, for logs.
        reason: String,
    },
}

impl<T> Outcome<T> {
    /// No trustworthy answer, for `reason`.
    pub fn unknown(reason: impl Into<String>) -> Self {
        Outcome::Unknown {
            reason: reason.into(),
        }
    }
}

/// An order or refund as CodePay reports it (submit, query, notification alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamOrder {
    /// CodePay's `trans_no`.
    pub trans_no: Option<String>,
    /// `trans_status`.
    pub status: TransStatus,
    /// Amount paid/refunded as CodePay states it, when given.
    pub amount: Option<Money>,
    /// `trans_end_time`, when given.
    pub end_time: Option<DateTime<Utc>>,
    /// `trans_error_code`.
    pub error_code: Option<String>,
    /// `trans_error_msg`.
    pub error_msg: Option<String>,
    /// CodePay's own fee on the order (`trans_fee_c`), when it reports one.
    pub fee: Option<Money>,
}

impl UpstreamOrder {
    /// CodePay's refusal of a submit (`code`, `msg`), as the order status it means: failed.
    pub fn declined(code: String, msg: String) -> Self {
        Self::with_status(TransStatus::Failed, Some(code), Some(msg))
    }

    /// An order CodePay reports in `status` for `amount`, with its `trans_no`.
    pub fn reported(status: TransStatus, trans_no: String, amount: Money) -> Self {
        Self {
            trans_no: Some(trans_no),
            amount: Some(amount),
            ..Self::with_status(status, None, None)
        }
    }

    /// An order CodePay never saw, for a payment payfac has closed: nothing can be charged now.
    pub fn never_seen() -> Self {
        Self::with_status(TransStatus::Canceled, None, None)
    }

    fn with_status(
        status: TransStatus,
        error_code: Option<String>,
        error_msg: Option<String>,
    ) -> Self {
        Self {
            trans_no: None,
            status,
            amount: None,
            end_time: None,
            error_code,
            error_msg,
            fee: None,
        }
    }
}

/// What every payment order tells CodePay, MPM or CPM.
#[derive(Clone, Debug)]
pub struct PaymentOrder {
    /// Whose order.
    pub merchant: UpstreamMerchant,
    /// payfac's generated number.
    pub merchant_order_no: String,
    /// Amount.
    pub amount: Money,
    /// Wallet.
    pub wallet: Wallet,
    /// Text.
    pub description: String,
}

/// An MPM QR order as requested.
#[derive(Clone, Debug)]
pub struct QrOrder {
    /// The order.
    pub order: PaymentOrder,
    /// Seconds until CodePay closes it.
    pub expires_in: i64,
}

impl std::ops::Deref for QrOrder {
    type Target = PaymentOrder;
    fn deref(&self) -> &PaymentOrder {
        &self.order
    }
}

/// CodePay's answer to a QR order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrCreated {
    /// `trans_no`.
    pub trans_no: Option<String>,
    /// `qrcode_url`: the QR content.
    pub qr_code: String,
}

/// A CPM submission.
#[derive(Clone, Debug)]
pub struct CpmOrder {
    /// The order.
    pub order: PaymentOrder,
    /// The customer's wallet code.
    pub auth_code: domain::Secret,
}

impl std::ops::Deref for CpmOrder {
    type Target = PaymentOrder;
    fn deref(&self) -> &PaymentOrder {
        &self.order
    }
}

/// A refund submission.
#[derive(Clone, Debug)]
pub struct RefundOrder {
    /// Whose order.
    pub merchant: UpstreamMerchant,
    /// The payment's `merchant_order_no`.
    pub orig_merchant_order_no: String,
    /// The refund's own new `merchant_order_no`.
    pub merchant_order_no: String,
    /// Amount to return.
    pub amount: Money,
    /// Text.
    pub description: String,
}

/// What the payment logic needs from CodePay.
#[async_trait]
pub trait Upstream: Send + Sync + 'static {
    /// The gateway account a new payment goes through, given the one its merchant's routing
    /// picked (`None`: the merchant names none, so the platform's default account). Refuses an
    /// unknown or disabled account, before anything is written. Without accounts (one
    /// configured upstream) every payment is taken as routed.
    async fn admit(
        &self,
        routed: Option<&GatewayAccountId>,
    ) -> Result<Option<GatewayAccountId>, PaymentError> {
        Ok(routed.cloned())
    }
    /// The gateway accounts were written (created, updated, a key rotated): the next call
    /// must use what is stored now. Nothing to do without accounts.
    async fn accounts_changed(&self) {}
    /// `cscanb.pay.getqrcode`.
    async fn create_qr(&self, order: &QrOrder) -> Outcome<QrCreated>;
    /// `bscanc.pay.submit`.
    async fn submit_cpm(&self, order: &CpmOrder) -> Outcome<UpstreamOrder>;
    /// `order.query`.
    async fn query(
        &self,
        merchant: &UpstreamMerchant,
        merchant_order_no: &str,
    ) -> Outcome<UpstreamOrder>;
    /// `order.revoker`: closes an unpaid order (CodePay refunds a paid one).
    async fn revoke(&self, merchant: &UpstreamMerchant, merchant_order_no: &str) -> Outcome<()>;
    /// `order.refund.submit`; returns the refund's `trans_no` if given.
    async fn submit_refund(&self, order: &RefundOrder) -> Outcome<Option<String>>;
    /// `order.refund.query`.
    async fn query_refund(
        &self,
        merchant: &UpstreamMerchant,
        merchant_order_no: &str,
    ) -> Outcome<UpstreamOrder>;
}

/// True when a declined answer says CodePay never saw the order: the not-found class of the
/// code table payfac shares with its simulator (`gateway_client::codes`), so a code the
/// simulator answers with cannot go unrecognised here.
pub fn is_order_not_found(code: &str) -> bool {
    gateway_client::codes::is_order_not_found(code)
}

/// True when a declined answer says the `merchant_order_no` was already used: a resubmit that
/// meets one must settle by query, never count as a refusal.
pub fn is_duplicate_order_no(code: &str) -> bool {
    gateway_client::codes::is_duplicate_order_no(code)
}
