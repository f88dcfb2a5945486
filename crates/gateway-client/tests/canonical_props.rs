//! Property tests of the canonical string.

use gateway_client::canonical_string;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn key() -> impl Strategy<Value = String> {
    // ASCII letters of both cases, digits, `_` and a few non-ASCII letters, so byte order
    // (uppercase < `_` < lowercase < non-ASCII) is exercised rather than alphabetical order.
    "[a-zA-Z0-9_éü中]{1,10}".prop_filter("sign is special", |k| k != "sign")
}

fn text() -> impl Strategy<Value = String> {
    // Everything a naive implementation would escape or encode: & = spaces brackets quotes % + / \ and non-ASCII.
    "[a-zA-Z0-9 &=\\[\\]{}\"'%+/\\\\:,é中😀]{1,20}"
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn message() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec((key(), scalar()), 0..12)
}

fn map_of(pairs: &[(String, Value)]) -> Map<String, Value> {
    pairs.iter().cloned().collect()
}

proptest! {
    #[test]
    fn keys_come_out_in_byte_order_whatever_the_insertion_order(
        pairs in prop::collection::btree_map(key(), "[a-z0-9]{1,5}", 1..15),
        seed in any::<u64>(),
    ) {
        let mut entries: Vec<(String, String)> = pairs.clone().into_iter().collect();
        // A deterministic shuffle: the map keeps insertion order (preserve_order), so this matters.
        entries.sort_by_key(|(k, _)| k.bytes().fold(seed, |h, b| h.rotate_left(5) ^ u64::from(b)));
        let msg: Map<String, Value> = entries.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let out = canonical_string(&msg);
        let keys: Vec<&str> = out.split('&').map(|p| p.split_once('=').unwrap().0).collect();
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        prop_assert_eq!(&keys, &sorted);
        prop_assert_eq!(keys.len(), pairs.len());
    }

    #[test]
    fn sign_is_dropped_and_sign_type_kept(pairs in message(), sig in text()) {
        let mut msg = map_of(&pairs);
        let before = canonical_string(&msg);
        msg.insert("sign".into(), Value::String(sig));
        prop_assert_eq!(canonical_string(&msg), before);
        msg.insert("sign_type".into(), json!("RSA2"));
        prop_assert!(canonical_string(&msg).split('&').any(|p| p == "sign_type=RSA2"));
    }

    #[test]
    fn null_and_empty_values_are_dropped(pairs in message(), k in key(), empty in any::<bool>()) {
        let mut msg = map_of(&pairs);
        msg.remove(&k);
        let before = canonical_string(&msg);
        msg.insert(k, if empty { json!("") } else { Value::Null });
        prop_assert_eq!(canonical_string(&msg), before);
    }

    #[test]
    fn strings_pass_through_untouched(k in key(), v in text()) {
        let msg = map_of(&[(k.clone(), Value::String(v.clone()))]);
        prop_assert_eq!(canonical_string(&msg), format!("{k}={v}"));
    }

    #[test]
    fn integers_are_unquoted_decimal(k in key(), n in any::<i64>(), u in any::<u64>()) {
        prop_assert_eq!(canonical_string(&map_of(&[(k.clone(), json!(n))])), format!("{k}={n}"));
        prop_assert_eq!(canonical_string(&map_of(&[(k.clone(), json!(u))])), format!("{k}={u}"));
    }

    #[test]
    fn booleans_and_nested_values_render_as_compact_json(k in key(), b in any::<bool>(), s in text()) {
        prop_assert_eq!(canonical_string(&map_of(&[(k.clone(), json!(b))])), format!("{k}={b}"));
        let nested = json!({"x": [1, s.clone()], "y": null});
        let expected = format!("{k}={}", serde_json::to_string(&nested).unwrap());
        prop_assert_eq!(canonical_string(&map_of(&[(k.clone(), nested)])), expected);
    }

    #[test]
    fn canonical_string_equals_sorted_join_of_rendered_fields(pairs in message()) {
        let msg = map_of(&pairs);
        // An independent oracle: BTreeMap<String, _> orders by bytes.
        let oracle: std::collections::BTreeMap<&String, String> = msg
            .iter()
            .filter(|(k, _)| k.as_str() != "sign")
            .filter_map(|(k, v)| match v {
                Value::String(s) if s.is_empty() => None,
                Value::String(s) => Some((k, s.clone())),
                Value::Null => None,
                other => Some((k, other.to_string())),
            })
            .collect();
        let joined = oracle.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        prop_assert_eq!(canonical_string(&msg), joined);
    }
}

#[test]
fn byte_order_is_not_alphabetical_order() {
    let msg = map_of(&[
        ("b".into(), json!("1")),
        ("B".into(), json!("2")),
        ("_a".into(), json!("3")),
        ("a".into(), json!("4")),
        ("é".into(), json!("5")),
        ("Z".into(), json!("6")),
    ]);
    assert_eq!(canonical_string(&msg), "B=2&Z=6&_a=3&a=4&b=1&é=5");
}
