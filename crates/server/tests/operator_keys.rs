//! Operator-key bootstrap is idempotent and revocation-proof, and never generates (and so never
//! prints) a key on PostgreSQL.

use domain::{ApiKeyId, Secret};
use server::bootstrap::ensure_operator_keys;
use server::config::Config;
use store::{Database, api_keys, clock::now_ms};
use test_support::db::{fresh_postgres, fresh_sqlite};

fn with_bootstrap(secret: &str) -> Config {
    Config {
        bootstrap_operator_key: Some(Secret::new(secret.to_owned())),
        ..Config::default()
    }
}

async fn a_revoked_bootstrap_key_stays_revoked(db: Database) {
    let secret = format!("op_bootstrap_{}", ulid::Ulid::new());
    let config = with_bootstrap(&secret);
    ensure_operator_keys(&config, &db)
        .await
        .expect("first start");
    ensure_operator_keys(&config, &db)
        .await
        .expect("second start is a no-op");
    let probe = secret.clone();
    let key = db
        .read(move |tx| api_keys::find_active_by_secret(tx, &probe, now_ms()))
        .await
        .expect("read")
        .expect("the bootstrap key is active");
    let id = ApiKeyId::parse(&key.id).expect("id");
    assert!(
        db.write(move |tx| api_keys::revoke(tx, None, &id, now_ms()))
            .await
            .expect("revoke")
    );
    // The next start neither fails nor brings the key back.
    ensure_operator_keys(&config, &db)
        .await
        .expect("a start after revocation");
    let probe = secret.clone();
    let active = db
        .read(move |tx| api_keys::find_active_by_secret(tx, &probe, now_ms()))
        .await
        .expect("read");
    assert!(active.is_none(), "revoked key came back");
    let count = db
        .read(|tx| api_keys::count_active_operator_keys(tx, now_ms()))
        .await
        .expect("count");
    assert_eq!(count, 0);
}

#[tokio::test]
async fn sqlite_a_revoked_bootstrap_key_stays_revoked() {
    let (db, _dir) = fresh_sqlite().await;
    a_revoked_bootstrap_key_stays_revoked(db).await;
}

#[tokio::test]
async fn postgres_a_revoked_bootstrap_key_stays_revoked() {
    a_revoked_bootstrap_key_stays_revoked(fresh_postgres().await).await;
}

#[tokio::test]
async fn the_first_start_key_is_generated_only_in_the_embedded_mode() {
    let (sqlite, _dir) = fresh_sqlite().await;
    assert!(
        ensure_operator_keys(&Config::default(), &sqlite)
            .await
            .expect("start")
            .is_some()
    );
    let postgres = fresh_postgres().await;
    assert!(
        ensure_operator_keys(&Config::default(), &postgres)
            .await
            .expect("start")
            .is_none(),
        "no key is generated (and printed into pod logs) on PostgreSQL"
    );
    let count = postgres
        .read(|tx| api_keys::count_active_operator_keys(tx, now_ms()))
        .await
        .expect("count");
    assert_eq!(count, 0);
}
