//! Re-sealing every secret at rest under the current master key (master-key rotation).
//!
//! Each sealed column names the key that sealed it, so a value still under a previous key is
//! found by its prefix, opened with that key (the keyring must still hold it) and sealed again
//! with the current one, bound to the same row. Values that are not sealed at all (idempotent
//! responses stored before sealing existed) are left alone.

use crate::schema::{gateway_accounts, idempotency_keys, webhook_endpoints};
use crate::sealing::{MasterKeyring, binding};
use crate::{DbConnection, StoreResult, on_backend};
use diesel::prelude::*;

/// What a rewrap pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// Values sealed again under the current key.
    pub resealed: usize,
    /// Values that could not be opened (their key is no longer configured).
    pub unreadable: usize,
}

fn reseal(
    keyring: &MasterKeyring,
    sealed: &str,
    binding: &str,
    report: &mut RewrapReport,
) -> Option<String> {
    if !sealed.starts_with("v1.") || !keyring.needs_reseal(sealed) {
        return None;
    }
    match keyring
        .open_bytes(sealed, binding)
        .and_then(|plain| keyring.seal(&plain, binding))
    {
        Ok(fresh) => {
            report.resealed += 1;
            Some(fresh)
        }
        Err(_) => {
            report.unreadable += 1;
            None
        }
    }
}

/// Re-seals every gateway private key, webhook secret and stored idempotent response that is
/// still under a previous master key. Run inside one write transaction.
pub fn rewrap_all(conn: &mut DbConnection, keyring: &MasterKeyring) -> StoreResult<RewrapReport> {
    let mut report = RewrapReport::default();

    let accounts: Vec<(String, String)> = on_backend!(conn, |c| gateway_accounts::table
        .select((
            gateway_accounts::id,
            gateway_accounts::private_key_ciphertext
        ))
        .load(c))?;
    for (id, sealed) in accounts {
        if let Some(fresh) = reseal(
            keyring,
            &sealed,
            &binding::gateway_private_key(&id),
            &mut report,
        ) {
            on_backend!(conn, |c| diesel::update(gateway_accounts::table.find(&id))
                .set(gateway_accounts::private_key_ciphertext.eq(&fresh))
                .execute(c))?;
        }
    }

    let endpoints: Vec<(String, String, Option<String>)> =
        on_backend!(conn, |c| webhook_endpoints::table
            .select((
                webhook_endpoints::id,
                webhook_endpoints::secret_ciphertext,
                webhook_endpoints::previous_secret_ciphertext,
            ))
            .load(c))?;
    for (id, current, previous) in endpoints {
        if let Some(fresh) = reseal(
            keyring,
            &current,
            &binding::webhook_secret(&id),
            &mut report,
        ) {
            on_backend!(conn, |c| diesel::update(webhook_endpoints::table.find(&id))
                .set(webhook_endpoints::secret_ciphertext.eq(&fresh))
                .execute(c))?;
        }
        let previous_fresh = previous.as_deref().and_then(|p| {
            reseal(
                keyring,
                p,
                &binding::webhook_previous_secret(&id),
                &mut report,
            )
        });
        if let Some(fresh) = previous_fresh {
            on_backend!(conn, |c| diesel::update(webhook_endpoints::table.find(&id))
                .set(webhook_endpoints::previous_secret_ciphertext.eq(Some(&fresh)))
                .execute(c))?;
        }
    }

    let responses: Vec<(String, String, Option<String>)> =
        on_backend!(conn, |c| idempotency_keys::table
            .select((
                idempotency_keys::owner_id,
                idempotency_keys::idem_key,
                idempotency_keys::response_body
            ))
            .load(c))?;
    for (owner, key, body) in responses {
        let fresh = body.as_deref().and_then(|b| {
            reseal(
                keyring,
                b,
                &binding::idempotency_response(&owner, &key),
                &mut report,
            )
        });
        if let Some(fresh) = fresh {
            on_backend!(conn, |c| diesel::update(
                idempotency_keys::table.find((&owner, &key))
            )
            .set(idempotency_keys::response_body.eq(Some(&fresh)))
            .execute(c))?;
        }
    }
    Ok(report)
}
