//! The public shapes of payments and refunds, shared by the API responses and the
//! event payloads so a webhook and a GET never disagree.

use super::model::{Payment, Refund};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A payment as merchants see it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PaymentObject {
    /// `pay_…`.
    pub id: String,
    /// Always `payment`.
    pub object: &'static str,
    /// The merchant's reference.
    pub merchant_order_id: String,
    /// `mpm` or `cpm`.
    pub mode: String,
    /// `pending`, `processing`, `succeeded`, `failed`, `canceled`.
    pub status: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// Sum of succeeded refunds, minor units.
    pub amount_refunded: i64,
    /// Wallet name.
    pub wallet: String,
    /// MPM QR content.
    pub qr_code: Option<String>,
    /// MPM QR rendered as SVG.
    pub qr_code_svg_url: Option<String>,
    /// Hosted page showing the QR and its live status.
    pub pay_page_url: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// MPM: when an unpaid payment is closed.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the money was captured.
    pub paid_at: Option<DateTime<Utc>>,
    /// payfac's stable failure code.
    pub failure_code: Option<String>,
    /// Human-readable failure.
    pub failure_message: Option<String>,
    /// As given at creation.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// The gateway account the payment was routed through (`null`: the platform's default
    /// upstream).
    pub gateway_account_id: Option<String>,
    /// The merchant's store it was taken at.
    pub store_id: Option<String>,
    /// The store's terminal it was taken at.
    pub terminal_id: Option<String>,
    /// The CodePay order this payment is, to match a CodePay record one to one.
    pub codepay: CodePayOrder,
    /// The platform's fee, fixed when the payment succeeded (`null` before); see
    /// docs/books.md.
    pub fee: Option<MoneyObject>,
    /// Creation time (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An amount in minor units of a currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct MoneyObject {
    /// Minor units.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
}

impl From<domain::Money> for MoneyObject {
    fn from(m: domain::Money) -> Self {
        Self {
            amount: m.minor(),
            currency: m.currency().code().to_owned(),
        }
    }
}

/// A payment's identity at CodePay.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CodePayOrder {
    /// CodePay `merchant_no` the order was placed under.
    pub merchant_no: String,
    /// CodePay `store_no`, when the payment was taken at a store.
    pub store_no: Option<String>,
    /// CodePay `terminal_sn`, when the payment was taken at a terminal.
    pub terminal_sn: Option<String>,
    /// The `merchant_order_no` payfac generated for the order (unique per CodePay merchant).
    pub merchant_order_no: String,
    /// CodePay's `trans_no`, once known.
    pub trans_no: Option<String>,
}

/// A refund's identity at CodePay.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CodePayRefund {
    /// CodePay `merchant_no` of the refunded order.
    pub merchant_no: String,
    /// CodePay `store_no` of the refunded order.
    pub store_no: Option<String>,
    /// CodePay `terminal_sn` of the refunded order.
    pub terminal_sn: Option<String>,
    /// The refund order's own `merchant_order_no` that payfac generated (CodePay's refund number).
    pub refund_no: String,
    /// CodePay's `trans_no` of the refund, once known.
    pub trans_no: Option<String>,
}

impl PaymentObject {
    /// Renders a stored payment; `public_url` is payfac's external base URL (no trailing `/`).
    pub fn from_payment(p: &Payment, public_url: &str) -> Self {
        let is_mpm = p.mode == domain::PaymentMode::Mpm;
        Self {
            id: p.id.to_string(),
            object: "payment",
            merchant_order_id: p.merchant_order_id.clone(),
            mode: p.mode.as_str().to_owned(),
            status: p.status.as_str().to_owned(),
            amount: p.amount.minor(),
            currency: p.amount.currency().code().to_owned(),
            amount_refunded: p.amount_refunded,
            wallet: p.wallet.name().to_owned(),
            qr_code: p.qr_code.clone(),
            qr_code_svg_url: p
                .qr_code
                .as_ref()
                .map(|_| format!("{public_url}/v1/payments/{}/qr.svg", p.id)),
            pay_page_url: is_mpm.then(|| format!("{public_url}/pay/{}", p.id)),
            description: p.description.clone(),
            expires_at: p.expires_at,
            paid_at: p.paid_at,
            failure_code: p.failure_code.clone(),
            failure_message: p.failure_message.clone(),
            metadata: p.metadata.clone(),
            gateway_account_id: p.gateway_account_id.as_ref().map(|a| a.to_string()),
            store_id: p.store_id.as_ref().map(|s| s.to_string()),
            terminal_id: p.terminal_id.as_ref().map(|t| t.to_string()),
            codepay: CodePayOrder {
                merchant_no: p.upstream_merchant_no.clone(),
                store_no: p.upstream_store_no.clone(),
                terminal_sn: p.upstream_terminal_sn.clone(),
                merchant_order_no: p.merchant_order_no.clone(),
                trans_no: p.trans_no.clone(),
            },
            fee: p.fee.as_ref().map(|f| f.total().into()),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A refund as merchants see it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RefundObject {
    /// `ref_…`.
    pub id: String,
    /// Always `refund`.
    pub object: &'static str,
    /// The refunded payment.
    pub payment_id: String,
    /// The merchant's reference.
    pub merchant_refund_id: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// `pending`, `succeeded`, `failed`.
    pub status: String,
    /// Why.
    pub reason: Option<String>,
    /// payfac's stable failure code.
    pub failure_code: Option<String>,
    /// Human-readable failure.
    pub failure_message: Option<String>,
    /// The gateway account that carried the refund (the payment's).
    pub gateway_account_id: Option<String>,
    /// The payment's store.
    pub store_id: Option<String>,
    /// The payment's terminal.
    pub terminal_id: Option<String>,
    /// The CodePay refund order, to match a CodePay record one to one.
    pub codepay: CodePayRefund,
    /// The share of the payment's fee given back, fixed when the refund succeeded (`null`
    /// before, and for payfac's automatic late-success refund); see docs/books.md.
    pub fee_return: Option<MoneyObject>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl RefundObject {
    /// Renders a stored refund.
    pub fn from_refund(r: &Refund) -> Self {
        Self {
            id: r.id.to_string(),
            object: "refund",
            payment_id: r.payment_id.to_string(),
            merchant_refund_id: r.merchant_refund_id.clone(),
            amount: r.amount.minor(),
            currency: r.amount.currency().code().to_owned(),
            status: r.status.as_str().to_owned(),
            reason: r.reason.clone(),
            failure_code: r.failure_code.clone(),
            failure_message: r.failure_message.clone(),
            gateway_account_id: r.gateway_account_id.as_ref().map(|a| a.to_string()),
            store_id: r.store_id.as_ref().map(|s| s.to_string()),
            terminal_id: r.terminal_id.as_ref().map(|t| t.to_string()),
            codepay: CodePayRefund {
                merchant_no: r.upstream_merchant_no.clone(),
                store_no: r.upstream_store_no.clone(),
                terminal_sn: r.upstream_terminal_sn.clone(),
                refund_no: r.merchant_order_no.clone(),
                trans_no: r.trans_no.clone(),
            },
            fee_return: r.fee_return.map(MoneyObject::from),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// An event payload: the object plus its per-object `sequence` (its version after the change),
/// so a receiver can order deliveries that arrive out of order.
pub fn event_payload<T: Serialize>(object: &T, sequence: i64) -> serde_json::Value {
    let mut value = serde_json::to_value(object).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("sequence".to_owned(), serde_json::Value::from(sequence));
    }
    value
}
