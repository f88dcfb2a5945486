//! Keys for tests: RSA keys generated once per test process, and master keyrings for sealing.

use gateway_client::PrivateKey;
use std::sync::{Arc, OnceLock};
use store::sealing::MasterKeyring;

/// A master key (base64 of 32 bytes) for tests that need the same key in two places, e.g. two
/// `payfac` processes on one database (`PAYFAC_MASTER_KEY`). Never a production key.
pub const TEST_MASTER_KEY: &str = "dGVzdC1tYXN0ZXIta2V5LXRlc3QtbWFzdGVyLWtleSE=";

// 2048-bit RSA generation takes up to seconds in a debug build, and the tests need a handful of
// keys: each role's key is generated once per test process and shared.

/// The merchant app's signing key (the simulator's [`SimServer`](crate::SimServer) registers its
/// public half).
pub fn app_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate_2048().expect("app key"))
}

/// The gateway's signing key ([`sim_config`](crate::sim_config) makes the simulator sign with it).
pub fn gateway_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate_2048().expect("gateway key"))
}

/// A third key, different from both: a wrong signer, or a rotated key.
pub fn other_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate_2048().expect("other key"))
}

/// A keyring with a fresh random master key and no previous keys.
pub fn keyring() -> Arc<MasterKeyring> {
    let key = MasterKeyring::generate_key().expect("master key");
    Arc::new(MasterKeyring::new(key.expose(), &[]).expect("keyring"))
}
