//! A real HTTP webhook receiver on `127.0.0.1:0`: scripted answers, every request recorded.
//! Used by webhook-fanout's delivery tests and tenant-api's webhook API tests.
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// How long to wait before answering.
    pub delay: Duration,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl Reply {
    /// `status` with the body `ok`, at once.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            headers: vec![],
            body: b"ok".to_vec(),
        }
    }
    /// Answers after `d`.
    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
    /// Adds a response header.
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    /// Replaces the body.
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }
}

/// A request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request path.
    pub path: String,
    /// Headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    default: Option<Reply>,
    received: Vec<Received>,
}

/// The receiver; dropped with the test (its server stops with the runtime).
#[derive(Clone)]
pub struct Receiver {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    state: Arc<Mutex<State>>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Starts a receiver answering `default` unless a scripted reply is queued.
    pub fn start(default: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State {
            default: Some(default),
            ..State::default()
        }));
        let shared = state.clone();
        let server = HttpServer::new(move || {
            let st = shared.clone();
            App::new()
                .app_data(web::Data::new(st))
                .default_service(web::to(handle))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            port,
            state,
            server: handle,
        }
    }

    /// Stops the server at once, dropping open connections (benchmarks running several rounds
    /// in one runtime, so that one round's receivers do not load the next).
    pub async fn stop(&self) {
        self.server.stop(false).await;
    }

    /// Queues replies used before the default, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().script.extend(replies);
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().received.clone()
    }

    /// How many requests arrived so far.
    pub fn count(&self) -> usize {
        self.state.lock().received.len()
    }

    /// Forgets the requests recorded so far, freeing them now (a benchmark ending one phase,
    /// so that the next one does not pay for freeing the last one's requests).
    pub fn clear(&self) {
        let received = std::mem::take(&mut self.state.lock().received);
        drop(received);
    }
}

async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let reply = {
        let mut s = st.lock();
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        s.received.push(Received {
            path: req.path().to_owned(),
            headers,
            body: body.to_vec(),
            at: Instant::now(),
        });
        s.script
            .pop_front()
            .or_else(|| s.default.clone())
            .unwrap_or(Reply::status(200))
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).expect("status"));
    for (k, v) in &reply.headers {
        resp.insert_header((k.as_str(), v.as_str()));
    }
    resp.body(reply.body)
}
