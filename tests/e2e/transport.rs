//! The transport's bounds against the real listener: a slow request head, an idle kept-alive
//! connection, the connection cap and load shedding (issue 15, item 1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use techpass_domain::SystemClock;
use techpass_store::testing::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{test_config, TempDir, TestServer};

async fn server(edit: impl FnOnce(&mut techpass::config::HttpConfig)) -> TestServer {
    let db = TestDatabase::sqlite().await;
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    edit(&mut config.http);
    TestServer::start_with(config, Arc::new(SystemClock), dir, Some(db)).await
}

fn address(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes (or `limit` passes); returns what was read and when it closed.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&seen).into_owned(),
                    Some(started.elapsed()),
                )
            }
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), None),
        }
    }
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off() {
    let server = server(|http| {
        http.header_read_timeout_secs = 1;
        http.idle_timeout_secs = 30;
    })
    .await;
    let mut slow = TcpStream::connect(address(&server)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: techpass\r\nX-A: 1\r\n")
        .await
        .unwrap();
    let (_, closed) = read_to_close(&mut slow, Duration::from_secs(5)).await;
    let closed = closed.expect("a slow head must not keep the connection open");
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(3),
        "{closed:?}"
    );
    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(address(&server)).await.unwrap();
    let (_, closed) = read_to_close(&mut silent, Duration::from_secs(5)).await;
    assert!(closed.is_some_and(|c| c < Duration::from_secs(3)));
    // Meanwhile whole requests are served.
    assert_eq!(server.get("/healthz").await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let server = server(|http| {
        http.header_read_timeout_secs = 30;
        http.idle_timeout_secs = 1;
    })
    .await;
    let mut stream = TcpStream::connect(address(&server)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: techpass\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let closed = closed.expect("an idle connection must be closed");
    assert!(closed < Duration::from_secs(3), "{closed:?}");
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_with_503() {
    let server = server(|http| {
        http.max_connections = 2;
        http.header_read_timeout_secs = 30;
        http.idle_timeout_secs = 30;
    })
    .await;
    let held: Vec<TcpStream> = vec![
        TcpStream::connect(address(&server)).await.unwrap(),
        TcpStream::connect(address(&server)).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(address(&server)).await.unwrap();
    let (answer, closed) = read_to_close(&mut third, Duration::from_secs(3)).await;
    assert!(closed.is_some(), "refused connections are closed");
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nretry-after: 1\r\n"), "{answer}");
    assert!(answer.contains("temporarily_unavailable"), "{answer}");

    // Once a held connection goes, a new one is served.
    drop(held);
    let mut served = false;
    for _ in 0..50 {
        let mut next = TcpStream::connect(address(&server)).await.unwrap();
        next.write_all(b"GET /healthz HTTP/1.1\r\nHost: techpass\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (answer, _) = read_to_close(&mut next, Duration::from_secs(3)).await;
        if answer.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the freed slot serves again");
    server.stop().await;
}

#[tokio::test]
async fn requests_over_the_in_flight_cap_are_shed_with_503() {
    let server = server(|http| {
        http.max_in_flight_requests = 1;
    })
    .await;
    // A token request whose body never finishes holds the only place.
    let mut holder = TcpStream::connect(address(&server)).await.unwrap();
    holder
        .write_all(
            b"POST /token HTTP/1.1\r\nHost: techpass\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shed = server.get("/.well-known/openid-configuration").await;
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: serde_json::Value = shed.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // Liveness is never shed.
    assert_eq!(server.get("/healthz").await.status(), 200);

    // When the holder goes away its place is free again.
    drop(holder);
    let mut status = 0;
    for _ in 0..50 {
        status = server
            .get("/.well-known/openid-configuration")
            .await
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
    server.stop().await;
}
