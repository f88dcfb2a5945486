//! The typed CodePay operations: what payfac sends and what it reads back. Amounts
//! cross this boundary only as `domain::Money`, written and read as exact decimal strings.

use domain::{Currency, Money, Secret, TransStatus};
use serde_json::{Map, Value};

use crate::wire::{self, FieldError};

/// Which CodePay merchant (and optionally store/terminal) a call is made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRef {
    /// CodePay `merchant_no`.
    pub merchant_no: String,
    /// CodePay `store_no`, when the merchant has stores.
    pub store_no: Option<String>,
    /// CodePay `terminal_sn`, rarely needed for QR payments.
    pub terminal_sn: Option<String>,
}

impl MerchantRef {
    /// A merchant without store or terminal.
    pub fn new(merchant_no: impl Into<String>) -> Self {
        Self {
            merchant_no: merchant_no.into(),
            store_no: None,
            terminal_sn: None,
        }
    }
}

/// How an existing order is named: by payfac's number or by CodePay's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRef {
    /// The `merchant_order_no` payfac chose.
    MerchantOrderNo(String),
    /// CodePay's `trans_no`.
    TransNo(String),
}

/// One CodePay operation: its `method`, its business fields, and how its `data` is read.
pub trait Operation {
    /// What a successful call yields.
    type Response: std::fmt::Debug;
    /// The CodePay `method` name.
    const METHOD: &'static str;
    /// The merchant the call is for.
    fn merchant(&self) -> &MerchantRef;
    /// The `merchant_order_no` (or other order reference) for tracing; never a secret.
    fn order_label(&self) -> String;
    /// Business fields of the request (the envelope adds the common ones).
    fn fields(&self) -> Map<String, Value>;
    /// Reads the `data` object of a successful response.
    fn parse(&self, data: &Map<String, Value>) -> Result<Self::Response, FieldError>;
}

fn put(map: &mut Map<String, Value>, key: &str, value: impl Into<String>) {
    let value = value.into();
    // The contract says never to send empty fields; they would also drop out of the signature.
    if !value.is_empty() {
        map.insert(key.to_owned(), Value::String(value));
    }
}

fn put_opt(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        put(map, key, v);
    }
}

fn put_order(map: &mut Map<String, Value>, order: &OrderRef, by_no: &str, by_trans: &str) {
    match order {
        OrderRef::MerchantOrderNo(no) => put(map, by_no, no.as_str()),
        OrderRef::TransNo(no) => put(map, by_trans, no.as_str()),
    }
}

fn order_label(order: &OrderRef) -> String {
    match order {
        OrderRef::MerchantOrderNo(no) => no.clone(),
        OrderRef::TransNo(no) => format!("trans_no:{no}"),
    }
}

/// The currency to read a response's amounts in: the one it states, else the one asked for.
fn currency_of(
    data: &Map<String, Value>,
    asked: Option<Currency>,
) -> Result<Option<Currency>, FieldError> {
    Ok(wire::opt_currency(data)?.or(asked))
}

fn money_in(
    data: &Map<String, Value>,
    field: &'static str,
    currency: Option<Currency>,
) -> Result<Option<Money>, FieldError> {
    match currency {
        Some(c) => wire::opt_money(data, field, c),
        None if wire::opt_str(data, field)?.is_some() => Err(FieldError {
            field,
            reason: "amount without price_currency".into(),
        }),
        None => Ok(None),
    }
}

/// Fields shared by MPM and CPM payment requests.
#[derive(Debug, Clone)]
pub struct PaymentFields {
    /// The merchant.
    pub merchant: MerchantRef,
    /// payfac's upstream order number (one payment attempt).
    pub merchant_order_no: String,
    /// Wallet, e.g. `Alipay`, `WeChatPay`; may be empty for CPM (then not sent: the code decides).
    pub pay_method_id: String,
    /// The amount to collect.
    pub amount: Money,
    /// Shown to the customer.
    pub description: String,
    /// Where CodePay posts the result.
    pub notify_url: Option<String>,
    /// Opaque data echoed back.
    pub attach: Option<String>,
}

impl PaymentFields {
    fn write(&self, map: &mut Map<String, Value>) {
        put(map, "merchant_order_no", self.merchant_order_no.as_str());
        put(map, "pay_method_id", self.pay_method_id.as_str());
        put(map, "price_currency", self.amount.currency().code());
        put(map, "order_amount", self.amount.to_major_string());
        put(map, "description", self.description.as_str());
        put_opt(map, "notify_url", self.notify_url.as_deref());
        put_opt(map, "attach", self.attach.as_deref());
    }
}

/// `cscanb.pay.getqrcode`: create an MPM order and get the QR content to show.
#[derive(Debug, Clone)]
pub struct MpmCreate {
    /// Order fields.
    pub payment: PaymentFields,
    /// Seconds until CodePay closes the unpaid order.
    pub expires_secs: Option<u32>,
}

/// What `cscanb.pay.getqrcode` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpmCreated {
    /// CodePay's transaction number.
    pub trans_no: String,
    /// The QR code **content** to render.
    pub qrcode_url: String,
    /// The amount CodePay registered, when it echoes one.
    pub trans_amount: Option<Money>,
}

impl Operation for MpmCreate {
    type Response = MpmCreated;
    const METHOD: &'static str = "cscanb.pay.getqrcode";
    fn merchant(&self) -> &MerchantRef {
        &self.payment.merchant
    }
    fn order_label(&self) -> String {
        self.payment.merchant_order_no.clone()
    }
    fn fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        self.payment.write(&mut map);
        if let Some(s) = self.expires_secs {
            put(&mut map, "expires", s.to_string());
        }
        map
    }
    fn parse(&self, data: &Map<String, Value>) -> Result<MpmCreated, FieldError> {
        let currency = currency_of(data, Some(self.payment.amount.currency()))?;
        Ok(MpmCreated {
            trans_no: wire::req_str(data, "trans_no")?,
            qrcode_url: wire::req_str(data, "qrcode_url")?,
            trans_amount: money_in(data, "trans_amount", currency)?,
        })
    }
}

/// `bscanc.pay.submit`: charge the wallet code the customer showed (CPM).
#[derive(Debug, Clone)]
pub struct CpmSubmit {
    /// Order fields.
    pub payment: PaymentFields,
    /// The customer's scanned code: a bearer credential, never logged.
    pub auth_code: Secret,
}

/// The result of a CPM submit, or of a query: a transaction and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionResult {
    /// CodePay's transaction number.
    pub trans_no: String,
    /// payfac's order number, when echoed.
    pub merchant_order_no: Option<String>,
    /// CodePay's original transaction (refunds only).
    pub orig_trans_no: Option<String>,
    /// `trans_type` (1 sale, 3 refund, …), when given.
    pub trans_type: Option<i64>,
    /// The state; `InProgress`/`Created`/`Unknown` are not final.
    pub trans_status: TransStatus,
    /// The ordered (or refund) amount, when given.
    pub order_amount: Option<Money>,
    /// The transaction amount, when given.
    pub trans_amount: Option<Money>,
    /// The amount the customer paid, when given.
    pub paid_amount: Option<Money>,
    /// When it reached its state (`YYYY-MM-DD HH:mm:ss`, UTC), as sent.
    pub trans_end_time: Option<String>,
    /// Wallet that paid.
    pub pay_method_id: Option<String>,
    /// The wallet user's account id (masked by CodePay).
    pub pay_user_account_id: Option<String>,
    /// The wallet's own transaction number.
    pub pay_channel_trans_no: Option<String>,
    /// Why it failed, when closed.
    pub trans_error_code: Option<String>,
    /// Human text of the failure.
    pub trans_error_msg: Option<String>,
    /// CodePay's fee on the transaction (`trans_fee_c`), when reported and readable: a missing or
    /// malformed value is `None` and does not fail the answer (see [`wire::lenient_money`]).
    pub trans_fee_c: Option<Money>,
}

impl TransactionResult {
    /// The refund amount as CodePay reports it: `order_amount`, or `trans_amount` in older builds.
    pub fn refund_amount(&self) -> Option<Money> {
        self.order_amount.or(self.trans_amount)
    }

    fn parse(data: &Map<String, Value>, asked: Option<Currency>) -> Result<Self, FieldError> {
        let currency = currency_of(data, asked)?;
        Ok(Self {
            trans_no: wire::req_str(data, "trans_no")?,
            merchant_order_no: wire::opt_str(data, "merchant_order_no")?,
            orig_trans_no: wire::opt_str(data, "orig_trans_no")?,
            trans_type: wire::opt_i64(data, "trans_type")?,
            trans_status: wire::trans_status(data)?,
            order_amount: money_in(data, "order_amount", currency)?,
            trans_amount: money_in(data, "trans_amount", currency)?,
            paid_amount: money_in(data, "paid_amount", currency)?,
            trans_end_time: wire::opt_str(data, "trans_end_time")?,
            pay_method_id: wire::opt_str(data, "pay_method_id")?,
            pay_user_account_id: wire::opt_str(data, "pay_user_account_id")?,
            pay_channel_trans_no: wire::opt_str(data, "pay_channel_trans_no")?,
            trans_error_code: wire::opt_str(data, "trans_error_code")?,
            trans_error_msg: wire::opt_str(data, "trans_error_msg")?,
            trans_fee_c: wire::lenient_money(data, "trans_fee_c", currency),
        })
    }
}

impl Operation for CpmSubmit {
    type Response = TransactionResult;
    const METHOD: &'static str = "bscanc.pay.submit";
    fn merchant(&self) -> &MerchantRef {
        &self.payment.merchant
    }
    fn order_label(&self) -> String {
        self.payment.merchant_order_no.clone()
    }
    fn fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        self.payment.write(&mut map);
        put(&mut map, "auth_code", self.auth_code.expose());
        map
    }
    fn parse(&self, data: &Map<String, Value>) -> Result<TransactionResult, FieldError> {
        TransactionResult::parse(data, Some(self.payment.amount.currency()))
    }
}

/// `order.refund.submit`: refund part or all of a paid order under a new order number.
#[derive(Debug, Clone)]
pub struct RefundSubmit {
    /// The merchant.
    pub merchant: MerchantRef,
    /// The paid order.
    pub original: OrderRef,
    /// A **new** order number for the refund.
    pub merchant_order_no: String,
    /// The refund amount (sent as `order_amount`).
    pub amount: Money,
    /// Reason shown in reports.
    pub description: String,
    /// Where CodePay posts the refund result.
    pub notify_url: Option<String>,
}

/// What `order.refund.submit` returns: no status, the refund must be queried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundAccepted {
    /// CodePay's number for the refund.
    pub trans_no: String,
    /// The refund amount, from `order_amount` or `trans_amount`.
    pub amount: Option<Money>,
}

impl Operation for RefundSubmit {
    type Response = RefundAccepted;
    const METHOD: &'static str = "order.refund.submit";
    fn merchant(&self) -> &MerchantRef {
        &self.merchant
    }
    fn order_label(&self) -> String {
        self.merchant_order_no.clone()
    }
    fn fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        put_order(
            &mut map,
            &self.original,
            "orig_merchant_order_no",
            "orig_trans_no",
        );
        put(
            &mut map,
            "merchant_order_no",
            self.merchant_order_no.as_str(),
        );
        put(&mut map, "price_currency", self.amount.currency().code());
        put(&mut map, "order_amount", self.amount.to_major_string());
        put(&mut map, "description", self.description.as_str());
        put_opt(&mut map, "notify_url", self.notify_url.as_deref());
        map
    }
    fn parse(&self, data: &Map<String, Value>) -> Result<RefundAccepted, FieldError> {
        let currency = currency_of(data, Some(self.amount.currency()))?;
        let order_amount = money_in(data, "order_amount", currency)?;
        Ok(RefundAccepted {
            trans_no: wire::req_str(data, "trans_no")?,
            amount: order_amount.or(money_in(data, "trans_amount", currency)?),
        })
    }
}

/// `order.query`: the state of a payment order.
#[derive(Debug, Clone)]
pub struct OrderQuery {
    /// The merchant.
    pub merchant: MerchantRef,
    /// The order.
    pub order: OrderRef,
    /// The order's currency, to read amounts when the answer omits `price_currency`.
    pub currency: Option<Currency>,
}

impl Operation for OrderQuery {
    type Response = TransactionResult;
    const METHOD: &'static str = "order.query";
    fn merchant(&self) -> &MerchantRef {
        &self.merchant
    }
    fn order_label(&self) -> String {
        order_label(&self.order)
    }
    fn fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        put_order(&mut map, &self.order, "merchant_order_no", "trans_no");
        map
    }
    fn parse(&self, data: &Map<String, Value>) -> Result<TransactionResult, FieldError> {
        TransactionResult::parse(data, self.currency)
    }
}

/// `order.refund.query`: the state of a refund (or other negative transaction).
#[derive(Debug, Clone)]
pub struct RefundQuery {
    /// The merchant.
    pub merchant: MerchantRef,
    /// The refund's own order number or `trans_no`.
    pub refund: OrderRef,
    /// The refund's currency, to read amounts when the answer omits `price_currency`.
    pub currency: Option<Currency>,
}

impl Operation for RefundQuery {
    type Response = TransactionResult;
    const METHOD: &'static str = "order.refund.query";
    fn merchant(&self) -> &MerchantRef {
        &self.merchant
    }
    fn order_label(&self) -> String {
        order_label(&self.refund)
    }
    fn fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        put_order(&mut map, &self.refund, "merchant_order_no", "trans_no");
        map
    }
    fn parse(&self, data: &Map<String, Value>) -> Result<TransactionResult, FieldError> {
        TransactionResult::parse(data, self.currency)
    }
}

/// `order.revoker`: close an unpaid order, or refund a paid one (confirm with `order.query`).
#[derive(Debug, Clone)]
pub struct Revoke {
    /// The merchant.
    pub merchant: MerchantRef,
    /// The order to reverse.
    pub merchant_order_no: String,
}

impl Operation for Revoke {
    type Response = ();
    const METHOD: &'static str = "order.revoker";
    fn merchant(&self) -> &MerchantRef {
        &self.merchant
    }
    fn order_label(&self) -> String {
        self.merchant_order_no.clone()
    }
    fn fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        put(
            &mut map,
            "merchant_order_no",
            self.merchant_order_no.as_str(),
        );
        map
    }
    fn parse(&self, _data: &Map<String, Value>) -> Result<(), FieldError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
