//! Keys shared by unit tests: generating RSA keys in debug builds is slow enough to matter.

use std::sync::OnceLock;

use crate::signing::PrivateKey;

/// The app's key in unit tests.
pub(crate) fn app_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate_2048().unwrap())
}

/// The gateway's key in unit tests.
pub(crate) fn gateway_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate_2048().unwrap())
}
