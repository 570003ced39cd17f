//! Browser tests: real headless Chromium, driven over WebDriver (a `chromedriver` child process
//! on a free loopback port), against an in-process server. Each page a journey passes through is
//! screenshotted (PNG) for a reviewer into `$TECHPASS_ARTIFACTS/<test>/`, by default
//! `<cargo target dir>/browser-screenshots/<test>/`, never into the repository.
//!
//! Without `/usr/bin/chromium` or `/usr/bin/chromedriver` (Debian packages `chromium` and
//! `chromium-driver`, which `.ci/run` installs) each test prints `SKIPPED <test>: …` and passes,
//! except when `CI` is set: there a missing browser fails, so CI always runs them. Every wait is
//! bounded, and so is each test as a whole.

mod cross_origin;
mod device;
mod journeys;
mod portal;

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, TimeoutConfiguration};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::TempDir;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;
/// How long a page may take to appear after a click or a navigation.
const PAGE: Duration = Duration::from_secs(20);
/// How long chromedriver may take to answer on its port.
const DRIVER_START: Duration = Duration::from_secs(20);
/// The bound on one whole browser test.
pub const TEST_BUDGET: Duration = Duration::from_secs(180);

/// Runs a browser test's body within [`TEST_BUDGET`]; dropping it on timeout kills the browser.
pub async fn bounded(test: &str, body: impl Future<Output = ()>) {
    if tokio::time::timeout(TEST_BUDGET, body).await.is_err() {
        panic!("{test} did not finish within {TEST_BUDGET:?}");
    }
}

/// A `chromedriver` child in its own process group: dropping it kills the group, so the
/// Chromium it started goes too even when a test fails before closing its session.
struct Chromedriver {
    child: tokio::process::Child,
    url: String,
    _log_dir: TempDir,
}

impl Chromedriver {
    async fn start() -> Chromedriver {
        // A port taken between probing and binding makes chromedriver exit: try another.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log_dir = TempDir::new();
            let log = log_dir.0.join("chromedriver.log");
            let mut child = tokio::process::Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
            let url = format!("http://127.0.0.1:{port}");
            let status = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            let deadline = Instant::now() + DRIVER_START;
            while Instant::now() < deadline {
                if let Ok(Some(exit)) = child.try_wait() {
                    last_error = format!("chromedriver exited ({exit}): {}", read_log(&log));
                    break;
                }
                let ready = status.get(format!("{url}/status")).send().await;
                if let Ok(response) = ready {
                    let body: Value = response.json().await.unwrap_or_default();
                    if body["value"]["ready"] == true {
                        return Chromedriver {
                            child,
                            url,
                            _log_dir: log_dir,
                        };
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if last_error.is_empty() {
                last_error = format!(
                    "chromedriver did not answer within {DRIVER_START:?}: {}",
                    read_log(&log)
                );
            }
        }
        panic!("{last_error}");
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The negative pid names the process group made at spawn: chromedriver and its
            // Chromium processes, nothing else.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn read_log(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let start = log.len().saturating_sub(2000);
    log.get(start..).unwrap_or_default().to_string()
}

/// Whether this machine can run the browser tests; `false` after printing the skip line.
/// Under CI (`CI` set) a missing browser is a failure instead.
fn browser_installed(test: &str) -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "{test}: CI is set but {CHROMIUM} or {CHROMEDRIVER} is missing \
             (apt-get install chromium chromium-driver; .ci/run does it)"
        );
    }
    // Written past the test harness's output capture, like the PostgreSQL skips.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: chromium/chromedriver not installed"
    );
    false
}

/// axe-core's browser script, from the npm package the interop tests pin (tests/interop). `None`
/// (the check skipped, said once per test) when it is not installed, except under CI, where
/// `.ci/run` installs it and its absence is a failure.
fn axe_source(test: &str) -> Option<&'static str> {
    static AXE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    const PATH: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/node_modules/axe-core/axe.min.js"
    );
    let source = AXE.get_or_init(|| std::fs::read_to_string(PATH).ok());
    if source.is_none() {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("{test}: CI is set but {PATH} is missing (cd tests/interop && npm ci)");
        }
        let _ = writeln!(
            std::io::stderr(),
            "{test}: accessibility not checked: {PATH} is missing (cd tests/interop && npm ci)"
        );
    }
    source.as_deref()
}

/// Where the screenshots of `test` go: `$TECHPASS_ARTIFACTS/<test>/`, or
/// `<cargo target dir>/browser-screenshots/<test>/`.
fn screenshot_dir(test: &str) -> PathBuf {
    let root = match std::env::var_os("TECHPASS_ARTIFACTS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // CARGO_TARGET_TMPDIR is `<target dir>/tmp`.
        _ => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("browser-screenshots"),
    };
    root.join(test.replace("::", "-"))
}

/// One headless Chromium session for one test.
pub struct Browser {
    client: Client,
    test: String,
    shots: PathBuf,
    taken: AtomicUsize,
    // Declared last: dropped after the client, so the session can still be closed.
    _driver: Chromedriver,
}

impl Browser {
    /// A fresh browser (its own profile, no cookies), or `None` when the test is skipped.
    pub async fn start(test: &str) -> Option<Browser> {
        if !browser_installed(test) {
            return None;
        }
        let driver = Chromedriver::start().await;
        let capabilities: Capabilities = serde_json::from_value(json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    // Tests run as root in CI, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    // Containers often have a small /dev/shm.
                    "--disable-dev-shm-usage",
                    format!("--window-size={WIDTH},{HEIGHT}"),
                ],
            },
        }))
        .unwrap();
        let client = tokio::time::timeout(
            PAGE,
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&driver.url),
        )
        .await
        .unwrap_or_else(|_| panic!("Chromium did not start within {PAGE:?}"))
        .unwrap_or_else(|e| panic!("cannot start a Chromium session: {e}"));
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(10)),
                Some(PAGE),
                Some(Duration::ZERO),
            ))
            .await
            .unwrap();
        let shots = screenshot_dir(test);
        // Only this run's pictures: a reviewer must not look at a stale page.
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", shots.display()));
        Some(Browser {
            client,
            test: test.to_string(),
            shots,
            taken: AtomicUsize::new(0),
            _driver: driver,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{}: cannot open {url}: {e}", self.test));
    }

    /// The current URL's path and query, e.g. `/register?return_to=%2F`.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits until the page's `h1` contains one of `texts` and returns that `h1`'s text.
    pub async fn heading(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + PAGE;
        let mut seen = String::new();
        while Instant::now() < deadline {
            // Errors are a page between navigations, or one without an h1 yet.
            if let Ok(h1) = self.client.find(Locator::Css("h1")).await {
                if let Ok(text) = h1.text().await {
                    if texts.iter().any(|t| text.contains(t)) {
                        return text;
                    }
                    seen = text;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let at = self.client.current_url().await.map(|u| u.to_string());
        panic!(
            "{}: no h1 containing {texts:?} within {PAGE:?}; at {at:?}, h1 {seen:?}",
            self.test
        );
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Clicks the element `locator` finds on the current page.
    pub async fn click(&self, locator: Locator<'_>) {
        let element = self
            .client
            .wait()
            .at_most(PAGE)
            .for_element(locator)
            .await
            .unwrap_or_else(|e| panic!("{}: nothing to click at {locator:?}: {e}", self.test));
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: cannot click {locator:?}: {e}", self.test));
    }

    /// Clicks the `<button>` whose visible text is `label`, as a person would.
    pub async fn press(&self, label: &str) {
        let xpath = format!("//button[normalize-space()='{label}']");
        self.click(Locator::XPath(&xpath)).await;
    }

    /// Waits until the page's visible text contains `text`, e.g. a result message.
    pub async fn sees(&self, text: &str) {
        let deadline = Instant::now() + PAGE;
        while Instant::now() < deadline {
            if let Ok(body) = self.client.find(Locator::Css("body")).await {
                if body.text().await.is_ok_and(|t| t.contains(text)) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let at = self.client.current_url().await.map(|u| u.to_string());
        panic!(
            "{}: no {text:?} on the page within {PAGE:?}; at {at:?}",
            self.test
        );
    }

    /// The form field a `<label>` whose visible text is `label` names (through its `for`).
    async fn labelled(&self, label: &str) -> fantoccini::elements::Element {
        let xpath = format!("//label[normalize-space()='{label}']");
        let element = self
            .client
            .wait()
            .at_most(PAGE)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("{}: no label {label:?}: {e}", self.test));
        let id = element
            .attr("for")
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{}: the label {label:?} names no field", self.test));
        self.client
            .find(Locator::Id(&id))
            .await
            .unwrap_or_else(|e| panic!("{}: no field #{id} for {label:?}: {e}", self.test))
    }

    /// Moves the focus with the Tab key, as a keyboard user does, until the element with id
    /// `id` has it; fails if it is not reached within 60 presses or if any element on the way
    /// shows no focus indicator (an outline). Returns how many presses it took.
    pub async fn tab_to(&self, id: &str) -> usize {
        for press in 1..=60 {
            self.key(fantoccini::key::Key::Tab).await;
            let focused = self
                .client
                .execute(
                    "const e = document.activeElement; const s = getComputedStyle(e);
                     return { id: e.id, tag: e.tagName, text: (e.innerText || e.name || '').trim(),
                              outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 };",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(
                focused["outline"], true,
                "{}: no visible focus on {focused}",
                self.test
            );
            if focused["id"] == id {
                return press;
            }
        }
        panic!("{}: Tab never reached #{id}", self.test);
    }

    /// Presses Enter on the focused element (a button, or a field of a form: submits it).
    pub async fn enter(&self) {
        self.key(fantoccini::key::Key::Enter).await;
    }

    /// Presses and releases `key` on the keyboard (WebDriver actions: to whatever has focus).
    async fn key(&self, key: fantoccini::key::Key) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let code = key.chars().next().unwrap();
        let press = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: code })
            .then(KeyAction::Up { value: code });
        self.client
            .perform_actions(press)
            .await
            .unwrap_or_else(|e| panic!("{}: cannot press a key: {e}", self.test));
    }

    /// Types `text` into the field labelled `label`, replacing what it held.
    pub async fn fill(&self, label: &str, text: &str) {
        let field = self.labelled(label).await;
        field.clear().await.unwrap();
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("{}: cannot type into {label:?}: {e}", self.test));
    }

    /// The current value of the field labelled `label` (read-only fields too).
    pub async fn value(&self, label: &str) -> String {
        self.labelled(label)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Whether the checkbox or radio button `css` is ticked.
    pub async fn is_ticked(&self, css: &str) -> bool {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .is_selected()
            .await
            .unwrap()
    }

    /// Saves the whole page as `NN-<name>.png` in this test's screenshot folder, after checking
    /// it against axe-core's WCAG 2.1 A and AA rules ([`Browser::accessible`]): every page a
    /// journey shows a reviewer is also a page checked for accessibility.
    pub async fn screenshot(&self, name: &str) {
        self.accessible(name).await;
        let n = self.taken.fetch_add(1, Ordering::Relaxed) + 1;
        let path = self.shots.join(format!("{n:02}-{name}.png"));
        // WebDriver captures the viewport only: grow the window to the page, then restore it.
        let height = self
            .client
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight - window.innerHeight)",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let mut restore = None;
        if height > 0 {
            if let Ok((w, h)) = self.client.get_window_size().await {
                let taller = self
                    .client
                    .set_window_size(w as u32, h as u32 + height as u32);
                if taller.await.is_ok() {
                    restore = Some((w as u32, h as u32));
                }
            }
        }
        let png = self.client.screenshot().await;
        if let Some((w, h)) = restore {
            let _ = self.client.set_window_size(w, h).await;
        }
        let png = png.unwrap_or_else(|e| panic!("{}: screenshot {name}: {e}", self.test));
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Runs axe-core (the npm package pinned in tests/interop) in the page and fails the test,
    /// listing each violated rule with the elements concerned, unless the page has no violation
    /// of the WCAG 2.0/2.1 A and AA rules. Pages that are not TechPass's own (an app on another
    /// origin, an upstream's sign-in page in the interop tests) are left to their authors.
    pub async fn accessible(&self, name: &str) {
        let own: bool = self
            .client
            .execute(
                "return !!document.querySelector('link[rel=stylesheet][href=\"/assets/style.css\"]')",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if !own {
            return;
        }
        let Some(axe) = axe_source(&self.test) else {
            return;
        };
        let loaded = self
            .client
            .execute(
                "if (!window.axe) { (0, eval)(arguments[0]); } return typeof window.axe.run;",
                vec![Value::String(axe.to_string())],
            )
            .await
            .unwrap_or_else(|e| panic!("{}: cannot load axe-core on {name}: {e}", self.test));
        assert_eq!(
            loaded, "function",
            "{}: axe-core did not load on {name}",
            self.test
        );
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 window.axe.run(document, { runOnly: { type: 'tag',
                     values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
                   .then((r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact,
                       help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }))))
                   .catch((e) => done({ error: String(e) }));",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("{}: axe-core did not run on {name}: {e}", self.test));
        if let Some(error) = result.get("error") {
            panic!("{}: axe-core failed on {name}: {error}", self.test);
        }
        let violations = result.as_array().cloned().unwrap_or_default();
        if violations.is_empty() {
            return;
        }
        let listed: Vec<String> = violations
            .iter()
            .map(|v| {
                format!(
                    "  {} ({}): {} at {}",
                    v["id"].as_str().unwrap_or("?"),
                    v["impact"].as_str().unwrap_or("?"),
                    v["help"].as_str().unwrap_or("?"),
                    v["nodes"]
                )
            })
            .collect();
        let url = self.path().await;
        panic!(
            "{}: the page {name} ({url}) breaks WCAG 2.1 AA rules (axe-core):\n{}",
            self.test,
            listed.join("\n")
        );
    }

    /// Ends the session (Chromium exits) and says where the screenshots are.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await;
        let _ = writeln!(
            std::io::stderr(),
            "{}: {} screenshots in {}",
            self.test,
            self.taken.load(Ordering::Relaxed),
            self.shots.display()
        );
    }
}
