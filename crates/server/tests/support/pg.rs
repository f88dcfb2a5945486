//! A fresh, empty PostgreSQL database per test, from the test services' admin URL.

/// Creates a database and returns its URL.
pub fn fresh_postgres_url() -> String {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let admin = std::env::var("PAYFAC_TEST_DATABASE_URL")
        .expect("PAYFAC_TEST_DATABASE_URL is not set: run `. scripts/test-services.sh` first");
    let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut conn = PgConnection::establish(&admin).expect("admin connection");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create database");
    let mut url = url::Url::parse(&admin).expect("url");
    url.set_path(&name);
    url.to_string()
}
