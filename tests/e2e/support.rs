//! Test servers and helpers shared by the end-to-end modules.

/// Runs each named `async fn(Backend)` as `sqlite::NAME` and `postgres::NAME`. The function
/// starts its server with `TestServer::start`, which skips PostgreSQL by name when unset.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(techpass_store::testing::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(techpass_store::testing::Backend::Postgres).await;
                }
            )*
        }
    };
}

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use techpass::config::{Config, Secret};
use techpass::server;
use techpass::transport::Transport;
use techpass::AppState;
use techpass_domain::{Clock, SystemClock};
use techpass_oidc::MasterKey;
use techpass_store::testing::{Backend, TestDatabase};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("techpass-e2e-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The built-in defaults, as a newcomer gets them, ignoring this process's environment.
pub fn default_config() -> Config {
    Config::load_from(
        None,
        figment::providers::Env::prefixed("TECHPASS_E2E_NOTHING_"),
    )
    .unwrap()
}

/// A config for a test server on `database_url`, in its own data directory.
pub fn test_config(database_url: &str, data_dir: &TempDir) -> Config {
    let mut config = default_config();
    config.database_url = database_url.to_string();
    config.data_dir = data_dir.0.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.master_key = Some(secret(&MasterKey::generate_base64().unwrap()));
    config
}

pub fn secret(text: &str) -> Secret {
    serde_json::from_value(serde_json::Value::String(text.to_string())).unwrap()
}

/// An in-process server on 127.0.0.1:0.
pub struct TestServer {
    pub base: String,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Follows other processes' changes to apps and tenants, as `techpass serve` does.
    follower: tokio::task::JoinHandle<()>,
    _data_dir: TempDir,
    _db: Option<TestDatabase>,
}

impl TestServer {
    /// A server on a fresh database of `backend`; `None` when PostgreSQL is skipped.
    pub async fn start(backend: Backend, test: &str) -> Option<TestServer> {
        let db = TestDatabase::new(backend, test).await?;
        let dir = TempDir::new();
        let config = test_config(&db.url, &dir);
        Some(TestServer::start_with(config, Arc::new(SystemClock), dir, Some(db)).await)
    }

    pub async fn start_with(
        config: Config,
        clock: Arc<dyn Clock>,
        data_dir: TempDir,
        db: Option<TestDatabase>,
    ) -> TestServer {
        let listener = TcpListener::bind(config.listen).await.unwrap();
        TestServer::start_on(listener, config, clock, data_dir, db).await
    }

    /// As `start_with`, on a listener the test bound first (to know its URL in advance).
    pub async fn start_on(
        listener: TcpListener,
        config: Config,
        clock: Arc<dyn Clock>,
        data_dir: TempDir,
        db: Option<TestDatabase>,
    ) -> TestServer {
        let addr = listener.local_addr().unwrap();
        let issuer = config.resolve_issuer(addr).unwrap();
        let state = server::build_state(config, issuer, clock).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let router = techpass::app(state.clone());
        let task = tokio::spawn(server::serve_until(
            listener,
            router,
            async move {
                let _ = stopped.await;
            },
            Transport {
                shutdown_grace: Duration::from_secs(5),
                ..Transport::from_config(&state.config.http)
            },
        ));
        let follower = tokio::spawn({
            let state = state.clone();
            async move { server::follow_row_changes(&state).await }
        });
        TestServer {
            base: format!("http://{addr}"),
            state,
            stop: Some(stop),
            task: Some(task),
            follower,
            _data_dir: data_dir,
            _db: db,
        }
    }

    /// What the metrics listener (`metrics_listen`) answers at `/metrics`: served here on a
    /// listener of its own for the moment of the call, as `techpass serve` serves it beside the
    /// public one.
    pub async fn metrics(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(server::serve_until(
            listener,
            techpass::metrics_app(self.state.clone()),
            std::future::pending(),
            Transport::from_config(&self.state.config.http),
        ));
        let response = client()
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the metrics listener answers");
        let text = response.text().await.unwrap();
        task.abort();
        text
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        client().get(self.url(path)).send().await.unwrap()
    }

    pub async fn stop(mut self) {
        self.follower.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// A development upstream on its own loopback port, as a separate Azure AD would be, with
/// TechPass at `techpass_base` registered as its client (`techpass` / `upstream-secret`,
/// redirect `/callback`); it forges its tokens as `tamper` says. Abort the task to stop it.
pub async fn standalone_upstream(
    techpass_base: &str,
    clock: Arc<dyn Clock>,
    tamper: techpass_upstream::dev::Tamper,
) -> (
    Arc<techpass_upstream::dev::DevUpstream>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    use techpass_upstream::dev::{DevClient, DevUpstream, PATH_PREFIX};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PATH_PREFIX}", listener.local_addr().unwrap());
    let upstream = Arc::new(
        DevUpstream::new(
            url::Url::parse(&base).unwrap(),
            vec![DevClient {
                client_id: "techpass".into(),
                client_secret: "upstream-secret".into(),
                redirect_uris: vec![format!("{techpass_base}/callback")],
            }],
            clock,
            tamper,
        )
        .unwrap(),
    );
    let router = axum::Router::new().nest_service(PATH_PREFIX, upstream.clone().router());
    let task = tokio::spawn(async move { axum::serve(listener, router).await });
    (upstream, task)
}

/// A client that keeps cookies like a browser and shows each redirect instead of following it.
/// Undoes minijinja's HTML escaping (`&amp;` last, so nothing is unescaped twice).
pub fn unescape_html(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&#x3f;", "?")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of a (hidden) form field on a page, unescaped.
pub fn form_field(html: &str, name: &str) -> String {
    let value = html
        .split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in the form"));
    unescape_html(value)
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The `Location` of a redirect, asserting it is a 303 (RFC 9700 §4.12: never 307 after a form).
pub fn see_other(response: &reqwest::Response) -> String {
    assert_eq!(
        response.status(),
        303,
        "expected a 303 redirect from {}",
        response.url()
    );
    response.headers()["location"].to_str().unwrap().to_string()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `techpass` binary built for these tests.
pub fn techpass_command(cwd: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_techpass"));
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // The test's own TECHPASS_* variables are not meant for the child.
    for (key, _) in std::env::vars() {
        if key.starts_with("TECHPASS_") {
            cmd.env_remove(key);
        }
    }
    // Tests run side by side: each child's metrics listener takes a free port, not the default.
    cmd.env("TECHPASS_METRICS_LISTEN", "127.0.0.1:0");
    cmd
}

/// Runs `techpass` to completion (bounded), returning (exit code, stdout, stderr).
pub async fn run_techpass(
    cwd: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut cmd = techpass_command(cwd);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("techpass did not finish within 60 s")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `techpass serve` process and the URL it printed.
pub struct ServeProcess {
    pub child: tokio::process::Child,
    pub base: String,
    /// `http://address/metrics` of its metrics listener, when it serves one.
    pub metrics: Option<String>,
}

/// Starts `techpass serve` in `cwd` and waits (bounded) for the line announcing its URL.
pub async fn spawn_serve(cwd: &std::path::Path, env: &[(&str, &str)]) -> ServeProcess {
    let mut cmd = techpass_command(cwd);
    cmd.arg("serve");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("techpass serve printed nothing within 60 s")
        .unwrap()
        .expect("techpass serve exited before serving");
    let base = line
        .strip_prefix("TechPass is serving at ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    let metrics = line
        .split("metrics on ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .map(str::to_string);
    ServeProcess {
        child,
        base,
        metrics,
    }
}
