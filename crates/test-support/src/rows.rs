//! Rows the store's and the server's tests insert directly, written once.

use store::merchants::{Merchant, MerchantStatus};
use store::webhook_endpoints::{self, WebhookEndpoint};
use store::{DbConnection, StoreResult};

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
        routing: "[]".into(),
    }
}

/// Inserts `n` enabled endpoints of `merchant_id` subscribed to every event
/// (`https://hooks.example/{i}`), in the caller's transaction.
pub fn insert_endpoints(
    c: &mut DbConnection,
    merchant_id: &str,
    n: usize,
    now: i64,
) -> StoreResult<()> {
    for i in 0..n {
        let ep = WebhookEndpoint::new(
            domain::WebhookEndpointId::generate().as_str(),
            merchant_id,
            &format!("https://hooks.example/{i}"),
            r#"["*"]"#.into(),
            "sealed".into(),
            now,
        );
        webhook_endpoints::insert(c, &ep)?;
    }
    Ok(())
}
