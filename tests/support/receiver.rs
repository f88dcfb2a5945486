//! A webhook receiver for the end-to-end tests: real HTTP, a scripted answer per path, and a
//! log of every request (headers and body bytes) for the assertions.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How a receiver path answers.
#[derive(Clone, Copy)]
pub enum Behaviour {
    /// 204 always.
    Ok,
    /// 500 for the first `n` requests, then 204.
    FailFirst(usize),
    /// 410 Gone.
    Gone,
    /// 500 until switched to `Ok`.
    Down,
    /// Never answers its first request (a receiver the sender dies waiting on), then 204.
    HangFirst,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    pub kind: String,
}

#[derive(Default)]
struct ReceiverState {
    behaviour: HashMap<String, Behaviour>,
    counts: HashMap<String, usize>,
    hits: Vec<Hit>,
}

/// A running receiver; cheap to clone.
#[derive(Clone)]
pub struct Receiver {
    base: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    /// Starts on an ephemeral loopback port.
    pub fn start() -> Receiver {
        let state: Arc<Mutex<ReceiverState>> = Arc::default();
        let shared = state.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let server = HttpServer::new(move || {
            let shared = shared.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let shared = shared.clone();
                async move {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let path = req.path().to_owned();
                    let kind = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v["type"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let (n, behaviour) = {
                        let mut s = shared.lock().expect("lock");
                        let n = {
                            let c = s.counts.entry(path.clone()).or_default();
                            *c += 1;
                            *c
                        };
                        s.hits.push(Hit {
                            path: path.clone(),
                            id: header("webhook-id"),
                            timestamp: header("webhook-timestamp"),
                            signature: header("webhook-signature"),
                            body: body.to_vec(),
                            kind,
                        });
                        let behaviour = s.behaviour.get(&path).copied();
                        (n, behaviour.unwrap_or(Behaviour::Ok))
                    };
                    match behaviour {
                        Behaviour::Ok => HttpResponse::NoContent().finish(),
                        Behaviour::FailFirst(k) if n <= k => {
                            HttpResponse::InternalServerError().body("not yet")
                        }
                        Behaviour::FailFirst(_) => HttpResponse::NoContent().finish(),
                        Behaviour::Gone => HttpResponse::Gone().body("gone"),
                        Behaviour::Down => HttpResponse::InternalServerError().body("down"),
                        Behaviour::HangFirst if n == 1 => {
                            std::future::pending::<()>().await;
                            HttpResponse::NoContent().finish()
                        }
                        Behaviour::HangFirst => HttpResponse::NoContent().finish(),
                    }
                }
            }))
        })
        .workers(2)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Receiver { base, state }
    }

    /// The URL of `path`, answering with `behaviour`.
    pub fn url(&self, path: &str, behaviour: Behaviour) -> String {
        self.set(path, behaviour);
        format!("{}{path}", self.base)
    }

    /// Changes how `path` answers from now on.
    pub fn set(&self, path: &str, behaviour: Behaviour) {
        self.state
            .lock()
            .expect("lock")
            .behaviour
            .insert(path.to_owned(), behaviour);
    }

    /// The requests to `path` carrying events of type `kind`.
    pub fn hits(&self, path: &str, kind: &str) -> Vec<Hit> {
        self.state
            .lock()
            .expect("lock")
            .hits
            .iter()
            .filter(|h| h.path == path && h.kind == kind)
            .cloned()
            .collect()
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Hit> {
        self.state.lock().expect("lock").hits.clone()
    }
}
