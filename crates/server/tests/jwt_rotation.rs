//! Rotating the master key (or the configured JWT key) keeps outstanding merchant tokens valid
//! while the old key is configured as previous, and only then.

use domain::Secret;
use server::config::Config;
use server::wiring::token_keys;
use store::sealing::MasterKeyring;
use tenant_api::auth::jwt::{AUDIENCE, Claims, TokenIssuer};

fn claims() -> Claims {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    Claims {
        sub: "mer_01J0000000000000000000000".into(),
        key: "key_x".into(),
        scope: "payments:read".into(),
        iat: now,
        exp: now + 600,
        iss: "payfac".into(),
        aud: AUDIENCE.into(),
        store_id: None,
        terminal_id: None,
    }
}

fn issuer(config: &Config, ring: &MasterKeyring) -> TokenIssuer {
    TokenIssuer::new(token_keys(config, ring)).expect("issuer")
}

#[test]
fn master_key_rotation_keeps_tokens_during_the_overlap_only() {
    let old = MasterKeyring::generate_key().expect("key");
    let new = MasterKeyring::generate_key().expect("key");
    let config = Config::default();
    let before = MasterKeyring::new(old.expose(), &[]).expect("ring");
    let token = issuer(&config, &before).mint(&claims()).expect("mint");

    let overlap = MasterKeyring::new(new.expose(), &[old.expose().to_owned()]).expect("ring");
    let during = issuer(&config, &overlap);
    assert!(
        during.verify(&token).is_ok(),
        "old token during the overlap"
    );
    let fresh = during.mint(&claims()).expect("mint");
    assert!(during.verify(&fresh).is_ok());

    let after = MasterKeyring::new(new.expose(), &[]).expect("ring");
    assert!(
        issuer(&config, &after).verify(&token).is_err(),
        "old token after the old key is dropped"
    );
    assert!(issuer(&config, &after).verify(&fresh).is_ok());
}

#[test]
fn configured_jwt_key_rotation_keeps_tokens_during_the_overlap_only() {
    let ring = MasterKeyring::new(MasterKeyring::generate_key().expect("key").expose(), &[])
        .expect("ring");
    let a = "a".repeat(40);
    let b = "b".repeat(40);
    let config = |current: &str, previous: Option<&str>| Config {
        jwt_signing_key: Some(Secret::new(current.to_owned())),
        jwt_signing_key_previous: previous.map(|p| Secret::new(p.to_owned())),
        ..Config::default()
    };
    let token = issuer(&config(&a, None), &ring)
        .mint(&claims())
        .expect("mint");
    assert!(issuer(&config(&b, Some(&a)), &ring).verify(&token).is_ok());
    assert!(issuer(&config(&b, None), &ring).verify(&token).is_err());
}
