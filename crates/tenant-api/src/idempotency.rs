//! `Idempotency-Key` on every create. The serialisation point is a durable row
//! claim (INSERT … in_flight, UNIQUE(scope, key)) in the store, not a Redis lock: of fifty
//! concurrent identical requests exactly one claims the key and reaches CodePay, the others get
//! 409 while it runs and the stored response afterwards.
//!
//! A claim left in flight by a process that died (it names its claimant, whose heartbeat
//! stopped) is taken over by the request's retry at once ([`Claim::Recovered`]); the retry runs
//! again, and a create answers the object its dead attempt committed rather than "reference
//! taken" (see [`run_resuming`]).

use crate::error::{Error, Result};
use crate::request_id::RequestId;
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;

pub use payments::idempotency::{LEASE, RETENTION};

/// How long a duplicate waits for the request in flight before answering 409.
const IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A response kept for replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

/// The result of claiming a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key now: run it, then `complete`.
    Proceed,
    /// This request owns the key now, taken over from an attempt of the same request (same
    /// fingerprint) whose process died, or whose lease ran out, before it answered: run it, then
    /// `complete`; what the dead attempt committed may already be there.
    Recovered,
    /// Done before with the same body: replay.
    Replay(StoredResponse),
    /// Another request with this key is running.
    InFlight,
    /// The key was used with another request.
    Mismatch,
}

/// Durable idempotency records.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Atomically claims `(scope, key)` for a request with `fingerprint` (see [`Claim`]); an
    /// expired record is replaced, and an in-flight claim of the same request whose claimant is
    /// gone (stopped heartbeating, or older than [`LEASE`]) is taken over.
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim>;
    /// Stores the response of a claimed key.
    async fn complete(&self, scope: &str, key: &str, response: &StoredResponse) -> Result<()>;
    /// Drops a claim whose request did nothing (so a retry may run).
    async fn release(&self, scope: &str, key: &str) -> Result<()>;
}

#[derive(Clone)]
struct Record {
    fingerprint: String,
    created_at: DateTime<Utc>,
    response: Option<StoredResponse>,
}

/// In-process records, for tests and single-node development.
#[derive(Default)]
pub struct MemoryIdempotencyStore {
    records: Mutex<HashMap<(String, String), Record>>,
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(&self, scope: &str, key: &str, fp: &str, now: DateTime<Utc>) -> Result<Claim> {
        let mut records = self.records.lock();
        let k = (scope.to_owned(), key.to_owned());
        let mut recovered = false;
        if let Some(r) = records.get(&k) {
            let expired = r.created_at + RETENTION < now;
            let abandoned = r.response.is_none() && r.created_at + LEASE < now;
            if !expired {
                if r.fingerprint != fp {
                    return Ok(Claim::Mismatch);
                }
                if let Some(resp) = &r.response {
                    return Ok(Claim::Replay(resp.clone()));
                }
                if !abandoned {
                    return Ok(Claim::InFlight);
                }
                recovered = true;
            }
        }
        records.insert(
            k,
            Record {
                fingerprint: fp.to_owned(),
                created_at: now,
                response: None,
            },
        );
        Ok(if recovered {
            Claim::Recovered
        } else {
            Claim::Proceed
        })
    }

    async fn complete(&self, scope: &str, key: &str, response: &StoredResponse) -> Result<()> {
        if let Some(r) = self
            .records
            .lock()
            .get_mut(&(scope.to_owned(), key.to_owned()))
        {
            r.response = Some(response.clone());
        }
        Ok(())
    }

    async fn release(&self, scope: &str, key: &str) -> Result<()> {
        self.records
            .lock()
            .remove(&(scope.to_owned(), key.to_owned()));
        Ok(())
    }
}

/// SHA-256 over method, path and body bytes.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

/// Which attempt of a request `op` is in [`run_resuming`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// No earlier attempt of this request holds the key (or there is no key).
    First,
    /// An earlier attempt of this very request claimed the key and died before answering: it
    /// may have committed the object already. An idempotent retry must answer that object, not
    /// refuse its reference as taken.
    Recovered,
}

/// Runs `op` at most once per `(scope, Idempotency-Key)`; without the header it just runs.
/// Business outcomes (2xx, 4xx, 502) are stored and replayed; a 503 or a lost race releases
/// the key, because nothing was done and a retry must be able to run. `op` is told whether it
/// resumes a dead attempt of the same request ([`Attempt::Recovered`]), so a create can answer
/// what that attempt committed.
pub async fn run_resuming<F, Fut>(
    store: &dyn IdempotencyStore,
    req: &HttpRequest,
    scope: &str,
    body: &[u8],
    op: F,
) -> Result<HttpResponse>
where
    F: FnOnce(Attempt) -> Fut,
    Fut: Future<Output = Result<(StatusCode, serde_json::Value)>>,
{
    let Some(key) = key_of(req)? else {
        let (status, value) = op(Attempt::First).await?;
        return Ok(HttpResponse::build(status).json(value));
    };
    let fp = fingerprint(req.method().as_str(), req.path(), body);
    // A duplicate that arrives while the first is running waits for its answer (so fifty
    // concurrent retries get fifty identical answers); only a long-running one yields 409. The
    // wait ends early when the first's process dies: the claim then comes back `Recovered`.
    let mut claim = store.claim(scope, &key, &fp, Utc::now()).await?;
    let wait_until = tokio::time::Instant::now() + IN_FLIGHT_WAIT;
    while claim == Claim::InFlight && tokio::time::Instant::now() < wait_until {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        claim = store.claim(scope, &key, &fp, Utc::now()).await?;
    }
    let attempt = match claim {
        Claim::Proceed => Attempt::First,
        Claim::Recovered => Attempt::Recovered,
        Claim::Replay(stored) => return Ok(replay(req, stored)),
        Claim::InFlight => {
            return Err(Error::conflict(
                "idempotency_key_in_flight",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            ));
        }
        Claim::Mismatch => {
            return Err(Error::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
                None,
            ));
        }
    };
    let outcome = op(attempt).await;
    finish(store, req, scope, &key, outcome).await
}

/// The `Idempotency-Key` header, checked: `None` without one.
pub fn key_of(req: &HttpRequest) -> Result<Option<String>> {
    let Some(key) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    key.to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()))
        .map(|k| Some(k.to_owned()))
        .ok_or_else(|| {
            Error::invalid(
                "idempotency_key_invalid",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
                None,
            )
        })
}

/// Ends a request that claimed `(scope, key)`: stores a business outcome (2xx, 4xx, 502) for
/// replay and answers it; a 503 or a lost race releases the key, because nothing was done and
/// a retry must be able to run.
pub async fn finish(
    store: &dyn IdempotencyStore,
    req: &HttpRequest,
    scope: &str,
    key: &str,
    outcome: Result<(StatusCode, serde_json::Value)>,
) -> Result<HttpResponse> {
    let (status, value) = match outcome {
        Ok(ok) => ok,
        Err(e @ (Error::Unavailable(_) | Error::VersionConflict)) => {
            store.release(scope, key).await?;
            return Err(e);
        }
        Err(e) => {
            use actix_web::ResponseError;
            (e.status_code(), crate::json::value(&e.body())?)
        }
    };
    let stored = StoredResponse {
        status: status.as_u16(),
        body: value.to_string(),
    };
    store.complete(scope, key, &stored).await?;
    Ok(respond(req, status, &value))
}

/// Answers a response that was already stored (by the transaction that produced it).
pub fn respond_stored(
    req: &HttpRequest,
    status: StatusCode,
    value: &serde_json::Value,
) -> HttpResponse {
    respond(req, status, value)
}

fn respond(req: &HttpRequest, status: StatusCode, value: &serde_json::Value) -> HttpResponse {
    // Only an error body gets this request's id; anything else is sent as stored, uncopied.
    if value.get("error").is_some_and(serde_json::Value::is_object)
        && let Some(id) = req.extensions().get::<RequestId>()
    {
        let mut value = value.clone();
        if let Some(err) = value.get_mut("error").and_then(|e| e.as_object_mut()) {
            err.insert("request_id".into(), id.0.clone().into());
        }
        return HttpResponse::build(status).json(value);
    }
    HttpResponse::build(status).json(value)
}

fn replay(req: &HttpRequest, stored: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let value: serde_json::Value = serde_json::from_str(&stored.body).unwrap_or_default();
    let mut resp = respond(req, status, &value);
    resp.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
        actix_web::http::header::HeaderValue::from_static("true"),
    );
    resp
}
