//! Two `techpass serve` processes on one PostgreSQL database behind one public issuer: nothing of
//! a flow lives in one process's memory. A sign-in starts on one replica and finishes on the
//! other, the code is redeemed on the second and the refresh token on the first.
//!
//! A tiny TCP proxy in the test plays the load balancer. It picks the replica when it accepts a
//! connection, from a switch the test sets before each step; the test's HTTP clients keep no
//! idle connections, so every request is a new connection routed as the switch says, and the
//! proxy counts the connections each replica got so the routing itself is checked.
//!
//! Replicas die mid-flow (issue 15 item 8): replica A is killed with SIGKILL between authorize
//! and callback, and replica B between issuing the code and its redemption; each is replaced by
//! a new process (new port, empty memory) and the person finishes without noticing.
//!
//! Then bounded staleness (issue 13 item 6): the operator disables Alice at the development
//! upstream with `techpass dev-upstream disable alice` (the upstream, in this process, reads who
//! is disabled from the same database); within `upstream.reverify_after_secs` (3 s here) a
//! refresh on replica B is refused, her session has ended for replica A too, and she cannot
//! sign in at the upstream again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openidconnect::core::{
    CoreAuthPrompt, CoreClient, CoreErrorResponseType, CoreProviderMetadata, CoreResponseType,
};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardErrorResponse, TokenResponse,
};
use serde_json::Value;
use techpass_domain::SystemClock;
use techpass_oidc::MasterKey;
use techpass_service::dev_people::StoredDisabledPeople;
use techpass_store::testing::TestDatabase;
use techpass_upstream::dev::{self, DevClient, DevUpstream, Tamper};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{form_field, run_techpass, techpass_command, TempDir};

const TEST: &str = "e2e::replicas::sign_in_across_two_processes_on_one_postgres";
const APP_CALLBACK: &str = "https://app.example.gov.sg/callback";
const A: usize = 0;
const B: usize = 1;
const UPSTREAM_SECRET_VAR: &str = "REPLICA_TEST_WOG_CLIENT_SECRET";
const UPSTREAM_SECRET: &str = "replica-upstream-secret";
/// `upstream.reverify_after_secs` of both replicas.
const REVERIFY_AFTER_SECS: u64 = 3;

/// The load balancer: forwards each accepted connection to the replica the switch names.
pub(crate) struct Proxy {
    pub(crate) base: String,
    targets: Arc<Mutex<Option<[SocketAddr; 2]>>>,
    route: Arc<AtomicUsize>,
    /// Set: connections alternate between the replicas, whatever `route` says.
    alternate: Arc<std::sync::atomic::AtomicBool>,
    hits: Arc<[AtomicUsize; 2]>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let targets: Arc<Mutex<Option<[SocketAddr; 2]>>> = Arc::new(Mutex::new(None));
        let route = Arc::new(AtomicUsize::new(A));
        let alternate = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hits = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let task = tokio::spawn({
            let (targets, route, hits) = (targets.clone(), route.clone(), hits.clone());
            let alternate = alternate.clone();
            async move {
                let mut accepted = 0usize;
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    // Before the replicas are known, a connection is refused by closing it.
                    let Some(targets) = *targets.lock().unwrap() else {
                        continue;
                    };
                    accepted += 1;
                    let replica = if alternate.load(Ordering::SeqCst) {
                        accepted % 2
                    } else {
                        route.load(Ordering::SeqCst)
                    };
                    hits[replica].fetch_add(1, Ordering::SeqCst);
                    let target = targets[replica];
                    tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            }
        });
        Proxy {
            base,
            targets,
            route,
            alternate,
            hits,
            task,
        }
    }

    /// Where the two replicas listen (again, after one was killed and started anew).
    pub(crate) fn set_targets(&self, a: SocketAddr, b: SocketAddr) {
        *self.targets.lock().unwrap() = Some([a, b]);
    }

    /// Spreads the following connections over both replicas, one each in turn.
    pub(crate) fn alternate(&self) {
        self.alternate.store(true, Ordering::SeqCst);
    }

    /// Sends the following connections to `replica`.
    pub(crate) fn route_to(&self, replica: usize) {
        self.route.store(replica, Ordering::SeqCst);
    }

    /// The connections each replica got since the last call, `[A, B]`.
    pub(crate) fn take_hits(&self) -> [usize; 2] {
        [
            self.hits[A].swap(0, Ordering::SeqCst),
            self.hits[B].swap(0, Ordering::SeqCst),
        ]
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `techpass serve` process, its own listen address and its log (printed if the test fails).
pub(crate) struct Replica {
    name: &'static str,
    pub(crate) child: tokio::process::Child,
    pub(crate) base: String,
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<String>>,
    _cwd: TempDir,
}

impl Replica {
    /// Starts `techpass serve` in a directory of its own and waits (bounded) for its first line:
    /// `TechPass is serving at <issuer> (listening on <addr>, metrics on <url>, <backend> database)`.
    pub(crate) async fn spawn(
        name: &'static str,
        config: &str,
        env: &[(&str, &str)],
        issuer: &str,
    ) -> Replica {
        let cwd = TempDir::new();
        let mut cmd = techpass_command(&cwd.0);
        // Replica A names its file with --config, replica B with TECHPASS_CONFIG: both work.
        if name == "A" {
            cmd.args(["--config", config, "serve"]);
        } else {
            cmd.env("TECHPASS_CONFIG", config).arg("serve");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let drain = tokio::spawn({
            let log = log.clone();
            async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    log.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("replica {name} printed nothing within 30 s"))
            .unwrap();
        let Some(line) = first else {
            let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
            let log = log.lock().unwrap().clone();
            panic!("replica {name} exited before serving:\n{log}");
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let announced = line
            .strip_prefix("TechPass is serving at ")
            .and_then(|rest| rest.split_whitespace().next());
        assert_eq!(announced, Some(issuer), "replica {name}: {line}");
        assert!(
            line.ends_with(", postgres database)"),
            "replica {name}: {line}"
        );
        let addr: SocketAddr = line
            .split("(listening on ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("replica {name}: no listen address in {line}"));
        Replica {
            name,
            child,
            base: format!("http://{addr}"),
            addr,
            log,
            _cwd: cwd,
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no graceful shutdown, no drained requests.
    pub(crate) async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
            eprintln!("----- replica {} log -----\n{log}", self.name);
        }
    }
}

/// A client that opens a new connection for every request (so the proxy routes each one),
/// shows redirects instead of following them and, as a browser, keeps cookies.
pub(crate) fn unpooled(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .cookie_store(cookies)
        .build()
        .unwrap()
}

/// The `Location` of a 303, or a failure showing what the page said instead.
pub(crate) async fn redirected(response: reqwest::Response, step: &str) -> String {
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    match (status.as_u16(), location) {
        (303, Some(location)) => location,
        _ => {
            let page = response.text().await.unwrap_or_default();
            panic!("{step}: expected a 303, got {status}: {page}")
        }
    }
}

pub(crate) fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn json(http: &reqwest::Client, url: &str) -> Value {
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

fn is_invalid_grant<T, E: std::error::Error + 'static>(
    result: &Result<T, RequestTokenError<E, StandardErrorResponse<CoreErrorResponseType>>>,
) -> bool {
    matches!(
        result,
        Err(RequestTokenError::ServerResponse(e)) if *e.error() == CoreErrorResponseType::InvalidGrant
    )
}

/// Two `techpass serve` processes on `db` behind one [`Proxy`] (their shared issuer), with the
/// development upstream in this process as their one upstream and a confidential app
/// registered by `techpass app create`. `config_extra` is appended to their configuration file.
pub(crate) struct Cluster {
    pub(crate) proxy: Proxy,
    pub(crate) issuer: String,
    pub(crate) upstream_base: String,
    /// The configuration file both replicas read.
    pub(crate) config: String,
    /// The environment both replicas (and `techpass` commands against them) run with.
    pub(crate) env: Vec<(String, String)>,
    pub(crate) a: Replica,
    pub(crate) b: Replica,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) cli_dir: TempDir,
    pub(crate) _running: Running,
}

/// What must live as long as the cluster: the upstream task and the configuration folder.
pub(crate) struct Running {
    upstream_task: tokio::task::JoinHandle<std::io::Result<()>>,
    _config_dir: TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.upstream_task.abort();
    }
}

pub(crate) async fn cluster(
    db: &TestDatabase,
    config_extra: &str,
    extra_env: &[(&str, &str)],
) -> Cluster {
    // The load balancer first: its URL is the issuer of both replicas.
    let proxy = Proxy::start().await;
    let issuer = proxy.base.clone();

    // The upstream (plays Azure AD) in this process, on its own port; it knows TechPass by its
    // public callback.
    let upstream_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_base = format!(
        "http://{}{}",
        upstream_listener.local_addr().unwrap(),
        dev::PATH_PREFIX
    );
    let upstream = Arc::new(
        DevUpstream::new(
            url::Url::parse(&upstream_base).unwrap(),
            vec![DevClient {
                client_id: "techpass-replicas".into(),
                client_secret: UPSTREAM_SECRET.into(),
                redirect_uris: vec![proxy.url("/callback")],
            }],
            Arc::new(SystemClock),
            Tamper::None,
        )
        .unwrap()
        // Who is disabled, in the shared database: what `techpass dev-upstream` changes.
        .with_disabled_people(Arc::new(StoredDisabledPeople {
            store: techpass_store::connect(&techpass_store::ConnectOptions::new(db.url.clone()))
                .await
                .unwrap(),
            clock: Arc::new(SystemClock),
        })),
    );
    let upstream_issuer = upstream.issuer(dev::WOG_TENANT_ID);
    let upstream_app = axum::Router::new().nest_service(dev::PATH_PREFIX, upstream.router());
    let upstream_task =
        tokio::spawn(async move { axum::serve(upstream_listener, upstream_app).await });

    // One configuration file, one database, one master key for both replicas.
    let config_dir = TempDir::new();
    let config_file = config_dir.0.join("techpass.toml");
    std::fs::write(
        &config_file,
        format!(
            r#"[[upstreams]]
id = "wog"
display_name = "Public officer"
issuer = "{upstream_issuer}"
client_id = "techpass-replicas"
client_secret_env = "{UPSTREAM_SECRET_VAR}"
allowed_tenants = ["{tenant}"]
account_types = ["public_officer"]

{config_extra}"#,
            tenant = dev::WOG_TENANT_ID
        ),
    )
    .unwrap();
    let config = config_file.to_str().unwrap();
    let master = MasterKey::generate_base64().unwrap();
    let mut env = vec![
        ("TECHPASS_LISTEN", "127.0.0.1:0"),
        ("TECHPASS_DATABASE_URL", db.url.as_str()),
        ("TECHPASS_MASTER_KEY", master.as_str()),
        ("TECHPASS_ISSUER", issuer.as_str()),
        ("TECHPASS_DEV_UPSTREAM__ENABLED", "false"),
        (UPSTREAM_SECRET_VAR, UPSTREAM_SECRET),
    ];
    env.extend_from_slice(extra_env);

    // Both start at once on the empty schema: both migrate, one creates the first signing key.
    let (a, b) = tokio::join!(
        Replica::spawn("A", config, &env, &issuer),
        Replica::spawn("B", config, &env, &issuer)
    );
    assert_ne!(a.addr, b.addr);
    proxy.set_targets(a.addr, b.addr);

    // The app, registered by the operator command against the same database and key.
    let cli_dir = TempDir::new();
    let (code, stdout, stderr) = run_techpass(
        &cli_dir.0,
        &[
            "--config",
            config,
            "app",
            "create",
            "--name",
            "Replica",
            "--redirect-uri",
            APP_CALLBACK,
            "--json",
        ],
        &env,
    )
    .await;
    assert_eq!(code, 0, "app create: {stderr}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let client_id = created["client_id"].as_str().unwrap().to_string();
    let client_secret = created["client_secret"].as_str().unwrap().to_string();
    Cluster {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        config: config.to_string(),
        proxy,
        issuer,
        upstream_base,
        a,
        b,
        client_id,
        client_secret,
        cli_dir,
        _running: Running {
            upstream_task,
            _config_dir: config_dir,
        },
    }
}

#[tokio::test]
async fn sign_in_across_two_processes_on_one_postgres() {
    let Some(db) = TestDatabase::postgres(TEST).await else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), run(&db))
        .await
        .expect("the two-replica flow did not finish within 60 s");
}

async fn run(db: &TestDatabase) {
    let upstream_policy = format!(
        "[upstream]\nreverify_after_secs = {REVERIFY_AFTER_SECS}\nreverify_retries = 0\nreverify_grace_secs = 0\n"
    );
    let Cluster {
        proxy,
        issuer,
        upstream_base,
        config,
        env,
        mut a,
        mut b,
        client_id,
        client_secret,
        cli_dir,
        _running,
    } = cluster(db, &upstream_policy, &[]).await;
    let config = config.as_str();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    // Each replica, asked directly, describes the same provider and publishes the same keys.
    let direct = unpooled(false);
    let jwks_a = json(&direct, &format!("{}/jwks", a.base)).await;
    let jwks_b = json(&direct, &format!("{}/jwks", b.base)).await;
    assert_eq!(jwks_a, jwks_b, "both replicas publish the same keys");
    assert_eq!(
        jwks_a["keys"].as_array().map(Vec::len),
        Some(3),
        "one first signing key per algorithm although both replicas started at once: {jwks_a}"
    );
    for replica in [&a, &b] {
        let discovery = json(
            &direct,
            &format!("{}/.well-known/openid-configuration", replica.base),
        )
        .await;
        assert_eq!(discovery["issuer"], issuer.as_str(), "{}", replica.name);
        assert_eq!(
            discovery["token_endpoint"],
            proxy.url("/token").as_str(),
            "{}",
            replica.name
        );
    }
    assert_eq!(
        proxy.take_hits(),
        [0, 0],
        "direct requests bypass the proxy"
    );

    // The relying party discovers the provider (and its keys) through the balancer, on A.
    let http = unpooled(false);
    proxy.route_to(A);
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http)
            .await
            .unwrap();
    assert_eq!(proxy.take_hits(), [2, 0], "discovery and JWKS from A");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        Some(ClientSecret::new(client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(APP_CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_extra_param("login_hint", "alice_tan@tech.gov.sg")
        .set_pkce_challenge(challenge)
        .url();

    // A: /authorize sends the browser to sign in; /login sends it to the upstream.
    let browser = unpooled(true);
    let login = redirected(
        browser.get(auth_url.as_str()).send().await.unwrap(),
        "authorize on A",
    )
    .await;
    assert!(login.starts_with("/login?"), "{login}");
    let to_upstream = redirected(
        browser.get(proxy.url(&login)).send().await.unwrap(),
        "login on A",
    )
    .await;
    assert!(
        to_upstream.starts_with(&format!("{upstream_base}/{}/", dev::WOG_TENANT_ID)),
        "the single upstream, straight away: {to_upstream}"
    );
    assert_eq!(proxy.take_hits(), [2, 0], "authorize and login on A");

    // Replica A is killed (SIGKILL) between authorize and callback, and a new A process takes
    // its place: the sign-in A started is a database row, so nothing of it dies with A.
    a.stop().await;
    a = Replica::spawn("A", config, &env, &issuer).await;
    proxy.set_targets(a.addr, b.addr);

    // At the upstream (no balancer): Alice picks herself.
    let picker = browser.get(&to_upstream).send().await.unwrap();
    assert_eq!(picker.status(), 200, "person picker");
    assert!(picker.text().await.unwrap().contains("Alice Tan"));
    let authorize = url::Url::parse(&to_upstream).unwrap();
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("person".into(), "alice".into()));
    let mut action = authorize.clone();
    action.set_query(None);
    let callback = redirected(
        browser.post(action).form(&form).send().await.unwrap(),
        "upstream sign-in",
    )
    .await;
    assert!(callback.starts_with(&proxy.url("/callback?")), "{callback}");
    assert_eq!(proxy.take_hits(), [0, 0]);

    // B: the callback of the attempt A started (the attempt is a database row, the binding a
    // cookie): signed in, and a first-time officer is asked to register.
    proxy.route_to(B);
    let next = redirected(
        browser.get(&callback).send().await.unwrap(),
        "callback on B (of a sign-in started on A)",
    )
    .await;
    assert!(next.starts_with("/register?"), "first-time officer: {next}");
    assert_eq!(proxy.take_hits(), [0, 1], "callback on B");

    // Registration: the form from B, posted to A.
    let page = browser.get(proxy.url(&next)).send().await.unwrap();
    assert_eq!(page.status(), 200, "registration page on B");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("alice_tan@tech.gov.sg"),
        "B knows the session"
    );
    proxy.route_to(A);
    let registered = browser
        .post(proxy.url("/register"))
        .form(&[
            ("csrf_token", form_field(&html, "csrf_token")),
            ("terms_version", form_field(&html, "terms_version")),
            ("return_to", form_field(&html, "return_to")),
            ("accept_terms", "yes".to_string()),
        ])
        .send()
        .await
        .unwrap();
    let back = redirected(registered, "registration posted to A").await;
    assert!(back.starts_with("/authorize?"), "{back}");
    assert_eq!(proxy.take_hits(), [1, 1], "register page on B, post on A");

    // B: the authorization request resumes with the session and returns to the app.
    proxy.route_to(B);
    let to_app = redirected(
        browser.get(proxy.url(&back)).send().await.unwrap(),
        "authorize resumed on B",
    )
    .await;
    assert_eq!(proxy.take_hits(), [0, 1], "authorize resumed on B");
    let to_app = url::Url::parse(&to_app).unwrap();
    assert!(to_app.as_str().starts_with(APP_CALLBACK), "{to_app}");
    assert_eq!(query(&to_app, "error"), None, "{to_app}");
    assert_eq!(
        query(&to_app, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        query(&to_app, "iss").as_deref(),
        Some(issuer.as_str()),
        "RFC 9207 iss is the shared issuer"
    );
    let code = query(&to_app, "code").unwrap();

    // Replica B, which issued the code, is killed (SIGKILL) before the app redeems it, and a
    // new B process takes its place.
    b.stop().await;
    b = Replica::spawn("B", config, &env, &issuer).await;
    proxy.set_targets(a.addr, b.addr);

    // B (the new process): the code is redeemed; the ID token B signed verifies with the keys
    // A published.
    let verifier_secret = verifier.secret().clone();
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(proxy.take_hits(), [0, 1], "code redeemed on B");
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.issuer().as_str(), issuer);
    assert_eq!(claims.email().unwrap().as_str(), "alice_tan@tech.gov.sg");
    let sub = claims.subject().as_str().to_string();
    let first_refresh = tokens.refresh_token().unwrap().clone();

    // A: the refresh token B issued is rotated by A.
    proxy.route_to(A);
    let refreshed = rp
        .exchange_refresh_token(&first_refresh)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(proxy.take_hits(), [1, 0], "refresh on A");
    let second_refresh = refreshed.refresh_token().unwrap().clone();
    assert_ne!(first_refresh.secret(), second_refresh.secret(), "rotated");
    if let Some(id_token) = refreshed.id_token() {
        let claims = id_token
            .claims(&rp.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
            .unwrap();
        assert_eq!(claims.subject().as_str(), sub);
    }
    let access_token = refreshed.access_token().secret().clone();

    // B: userinfo with the access token A issued.
    proxy.route_to(B);
    let info = http
        .get(proxy.url("/userinfo"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200, "userinfo on B");
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["email"], "alice_tan@tech.gov.sg");
    assert_eq!(proxy.take_hits(), [0, 1], "userinfo on B");

    // A: the code B redeemed cannot be redeemed again, and the replay revokes its grant...
    proxy.route_to(A);
    let replay = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new(verifier_secret))
        .request_async(&http)
        .await;
    assert!(is_invalid_grant(&replay), "code replayed on A: {replay:?}");
    assert_eq!(proxy.take_hits(), [1, 0], "replay on A");

    // ...at once, on B too: the access and refresh tokens A issued are dead there.
    proxy.route_to(B);
    let revoked = http
        .get(proxy.url("/userinfo"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 401, "userinfo on B after the replay");
    let dead = rp
        .exchange_refresh_token(&RefreshToken::new(second_refresh.secret().clone()))
        .unwrap()
        .request_async(&http)
        .await;
    assert!(
        is_invalid_grant(&dead),
        "refresh on B after the replay: {dead:?}"
    );
    assert_eq!(proxy.take_hits(), [0, 2]);

    // Bounded staleness. B: a new authorization in Alice's SSO session, and its tokens.
    proxy.route_to(B);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, _) = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let to_app = redirected(
        browser.get(auth_url.as_str()).send().await.unwrap(),
        "SSO reuse on B",
    )
    .await;
    let to_app = url::Url::parse(&to_app).unwrap();
    let code = query(&to_app, "code").unwrap_or_else(|| panic!("no code: {to_app}"));
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let refresh = tokens.refresh_token().unwrap().clone();
    assert_eq!(proxy.take_hits(), [0, 2]);

    // The operator disables her at the development upstream (its people page agrees).
    let (code, stdout, stderr) = run_techpass(
        &cli_dir.0,
        &["--config", config, "dev-upstream", "disable", "alice"],
        &env,
    )
    .await;
    assert_eq!(code, 0, "dev-upstream disable: {stderr}");
    assert!(stdout.contains("disabled alice"), "{stdout}");
    let disabled_at = std::time::Instant::now();
    let people = direct
        .get(format!("{upstream_base}/people"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(people.contains("Enable Alice Tan"), "{people}");

    // Past the bound, B refuses her refresh: the upstream said invalid_grant.
    tokio::time::sleep(Duration::from_secs(REVERIFY_AFTER_SECS + 1)).await;
    let refused = rp
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(is_invalid_grant(&refused), "refresh on B: {refused:?}");
    if let Err(RequestTokenError::ServerResponse(e)) = &refused {
        let description = e.error_description().cloned().unwrap_or_default();
        // Refused by the upstream (not merely unconfirmed): her sessions were ended.
        assert!(
            description.contains("re-verification failed: the upstream no longer accepts"),
            "{description}"
        );
    }
    assert!(
        disabled_at.elapsed() < Duration::from_secs(REVERIFY_AFTER_SECS + 3),
        "refused within the bound"
    );
    assert_eq!(proxy.take_hits(), [0, 1]);

    // A: her SSO session ended everywhere (prompt=none hears login_required)...
    proxy.route_to(A);
    let (silent_url, _, _) = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_prompt(CoreAuthPrompt::None)
        .set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0)
        .url();
    let silent = redirected(
        browser.get(silent_url.as_str()).send().await.unwrap(),
        "prompt=none on A",
    )
    .await;
    let silent = url::Url::parse(&silent).unwrap();
    assert_eq!(
        query(&silent, "error").as_deref(),
        Some("login_required"),
        "{silent}"
    );
    assert_eq!(proxy.take_hits(), [1, 0]);

    // ...and the upstream will not sign her in again.
    let login = redirected(
        browser.get(auth_url.as_str()).send().await.unwrap(),
        "authorize on A without a session",
    )
    .await;
    assert!(login.starts_with("/login?"), "{login}");
    let to_upstream = redirected(
        browser.get(proxy.url(&login)).send().await.unwrap(),
        "login on A",
    )
    .await;
    let authorize = url::Url::parse(&to_upstream).unwrap();
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("person".into(), "alice".into()));
    let mut action = authorize.clone();
    action.set_query(None);
    let picked = browser.post(action).form(&form).send().await.unwrap();
    assert_eq!(picked.status(), 403, "a disabled person cannot sign in");

    a.stop().await;
    b.stop().await;
}
