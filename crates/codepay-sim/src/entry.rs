//! `POST /api/entry`: the strict front door. Parse, apply faults, authenticate (app, signature,
//! timestamp window), dispatch, and answer in the signed envelope with `data` as a JSON string.

use crate::codes::{ErrorKind, GatewayError};
use crate::faults::{Fault, FaultKind};
use crate::fields::Req;
use crate::ops::{self, Ctx, METHODS};
use crate::sim::Simulator;
use actix_web::{HttpResponse, web};
use gateway_client::{sign_message, verify_message};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Handler of `/api/entry` and `/api/entry/{anything}`.
pub(crate) async fn entry(sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    sim.start();
    let parsed = parse(&body);
    let fault = parsed
        .as_ref()
        .ok()
        .and_then(|m| m.get("method"))
        .and_then(Value::as_str)
        .and_then(|method| sim.inner.state.lock().faults.take(method));
    let kind = fault.as_ref().map(|f| f.kind);
    match (kind, &fault) {
        (Some(FaultKind::Http500), _) => {
            return HttpResponse::InternalServerError()
                .content_type("text/plain")
                .body("Internal Server Error");
        }
        (Some(FaultKind::Slow), Some(f)) => sleep_real(f).await,
        _ => {}
    }
    let read_only = parsed.as_ref().is_ok_and(|m| {
        matches!(
            m.get("method").and_then(Value::as_str),
            Some("order.query" | "order.refund.query")
        )
    });
    let result = parsed.and_then(|msg| sim.handle(&msg));
    if read_only {
        // Queries only change the books by closing an expired order, which its timer persists.
        sim.inner.wake.notify_one();
    } else {
        sim.changed();
    }
    let envelope = sim.envelope(result, kind);
    match (kind, &fault) {
        (Some(FaultKind::Timeout), Some(f)) => sleep_real(f).await,
        (Some(FaultKind::DropResponseAfterCommit), _) => return cut_connection(),
        _ => {}
    }
    HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .body(envelope)
}

async fn sleep_real(fault: &Fault) {
    tokio::time::sleep(Duration::from_millis(fault.delay())).await;
}

/// A response whose body fails before its first byte: the server closes the connection, and the
/// client never gets a complete answer although the operation was applied.
fn cut_connection() -> HttpResponse {
    let failing = futures::stream::once(async {
        Err::<web::Bytes, std::io::Error>(std::io::Error::other(
            "codepay-sim fault drop_response_after_commit",
        ))
    });
    HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .streaming(failing)
}

/// The body as one flat JSON object of UTF-8 without 4-byte characters.
fn parse(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ErrorKind::InvalidParameter.with("body is not UTF-8"))?;
    if text.chars().any(|c| c.len_utf8() == 4) {
        return Err(ErrorKind::InvalidParameter.with("4-byte UTF-8 characters are not accepted"));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ErrorKind::InvalidParameter.with("body must be one JSON object")),
    }
}

/// `timestamp` as epoch ms, from a string of digits or a JSON number.
fn timestamp(msg: &Map<String, Value>) -> Result<i64, GatewayError> {
    let bad = || ErrorKind::InvalidParameter.with("timestamp must be epoch milliseconds");
    match msg.get("timestamp") {
        None | Some(Value::Null) => Err(ErrorKind::MissingParameter.with("timestamp")),
        Some(Value::String(s)) if s.is_empty() => {
            Err(ErrorKind::MissingParameter.with("timestamp"))
        }
        Some(Value::String(s)) if s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| bad())
        }
        Some(Value::Number(n)) => n.as_i64().ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

impl Simulator {
    /// Authenticates one request and runs it.
    fn handle(&self, msg: &Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
        let req = Req(msg);
        let app_id = req.req_str("app_id")?;
        let method = req.req_str("method")?;
        req.req_str("sign")?;
        let sign_type = req.req_str("sign_type")?;
        let ts = timestamp(msg)?;
        if sign_type != "RSA2" {
            return Err(ErrorKind::InvalidParameter.with("sign_type must be RSA2"));
        }
        let key = self
            .inner
            .state
            .lock()
            .apps
            .get(app_id)
            .map(|a| a.key.clone())
            .ok_or_else(|| ErrorKind::UnknownApp.with(app_id))?;
        verify_message(msg, &key).map_err(|_| ErrorKind::InvalidSignature.err())?;
        let now_ms = self.inner.clock.now_ms();
        let window_ms = self.inner.cfg.timestamp_window_secs.saturating_mul(1000);
        if ts.saturating_sub(now_ms).abs() > window_ms {
            return Err(ErrorKind::StaleTimestamp
                .with(format!("gateway time {}", crate::clock::format_utc(now_ms))));
        }
        for (field, expected) in [("format", "JSON"), ("charset", "UTF-8"), ("version", "1.0")] {
            if req
                .opt_str(field)?
                .is_some_and(|v| !v.eq_ignore_ascii_case(expected))
            {
                return Err(ErrorKind::InvalidParameter.with(format!("{field} must be {expected}")));
            }
        }
        if !METHODS.contains(&method) {
            return Err(ErrorKind::UnknownMethod.with(method));
        }
        let merchant_no = req.req_str("merchant_no")?;
        let mut st = self.inner.state.lock();
        if !st.merchants.contains_key(merchant_no) {
            return Err(ErrorKind::UnknownMerchant.with(merchant_no));
        }
        // Every operation may name a store and a terminal; the merchant must have them.
        let store_no = req.opt_str_max("store_no", 32)?;
        let terminal_sn = req.opt_str_max("terminal_sn", 32)?;
        st.stores.check(merchant_no, store_no, terminal_sn)?;
        let ctx = Ctx {
            app_id,
            merchant_no,
            store_no,
            terminal_sn,
            now_ms,
            virtual_ms: self.inner.clock.virtual_ms(),
        };
        ops::dispatch(self, &mut st, method, req, &ctx)
    }

    /// The response envelope, signed with the gateway key (errors too), bent by a response fault.
    fn envelope(
        &self,
        result: Result<Map<String, Value>, GatewayError>,
        fault: Option<FaultKind>,
    ) -> String {
        let mut m = Map::new();
        match result {
            Ok(data) => {
                m.insert("code".into(), json!("0"));
                m.insert("msg".into(), json!("success"));
                m.insert("psn".into(), json!(self.next_number("P")));
                m.insert("data".into(), json!(Value::Object(data).to_string()));
            }
            Err(e) => {
                m.insert("code".into(), json!(e.code));
                m.insert("msg".into(), json!(e.msg));
                m.insert("psn".into(), json!(self.next_number("P")));
            }
        }
        match fault {
            Some(FaultKind::Unsigned) => {}
            Some(FaultKind::BadSignature) => {
                // A well-formed signature, but over different content: only verification tells.
                let mut other = m.clone();
                other.insert("psn".into(), json!(self.next_number("P")));
                sign_message(&mut other, &self.inner.gateway_key);
                if let Some(sign) = other.remove("sign") {
                    m.insert("sign".into(), sign);
                }
            }
            _ => sign_message(&mut m, &self.inner.gateway_key),
        }
        Value::Object(m).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_must_be_one_utf8_object_without_4_byte_characters() {
        assert!(parse(br#"{"a":"b"}"#).is_ok());
        assert_eq!(parse(b"[1]").map_err(|e| e.code), Err("E01002"));
        assert_eq!(parse(b"\xff").map_err(|e| e.code), Err("E01002"));
        assert_eq!(
            parse("{\"a\":\"\u{1F600}\"}".as_bytes()).map_err(|e| e.code),
            Err("E01002")
        );
    }

    #[test]
    fn timestamps_are_epoch_ms_as_string_or_number() {
        let m = |v: Value| {
            let mut m = Map::new();
            m.insert("timestamp".into(), v);
            m
        };
        assert_eq!(timestamp(&m(json!("1700000000000"))), Ok(1_700_000_000_000));
        assert_eq!(
            timestamp(&m(json!(1_700_000_000_000_i64))),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            timestamp(&m(json!("17e11"))).map_err(|e| e.code),
            Err("E01002")
        );
        assert_eq!(timestamp(&m(json!(""))).map_err(|e| e.code), Err("E01001"));
    }
}
