use super::*;
use serde_json::json;
use std::sync::OnceLock;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Key generation takes a second in debug builds: share one key across the unit tests.
fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate_2048().unwrap())
}

#[test]
fn canonical_string_follows_contract_example() {
    let msg = obj(json!({
        "timestamp": "1700000000000", "method": "order.query", "sign": "xxx", "sign_type": "RSA2",
        "app_id": "wz9f2a175d0e0ef632", "store_no": "", "terminal_sn": null, "charset": "UTF-8",
        "format": "JSON", "version": "1.0", "merchant_no": "302100041048",
        "merchant_order_no": "TEST_1654765371046"
    }));
    assert_eq!(
        canonical_string(&msg),
        "app_id=wz9f2a175d0e0ef632&charset=UTF-8&format=JSON&merchant_no=302100041048&\
         merchant_order_no=TEST_1654765371046&method=order.query&sign_type=RSA2&\
         timestamp=1700000000000&version=1.0"
    );
}

#[test]
fn canonical_string_renders_non_strings() {
    let msg = obj(json!({"b": true, "a": 12, "c": {"x": [1, "y"]}, "d": [], "e": false}));
    assert_eq!(
        canonical_string(&msg),
        r#"a=12&b=true&c={"x":[1,"y"]}&d=[]&e=false"#
    );
}

#[test]
fn sign_then_verify_round_trips_and_tamper_fails() {
    let mut msg = obj(json!({"method": "order.query", "merchant_order_no": "A&B=C [x] 中文"}));
    sign_message(&mut msg, key());
    let public = key().public_key();
    assert_eq!(verify_message(&msg, &public), Ok(()));
    let mut tampered = msg.clone();
    tampered.insert("merchant_order_no".into(), json!("A&B=C [x] 中文 "));
    assert_eq!(
        verify_message(&tampered, &public),
        Err(SignatureError::Invalid)
    );
    tampered = msg.clone();
    tampered.remove("sign");
    assert_eq!(
        verify_message(&tampered, &public),
        Err(SignatureError::Missing)
    );
    tampered.insert("sign".into(), json!(""));
    assert_eq!(
        verify_message(&tampered, &public),
        Err(SignatureError::Missing)
    );
    tampered.insert("sign".into(), json!(12));
    assert_eq!(
        verify_message(&tampered, &public),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn signature_is_padded_standard_base64_of_modulus_length() {
    let sig = key().sign(b"123456789");
    assert_eq!(sig.len(), 344);
    assert!(sig.ends_with("=="));
    assert!(key().public_key().verify(b"123456789", &sig));
    assert!(!key().public_key().verify(b"123456788", &sig));
    assert!(!key().public_key().verify(b"123456789", "not base64!"));
}

#[test]
fn private_key_reads_every_supported_format() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let pkcs8_pem = key().to_pkcs8_pem();
    let pkcs1_pem = key()
        .inner
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::CRLF)
        .unwrap();
    let pkcs8_b64 = STANDARD.encode(key().pkcs8_der.as_bytes());
    let pkcs1_b64 = STANDARD.encode(key().inner.to_pkcs1_der().unwrap().as_bytes());
    let one_line_pem = format!("-----BEGIN PRIVATE KEY-----{pkcs8_b64}-----END PRIVATE KEY-----");
    for text in [
        pkcs8_pem.expose(),
        pkcs1_pem.as_str(),
        &pkcs8_b64,
        &pkcs1_b64,
        &one_line_pem,
    ] {
        let k = PrivateKey::from_pem_or_base64(text).unwrap();
        assert!(key().public_key().verify(b"m", &k.sign(b"m")));
    }
}

#[test]
fn public_key_reads_every_supported_format() {
    use rsa::pkcs1::EncodeRsaPublicKey;
    let public = key().public_key();
    let spki_pem = public.to_pem();
    let pkcs1_pem = public
        .inner
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .unwrap();
    let spki_b64 = STANDARD.encode(public.inner.to_public_key_der().unwrap().as_bytes());
    let pkcs1_b64 = STANDARD.encode(public.inner.to_pkcs1_der().unwrap().as_bytes());
    let sig = key().sign(b"m");
    for text in [spki_pem.as_str(), &pkcs1_pem, &spki_b64, &pkcs1_b64] {
        let k = PublicKey::from_pem_or_base64(text).unwrap();
        assert!(k.verify(b"m", &sig), "{text}");
        assert_eq!(k.to_pem(), spki_pem);
    }
}

#[test]
fn bad_keys_are_errors_not_panics() {
    assert!(matches!(
        PrivateKey::from_pem_or_base64(""),
        Err(KeyError::Encoding(_))
    ));
    assert!(matches!(
        PrivateKey::from_pem_or_base64("%%%"),
        Err(KeyError::Encoding(_))
    ));
    assert!(matches!(
        PrivateKey::from_pem_or_base64("AAAA"),
        Err(KeyError::Malformed(_))
    ));
    let public_pem = key().public_key().to_pem();
    assert!(matches!(
        PrivateKey::from_pem_or_base64(&public_pem),
        Err(KeyError::UnsupportedLabel(_))
    ));
    assert!(matches!(
        PublicKey::from_pem_or_base64(key().to_pkcs8_pem().expose()),
        Err(KeyError::UnsupportedLabel(_))
    ));
    assert!(matches!(
        PublicKey::from_pem_or_base64("-----BEGIN PUBLIC KEY-----\nAAAA"),
        Err(KeyError::Encoding(_))
    ));
}

#[test]
fn small_keys_are_refused() {
    let small = rsa::PrivateKey::new(&mut getrandom::SysRng, 1024).unwrap();
    let pem = small.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    assert_eq!(
        PrivateKey::from_pem_or_base64(&pem).unwrap_err(),
        KeyError::TooSmall(1024)
    );
}

#[test]
fn debug_never_shows_key_material() {
    assert_eq!(format!("{:?}", key()), "PrivateKey(***)");
    assert_eq!(format!("{:?}", key().public_key()), "PublicKey(rsa-2048)");
    assert_eq!(format!("{:?}", key().to_pkcs8_pem()), "***");
}

#[test]
fn aws_lc_and_rsa_crate_make_identical_signatures() {
    for data in [&b""[..], b"123456789", "中文 & = []".as_bytes()] {
        assert_eq!(key().sign(data), key().sign_with_rsa_crate(data));
    }
}

#[test]
fn aws_lc_and_rsa_crate_verify_alike() {
    let public = key().public_key();
    let other = PrivateKey::generate_2048().unwrap();
    for data in [&b""[..], b"123456789", "中文 & = []".as_bytes()] {
        let good = key().sign(data);
        let foreign = other.sign(data);
        assert!(public.verify(data, &good));
        assert!(public.verify_with_rsa_crate(data, &good));
        assert!(!public.verify(data, &foreign));
        assert!(!public.verify_with_rsa_crate(data, &foreign));
        assert!(!public.verify(b"tampered", &good));
        assert!(!public.verify_with_rsa_crate(b"tampered", &good));
    }
}
