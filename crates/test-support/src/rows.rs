//! Rows the store's and the server's tests insert directly, written once.

use store::merchants::{Merchant, MerchantStatus};

/// An active merchant "Shop" (CodePay `M1`, USD, alipay) with id `id`, created at `now`
/// (Unix ms).
pub fn merchant_row(id: &str, now: i64) -> Merchant {
    Merchant {
        id: id.to_owned(),
        name: "Shop".into(),
        status: MerchantStatus::Active.as_str().into(),
        gateway_account_id: None,
        codepay_merchant_no: Some("M1".into()),
        codepay_store_no: None,
        default_currency: "USD".into(),
        allowed_wallets: r#"["alipay"]"#.into(),
        max_amount_minor: None,
        contact: None,
        metadata: "{}".into(),
        created_at: now,
        updated_at: now,
    }
}
