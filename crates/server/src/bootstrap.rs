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

/// Seeds `PAYFAC_BOOTSTRAP_OPERATOR_KEY` the first time it is seen; on an embedded (SQLite)
/// installation without any operator key, creates one and returns the welcome text that shows
/// it.
///
/// Idempotent and revocation-proof: the bootstrap key is looked up by its hash whatever its
/// state, so a key revoked with `payfac admin operator-keys revoke` (or the API) stays revoked
/// at the next start instead of being re-inserted, and the start does not fail on the unique
/// hash. On PostgreSQL no key is generated: printing one would put a live credential into pod
/// logs. The operator sets `PAYFAC_BOOTSTRAP_OPERATOR_KEY` from a Kubernetes Secret, or runs
/// `payfac admin operator-keys create` in a pod, instead.
pub async fn ensure_operator_keys(
    config: &Config,
    db: &Database,
) -> anyhow::Result<Option<Welcome>> {
    if let Some(secret) = config
        .bootstrap_operator_key
        .clone()
        .filter(|v| !v.is_empty())
    {
        let hash = api_keys::hash_secret(secret.expose());
        let existing = db.read(move |tx| api_keys::find_by_hash(tx, &hash)).await?;
        match existing {
            None => {
                // Two replicas starting at once may both get here: the loser's insert fails on
                // the unique hash, and the key it wanted exists all the same.
                match create_operator_key(db, "bootstrap", Some(secret)).await {
                    Ok(_) => tracing::info!("created the bootstrap operator key"),
                    Err(e) => {
                        tracing::debug!(error = %e, "bootstrap operator key created concurrently")
                    }
                }
            }
            Some(key) if !key.is_active(clock::now_ms()) => tracing::warn!(
                key_id = %key.id,
                "PAYFAC_BOOTSTRAP_OPERATOR_KEY is revoked or expired; it stays so (remove the setting)"
            ),
            Some(_) => {}
        }
        return Ok(None);
    }
    let active = db
        .read(|tx| api_keys::count_active_operator_keys(tx, clock::now_ms()))
        .await?;
    if active > 0 {
        return Ok(None);
    }
    if db.backend() != store::Backend::Sqlite {
        tracing::warn!(
            "no operator key exists: create one with `payfac admin operator-keys create` \
             (e.g. kubectl exec into a payfac pod) or set PAYFAC_BOOTSTRAP_OPERATOR_KEY from a \
             Secret; none is generated here, so that none is printed into the logs"
        );
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
 6. Stores and tills: add a store and a terminal (the sandbox numbers them), then mint a POS
    token bound to the terminal; it pays there only and sees no other till's payments:
   curl -s {base}/v1/merchants/$MER/stores -H "Authorization: Bearer $OP" \
        -H 'content-type: application/json' -d '{{"name":"Main Street"}}'
   curl -s {base}/v1/stores/<store id>/terminals -H "Authorization: Bearer $OP" \
        -H 'content-type: application/json' -d '{{"name":"Till 1","kind":"pos"}}'
   curl -s {base}/v1/tokens -H "Authorization: Bearer $SK" -H 'content-type: application/json' \
        -d '{{"scopes":["payments:write","payments:read"],"terminal_id":"<terminal id>"}}'

 API reference: {base}/docs    Health: {base}/healthz    Metrics: {base}/metrics
================================================================================
"#
        )
    }
}
