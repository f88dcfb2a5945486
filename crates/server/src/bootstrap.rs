//! Operator keys at start: the Kubernetes bootstrap key, and the embedded first-start key.

use crate::config::Config;
use domain::Secret;
use store::api_keys::{self, ApiKey, ApiKeyKind};
use store::{Database, clock};

/// What to print after the first start of an empty installation.
pub struct Welcome {
    operator_key: Secret,
}

/// Creates an operator key (the secret is returned once and never stored).
pub async fn create_operator_key(
    db: &Database,
    label: &str,
    value: Option<Secret>,
) -> anyhow::Result<(String, Secret)> {
    let secret = value.unwrap_or_else(|| api_keys::generate_secret(ApiKeyKind::Operator));
    let key = ApiKey::new(
        ApiKeyKind::Operator,
        None,
        &secret,
        label,
        &[],
        None,
        clock::now_ms(),
    )?;
    let id = key.id.clone();
    db.write(move |tx| api_keys::insert(tx, &key)).await?;
    Ok((id, secret))
}

/// Seeds `PAYFAC_BOOTSTRAP_OPERATOR_KEY` when it does not exist yet; on an installation without
/// any operator key, creates one and returns the welcome text that shows it.
pub async fn ensure_operator_keys(
    config: &Config,
    db: &Database,
) -> anyhow::Result<Option<Welcome>> {
    if let Some(secret) = config
        .bootstrap_operator_key
        .clone()
        .filter(|v| !v.is_empty())
    {
        let probe = secret.clone();
        let exists = db
            .read(move |tx| {
                Ok(api_keys::find_active_by_secret(tx, probe.expose(), clock::now_ms())?.is_some())
            })
            .await?;
        if !exists {
            create_operator_key(db, "bootstrap", Some(secret)).await?;
            tracing::info!("created the bootstrap operator key");
        }
        return Ok(None);
    }
    let active = db
        .read(|tx| api_keys::count_active_operator_keys(tx, clock::now_ms()))
        .await?;
    if active > 0 {
        return Ok(None);
    }
    let (_, operator_key) = create_operator_key(db, "first-start", None).await?;
    Ok(Some(Welcome { operator_key }))
}

impl Welcome {
    /// The first-start banner with copy-paste next steps.
    pub fn render(&self, base: &str) -> String {
        let op = self.operator_key.expose();
        format!(
            r#"
================================================================================
 payfac is running at {base}   (embedded mode: SQLite, in-process, CodePay sandbox)

 Your operator key (shown once, keep it):
   export OP={op}

 Next steps:
 1. Onboard a merchant (sandbox assigns a CodePay merchant number):
   curl -s {base}/v1/merchants -H "Authorization: Bearer $OP" \
        -H 'content-type: application/json' -d '{{"name":"Demo Shop","default_currency":"USD"}}'
   export MER=<id from the answer>
 2. Give it an API key:
   curl -s -X POST {base}/v1/merchants/$MER/api-keys -H "Authorization: Bearer $OP" \
        -H 'content-type: application/json' -d '{{"label":"web shop"}}'
   export SK=<secret from the answer>
 3. Create an MPM payment (the answer carries the QR code and a pay page):
   curl -s {base}/v1/payments -H "Authorization: Bearer $SK" -H 'content-type: application/json' \
        -d '{{"mode":"mpm","amount":1250,"currency":"USD","merchant_order_id":"order-1","wallet":"alipay"}}'
 4. Pay it as the customer's wallet would, in the sandbox:
   curl -s {base}/sandbox/codepay/sim/mpm/pay -H 'content-type: application/json' \
        -d '{{"qr_code":"<qr_code from step 3>"}}'
 5. See it succeeded:
   curl -s {base}/v1/payments/<payment id> -H "Authorization: Bearer $SK"

 API reference: {base}/docs    Health: {base}/healthz    Metrics: {base}/metrics
================================================================================
"#
        )
    }
}
