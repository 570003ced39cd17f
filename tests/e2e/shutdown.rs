//! Graceful shutdown: a request in flight when shutdown begins still gets its answer.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use techpass::server;
use techpass::transport::Transport;
use techpass_domain::SystemClock;
use techpass_store::testing::TestDatabase;
use tokio::net::TcpListener;

use crate::support::{client, test_config, TempDir};

#[tokio::test]
async fn in_flight_requests_finish_after_shutdown_begins() {
    let db = TestDatabase::sqlite().await;
    let dir = TempDir::new();
    let config = test_config(&db.url, &dir);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let issuer = config.resolve_issuer(addr).unwrap();
    let state = server::build_state(config, issuer, Arc::new(SystemClock))
        .await
        .unwrap();
    let transport = Transport {
        shutdown_grace: Duration::from_secs(10),
        ..Transport::from_config(&state.config.http)
    };
    let router = techpass::app(state).route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            "finished"
        }),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve_until(
        listener,
        router,
        async move {
            let _ = stopped.await;
        },
        transport,
    ));

    let slow = tokio::spawn(client().get(format!("http://{addr}/slow")).send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();

    let response = slow.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("server did not stop after its last request")
        .unwrap()
        .unwrap();
    // No longer accepting.
    assert!(client()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .is_err());
}
