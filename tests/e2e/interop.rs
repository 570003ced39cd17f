//! Interop with parties we did not write (issue 11 item 9): a relying party on panva's certified
//! `openid-client` and an Azure AD stand-in on panva's certified `oidc-provider`, both on Node
//! (`tests/interop/`), with real headless Chromium going between three origins (the app, TechPass
//! and the upstream: loopback ports). Each test starts its own TechPass in process (SQLite), its
//! own upstream and apps as child processes and its own browser, and checks one thing, so a
//! failure names the behaviour (and the issue item) that broke.
//!
//! Node (`node`, `npm`) and Chromium are needed; without them each test prints `SKIPPED <test>:
//! …` and passes, except under `CI`, where it fails. The Node packages are installed with `npm ci`
//! from `tests/interop/package-lock.json` when `node_modules` does not match the lock (`.ci/run`
//! does it first). Every wait has a deadline and every child is killed when its test ends.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{json, Value};
use techpass::config::{AccountTypeName, MfaMode, UpstreamConfig};
use techpass::provider::clients::{create_app, set_dpop_bound, NewApp};
use techpass::tenancy::tenants::{self, DirectTenant};
use techpass::tenancy::Actor;
use techpass_domain::account::EmailAuthority;
use techpass_domain::client::AccessPolicy;
use techpass_domain::SystemClock;
use techpass_oidc::keys::SigningAlg;
use techpass_store::testing::{Backend, TestDatabase};
use techpass_store::AuditFilter;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::net::TcpListener;

use crate::browser::{bounded, Browser};
use crate::support::{secret, test_config, TempDir, TestServer};

/// The upstream's tenant: its issuer is `http://127.0.0.1:<port>/<TENANT>/v2.0`.
const TENANT: &str = "3f5c1b7e-0000-4000-8000-00000000a001";
/// The client TechPass is at the upstream.
const UPSTREAM_CLIENT: &str = "techpass-interop";
/// The heading of the upstream's sign-in page.
const UPSTREAM_PAGE: &str = "Azure AD stand-in";
/// How long a child process may take to print its port.
const CHILD_START: Duration = Duration::from_secs(20);
/// How long a page may take to appear after a click or a navigation.
const PAGE: Duration = Duration::from_secs(15);
/// How long a browser gets to follow a redirect that should happen at once; a browser that
/// refuses one (a CSP violation) stays where it was, so this is also how long we wait for it.
const REDIRECT: Duration = Duration::from_secs(6);
/// `npm ci` on a cold cache.
const NPM_CI: Duration = Duration::from_secs(300);

pub(crate) fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

fn skip(test: &str, why: &str) {
    // Written past the test harness's output capture, like the other skips.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Whether `node` and `npm` run; `false` after printing the skip line. Under CI a missing Node
/// is a failure instead, like a missing browser.
pub(crate) fn node_installed(test: &str) -> bool {
    let runs = |program: &str| {
        std::process::Command::new(program)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if runs("node") && runs("npm") {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: CI is set but node or npm is missing (the interop tests need Node 20.19 or newer)");
    }
    skip(test, "node/npm not installed");
    false
}

/// `npm ci` once per test process, unless `node_modules` already matches the lock file.
pub(crate) fn node_modules_ready() {
    static DONE: Mutex<Option<Result<(), String>>> = Mutex::new(None);
    let mut done = DONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let result = done.get_or_insert_with(install_node_modules).clone();
    if let Err(e) = result {
        panic!("cannot install the interop packages: {e}");
    }
}

fn install_node_modules() -> Result<(), String> {
    let dir = interop_dir();
    let up_to_date = std::process::Command::new("node")
        .arg("installed.mjs")
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("node installed.mjs: {e}"))?;
    if up_to_date.success() {
        return Ok(());
    }
    let log = dir.join("npm-ci.log");
    let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("npm ci: {e}"))?;
    let deadline = Instant::now() + NPM_CI;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            return if status.success() {
                Ok(())
            } else {
                Err(format!("npm ci failed ({status}): {text}"))
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("npm ci did not finish within {NPM_CI:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A Node child (`upstream.mjs`, `rp.mjs`, `ci_issuer.mjs`) and the port it printed; killed on drop.
pub(crate) struct NodeChild {
    _child: tokio::process::Child,
    label: String,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Drop for NodeChild {
    /// A failing test shows what the child said on its standard error.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = self
                .stderr
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let _ = writeln!(std::io::stderr(), "--- {} stderr:\n{text}", self.label);
        }
    }
}

/// Keeps reading `from` (so the child never blocks on a full pipe), keeping the last 16 KiB.
pub(crate) fn drain(from: impl AsyncRead + Unpin + Send + 'static, into: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut from = from;
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut text = into.lock().unwrap();
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.len() > 16384 {
                let cut = text.len() - 16384;
                let cut = (cut..text.len())
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(cut);
                text.drain(..cut);
            }
        }
    });
}

impl NodeChild {
    pub(crate) async fn start(script: &str, env: &[(&str, &str)]) -> NodeChild {
        let mut command = tokio::process::Command::new("node");
        command
            .arg(script)
            .current_dir(interop_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {script}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().unwrap(), stderr.clone());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        let read = tokio::time::timeout(CHILD_START, stdout.read_line(&mut first)).await;
        let port = match read {
            Ok(Ok(n)) if n > 0 => first.trim().parse::<u16>().ok(),
            _ => None,
        };
        let Some(port) = port else {
            // Give its last words a moment to arrive.
            tokio::time::sleep(Duration::from_millis(300)).await;
            panic!(
                "node {script} printed no port within {CHILD_START:?} (first line {first:?}); stderr:\n{}",
                stderr.lock().unwrap()
            );
        };
        drain(stdout, Arc::new(Mutex::new(String::new())));
        NodeChild {
            _child: child,
            label: format!("{script} on port {port}"),
            port,
            stderr,
        }
    }

    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get_json(url: &str) -> Value {
    let response = http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// The Azure AD stand-in (`upstream.mjs`).
struct Upstream {
    node: NodeChild,
    issuer: String,
}

impl Upstream {
    async fn start(techpass: &str, secret: &str, misbehave: &str) -> Upstream {
        let callback = format!("{techpass}/callback");
        let node = NodeChild::start(
            "upstream.mjs",
            &[
                ("UPSTREAM_TENANT_ID", TENANT),
                ("UPSTREAM_CLIENT_ID", UPSTREAM_CLIENT),
                ("UPSTREAM_CLIENT_SECRET", secret),
                ("UPSTREAM_REDIRECT_URI", &callback),
                ("UPSTREAM_MISBEHAVE", misbehave),
            ],
        )
        .await;
        let issuer = format!("{}/{TENANT}/v2.0", node.base());
        Upstream { node, issuer }
    }

    /// What it saw: `authorizations`, `signins`, `cancels`, `token_requests`, `refreshes`,
    /// `refresh_refusals`, `disabled`.
    async fn seen(&self) -> Value {
        get_json(&format!("{}/state", self.node.base())).await
    }

    /// Disables `person` as an Azure AD administrator would.
    async fn disable(&self, person: &str) {
        let response = http()
            .post(format!("{}/control", self.node.base()))
            .json(&json!({ "disable": person }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "disable {person}");
    }
}

/// One app: a relying party process (`rp.mjs`) registered at TechPass.
struct App {
    node: NodeChild,
    name: String,
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.base())
    }

    /// Everything it received: `logins`, `refreshes`, `logouts`, `backchannel`.
    async fn received(&self) -> Value {
        get_json(&self.url("/state")).await
    }

    /// Its latest sign-in outcome.
    async fn last_login(&self) -> Value {
        let state = self.received().await;
        state["logins"]
            .as_array()
            .and_then(|l| l.last())
            .cloned()
            .unwrap_or_else(|| panic!("{} received no sign-in answer: {state}", self.name))
    }
}

/// One test's world: TechPass, the upstream, the apps and the browser.
struct Interop {
    test: String,
    b: Browser,
    server: TestServer,
    upstream: Upstream,
    apps: Vec<App>,
}

impl Interop {
    /// Starts everything, or `None` (after the skip line) when Node or Chromium is missing.
    /// `misbehave` is the upstream's knob (`none` for a well-behaved upstream).
    async fn start(test: &str, misbehave: &str, apps: &[&str]) -> Option<Interop> {
        // The stand-in sends no email_verified; it plays a directory of its own addresses.
        Interop::start_with(test, misbehave, apps, EmailAuthority::Trusted).await
    }

    /// As [`Interop::start`], with `upstream.reverify_after_secs` = `bound`.
    async fn start_reverifying(test: &str, apps: &[&str], bound: u64) -> Option<Interop> {
        Interop::start_configured(test, "none", apps, EmailAuthority::Trusted, |config| {
            config.upstream.reverify_after_secs = bound;
        })
        .await
    }

    /// As [`Interop::start`], with the stand-in's addresses believed as `email_authority` says.
    async fn start_with(
        test: &str,
        misbehave: &str,
        apps: &[&str],
        email_authority: EmailAuthority,
    ) -> Option<Interop> {
        Interop::start_configured(test, misbehave, apps, email_authority, |_| {}).await
    }

    /// As [`Interop::start_with`], the configuration changed by `tweak` last.
    async fn start_configured(
        test: &str,
        misbehave: &str,
        apps: &[&str],
        email_authority: EmailAuthority,
        tweak: impl FnOnce(&mut techpass::config::Config),
    ) -> Option<Interop> {
        if !node_installed(test) {
            return None;
        }
        node_modules_ready();
        let b = Browser::start(test).await?;
        let db = TestDatabase::new(Backend::Sqlite, test).await?;
        let dir = TempDir::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let techpass = format!("http://{}", listener.local_addr().unwrap());
        let upstream_secret = uuid::Uuid::new_v4().to_string();
        let upstream = Upstream::start(&techpass, &upstream_secret, misbehave).await;

        // TechPass as production runs it, with the stand-in as its only upstream: WOG's tenant,
        // officers and B2B guest vendors, MFA proven by `amr`. The development upstream is off.
        let mut config = test_config(&db.url, &dir);
        config.dev_upstream.enabled = Some(false);
        config.upstreams = vec![UpstreamConfig {
            id: "wog".into(),
            display_name: "WOG Azure AD (stand-in)".into(),
            issuer: upstream.issuer.clone(),
            client_id: UPSTREAM_CLIENT.into(),
            client_secret: Some(secret(&upstream_secret)),
            client_secret_env: None,
            scopes: ["openid", "profile", "email", "offline_access"]
                .map(String::from)
                .to_vec(),
            allowed_tenants: vec![TENANT.into()],
            account_types: vec![AccountTypeName::PublicOfficer, AccountTypeName::Vendor],
            mfa: MfaMode::Amr,
            mfa_amr_values: vec!["mfa".into()],
            email_authority,
        }];
        tweak(&mut config);
        let server =
            TestServer::start_on(listener, config, Arc::new(SystemClock), dir, Some(db)).await;
        assert_eq!(server.base, techpass);

        let mut x = Interop {
            test: test.to_string(),
            b,
            server,
            upstream,
            apps: Vec::new(),
        };
        for name in apps {
            let app = x.add_app(name, |_| {}).await;
            x.apps.push(app);
        }
        Some(x)
    }

    /// Starts an app (its own Node relying party, on its own origin) registered at TechPass as
    /// `tweak` says, and lets it discover TechPass.
    async fn add_app(&self, name: &str, tweak: impl FnOnce(&mut NewApp)) -> App {
        let techpass = &self.server.base;
        let server = &self.server;
        let node = NodeChild::start("rp.mjs", &[("RP_ISSUER", techpass), ("RP_NAME", name)]).await;
        let base = node.base();
        let mut new = NewApp {
            name: name.to_string(),
            confidential: true,
            redirect_uris: vec![format!("{base}/cb")],
            post_logout_redirect_uris: vec![format!("{base}/logged-out")],
            backchannel_logout_uri: Some(format!("{base}/backchannel")),
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            ..NewApp::default()
        };
        tweak(&mut new);
        let id_token_alg = new
            .id_token_signed_response_alg
            .unwrap_or(SigningAlg::DEFAULT)
            .as_str();
        let app = create_app(
            server.state.store.as_ref(),
            &server.state.secrets,
            server.state.clock.now().as_secs(),
            server.state.http.policy(),
            new,
        )
        .await
        .unwrap();
        let configured = http()
            .post(format!("{base}/configure"))
            .json(&json!({
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "id_token_signed_response_alg": id_token_alg,
            }))
            .send()
            .await
            .unwrap();
        assert!(
            configured.status().is_success(),
            "{name} could not discover TechPass: {}",
            configured.text().await.unwrap_or_default()
        );
        App {
            node,
            name: name.to_string(),
        }
    }

    fn app(&self, i: usize) -> &App {
        &self.apps[i]
    }

    /// Where the browser is: its URL and the page's `h1` ("" without one).
    async fn here(&self) -> (String, String) {
        let url = self
            .b
            .client()
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let mut h1 = String::new();
        if let Ok(element) = self.b.client().find(Locator::Css("h1")).await {
            h1 = element.text().await.unwrap_or_default();
        }
        (url, h1)
    }

    /// Waits (at most `within`) until `done(url, h1)` holds; the last place seen otherwise.
    async fn wait_for(
        &self,
        within: Duration,
        done: impl Fn(&str, &str) -> bool,
    ) -> Result<(String, String), (String, String)> {
        let deadline = Instant::now() + within;
        loop {
            let (url, h1) = self.here().await;
            if done(&url, &h1) {
                return Ok((url, h1));
            }
            if Instant::now() > deadline {
                return Err((url, h1));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the browser shows a page (with an `h1`) that is not the upstream's, after a
    /// person's choice at the upstream: TechPass's answer or the app's.
    async fn back_from_upstream(&self) -> (String, String) {
        let upstream = format!("{}/", self.upstream.node.base());
        self.wait_for(PAGE, |url, h1| {
            !url.starts_with(&upstream) && !h1.is_empty()
        })
        .await
        .unwrap_or_else(|(url, h1)| {
            panic!(
                "{}: no page after the upstream within {PAGE:?}; at {url} ({h1:?})",
                self.test
            )
        })
    }

    /// Waits until the browser is on `app`'s pages; `Err` with where it stayed otherwise.
    async fn at_app(&self, app: &App, within: Duration) -> Result<(String, String), String> {
        let origin = format!("{}/", app.node.base());
        self.wait_for(within, |url, h1| url.starts_with(&origin) && !h1.is_empty())
            .await
            .map_err(|(url, h1)| format!("{url} (h1 {h1:?})"))
    }

    /// Opens `app`'s `/login` and waits for the upstream's sign-in page.
    async fn app_login_to_upstream(&self, app: &App) {
        self.b.goto(&app.url("/login")).await;
        self.b.heading(&[UPSTREAM_PAGE]).await;
    }

    /// Picks `person` on the upstream's sign-in page.
    async fn pick(&self, person: &str) {
        self.b.screenshot("upstream").await;
        let css = format!("button[name='person'][value='{person}']");
        self.b.click(Locator::Css(&css)).await;
    }

    /// Signs `person` in at TechPass itself (not from an app) and registers: the way in that
    /// stays on TechPass's origin, for tests about what comes after.
    async fn sign_in_at_techpass(&self, person: &str, name: &str) {
        self.b.goto(&self.server.url("/login")).await;
        self.b.heading(&[UPSTREAM_PAGE]).await;
        self.pick(person).await;
        self.b.heading(&["Register for TechPass"]).await;
        self.b
            .click(Locator::Css("label[for='accept_terms']"))
            .await;
        self.b.press("Register").await;
        self.b.heading(&[&format!("Signed in as {name}")]).await;
    }

    /// Whether TechPass accepted anyone from the upstream (a sign-in creates the person).
    async fn anyone_signed_in(&self, email: &str) -> bool {
        !self
            .server
            .state
            .store
            .find_users_by_email(email)
            .await
            .unwrap()
            .is_empty()
    }

    /// The reasons of TechPass's recent sign-in refusals, for failure messages.
    async fn refusals(&self) -> Vec<String> {
        let events = self
            .server
            .state
            .store
            .list_audit(&AuditFilter {
                event: Some("signin".into()),
                limit: 20,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        events
            .into_iter()
            .map(|e| format!("{} {}", e.outcome, e.reason.unwrap_or_default()))
            .collect()
    }

    /// Clicks the page's "Return to <app>" (a link or a button), or fails naming the defect.
    async fn return_to_app(&self, app: &App, page: &str) {
        let label = format!("Return to {}", app.name);
        let xpath =
            format!("//a[normalize-space()='{label}'] | //button[normalize-space()='{label}']");
        let found = self.b.client().find(Locator::XPath(&xpath)).await;
        let Ok(element) = found else {
            let (url, h1) = self.here().await;
            panic!(
                "{}: the {page} page ({url}, h1 {h1:?}) offers no {label:?}, so the app never hears \
                 of the refusal (issue 11 item 2)",
                self.test
            );
        };
        element.click().await.unwrap();
    }

    /// Asserts the app's latest answer is the error `expected` (one of), delivered as an
    /// authorization response: with `state` and TechPass's `iss` (RFC 9207), both of which
    /// openid-client checked before it surfaced the error.
    async fn app_got_error(&self, app: &App, expected: &[&str]) {
        let login = app.last_login().await;
        assert_eq!(login["ok"], false, "{}: {login}", self.test);
        let error = login["error"].as_str().unwrap_or_default();
        assert!(
            expected.contains(&error),
            "{}: the app got {error:?}, expected one of {expected:?}: {login}",
            self.test
        );
        assert_eq!(
            login["query"]["iss"].as_str(),
            Some(self.server.base.as_str()),
            "{}: iss in the error response: {login}",
            self.test
        );
        assert!(
            login["query"]["state"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{}: state in the error response: {login}",
            self.test
        );
    }

    /// Asserts the app's latest sign-in succeeded for `email` and returns its ID token claims.
    async fn app_signed_in(&self, app: &App, email: &str) -> Value {
        let login = app.last_login().await;
        assert_eq!(login["ok"], true, "{}: {login}", self.test);
        let claims = &login["claims"];
        assert_eq!(claims["iss"], self.server.base.as_str(), "{login}");
        assert_eq!(claims["email"], email, "{login}");
        assert_eq!(claims["account_type"], "public_officer", "{login}");
        assert!(
            claims["amr"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "mfa")),
            "the upstream's MFA is carried over: {login}"
        );
        assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(login["has_refresh_token"], true, "{login}");
        claims.clone()
    }

    /// Checks that a bad upstream answer was refused: TechPass signed nobody in and the app got
    /// no code; the browser is on a TechPass page or back at the app with an error.
    async fn refused(&self, what: &str) {
        self.app_login_to_upstream(self.app(0)).await;
        self.pick("alice").await;
        let (url, h1) = self.back_from_upstream().await;
        self.b.screenshot("after-upstream").await;
        let accepted = self.anyone_signed_in("alice_tan@tech.gov.sg").await;
        assert!(
            !accepted,
            "{}: TechPass accepted an upstream answer with {what} and signed Alice in (now at {url}, \
             h1 {h1:?}); it must refuse it (issue 11 item 3). Sign-in events: {:?}",
            self.test,
            self.refusals().await
        );
        // Refused for what the upstream said, not for who the person is.
        let person = [
            "no_mfa",
            "tenant_not_allowed",
            "account_type_not_allowed",
            "missing_email",
            "upstream_access_denied",
        ];
        let refusals = self.refusals().await;
        assert!(
            !refusals
                .iter()
                .any(|r| person.iter().any(|p| r.ends_with(p))),
            "{}: refused for another reason than {what}: {refusals:?}",
            self.test
        );
        let logins = self.app(0).received().await["logins"].clone();
        assert!(
            !logins.as_array().unwrap().iter().any(|l| l["ok"] == true),
            "{}: the app got a code after {what}: {logins}",
            self.test
        );
    }

    async fn finish(self) {
        self.b.close().await;
        self.server.stop().await;
    }
}

/// Runs an interop test body within the browser tests' bound.
macro_rules! interop_test {
    ($name:ident, $body:ident) => {
        #[tokio::test]
        async fn $name() {
            let test = concat!("interop::", stringify!($name));
            bounded(test, $body(test)).await;
        }
    };
}

// A first-time officer arrives from an app, signs in upstream, registers, and the app gets its
// code: the redirect after `POST /register` goes to another origin (issue 11 item 1).
interop_test!(
    a_first_time_officer_from_an_app_registers_and_the_app_gets_its_code,
    first_time_officer_body
);
async fn first_time_officer_body(test: &str) {
    let Some(x) = Interop::start(test, "none", &["App One"]).await else {
        return;
    };
    let app = x.app(0);
    x.app_login_to_upstream(app).await;
    x.pick("alice").await;
    x.b.heading(&["Register for TechPass"]).await;
    x.b.click(Locator::Css("label[for='accept_terms']")).await;
    x.b.screenshot("register").await;
    x.b.press("Register").await;
    if let Err(at) = x.at_app(app, REDIRECT).await {
        x.b.screenshot("stuck-after-register").await;
        panic!(
            "{test}: after POST /register the browser never reached {} (still at {at}): Chromium \
             refuses the redirect to another origin that follows a form submission under \
             Content-Security-Policy form-action 'self' (issue 11 item 1)",
            app.name
        );
    }
    x.b.screenshot("app-signed-in").await;
    x.app_signed_in(app, "alice_tan@tech.gov.sg").await;
    x.finish().await;
}

// A second app signs the person in through the SSO session, without a trip to the upstream.
interop_test!(
    a_second_app_signs_in_through_the_sso_session_without_the_upstream,
    sso_body
);
async fn sso_body(test: &str) {
    let Some(x) = Interop::start(test, "none", &["App One", "App Two"]).await else {
        return;
    };
    x.sign_in_at_techpass("alice", "Alice Tan").await;
    let trips = x.upstream.seen().await["authorizations"].clone();
    assert_eq!(trips, 1, "one trip to the upstream to sign in");

    let (one, two) = (x.app(0), x.app(1));
    x.b.goto(&one.url("/login")).await;
    x.at_app(one, PAGE).await.unwrap();
    let first = x.app_signed_in(one, "alice_tan@tech.gov.sg").await;
    x.b.goto(&two.url("/login")).await;
    x.at_app(two, PAGE).await.unwrap();
    x.b.screenshot("app-two-signed-in").await;
    let second = x.app_signed_in(two, "alice_tan@tech.gov.sg").await;

    assert_eq!(
        x.upstream.seen().await["authorizations"],
        trips,
        "no second trip to the upstream"
    );
    assert_eq!(first["sub"], second["sub"], "one person for both apps");
    assert_eq!(first["sid"], second["sid"], "one SSO session");
    assert_ne!(first["aud"], second["aud"]);
    x.finish().await;
}

// The person cancels at the upstream: the app is told at once (issue 11 item 2).
interop_test!(
    cancelling_at_the_upstream_returns_access_denied_to_the_app,
    cancel_body
);
async fn cancel_body(test: &str) {
    let Some(x) = Interop::start(test, "none", &["App One"]).await else {
        return;
    };
    let app = x.app(0);
    x.app_login_to_upstream(app).await;
    x.b.press("Cancel").await;
    let (url, h1) = x.back_from_upstream().await;
    x.b.screenshot("after-cancel").await;
    assert_eq!(x.upstream.seen().await["cancels"], 1);
    if x.at_app(app, REDIRECT).await.is_err() {
        panic!(
            "{test}: after the person cancelled at the upstream the browser stayed on TechPass \
             ({url}, h1 {h1:?}) instead of going straight back to {} with error=access_denied \
             (issue 11 item 2)",
            app.name
        );
    }
    x.app_got_error(app, &["access_denied"]).await;
    x.finish().await;
}

// An officer who signed in without MFA reads what to do and can return to the app, which gets
// `access_denied` (issue 11 item 2).
interop_test!(
    an_officer_without_mfa_can_return_to_the_app_with_access_denied,
    no_mfa_body
);
async fn no_mfa_body(test: &str) {
    let Some(x) = Interop::start(test, "none", &["App One"]).await else {
        return;
    };
    let app = x.app(0);
    x.app_login_to_upstream(app).await;
    x.pick("carol").await;
    let (url, h1) = x.back_from_upstream().await;
    x.b.screenshot("no-mfa").await;
    assert!(
        url.starts_with(&x.server.base),
        "a TechPass page: {url} ({h1:?})"
    );
    assert!(
        h1.contains("Multi-factor authentication required"),
        "{h1:?}"
    );
    assert!(!x.anyone_signed_in("carol_ng@tech.gov.sg").await);
    x.return_to_app(app, "no-MFA").await;
    x.at_app(app, PAGE).await.unwrap();
    x.b.screenshot("app-told").await;
    x.app_got_error(app, &["access_denied"]).await;
    x.finish().await;
}

// An upstream whose email claims prove nothing (the stand-in sends no `email_verified`,
// `xms_edov` or `verified_primary_email`), under the default `email_authority = "verified"`: an
// officer-domain address makes no account at all, even through this upstream, which admits
// vendors too: the person is told the directory did not confirm the address, and nothing reaches
// the app on its own origin but `access_denied` (issue 13 item 7).
interop_test!(
    an_unproven_officer_address_makes_no_officer_and_the_app_is_told,
    unproven_email_body
);
async fn unproven_email_body(test: &str) {
    let Some(x) = Interop::start_with(test, "none", &["App One"], EmailAuthority::Verified).await
    else {
        return;
    };
    let app = x.app(0);
    x.app_login_to_upstream(app).await;
    x.pick("alice").await;
    let (url, h1) = x.back_from_upstream().await;
    x.b.screenshot("unproven-email").await;
    assert!(
        url.starts_with(&x.server.base),
        "a TechPass page: {url} ({h1:?})"
    );
    assert!(
        x.b.text()
            .await
            .contains("did not confirm that the email address"),
        "the page names the unproven address: {h1:?}"
    );
    let people = x
        .server
        .state
        .store
        .find_users_by_email("alice_tan@tech.gov.sg")
        .await
        .unwrap();
    assert!(
        people.is_empty(),
        "an unproven officer-domain address made {people:?}"
    );
    x.return_to_app(app, "unproven email").await;
    x.at_app(app, PAGE).await.unwrap();
    x.app_got_error(app, &["access_denied"]).await;
    x.finish().await;
}

// A B2B guest vendor without an invitation is told to ask for one (never sent to the officers'
// registration) and can return to the app, which gets `access_denied` (issue 11 item 2).
interop_test!(
    an_uninvited_vendor_is_told_to_ask_and_can_return_to_the_app,
    uninvited_vendor_body
);
async fn uninvited_vendor_body(test: &str) {
    let Some(x) = Interop::start(test, "none", &["App One"]).await else {
        return;
    };
    let app = x.app(0);
    x.app_login_to_upstream(app).await;
    x.pick("dave").await;
    let (url, h1) = x.back_from_upstream().await;
    x.b.screenshot("uninvited").await;
    assert!(
        url.starts_with(&x.server.base),
        "a TechPass page: {url} ({h1:?})"
    );
    assert!(
        x.b.text().await.to_lowercase().contains("invit"),
        "the page tells the vendor to ask for an invitation: {h1:?}"
    );
    let path = url.strip_prefix(&x.server.base).unwrap_or(&url).to_string();
    assert!(
        !path.starts_with("/register"),
        "{test}: an uninvited vendor was sent to {path} (h1 {h1:?}), the officers' registration, \
         a dead end for vendors (issue 11 item 2)"
    );
    x.return_to_app(app, "uninvited vendor").await;
    x.at_app(app, PAGE).await.unwrap();
    x.app_got_error(app, &["access_denied"]).await;
    x.finish().await;
}

// The app refreshes its tokens through openid-client: a rotated refresh token, a new access
// token, an ID token for the same person.
interop_test!(the_app_refreshes_its_tokens, refresh_body);
async fn refresh_body(test: &str) {
    let Some(x) = Interop::start(test, "none", &["App One"]).await else {
        return;
    };
    let app = x.app(0);
    x.sign_in_at_techpass("alice", "Alice Tan").await;
    x.b.goto(&app.url("/login")).await;
    x.at_app(app, PAGE).await.unwrap();
    let claims = x.app_signed_in(app, "alice_tan@tech.gov.sg").await;
    for round in 1..=2 {
        let refreshed = get_json(&app.url("/refresh")).await;
        assert_eq!(refreshed["ok"], true, "refresh {round}: {refreshed}");
        assert_eq!(refreshed["rotated"], true, "refresh {round}: {refreshed}");
        assert_eq!(refreshed["new_access_token"], true, "{refreshed}");
        if !refreshed["claims"].is_null() {
            assert_eq!(refreshed["claims"]["sub"], claims["sub"], "{refreshed}");
        }
    }
    // Issue 15 item 8: an answer the app never got, then its retry with the same refresh
    // token: openid-client gets new tokens, and the family lives on.
    let lost = get_json(&app.url("/refresh?lose=1")).await;
    assert_eq!(lost["ok"], true, "{lost}");
    for round in ["the retry", "the next refresh"] {
        let refreshed = get_json(&app.url("/refresh")).await;
        assert_eq!(refreshed["ok"], true, "{round}: {refreshed}");
        assert_eq!(refreshed["rotated"], true, "{round}: {refreshed}");
    }
    x.finish().await;
}

// Logging out of one app (RP-initiated, back to the app) ends the SSO session and tells the
// other app over the back channel with a logout token it can verify; that app's refresh
// token stops working.
interop_test!(
    logging_out_of_one_app_tells_the_other_by_back_channel,
    logout_body
);
async fn logout_body(test: &str) {
    let Some(x) = Interop::start(test, "none", &["App One", "App Two"]).await else {
        return;
    };
    let (one, two) = (x.app(0), x.app(1));
    x.sign_in_at_techpass("alice", "Alice Tan").await;
    for app in [one, two] {
        x.b.goto(&app.url("/login")).await;
        x.at_app(app, PAGE).await.unwrap();
    }
    let two_claims = x.app_signed_in(two, "alice_tan@tech.gov.sg").await;

    x.b.goto(&one.url("/logout")).await;
    let (_, h1) = x.at_app(one, PAGE).await.unwrap();
    x.b.screenshot("logged-out").await;
    assert_eq!(h1, "Signed out of App One");
    assert_eq!(one.received().await["logouts"][1]["state_matches"], true);

    let deadline = Instant::now() + Duration::from_secs(15);
    let told = loop {
        let received = two.received().await;
        if let Some(first) = received["backchannel"].as_array().and_then(|b| b.first()) {
            break first.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{test}: App Two was not told of the logout within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        told["ok"], true,
        "App Two verified the logout token: {told}"
    );
    assert_eq!(told["typ"], "logout+jwt", "{told}");
    assert_eq!(told["matches_session"], true, "{told}");
    assert_eq!(told["claims"]["sub"], two_claims["sub"], "{told}");

    x.b.goto(&x.server.url("/")).await;
    let home = x.b.heading(&["Welcome to TechPass", "Signed in as"]).await;
    assert!(!home.contains("Signed in as"), "the SSO session ended");
    let refreshed = get_json(&two.url("/refresh")).await;
    assert_eq!(refreshed["ok"], false, "{refreshed}");
    assert_eq!(refreshed["error"], "invalid_grant", "{refreshed}");
    x.finish().await;
}

// The upstream's authorization response names another issuer in `iss` (RFC 9207 §2.4): refused
// (issue 11 item 3).
interop_test!(
    a_wrong_iss_in_the_upstream_authorization_response_is_refused,
    wrong_iss_body
);
async fn wrong_iss_body(test: &str) {
    let Some(x) = Interop::start(test, "wrong-iss", &["App One"]).await else {
        return;
    };
    x.refused("an iss parameter naming another issuer").await;
    // RFC 9207 §2.4: the response is checked before it is processed further.
    assert_eq!(
        x.upstream.seen().await["token_requests"],
        0,
        "{test}: TechPass redeemed the code of a response whose iss was wrong"
    );
    x.finish().await;
}

// The upstream's ID token is not valid before an hour from now (`nbf`, RFC 7519 §4.1.5):
// refused (issue 11 item 3).
interop_test!(
    an_upstream_id_token_not_yet_valid_is_refused,
    future_nbf_body
);
async fn future_nbf_body(test: &str) {
    let Some(x) = Interop::start(test, "future-nbf", &["App One"]).await else {
        return;
    };
    x.refused("an ID token whose nbf is an hour ahead").await;
    assert_eq!(
        x.upstream.seen().await["token_requests"],
        1,
        "the refusal followed the token response"
    );
    x.finish().await;
}

// The upstream's ID token is above 16 KiB: refused (issue 11 item 3).
interop_test!(an_oversized_upstream_id_token_is_refused, oversized_body);
async fn oversized_body(test: &str) {
    let Some(x) = Interop::start(test, "oversized-id-token", &["App One"]).await else {
        return;
    };
    x.refused("a 20 KiB claim in the ID token").await;
    assert_eq!(
        x.upstream.seen().await["token_requests"],
        1,
        "the refusal followed the token response"
    );
    x.finish().await;
}

// The upstream's token endpoint fails: refused, and the person can return to the app, which
// gets `temporarily_unavailable` or `access_denied` (issue 11 item 2).
interop_test!(
    an_upstream_token_endpoint_failure_is_refused_and_the_app_can_be_returned_to,
    token_500_body
);
async fn token_500_body(test: &str) {
    let Some(x) = Interop::start(test, "token-500", &["App One"]).await else {
        return;
    };
    x.refused("a 500 from the token endpoint").await;
    assert_eq!(x.upstream.seen().await["token_requests"], 1);
    let app = x.app(0);
    if x.at_app(app, Duration::ZERO).await.is_err() {
        x.return_to_app(app, "upstream failure").await;
        x.at_app(app, PAGE).await.unwrap();
    }
    x.app_got_error(app, &["temporarily_unavailable", "access_denied"])
        .await;
    x.finish().await;
}

// Bounded staleness against an upstream we did not write (issue 13 item 6): oidc-provider issues
// TechPass a refresh token; an SSO reuse within the bound does not ask it; once the person is
// disabled there and the bound has passed, the next SSO reuse refreshes at the upstream, hears
// invalid_grant, ends the person's session (the app gets a back-channel logout through
// openid-client) and sends the browser to sign in at the upstream again.
interop_test!(
    a_person_disabled_at_the_upstream_is_signed_out_at_the_next_sso_reuse_past_the_bound,
    reverify_body
);
async fn reverify_body(test: &str) {
    const BOUND: u64 = 3;
    let Some(x) = Interop::start_reverifying(test, &["App One"], BOUND).await else {
        return;
    };
    x.sign_in_at_techpass("alice", "Alice Tan").await;
    let app = x.app(0);
    x.b.goto(&app.url("/login")).await;
    x.at_app(app, PAGE).await.unwrap();
    x.app_signed_in(app, "alice_tan@tech.gov.sg").await;
    let seen = x.upstream.seen().await;
    assert_eq!(
        seen["refreshes"], 0,
        "within the bound, nothing asked: {seen}"
    );
    let user = x
        .server
        .state
        .store
        .find_users_by_email("alice_tan@tech.gov.sg")
        .await
        .unwrap()
        .remove(0);
    let links = x
        .server
        .state
        .store
        .upstream_links_of_user(&user.id)
        .await
        .unwrap();
    assert!(
        links[0].sealed_refresh_token.is_some(),
        "oidc-provider issued a refresh token"
    );

    // Past the bound while she is still enabled: the upstream is asked and accepts.
    tokio::time::sleep(Duration::from_secs(BOUND + 1)).await;
    x.b.goto(&app.url("/login")).await;
    x.at_app(app, PAGE).await.unwrap();
    x.app_signed_in(app, "alice_tan@tech.gov.sg").await;
    let seen = x.upstream.seen().await;
    assert_eq!(
        (
            seen["refreshes"].as_u64(),
            seen["refresh_refusals"].as_u64()
        ),
        (Some(1), Some(0)),
        "{seen}"
    );

    x.upstream.disable("alice").await;
    tokio::time::sleep(Duration::from_secs(BOUND + 1)).await;
    x.b.goto(&app.url("/login")).await;
    x.b.heading(&[UPSTREAM_PAGE]).await;
    x.b.screenshot("sent-back-to-the-upstream").await;
    let seen = x.upstream.seen().await;
    assert_eq!(
        (
            seen["refreshes"].as_u64(),
            seen["refresh_refusals"].as_u64()
        ),
        (Some(1), Some(1)),
        "{seen}"
    );
    let audited = x
        .server
        .state
        .store
        .list_audit(&AuditFilter {
            event: Some("upstream.reverify_failed".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].reason.as_deref(), Some("upstream_refused"));
    assert!(x
        .server
        .state
        .store
        .sessions_of_user(&user.id)
        .await
        .unwrap()
        .is_empty());
    // openid-client at the app verified a logout token for her session.
    let deadline = Instant::now() + PAGE;
    loop {
        let received = app.received().await;
        if received["backchannel"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no back-channel logout: {received}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    x.finish().await;
}

// Consent across origins (issue 13 item 4): an app of a tenant open to every officer, on its
// own origin with openid-client. Alice is not a member of the tenant: after registering she
// sees the consent page in Chromium; "Do not allow" answers the form with a redirect to the
// app's origin (CSP form-action must let it through) and the app gets `access_denied` with its
// state and TechPass's iss; through the SSO session she is asked again, allows, and the app
// signs her in.
interop_test!(
    an_officer_consents_in_chromium_and_the_app_on_its_own_origin_hears_each_answer,
    consent_body
);
async fn consent_body(test: &str) {
    let Some(x) = Interop::start(test, "none", &[]).await else {
        return;
    };
    let (tenant, _) = tenants::create(
        &x.server.state,
        &Actor::Operator,
        DirectTenant {
            slug: None,
            name: "People team".into(),
            description: String::new(),
            purpose: String::new(),
            admin: "bob_lim@hdb.gov.sg".into(),
        },
    )
    .await
    .unwrap();
    let app = x
        .add_app("Staff directory", |a| {
            a.tenant_id = Some(tenant.id.clone());
            a.access_policy = AccessPolicy::Officers;
        })
        .await;
    x.app_login_to_upstream(&app).await;
    x.pick("alice").await;
    x.b.heading(&["Register for TechPass"]).await;
    x.b.click(Locator::Css("label[for='accept_terms']")).await;
    x.b.press("Register").await;
    x.b.heading(&["Share your details with Staff directory?"])
        .await;
    x.b.sees("People team").await;
    x.b.screenshot("consent").await;
    x.b.press("Do not allow").await;
    if let Err(at) = x.at_app(&app, REDIRECT).await {
        x.b.screenshot("stuck-after-deny").await;
        panic!("{test}: after refusing consent the browser never reached the app (at {at})");
    }
    x.app_got_error(&app, &["access_denied"]).await;

    // Again, through the SSO session: asked again (a refusal is not remembered); allowed.
    x.b.goto(&app.url("/login")).await;
    x.b.heading(&["Share your details with Staff directory?"])
        .await;
    x.b.press("Allow").await;
    if let Err(at) = x.at_app(&app, REDIRECT).await {
        x.b.screenshot("stuck-after-allow").await;
        panic!("{test}: after allowing the browser never reached the app (at {at})");
    }
    x.b.screenshot("app-signed-in").await;
    x.app_signed_in(&app, "alice_tan@tech.gov.sg").await;
    // Remembered: a third sign-in asks nothing.
    let before = app.received().await["logins"].as_array().unwrap().len();
    x.b.goto(&app.url("/login")).await;
    x.at_app(&app, REDIRECT).await.unwrap();
    assert_eq!(
        app.received().await["logins"].as_array().unwrap().len(),
        before + 1,
        "{test}: the third sign-in reached the app"
    );
    x.app_signed_in(&app, "alice_tan@tech.gov.sg").await;
    x.finish().await;
}

// Apps that chose ES256 or EdDSA (issue 17 item 3), each its own openid-client relying party on
// its own origin: the ID token of the code flow is verified against TechPass's JWKS with that
// algorithm only, openid-client checks the rest, a refresh works, and the back-channel logout
// token that signing out sends each app verifies under the app's algorithm too.
interop_test!(
    apps_that_chose_es256_or_eddsa_verify_every_token_with_openid_client,
    algorithms_body
);
async fn algorithms_body(test: &str) {
    let Some(x) = Interop::start(test, "none", &[]).await else {
        return;
    };
    let mut apps = Vec::new();
    for alg in [SigningAlg::ES256, SigningAlg::EdDSA] {
        let name = format!("{} app", alg.as_str());
        let app = x
            .add_app(&name, |a| {
                a.id_token_signed_response_alg = Some(alg);
                a.access_token_signed_response_alg = Some(alg);
            })
            .await;
        apps.push((alg, app));
    }
    x.sign_in_at_techpass("alice", "Alice Tan").await;
    for (alg, app) in &apps {
        x.b.goto(&app.url("/login")).await;
        x.at_app(app, REDIRECT).await.unwrap();
        x.app_signed_in(app, "alice_tan@tech.gov.sg").await;
        let login = app.last_login().await;
        assert_eq!(login["id_token_alg"], alg.as_str(), "{test}: {login}");
        let refreshed = get_json(&app.url("/refresh")).await;
        assert_eq!(refreshed["ok"], true, "{test}: {refreshed}");
    }
    // RP-initiated logout from the ES256 app (its ES256 ID token is the hint TechPass checks);
    // the EdDSA app is told by a logout token it verifies under EdDSA.
    let (es, ed) = (&apps[0].1, &apps[1].1);
    x.b.goto(&es.url("/logout")).await;
    let (_, h1) = x.at_app(es, PAGE).await.unwrap();
    assert_eq!(h1, "Signed out of ES256 app", "{test}");
    let deadline = Instant::now() + PAGE;
    let told = loop {
        let received = ed.received().await;
        if let Some(first) = received["backchannel"].as_array().and_then(|b| b.first()) {
            break first.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{test}: the EdDSA app was not told of the logout"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(told["ok"], true, "{test}: {told}");
    x.finish().await;
}

// An app that requires DPoP-bound tokens (`techpass app update --require-dpop`), on its own
// origin: openid-client proves a key of its own at the code exchange and every refresh, gets
// DPoP tokens bound to that key and reads UserInfo with a proof. The same requirement refuses
// an app that sends no proof, at the code exchange, with the RFC's error.
interop_test!(
    an_app_that_requires_dpop_gets_bound_tokens_through_openid_client,
    require_dpop_body
);
async fn require_dpop_body(test: &str) {
    let Some(x) = Interop::start(test, "none", &[]).await else {
        return;
    };
    let bound = x.add_app("DPoP app", |_| {}).await;
    let bearer = x.add_app("Bearer app", |_| {}).await;
    for app in [&bound, &bearer] {
        let state = app.received().await;
        let client_id = state["client_id"].as_str().unwrap();
        set_dpop_bound(x.server.state.store.as_ref(), client_id, true)
            .await
            .unwrap();
    }
    let switched = http().post(bound.url("/use-dpop")).send().await.unwrap();
    assert!(switched.status().is_success(), "{test}");
    let is_dpop = |v: &Value| v.as_str().is_some_and(|t| t.eq_ignore_ascii_case("dpop"));

    x.sign_in_at_techpass("alice", "Alice Tan").await;
    x.b.goto(&bound.url("/login")).await;
    x.at_app(&bound, REDIRECT).await.unwrap();
    x.app_signed_in(&bound, "alice_tan@tech.gov.sg").await;
    let login = bound.last_login().await;
    assert!(is_dpop(&login["token_type"]), "{test}: {login}");
    let jkt = login["access_token_jkt"].clone();
    assert!(
        jkt.is_string(),
        "{test}: the access token names its key: {login}"
    );
    for round in 1..=2 {
        let refreshed = get_json(&bound.url("/refresh")).await;
        assert_eq!(
            refreshed["ok"], true,
            "{test}: refresh {round}: {refreshed}"
        );
        assert!(is_dpop(&refreshed["token_type"]), "{test}: {refreshed}");
        assert_eq!(
            refreshed["access_token_jkt"], jkt,
            "{test}: the same key: {refreshed}"
        );
    }
    let info = get_json(&bound.url("/userinfo")).await;
    assert_eq!(info["ok"], true, "{test}: {info}");
    assert_eq!(info["sub"], login["claims"]["sub"], "{test}: {info}");

    // No proof: the code exchange is refused, and the app is told why.
    x.b.goto(&bearer.url("/login")).await;
    x.at_app(&bearer, REDIRECT).await.unwrap();
    let refused = bearer.last_login().await;
    assert_eq!(refused["ok"], false, "{test}: {refused}");
    assert_eq!(refused["error"], "invalid_request", "{test}: {refused}");
    assert!(
        refused["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("DPoP")),
        "{test}: {refused}"
    );
    x.finish().await;
}

// New terms of use reach a person who comes from an app on another origin (issue 16, terms):
// /authorize shows the new version; "Not now" gives the app access_denied (state and iss
// included), accepting goes on to the app with a code, and the acceptance is recorded.
interop_test!(
    new_terms_are_accepted_on_the_way_to_an_app_on_another_origin,
    new_terms_body
);
async fn new_terms_body(test: &str) {
    let Some(x) = Interop::start(test, "none", &["App One"]).await else {
        return;
    };
    x.sign_in_at_techpass("alice", "Alice Tan").await;
    let store = &x.server.state.store;
    let alice = store
        .find_users_by_email("alice_tan@tech.gov.sg")
        .await
        .unwrap()
        .remove(0);
    let current = x.server.state.settings.accounts.terms_version.clone();
    assert_eq!(alice.terms_version.as_deref(), Some(current.as_str()));
    // Alice accepted an earlier version: the terms have changed since.
    assert!(store.accept_terms(&alice.id, "2000-01").await.unwrap());

    let app = x.app(0);
    x.b.goto(&app.url("/login")).await;
    x.b.heading(&["The terms of use have changed"]).await;
    x.b.sees("to App One").await;
    x.b.screenshot("new-terms").await;
    x.b.click(Locator::LinkText("Not now: return to App One"))
        .await;
    x.at_app(app, REDIRECT).await.unwrap();
    x.app_got_error(app, &["access_denied"]).await;

    x.b.goto(&app.url("/login")).await;
    x.b.heading(&["The terms of use have changed"]).await;
    x.b.click(Locator::Css("label[for='accept_terms']")).await;
    x.b.press("Accept and continue").await;
    if let Err(at) = x.at_app(app, REDIRECT).await {
        x.b.screenshot("stuck-after-terms").await;
        panic!("{test}: after accepting the terms the browser stayed at {at}");
    }
    x.app_signed_in(app, "alice_tan@tech.gov.sg").await;
    let alice = store.get_user(&alice.id).await.unwrap().unwrap();
    assert_eq!(alice.terms_version.as_deref(), Some(current.as_str()));
    x.finish().await;
}
