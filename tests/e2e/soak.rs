//! A soak (issue 15 item 9): mixed traffic on two `techpass serve` replicas sharing one
//! PostgreSQL database behind one balancer that alternates connections between them, for
//! `TECHPASS_SOAK_SECS` (600 by default). People sign in through the development upstream
//! (registering the first time), apps exchange codes, refresh, introspect and call userinfo,
//! the people open their portal page, and a machine client takes `client_credentials` tokens
//! and introspects them. Every answer is checked; the two processes' RSS and open file
//! descriptors are sampled every 10 s.
//!
//! It passes when no request got a 5xx or a broken flow, and RSS and descriptors stay flat
//! (the last sample within 25 % / 20 descriptors of the first after warm-up). Not run by
//! `cargo test` (ignored); BENCHMARKS.md ("Soak") has the command and a run's figures:
//!
//! ```text
//! TECHPASS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo test --release -p techpass --test e2e -- --ignored --nocapture soak::
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use techpass_store::testing::TestDatabase;

use crate::replicas::{cluster, query, unpooled};
use crate::support::{form_field, run_techpass};

const TEST: &str = "e2e::soak::mixed_traffic_on_two_replicas";
const APP_CALLBACK: &str = "https://app.example.gov.sg/callback";
/// Concurrent people signing in and using an app, and concurrent machine clients.
const PEOPLE: usize = 6;
const MACHINES: usize = 2;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

fn soak_duration() -> Duration {
    let secs = std::env::var("TECHPASS_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

/// What the traffic met: answers by kind, and every failure with what it was.
#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    sign_ins: AtomicUsize,
    server_errors: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    /// Counts an answer; a 5xx is a failure of the soak.
    fn saw(&self, what: &str, status: reqwest::StatusCode) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status.is_server_error() {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
            self.fail(format!("{what}: {status}"));
        }
    }

    fn fail(&self, what: String) {
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 50 {
            failures.push(what);
        }
    }
}

/// One sample of a process: resident memory (KiB) and open file descriptors.
fn sample(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}

type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// One person's round: sign in (SSO or at the upstream, registering the first time), the
/// app's code exchange, three refreshes, introspection, userinfo and the portal page.
async fn person_round(
    rp: &Rp,
    base: &str,
    upstream_prefix: &str,
    client: (&str, &str),
    browser: &reqwest::Client,
    tally: &Tally,
) -> Result<(), String> {
    let http = unpooled(false);
    let url = |path: &str| format!("{base}{path}");
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_extra_param("login_hint", "alice_tan@tech.gov.sg")
        .set_pkce_challenge(challenge)
        .url();
    let get = |target: String, what: &'static str| {
        let browser = browser.clone();
        async move {
            let r = browser
                .get(&target)
                .send()
                .await
                .map_err(|e| format!("{what}: {e}"))?;
            tally.saw(what, r.status());
            Ok::<_, String>(r)
        }
    };
    let mut next = location(get(auth_url.to_string(), "authorize").await?, "authorize")?;
    if next.starts_with("/login?") {
        let to_upstream = location(get(url(&next), "login").await?, "login")?;
        if !to_upstream.starts_with(upstream_prefix) {
            return Err(format!("login went to {to_upstream}"));
        }
        let authorize = url::Url::parse(&to_upstream).map_err(|e| e.to_string())?;
        let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
        form.push(("person".into(), "alice".into()));
        let mut action = authorize.clone();
        action.set_query(None);
        let answer = browser
            .post(action)
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("upstream: {e}"))?;
        let callback = location(answer, "upstream sign-in")?;
        next = location(get(callback, "callback").await?, "callback")?;
        if next.starts_with("/register?") {
            let page = get(url(&next), "register page").await?;
            let html = page.text().await.map_err(|e| e.to_string())?;
            if !html.contains("name=\"csrf_token\"") {
                return Err(format!("registration page without its form: {html}"));
            }
            let posted = browser
                .post(url("/register"))
                .form(&[
                    ("csrf_token", form_field(&html, "csrf_token")),
                    ("terms_version", form_field(&html, "terms_version")),
                    ("return_to", form_field(&html, "return_to")),
                    ("accept_terms", "yes".to_string()),
                ])
                .send()
                .await
                .map_err(|e| format!("register: {e}"))?;
            tally.saw("register", posted.status());
            next = location(posted, "register")?;
        }
        next = location(get(url(&next), "authorize resumed").await?, "resume")?;
        tally.sign_ins.fetch_add(1, Ordering::Relaxed);
    }
    let to_app = url::Url::parse(&next).map_err(|e| format!("{next}: {e}"))?;
    let code = query(&to_app, "code").ok_or_else(|| format!("no code: {to_app}"))?;

    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .map_err(|e| format!("code exchange: {e:?}"))?;
    tally.saw("code exchange", reqwest::StatusCode::OK);
    tokens
        .id_token()
        .ok_or("no ID token")?
        .claims(&rp.id_token_verifier(), &nonce)
        .map_err(|e| format!("ID token: {e}"))?;
    let mut refresh = tokens.refresh_token().ok_or("no refresh token")?.clone();
    let mut access = tokens.access_token().secret().clone();
    for _ in 0..3 {
        let refreshed = rp
            .exchange_refresh_token(&refresh)
            .map_err(|e| e.to_string())?
            .request_async(&http)
            .await
            .map_err(|e| format!("refresh: {e:?}"))?;
        tally.saw("refresh", reqwest::StatusCode::OK);
        refresh = refreshed.refresh_token().ok_or("no rotated token")?.clone();
        access = refreshed.access_token().secret().clone();
    }
    let introspected = http
        .post(url("/introspect"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .map_err(|e| format!("introspect: {e}"))?;
    tally.saw("introspect", introspected.status());
    let active: serde_json::Value = introspected.json().await.map_err(|e| e.to_string())?;
    if active["active"] != true {
        return Err(format!("introspection: {active}"));
    }
    let info = http
        .get(url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .map_err(|e| format!("userinfo: {e}"))?;
    tally.saw("userinfo", info.status());
    if info.status() != 200 {
        return Err(format!("userinfo: {}", info.status()));
    }
    let portal = get(url("/portal"), "portal").await?;
    if portal.status() != 200 {
        return Err(format!("portal: {}", portal.status()));
    }
    Ok(())
}

/// One machine round: a `client_credentials` token and its introspection.
async fn machine_round(base: &str, client: (&str, &str), tally: &Tally) -> Result<(), String> {
    let http = unpooled(false);
    let token = http
        .post(format!("{base}/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(|e| format!("client_credentials: {e}"))?;
    tally.saw("client_credentials", token.status());
    let body: serde_json::Value = token.json().await.map_err(|e| e.to_string())?;
    let access = body["access_token"]
        .as_str()
        .ok_or_else(|| format!("client_credentials: {body}"))?;
    let introspected = http
        .post(format!("{base}/introspect"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("token", access)])
        .send()
        .await
        .map_err(|e| format!("introspect: {e}"))?;
    tally.saw("introspect (machine)", introspected.status());
    Ok(())
}

/// The `Location` of a 303 (or 302 from the upstream), or what came instead.
fn location(response: reqwest::Response, step: &str) -> Result<String, String> {
    match (
        response.status().as_u16(),
        response.headers().get("location"),
    ) {
        (302 | 303, Some(l)) => Ok(l.to_str().map_err(|e| e.to_string())?.to_string()),
        (status, _) => Err(format!("{step}: expected a redirect, got {status}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 10-minute soak; run it with --ignored (BENCHMARKS.md, Soak)"]
async fn mixed_traffic_on_two_replicas() {
    let Some(db) = TestDatabase::postgres(TEST).await else {
        return;
    };
    let duration = soak_duration();
    // Throttling is not under test here: every limit off, so the traffic is all served.
    let c = cluster(
        &db,
        "",
        &[
            ("TECHPASS_RATE_LIMIT__CLIENT_PER_SECOND", "0"),
            ("TECHPASS_RATE_LIMIT__ADDRESS_PER_SECOND", "0"),
            ("TECHPASS_RATE_LIMIT__FAILED_AUTH_PER_MINUTE", "0"),
            ("TECHPASS_LOG__LEVEL", "warn"),
        ],
    )
    .await;
    c.proxy.alternate();
    let env: Vec<(&str, &str)> = c
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (code, stdout, stderr) = run_techpass(
        &c.cli_dir.0,
        &[
            "--config",
            &c.config,
            "app",
            "create",
            "--name",
            "Soak machine",
            "--grant-type",
            "client_credentials",
            "--json",
        ],
        &env,
    )
    .await;
    assert_eq!(code, 0, "app create: {stderr}");
    let machine: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let machine = (
        machine["client_id"].as_str().unwrap().to_string(),
        machine["client_secret"].as_str().unwrap().to_string(),
    );

    let http = unpooled(false);
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(c.issuer.clone()).unwrap(), &http)
            .await
            .unwrap();
    let rp: Rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(c.client_id.clone()),
        Some(ClientSecret::new(c.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(APP_CALLBACK.into()).unwrap());

    let tally = Arc::new(Tally::default());
    // Alice registers once before the traffic starts (her first sign-in asks her to).
    let first = person_round(
        &rp,
        &c.proxy.base,
        &format!("{}/", c.upstream_base),
        (&c.client_id, &c.client_secret),
        &unpooled(true),
        &tally,
    )
    .await;
    assert_eq!(first, Ok(()), "the first sign-in and registration");
    let end = Instant::now() + duration;
    let base = c.proxy.base.clone();
    let upstream_prefix = format!("{}/", c.upstream_base);
    let mut workers = Vec::new();
    for _ in 0..PEOPLE {
        let (rp, base, prefix, tally) = (
            rp.clone(),
            base.clone(),
            upstream_prefix.clone(),
            tally.clone(),
        );
        let client = (c.client_id.clone(), c.client_secret.clone());
        workers.push(tokio::spawn(async move {
            let mut round = 0usize;
            let mut browser = unpooled(true);
            while Instant::now() < end {
                // Every fourth round in a new browser: a new sign-in at the upstream.
                if round.is_multiple_of(4) {
                    browser = unpooled(true);
                }
                let result = person_round(
                    &rp,
                    &base,
                    &prefix,
                    (&client.0, &client.1),
                    &browser,
                    &tally,
                )
                .await;
                if let Err(e) = result {
                    tally.fail(e);
                }
                round += 1;
            }
        }));
    }
    for _ in 0..MACHINES {
        let (base, tally, machine) = (base.clone(), tally.clone(), machine.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < end {
                if let Err(e) = machine_round(&base, (&machine.0, &machine.1), &tally).await {
                    tally.fail(e);
                }
            }
        }));
    }

    let pids = [c.a.child.id().unwrap(), c.b.child.id().unwrap()];
    let started = Instant::now();
    let mut samples: Vec<[(u64, usize); 2]> = Vec::new();
    println!(
        "{:>6} {:>10} {:>6} {:>10} {:>6} {:>9}",
        "secs", "rss A KiB", "fds A", "rss B KiB", "fds B", "requests"
    );
    while Instant::now() < end {
        let now = [sample(pids[0]), sample(pids[1])];
        println!(
            "{:>6} {:>10} {:>6} {:>10} {:>6} {:>9}",
            started.elapsed().as_secs(),
            now[0].0,
            now[0].1,
            now[1].0,
            now[1].1,
            tally.requests.load(Ordering::Relaxed)
        );
        samples.push(now);
        tokio::time::sleep(SAMPLE_EVERY.min(end.saturating_duration_since(Instant::now()))).await;
    }
    for w in workers {
        w.await.unwrap();
    }
    samples.push([sample(pids[0]), sample(pids[1])]);

    let requests = tally.requests.load(Ordering::Relaxed);
    let failures = tally.failures.lock().unwrap().clone();
    println!(
        "{} s: {requests} requests ({:.0}/s), {} sign-ins at the upstream, {} 5xx, {} failures",
        duration.as_secs(),
        requests as f64 / duration.as_secs_f64(),
        tally.sign_ins.load(Ordering::Relaxed),
        tally.server_errors.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(requests > 0, "no traffic was served");
    assert_eq!(
        tally.server_errors.load(Ordering::Relaxed),
        0,
        "{failures:#?}"
    );
    assert!(failures.is_empty(), "{failures:#?}");
    // Flat: the last sample against the first after warm-up (a fifth of the run).
    let warm = &samples[samples.len() / 5];
    let last = samples.last().unwrap();
    for (i, name) in ["A", "B"].iter().enumerate() {
        let (rss0, fds0) = warm[i];
        let (rss1, fds1) = last[i];
        println!("replica {name}: RSS {rss0} → {rss1} KiB, descriptors {fds0} → {fds1}");
        assert!(
            rss1 as f64 <= rss0 as f64 * 1.25,
            "replica {name}'s RSS grew from {rss0} to {rss1} KiB"
        );
        assert!(
            fds1 <= fds0 + 20,
            "replica {name}'s descriptors grew from {fds0} to {fds1}"
        );
    }
    drop(c);
}
