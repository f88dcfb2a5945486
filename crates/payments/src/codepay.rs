//! [`Upstream`] over `gateway_client::GatewayClient`: each port call is one signed CodePay
//! operation, and CodePay's answers become the engine's [`UpstreamOrder`].

use crate::ports::{
    CpmOrder, Outcome, PaymentOrder, QrCreated, QrOrder, RefundOrder, Upstream, UpstreamMerchant,
    UpstreamOrder,
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use gateway_client::{
    CallOutcome, CpmSubmit, GatewayClient, MerchantRef, MpmCreate, OrderQuery, OrderRef,
    PaymentFields, RefundQuery, RefundSubmit, Revoke, TransactionResult,
};

/// CodePay through the gateway client; `notify_url` is payfac's `/callbacks/codepay`.
pub struct CodePayUpstream {
    client: GatewayClient,
    notify_url: Option<String>,
}

impl CodePayUpstream {
    /// Wraps a client; `notify_url` is sent with every order and refund.
    pub fn new(client: GatewayClient, notify_url: Option<String>) -> Self {
        Self { client, notify_url }
    }
}

impl CodePayUpstream {
    /// The fields an MPM order and a CPM submission share.
    fn payment_fields(&self, o: &PaymentOrder) -> PaymentFields {
        PaymentFields {
            merchant: merchant_ref(&o.merchant),
            merchant_order_no: o.merchant_order_no.clone(),
            pay_method_id: o.wallet.pay_method_id().to_owned(),
            amount: o.amount,
            description: o.description.clone(),
            notify_url: self.notify_url.clone(),
            attach: None,
        }
    }
}

fn merchant_ref(m: &UpstreamMerchant) -> MerchantRef {
    MerchantRef {
        merchant_no: m.merchant_no.clone(),
        store_no: m.store_no.clone(),
        terminal_sn: m.terminal_sn.clone(),
    }
}

/// CodePay's answer as the engine's [`Outcome`]. A refusal whose code does not say that
/// nothing happened (system busy, a code payfac does not know) is an unknown outcome, settled
/// by query: "declined" must mean CodePay applied nothing. A duplicate `merchant_order_no`
/// stays a refusal the engine recognises (it settles that one by query itself).
fn outcome<T, U>(o: CallOutcome<T>, f: impl FnOnce(T) -> U) -> Outcome<U> {
    match o {
        CallOutcome::Success(t) => Outcome::Success(f(t)),
        CallOutcome::Declined { code, msg } if unknown_outcome(&code) => Outcome::Unknown {
            reason: format!("CodePay {code}: {msg}"),
        },
        CallOutcome::Declined { code, msg } => Outcome::Declined { code, msg },
        CallOutcome::Unknown { reason } => Outcome::Unknown {
            reason: reason.to_string(),
        },
    }
}

fn unknown_outcome(code: &str) -> bool {
    use gateway_client::codes::{CodeClass, classify};
    matches!(
        classify(code),
        CodeClass::SystemBusy | CodeClass::Unrecognised
    )
}

/// CodePay date-times are `YYYY-MM-DD HH:mm:ss` in UTC.
pub(crate) fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok())
        .map(|n| n.and_utc())
}

fn order_of(t: TransactionResult) -> UpstreamOrder {
    UpstreamOrder {
        amount: t.paid_amount.or(t.order_amount).or(t.trans_amount),
        trans_no: Some(t.trans_no),
        status: t.trans_status,
        end_time: parse_time(t.trans_end_time.as_deref()),
        error_code: t.trans_error_code,
        error_msg: t.trans_error_msg,
        fee: t.trans_fee_c,
    }
}

fn refund_of(t: TransactionResult) -> UpstreamOrder {
    UpstreamOrder {
        amount: t.refund_amount(),
        trans_no: Some(t.trans_no),
        status: t.trans_status,
        end_time: parse_time(t.trans_end_time.as_deref()),
        error_code: t.trans_error_code,
        error_msg: t.trans_error_msg,
        fee: None,
    }
}

#[async_trait]
impl Upstream for CodePayUpstream {
    async fn create_qr(&self, o: &QrOrder) -> Outcome<QrCreated> {
        let op = MpmCreate {
            payment: self.payment_fields(&o.order),
            expires_secs: u32::try_from(o.expires_in).ok(),
        };
        outcome(self.client.create_mpm(&op).await, |c| QrCreated {
            trans_no: Some(c.trans_no),
            qr_code: c.qrcode_url,
        })
    }

    async fn submit_cpm(&self, o: &CpmOrder) -> Outcome<UpstreamOrder> {
        let op = CpmSubmit {
            payment: self.payment_fields(&o.order),
            auth_code: o.auth_code.clone(),
        };
        outcome(self.client.submit_cpm(&op).await, order_of)
    }

    async fn query(&self, m: &UpstreamMerchant, no: &str) -> Outcome<UpstreamOrder> {
        let op = OrderQuery {
            merchant: merchant_ref(m),
            order: OrderRef::MerchantOrderNo(no.to_owned()),
            currency: None,
        };
        outcome(self.client.query_order(&op).await, order_of)
    }

    async fn revoke(&self, m: &UpstreamMerchant, no: &str) -> Outcome<()> {
        let op = Revoke {
            merchant: merchant_ref(m),
            merchant_order_no: no.to_owned(),
        };
        outcome(self.client.revoke(&op).await, |()| ())
    }

    async fn submit_refund(&self, o: &RefundOrder) -> Outcome<Option<String>> {
        let op = RefundSubmit {
            merchant: merchant_ref(&o.merchant),
            original: OrderRef::MerchantOrderNo(o.orig_merchant_order_no.clone()),
            merchant_order_no: o.merchant_order_no.clone(),
            amount: o.amount,
            description: o.description.clone(),
            notify_url: self.notify_url.clone(),
        };
        outcome(self.client.submit_refund(&op).await, |a| Some(a.trans_no))
    }

    async fn query_refund(&self, m: &UpstreamMerchant, no: &str) -> Outcome<UpstreamOrder> {
        let op = RefundQuery {
            merchant: merchant_ref(m),
            refund: OrderRef::MerchantOrderNo(no.to_owned()),
            currency: None,
        };
        outcome(self.client.query_refund(&op).await, refund_of)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn busy_and_unknown_codes_are_unknown_outcomes_not_refusals() {
        use gateway_client::CallOutcome;
        let declined = |code: &str| CallOutcome::<()>::Declined {
            code: code.into(),
            msg: "x".into(),
        };
        let unknown = |o: super::Outcome<()>| matches!(o, super::Outcome::Unknown { .. });
        assert!(unknown(super::outcome(declined("E09999"), |()| ())));
        assert!(unknown(super::outcome(declined("E77777"), |()| ())));
        assert!(!unknown(super::outcome(declined("E04111"), |()| ())));
        assert!(!unknown(super::outcome(declined("E04101"), |()| ())));
        assert!(!unknown(super::outcome(declined("E04201"), |()| ())));
    }

    #[test]
    fn codepay_times_are_utc() {
        let t = super::parse_time(Some("2026-11-26 05:31:52")).expect("parsed");
        assert_eq!(t.to_rfc3339(), "2026-11-26T05:31:52+00:00");
        assert!(super::parse_time(Some("yesterday")).is_none());
    }
}
