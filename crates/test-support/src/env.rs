//! The test services' URLs from the environment.

/// How to get the variables; every panic below ends with it.
const HOW: &str = "run `. scripts/test-services.sh` (from the repository root) in this shell first; \
it starts PostgreSQL and Redis and exports PAYFAC_TEST_DATABASE_URL and PAYFAC_TEST_REDIS_URL";

fn required(name: &str, what: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("{name} is not set ({what}): {HOW}"),
    }
}

/// `PAYFAC_TEST_DATABASE_URL`: a PostgreSQL URL whose user may create databases.
///
/// # Panics
/// When the variable is unset or empty, with a message telling how to set it.
pub fn pg_admin_url() -> String {
    required(
        "PAYFAC_TEST_DATABASE_URL",
        "a PostgreSQL URL allowed to create databases",
    )
}

/// `PAYFAC_TEST_REDIS_URL`: the Redis the coordination tests share (keys are prefixed per test).
///
/// # Panics
/// When the variable is unset or empty, with a message telling how to set it.
pub fn redis_url() -> String {
    required("PAYFAC_TEST_REDIS_URL", "a Redis URL")
}
