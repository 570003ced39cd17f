//! Liveness, readiness, metrics and the headers every response carries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use techpass_domain::SystemClock;
use techpass_store::testing::{Backend, TestDatabase};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{client, test_config, TempDir, TestServer};

async fn probes_metrics_and_request_ids(backend: Backend) {
    let Some(server) = TestServer::start(backend, "e2e::probes_metrics_and_request_ids").await
    else {
        return;
    };
    let health = server.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.headers()["cache-control"], "no-store");

    // Every response has a request id; one the caller sent is echoed back.
    let generated = ready.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let echoed = client()
        .get(server.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
    assert_eq!(echoed.headers()["x-frame-options"], "DENY");
    assert_eq!(echoed.headers()["x-content-type-options"], "nosniff");

    let missing = server.get("/no-such-page").await;
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-request-id"));

    // Metrics are not served to the public: only on their own listener.
    let public = server.get("/metrics").await;
    assert_eq!(public.status(), 404, "no /metrics on the public listener");
    let text = server.metrics().await;
    assert!(
        text.contains(
            r#"techpass_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(text
        .contains(r#"techpass_http_requests_total{method="GET",route="/readyz",status="200"} 1"#));
    assert!(text.contains(
        r#"techpass_http_request_duration_seconds_count{method="GET",route="/healthz"} 2"#
    ));
    assert!(
        !text.contains("no-such-page"),
        "raw paths never become labels"
    );
    server.stop().await;
}

crate::both_backends!(probes_metrics_and_request_ids);

/// A TCP forwarder between TechPass and PostgreSQL that the test can cut, to take the database
/// away from a running server without stopping the shared PostgreSQL.
pub(crate) struct CuttableProxy {
    pub(crate) addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    pub(crate) async fn start(target: String) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let target = target.clone();
                conns2.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        CuttableProxy {
            addr,
            up,
            connections,
            accept,
        }
    }

    pub(crate) fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub(crate) fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

async fn status_within(server: &TestServer, path: &str, want: u16) -> bool {
    for _ in 0..40 {
        if server.get(path).await.status().as_u16() == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test]
async fn readyz_fails_while_the_database_is_unreachable_and_recovers() {
    let Some(db) =
        TestDatabase::postgres("e2e::readyz_fails_while_the_database_is_unreachable").await
    else {
        return;
    };
    db.store().await; // migrate through the direct URL
    let mut url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = CuttableProxy::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();

    let dir = TempDir::new();
    let mut config = test_config(url.as_str(), &dir);
    config.database.acquire_timeout_secs = 1;
    let server = TestServer::start_with(config, Arc::new(SystemClock), dir, None).await;
    assert_eq!(server.get("/readyz").await.status(), 200);

    proxy.cut();
    assert!(
        status_within(&server, "/readyz", 503).await,
        "readyz never reported the outage"
    );
    let down = server.get("/readyz").await;
    assert_eq!(down.status(), 503);
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body["database"], "unreachable");
    // Liveness is about the process, not its dependencies.
    assert_eq!(server.get("/healthz").await.status(), 200);
    // Published keys are served from memory during the outage.
    assert_eq!(server.get("/jwks").await.status(), 200);

    proxy.restore();
    assert!(
        status_within(&server, "/readyz", 200).await,
        "readyz never recovered"
    );
    server.stop().await;
    drop(db);
}

#[tokio::test]
async fn an_unknown_path_is_a_page_for_browsers_and_json_for_programs() {
    let Some(server) = TestServer::start(Backend::Sqlite, "e2e::not_found").await else {
        return;
    };
    let page = client()
        .get(server.url("/portal."))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    let kind = page.headers()["content-type"].to_str().unwrap().to_string();
    let text = page.text().await.unwrap();
    assert!(kind.starts_with("text/html"), "{kind}: {text}");
    assert!(text.contains("Page not found"));
    let json = server.get("/no-such-endpoint").await;
    assert_eq!(json.status(), 404);
    let body: serde_json::Value = json.json().await.unwrap();
    assert_eq!(body["error"], "not_found");

    // A form's address opened as a link (or left in the address bar): a page with a way on,
    // not the browser's "this page isn't working".
    for path in ["/logout", "/invite?x=1", "/register"] {
        let wrong = client()
            .request(reqwest::Method::DELETE, server.url(path))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 405, "{path}");
        let text = wrong.text().await.unwrap();
        assert!(
            text.contains("This address is for a form"),
            "{path}: {text}"
        );
        assert!(text.contains("href=\"/\""), "a way forward: {text}");
    }
    let page = client()
        .get(server.url("/logout"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 405);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("This address is for a form"));
    let json = server.get("/logout").await;
    assert_eq!(json.status(), 405);
    let body: serde_json::Value = json.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    server.stop().await;
}
