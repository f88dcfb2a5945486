//! Endpoint isolation through real HTTP: in-flight caps, circuit breaker, global bound.

use domain::{EventId, WebhookEndpointId};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::receiver::{Receiver, Reply};
use webhook_fanout::signature::WebhookSecret;
use webhook_fanout::{
    AttemptOutcome, BreakerConfig, BreakerState, DeferReason, Dispatch, Dispatcher,
    DispatcherConfig, EndpointTarget, NetworkPolicy, Sender, SenderConfig, WebhookMessage,
};

fn dispatcher(config: DispatcherConfig) -> Arc<Dispatcher> {
    let sender = Sender::new(&SenderConfig {
        timeout: Duration::from_secs(10),
        policy: NetworkPolicy {
            allow_http: true,
            allow_private: true,
        },
        ..SenderConfig::default()
    })
    .unwrap();
    Arc::new(Dispatcher::new(sender, config, None))
}

fn target(url: String) -> EndpointTarget {
    EndpointTarget {
        id: WebhookEndpointId::generate(),
        url: url.parse().unwrap(),
        secrets: vec![WebhookSecret::generate().unwrap()],
    }
}

fn message() -> WebhookMessage {
    WebhookMessage {
        event_id: EventId::generate(),
        body: Arc::from(&b"{}"[..]),
    }
}

#[tokio::test]
async fn a_slow_endpoint_does_not_delay_a_healthy_one() {
    let slow_rx = Receiver::start(Reply::status(200).delayed(Duration::from_secs(2)));
    let fast_rx = Receiver::start(Reply::status(200));
    let d = dispatcher(DispatcherConfig {
        global_concurrency: 6,
        per_endpoint_in_flight: 4,
        ..DispatcherConfig::default()
    });
    let slow = target(slow_rx.url("/"));
    let fast = target(fast_rx.url("/"));

    let slow_tasks: Vec<_> = (0..10)
        .map(|_| {
            let (d, t) = (d.clone(), slow.clone());
            tokio::spawn(async move { d.dispatch(&t, &message()).await })
        })
        .collect();
    // Wait until the slow endpoint really holds its share of requests.
    let deadline = Instant::now() + Duration::from_secs(2);
    while slow_rx.count() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(d.in_flight(), 4);

    let started = Instant::now();
    for _ in 0..20 {
        match d.dispatch(&fast, &message()).await {
            Dispatch::Sent(r) => assert_eq!(r.outcome, AttemptOutcome::Delivered),
            other => panic!("healthy endpoint deferred: {other:?}"),
        }
    }
    let fast_elapsed = started.elapsed();
    assert_eq!(fast_rx.count(), 20);
    assert!(
        fast_elapsed < Duration::from_millis(1500),
        "20 deliveries to the healthy endpoint took {fast_elapsed:?} while the slow one was busy"
    );
    assert!(
        slow_rx.count() <= 4,
        "the slow endpoint never gets more than its cap"
    );

    let (mut sent, mut busy) = (0, 0);
    for t in slow_tasks {
        match t.await.unwrap() {
            Dispatch::Sent(_) => sent += 1,
            Dispatch::Deferred {
                reason: DeferReason::EndpointBusy,
                ..
            } => busy += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((sent, busy), (4, 6));
}

#[tokio::test]
async fn the_circuit_opens_after_consecutive_failures_and_a_probe_closes_it() {
    let rx = Receiver::start(Reply::status(200));
    rx.script([Reply::status(500), Reply::status(500), Reply::status(500)]);
    let d = dispatcher(DispatcherConfig {
        breaker: BreakerConfig {
            failure_threshold: 3,
            cool_down: Duration::from_millis(300),
        },
        ..DispatcherConfig::default()
    });
    let t = target(rx.url("/"));
    for _ in 0..3 {
        assert!(matches!(
            d.dispatch(&t, &message()).await,
            Dispatch::Sent(r) if r.outcome == AttemptOutcome::Failed { throttled: false }
        ));
    }
    assert_eq!(d.endpoint_state(&t.id), BreakerState::Open);
    match d.dispatch(&t, &message()).await {
        Dispatch::Deferred {
            reason: DeferReason::CircuitOpen,
            retry_in,
        } => {
            assert!(retry_in <= Duration::from_millis(300));
        }
        other => panic!("expected circuit open, got {other:?}"),
    }
    assert_eq!(rx.count(), 3, "an open circuit makes no request");

    // Another endpoint is unaffected by this one's open circuit.
    let other = target(rx.url("/other"));
    assert!(matches!(
        d.dispatch(&other, &message()).await,
        Dispatch::Sent(_)
    ));

    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(d.endpoint_state(&t.id), BreakerState::HalfOpen);
    assert!(matches!(
        d.dispatch(&t, &message()).await,
        Dispatch::Sent(r) if r.outcome == AttemptOutcome::Delivered
    ));
    assert_eq!(d.endpoint_state(&t.id), BreakerState::Closed);
}

#[tokio::test]
async fn global_concurrency_bounds_requests_across_endpoints() {
    let rx = Receiver::start(Reply::status(200).delayed(Duration::from_millis(300)));
    let d = dispatcher(DispatcherConfig {
        global_concurrency: 2,
        per_endpoint_in_flight: 10,
        ..DispatcherConfig::default()
    });
    let targets: Vec<_> = (0..3).map(|_| target(rx.url("/"))).collect();
    let started = Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (d, t) = (d.clone(), targets[i % 3].clone());
            tokio::spawn(async move { d.dispatch(&t, &message()).await })
        })
        .collect();
    let mut peak = 0;
    while !tasks.iter().all(|t| t.is_finished()) {
        peak = peak.max(d.in_flight());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Dispatch::Sent(_)));
    }
    assert_eq!(peak, 2);
    // Six 300 ms requests, two at a time: at least three waves.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
}
