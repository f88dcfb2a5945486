//! `payment.result.notify`: CodePay's signed POST about an order or refund.

use domain::{Currency, Money, TransStatus};
use serde_json::{Map, Value};

use crate::SignatureError;
use crate::error::NotificationError;
use crate::signing::{PublicKey, verify_message};
use crate::wire::{self, FieldError};

/// The `method` CodePay's notifications carry.
pub const NOTIFY_METHOD: &str = "payment.result.notify";

/// A verified notification. It says what CodePay claims; the caller still checks amount and
/// currency against its own order and confirms terminal states with a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// CodePay's id of this delivery (the same across retries), when sent.
    pub http_request_id: Option<String>,
    /// The merchant.
    pub merchant_no: String,
    /// payfac's order (or refund) number.
    pub merchant_order_no: Option<String>,
    /// CodePay's transaction number.
    pub trans_no: Option<String>,
    /// `1` sale, `3` refund, …
    pub trans_type: Option<i64>,
    /// The state CodePay reports.
    pub trans_status: TransStatus,
    /// The currency of the amounts.
    pub currency: Option<Currency>,
    /// The ordered amount.
    pub order_amount: Option<Money>,
    /// The transaction amount.
    pub trans_amount: Option<Money>,
    /// When it reached its state, as sent.
    pub trans_end_time: Option<String>,
    /// The wallet.
    pub pay_method_id: Option<String>,
    /// Failure code, when failed.
    pub trans_error_code: Option<String>,
    /// Failure text, when failed.
    pub trans_error_msg: Option<String>,
    /// CodePay's fee on the transaction (`trans_fee_c`), when sent and readable; a malformed
    /// value is `None` rather than a refused notification.
    pub trans_fee_c: Option<Money>,
    /// The app the order was placed by, when sent.
    pub app_id: Option<String>,
    /// Every field as received, for the audit record.
    pub raw: Map<String, Value>,
}

/// Verifies the signature of a notification body with the gateway key, then reads it. Forged
/// bodies (`Unsigned`, `BadSignature`) are reported before any field is interpreted.
pub fn parse_notification(
    body: &[u8],
    gateway_key: &PublicKey,
) -> Result<Notification, NotificationError> {
    let raw: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(NotificationError::NotJson("not an object".into())),
        Err(e) => return Err(NotificationError::NotJson(e.to_string())),
    };
    match verify_message(&raw, gateway_key) {
        Ok(()) => {}
        Err(SignatureError::Missing) => return Err(NotificationError::Unsigned),
        Err(SignatureError::Invalid) => return Err(NotificationError::BadSignature),
    }
    read(raw).map_err(|e| NotificationError::InvalidField {
        field: e.field,
        reason: e.reason,
    })
}

fn read(raw: Map<String, Value>) -> Result<Notification, FieldError> {
    if let Some(method) = wire::opt_str(&raw, "method")?
        && method != NOTIFY_METHOD
    {
        return Err(FieldError {
            field: "method",
            reason: format!("expected {NOTIFY_METHOD}, got {method:?}"),
        });
    }
    let merchant_order_no = wire::opt_str(&raw, "merchant_order_no")?;
    let trans_no = wire::opt_str(&raw, "trans_no")?;
    if merchant_order_no.is_none() && trans_no.is_none() {
        return Err(FieldError {
            field: "merchant_order_no",
            reason: "neither merchant_order_no nor trans_no given".into(),
        });
    }
    let currency = wire::opt_currency(&raw)?;
    let money = |field| match currency {
        Some(c) => wire::opt_money(&raw, field, c),
        None => match wire::opt_str(&raw, field)? {
            Some(_) => Err(FieldError {
                field,
                reason: "amount without price_currency".into(),
            }),
            None => Ok(None),
        },
    };
    Ok(Notification {
        http_request_id: wire::opt_str(&raw, "http_request_id")?,
        merchant_no: wire::req_str(&raw, "merchant_no")?,
        merchant_order_no,
        trans_no,
        trans_type: wire::opt_i64(&raw, "trans_type")?,
        trans_status: wire::trans_status(&raw)?,
        currency,
        order_amount: money("order_amount")?,
        trans_amount: money("trans_amount")?,
        trans_end_time: wire::opt_str(&raw, "trans_end_time")?,
        pay_method_id: wire::opt_str(&raw, "pay_method_id")?,
        trans_error_code: wire::opt_str(&raw, "trans_error_code")?,
        trans_error_msg: wire::opt_str(&raw, "trans_error_msg")?,
        trans_fee_c: wire::lenient_money(&raw, "trans_fee_c", currency),
        app_id: wire::opt_str(&raw, "app_id")?,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(extra: Value) -> Map<String, Value> {
        let mut m = json!({
            "method": NOTIFY_METHOD, "merchant_no": "M1", "merchant_order_no": "o1",
            "trans_no": "T1", "trans_status": 2, "price_currency": "USD",
            "order_amount": "1.00", "app_id": "wzabc",
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        if let Value::Object(extra) = extra {
            m.extend(extra);
        }
        m
    }

    #[test]
    fn fee_and_app_are_read_and_a_bad_fee_does_not_refuse_the_notification() {
        let n = read(fields(json!({"trans_fee_c": "0.01"}))).unwrap();
        assert_eq!(
            n.trans_fee_c.map(|m| (m.minor(), m.currency().code())),
            Some((1, "USD"))
        );
        assert_eq!(n.app_id.as_deref(), Some("wzabc"));
        for bad in [
            json!("0.001"),
            json!("fee"),
            json!({"x": 1}),
            json!("-0.01"),
        ] {
            let n = read(fields(json!({ "trans_fee_c": bad }))).unwrap();
            assert_eq!(n.trans_fee_c, None, "{bad}");
            assert_eq!(
                n.order_amount.map(|m| m.minor()),
                Some(100),
                "the rest is read"
            );
        }
        let mut without = fields(json!({}));
        without.remove("app_id");
        let n = read(without).unwrap();
        assert_eq!((n.trans_fee_c, n.app_id), (None, None));
    }
}
