//! The published CodePay vectors verify, and changing any byte of message or signature breaks them.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gateway_client::PublicKey;

fn fixtures() -> PathBuf {
    // A copy of the published vectors (shared/fixtures/codepay) kept in the repository, so the
    // test needs nothing outside the checkout.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codepay");
    assert!(
        dir.join("sample-app-public.pem").is_file(),
        "CodePay signing vectors missing in {}",
        dir.display()
    );
    dir
}

fn read(name: &str) -> Vec<u8> {
    let path = fixtures().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn key() -> PublicKey {
    PublicKey::from_pem_or_base64(&String::from_utf8(read("sample-app-public.pem")).unwrap())
        .unwrap()
}

fn vector(n: u32) -> (Vec<u8>, String) {
    let mut message = read(&format!("vector-{n}.message.txt"));
    // The files end with a newline that is not part of the signed bytes.
    while message.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        message.pop();
    }
    let signature = String::from_utf8(read(&format!("vector-{n}.signature.b64"))).unwrap();
    (message, signature.trim().to_owned())
}

#[test]
fn published_vectors_verify() {
    let key = key();
    for n in [1, 2] {
        let (message, signature) = vector(n);
        assert!(key.verify(&message, &signature), "vector {n}");
    }
}

#[test]
fn vector_two_is_the_canonical_string_of_its_request() {
    let (message, signature) = vector(2);
    let mut msg = serde_json::Map::new();
    for pair in std::str::from_utf8(&message).unwrap().split('&').rev() {
        let (k, v) = pair.split_once('=').unwrap();
        msg.insert(k.to_owned(), serde_json::Value::String(v.to_owned()));
    }
    assert_eq!(
        gateway_client::canonical_string(&msg).as_bytes(),
        &message[..]
    );
    msg.insert("sign".into(), serde_json::Value::String(signature));
    assert_eq!(gateway_client::verify_message(&msg, &key()), Ok(()));
}

#[test]
fn tampering_any_byte_of_message_or_signature_fails() {
    let key = key();
    for n in [1, 2] {
        let (message, signature) = vector(n);
        for i in 0..message.len() {
            let mut m = message.clone();
            m[i] ^= 0x01;
            assert!(!key.verify(&m, &signature), "vector {n} message byte {i}");
        }
        let raw = STANDARD.decode(&signature).unwrap();
        for i in 0..raw.len() {
            for bit in [0x01, 0x80] {
                let mut s = raw.clone();
                s[i] ^= bit;
                assert!(
                    !key.verify(&message, &STANDARD.encode(&s)),
                    "vector {n} sig byte {i}"
                );
            }
        }
        // And every character of the base64 text, including the final ones whose low bits are padding.
        let chars: Vec<char> = signature.chars().collect();
        for i in 0..chars.len() {
            let mut c = chars.clone();
            c[i] = if c[i] == 'A' { 'B' } else { 'A' };
            let text: String = c.into_iter().collect();
            assert!(!key.verify(&message, &text), "vector {n} sig char {i}");
        }
        assert!(!key.verify(&message[..message.len() - 1], &signature));
        assert!(!key.verify(&[&message[..], b"\n"].concat(), &signature));
    }
}
