//! The listener: accepts connections and serves HTTP/1.1 on them with the bounds a slow or
//! greedy client must not escape (Slowloris and friends):
//!
//! - at most `http.max_connections` connections at once; one more is answered `503` with
//!   `Retry-After` and closed, so the process never runs out of file descriptors;
//! - a request head (request line and headers) must arrive within `http.header_read_timeout_secs`
//!   of the server starting to wait for it (hyper's header read timeout; on a kept-alive
//!   connection the wait starts when the previous answer is sent);
//! - a connection with no request in progress that moves no byte for `http.idle_timeout_secs`
//!   is closed (idle keep-alive, and a client that stops reading its answer);
//! - the request body and the handler are bounded by `http.request_timeout_secs` (the router's
//!   timeout layer), in-flight requests by `http.max_in_flight_requests` (the router's load
//!   shedding, [`crate::http`]).
//!
//! HTTP/1.1 only: the load balancer speaks it to the replicas, and HTTP/2's preface detection
//! would read from a client before any timeout applies.
//!
//! On shutdown it stops accepting, asks every connection to finish its request in flight and
//! close, and waits for them up to the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::Service;

use crate::config::HttpConfig;

/// How long a client is asked to wait before retrying after a refusal for load.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The transport's bounds (from `[http]`).
#[derive(Debug, Clone)]
pub struct Transport {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// On shutdown, how long connections may take to finish.
    pub shutdown_grace: Duration,
}

impl Transport {
    pub fn from_config(http: &HttpConfig) -> Self {
        Transport {
            header_read_timeout: Duration::from_secs(http.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(http.idle_timeout_secs),
            max_connections: http.max_connections,
            shutdown_grace: Duration::from_secs(http.shutdown_grace_secs),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits up
/// to the grace period for the connections to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    transport: Transport,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(transport.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let refusals = Arc::new(RefusalLog::default());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            // The signal first, every time: a ready connection must not starve it.
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            refusals.note(transport.max_connections);
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let transport = transport.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, router, &transport, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    let _ = stop_tx.send(true);
    let all = u32::try_from(transport.max_connections).unwrap_or(u32::MAX);
    match tokio::time::timeout(transport.shutdown_grace, connections.acquire_many(all)).await {
        Ok(_) => {}
        Err(_) => tracing::warn!(
            grace_secs = transport.shutdown_grace.as_secs(),
            "requests still in flight after the grace period; exiting"
        ),
    }
    Ok(())
}

/// A connection over the cap: a 503 with `Retry-After` (RFC 9110 §15.6.4, §10.2.3), then closed.
/// Nothing is read; the write fits in the socket's empty buffer, and is abandoned if not.
async fn refuse(mut stream: TcpStream) {
    let body = r#"{"error":"temporarily_unavailable","error_description":"too many connections; retry later"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: {RETRY_AFTER_SECS}\r\ncontent-type: application/json\r\ncache-control: no-store\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Logs refused connections at most once a second (a flood must not flood the log too).
#[derive(Default)]
struct RefusalLog {
    last_logged_ms: AtomicU64,
    since: AtomicUsize,
    started: std::sync::OnceLock<Instant>,
}

impl RefusalLog {
    fn note(&self, cap: usize) {
        let started = *self.started.get_or_init(Instant::now);
        let now_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let refused = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_logged_ms.load(Ordering::Relaxed);
        if (last == 0 || now_ms.saturating_sub(last) >= 1000)
            && self
                .last_logged_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.since.store(0, Ordering::Relaxed);
            tracing::warn!(
                max_connections = cap,
                refused,
                "connection limit reached: refusing connections with 503"
            );
        }
    }
}

/// When the connection last moved a byte or finished a request, and how many requests it has
/// in progress.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// A request in progress on a connection; done when dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    transport: &Transport,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let service_activity = activity.clone();
    let service = tower::service_fn(move |mut request: axum::http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let in_flight = InFlight::start(&service_activity);
        let mut router = router.clone();
        async move {
            let response = router.call(request.map(Body::new)).await;
            drop(in_flight);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(transport.header_read_timeout);
    let connection = builder.serve_connection(io, TowerToHyperService::new(service));
    tokio::pin!(connection);

    let tick =
        (transport.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Set once the connection was asked to close: if it has not finished by then, it is dropped.
    let mut close_by: Option<Instant> = None;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if close_by.is_none() => {
                connection.as_mut().graceful_shutdown();
                close_by = Some(Instant::now() + transport.shutdown_grace);
            }
            _ = ticker.tick() => {
                if let Some(deadline) = close_by {
                    if Instant::now() >= deadline {
                        tracing::debug!(%peer, "connection did not close when asked; dropping it");
                        return;
                    }
                } else if activity.idle_for() >= transport.idle_timeout {
                    tracing::debug!(%peer, "closing an idle connection");
                    connection.as_mut().graceful_shutdown();
                    close_by = Some(Instant::now() + transport.idle_timeout);
                }
            }
        }
    }
}

/// A stream that notes when it last moved a byte.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
