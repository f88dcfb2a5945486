//! RSA-2048 SHA256withRSA (PKCS#1 v1.5) sign and verify: the `rsa` crate against aws-lc-rs, plus
//! payfac's own message path (canonical string + sign + base64). Results: docs/benchmarks.md.

// criterion_group! generates undocumented public functions; a bench binary has no API to document.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};
use criterion::{Criterion, criterion_group, criterion_main};
use gateway_client::{PrivateKey, sign_message, verify_message};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::sha2::Sha256;
use serde_json::{Map, Value, json};

/// A typical CPM request: what every upstream call signs.
fn request() -> Map<String, Value> {
    json!({
        "app_id": "wz9f2a175d0e0ef632", "format": "JSON", "charset": "UTF-8", "version": "1.0",
        "sign_type": "RSA2", "timestamp": "1700000000000", "method": "bscanc.pay.submit",
        "merchant_no": "302100041048", "merchant_order_no": "PF01JDQ2Y8K3M4N5P6Q7R8S9T0",
        "pay_method_id": "WeChatPay", "price_currency": "USD", "order_amount": "34.50",
        "description": "Coffee and cake", "auth_code": "134567890123456789",
        "notify_url": "https://payfac.example.com/callbacks/codepay"
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let key = PrivateKey::generate_2048().expect("key generation");
    let pem = key.to_pkcs8_pem();
    let rsa_key = rsa::PrivateKey::from_pkcs8_pem(pem.expose()).expect("rsa reads its own PEM");
    let rsa_public = rsa_key.to_public_key();
    let der = rsa_key.to_pkcs8_der().expect("pkcs8");
    let aws_key = RsaKeyPair::from_pkcs8(der.as_bytes()).expect("aws-lc reads pkcs8");
    let aws_rng = aws_lc_rs::rand::SystemRandom::new();
    let public_der = {
        use aws_lc_rs::signature::KeyPair;
        aws_key.public_key().as_ref().to_vec()
    };
    let aws_public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_der);

    let mut msg = request();
    let data = gateway_client::canonical_string(&msg).into_bytes();
    let signature = rsa_key.pkcs1v15_sign::<Sha256>(&data).expect("sign");

    let mut group = c.benchmark_group("rsa2048_sha256_pkcs1v15");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("sign/rsa-crate", |b| {
        b.iter(|| {
            rsa_key
                .pkcs1v15_sign::<Sha256>(black_box(&data))
                .expect("sign")
        })
    });
    group.bench_function("sign/aws-lc-rs", |b| {
        let mut out = vec![0u8; aws_key.public_modulus_len()];
        b.iter(|| {
            aws_key
                .sign(&RSA_PKCS1_SHA256, &aws_rng, black_box(&data), &mut out)
                .expect("sign")
        })
    });
    group.bench_function("verify/rsa-crate", |b| {
        b.iter(|| {
            rsa_public
                .pkcs1v15_verify::<Sha256>(black_box(&data), &signature)
                .expect("verify")
        })
    });
    group.bench_function("verify/aws-lc-rs", |b| {
        b.iter(|| {
            aws_public
                .verify(black_box(&data), &signature)
                .expect("verify")
        })
    });
    group.bench_function("payfac/sign_message", |b| {
        b.iter(|| sign_message(black_box(&mut msg), &key))
    });
    let public = key.public_key();
    sign_message(&mut msg, &key);
    group.bench_function("payfac/verify_message", |b| {
        b.iter(|| verify_message(black_box(&msg), &public).expect("verify"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
