//! The webhook body: `{"id","type","created_at","data"}`, serialised once per event.
//!
//! The bytes are produced once (when the event is fanned out) and stored; every attempt to every
//! endpoint sends and signs those same bytes, so a signature never depends on re-serialisation.

use crate::WebhookError;
use chrono::{DateTime, Utc};
use domain::{EventId, EventType};
use serde::Serialize;

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a EventId,
    #[serde(rename = "type")]
    kind: EventType,
    created_at: DateTime<Utc>,
    data: &'a serde_json::Value,
}

/// The body of an event: `data` is the object (payment, refund or endpoint) with its `sequence`.
pub fn event_body(
    id: &EventId,
    kind: EventType,
    created_at: DateTime<Utc>,
    data: &serde_json::Value,
) -> Vec<u8> {
    let envelope = Envelope {
        id,
        kind,
        created_at,
        data,
    };
    // Serialising ids, an enum, a timestamp and a `Value` into a Vec cannot fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// The body of a stored event whose `data` is kept as JSON text: the text is embedded as is, so
/// the bytes sent are the bytes stored, whatever JSON library wrote them.
pub fn event_body_from_stored(
    id: &EventId,
    kind: EventType,
    created_at: DateTime<Utc>,
    data_json: &str,
) -> Result<Vec<u8>, WebhookError> {
    serde_json::from_str::<serde::de::IgnoredAny>(data_json)
        .map_err(|e| WebhookError::InvalidPayload(e.to_string()))?;
    let head = serde_json::json!({ "id": id, "type": kind, "created_at": created_at });
    let mut body =
        serde_json::to_vec(&head).map_err(|e| WebhookError::InvalidPayload(e.to_string()))?;
    // `head` always serialises as `{...}`: replace its closing brace with the `data` member.
    body.pop();
    body.extend_from_slice(b",\"data\":");
    body.extend_from_slice(data_json.trim().as_bytes());
    body.push(b'}');
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_payload_is_embedded_byte_for_byte() {
        let id = EventId::generate();
        let at = DateTime::parse_from_rfc3339("2026-11-26T05:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let stored = r#"{"object":"refund", "amount":500,"sequence":2}"#;
        let body = event_body_from_stored(&id, EventType::RefundSucceeded, at, stored).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"id":"{id}","type":"refund.succeeded","created_at":"2026-11-26T05:00:00Z","data":{stored}}}"#
            )
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["data"]["amount"], 500);
        assert!(event_body_from_stored(&id, EventType::RefundSucceeded, at, "{not json").is_err());
        assert!(
            event_body_from_stored(&id, EventType::RefundSucceeded, at, "{} trailing").is_err()
        );
    }

    #[test]
    fn the_body_has_the_documented_keys_in_order() {
        let id = EventId::generate();
        let at = DateTime::parse_from_rfc3339("2026-11-26T05:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let data = serde_json::json!({"id": "pay_1", "object": "payment", "sequence": 3});
        let body = event_body(&id, EventType::PaymentSucceeded, at, &data);
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"id":"{id}","type":"payment.succeeded","created_at":"2026-11-26T05:00:00Z","data":{{"id":"pay_1","object":"payment","sequence":3}}}}"#
            )
        );
    }
}
