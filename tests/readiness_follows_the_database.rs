//! Readiness follows the database during an outage; liveness does not.

use crate::support::{Backend, Payfac};
use std::time::Duration;

/// Readiness follows the database; liveness does not (no restart storms during an outage).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_goes_false_while_the_database_is_unreachable_and_liveness_stays_true() {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let payfac = Payfac::start(Backend::PostgresRedis, &[]).await;
    let name = url::Url::parse(&payfac.database_url)
        .expect("url")
        .path()
        .trim_start_matches('/')
        .to_owned();
    let admin = test_support::pg_admin_url();
    let mut conn = PgConnection::establish(&admin).expect("admin connection");
    let status = |path: &'static str| {
        let (http, base) = (payfac.http.clone(), payfac.base.clone());
        async move {
            http.get(format!("{base}{path}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    assert_eq!(status("/readyz").await, 200);

    // The outage: no new connections, and the existing ones are cut.
    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut conn)
        .expect("block");
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&mut conn)
    .expect("terminate");
    let mut saw_unready = false;
    for _ in 0..100 {
        if status("/readyz").await == 503 {
            saw_unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_unready, "readiness reports the outage");
    assert_eq!(status("/healthz").await, 200, "liveness stays true");

    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut conn)
        .expect("unblock");
    let mut ready_again = false;
    for _ in 0..200 {
        if status("/readyz").await == 200 {
            ready_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready_again, "ready again once the database is back");
}
