//! Token endpoint load against the raw RS256 signing rate, measured in the same run
//! (`cargo bench --bench token_endpoint`; see BENCHMARKS.md).
//!
//! 1. Baseline: RS256 signatures with the server's own signing key, parsed once into aws-lc-rs
//!    (the key `/token` signs with), on one thread and on every core; on one thread again after
//!    the load, the faster single-thread figure being the ceiling every ratio divides by.
//! 2. An in-process TechPass on 127.0.0.1:0 (a fresh SQLite file; PostgreSQL with `--postgres`
//!    or `BENCH_POSTGRES=1` when `TECHPASS_TEST_POSTGRES_URL` is set), rate limits off.
//! 3. `/token` over loopback HTTP/1.1 with keep-alive and concurrent clients, per grant:
//!    `client_credentials`, `refresh_token` (each client rotates its own family) and
//!    `authorization_code` (a pool of codes minted before the timed phase through an SSO session).
//!
//! During the refresh and code phases another writer appends an audit row every
//! `BENCH_OTHER_WRITER_MS` (20; 0 turns it off) through the store, as sign-ins and portal actions
//! do, and each of its waits is reported (p50, p90, max): what the token path's writes cost
//! everyone else's (on SQLite they share one write lock).
//!
//! Each scenario is reported as requests/s and p50/p99 latency, and as ratios to the baseline
//! (machines are noisy: only ratios within one run mean anything), with the CPU time the server's
//! threads, the load generator's and other processes took during the measured window; on SQLite
//! also the part of the server's CPU its connection threads took (sqlx runs each connection's
//! statements on a thread of its own; the token path's own statements run on the server's
//! threads instead, `crates/store/src/sqlite_inline.rs`). Nothing about speed is asserted: the exit code is non-zero
//! only when setup fails or a request gets anything but 200.
//!
//! Knobs (environment): `BENCH_CONCURRENCY` (16), `BENCH_SECS` (5), `BENCH_WARMUP_SECS` (1),
//! `BENCH_SIGN_SECS` (3); `BENCH_TENANT_APP=1` (or `--tenant-app`) makes the web app a tenant's
//! app that admits only assigned people, the person assigned through a group holding a role, so
//! every grant also pays for the tenant, access, groups and roles reads. `BENCH_OPEN_LOOP=1` (or
//! `--open-loop`) then runs each grant again open loop, at half the rate just measured: requests
//! leave at fixed times and each latency counts from when it was due (p50, p99, p99.9, max),
//! beside the CPU other processes took over the window and in its busiest quarter second (a
//! neighbour's burst that cost the server its cores shows there).
//! `BENCH_PIN=1` (or `--pin`) is the set-up of the figures and of `tests/bench/peer.sh`:
//! the server on one worker thread pinned to core 0, the load generator pinned to core 1 (the
//! baseline's single thread signs on core 0 too; a database server running here is not pinned).
//! `BENCH_DATABASE_URL` runs on a database prepared beforehand (`tests/bench/scale.sh` seeds one
//! with a million people and refresh families) instead of a fresh one, and `BENCH_MASTER_KEY`
//! seals the signing keys it creates there with a known master key instead of a generated one.
//! On PostgreSQL each closed-loop phase also reports the WAL written per request
//! (`pg_stat_wal`, PostgreSQL 14 or later: records, full-page images, bytes).
//! `BENCH_LOG` takes a `tracing` filter and prints what it selects to stderr:
//! `BENCH_LOG=sqlx::query=debug` lists every statement the run sends, to count them per request.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use techpass::config::Config;
use techpass::provider::clients::{create_app, NewApp};
use techpass::AppState;
use techpass_domain::client::AccessPolicy;
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::TenantStatus;
use techpass_domain::{Clock, SystemClock};
use techpass_oidc::keys::SigningAlg;
use techpass_oidc::{KeyManager, MasterKey};
use techpass_store::testing::TestDatabase;
use techpass_store::{AuditRecord, Store};
use tokio::sync::oneshot;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

const APP_CALLBACK: &str = "https://app.example.gov.sg/callback";
/// What a typical web app asks for: an ID token with profile and email, and a refresh token.
const SCOPE: &str = "openid profile email offline_access";
const PERSON: &str = "alice";
const PERSON_EMAIL: &str = "alice_tan@tech.gov.sg";
/// Authorization codes live 60 s; minting stops early enough to exchange them all in time.
const CODE_MINTING_BUDGET: Duration = Duration::from_secs(25);

fn main() -> ExitCode {
    if let Ok(f) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(f))
            .with_writer(std::io::stderr)
            .init();
    }
    match run() {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("FAILED: {errors} request(s) were not answered with 200 (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("benchmark setup failed: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
    sign: Duration,
    cores: usize,
    /// The server alone on core 0 (one worker), the load on core 1 (`BENCH_PIN=1`, `--pin`).
    pin: bool,
    postgres: bool,
    tenant_app: bool,
    /// After the closed-loop phases, each grant again at half its measured rate, open loop.
    open_loop: bool,
    /// How often the other writer appends its audit row, if at all.
    other_writer: Option<Duration>,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Settings {
        // `cargo bench` passes `--bench`; everything but `--postgres` is ignored.
        let tenant_app = std::env::args().any(|a| a == "--tenant-app")
            || std::env::var("BENCH_TENANT_APP").is_ok_and(|v| v == "1");
        let postgres = std::env::args().any(|a| a == "--postgres")
            || std::env::var("BENCH_POSTGRES").is_ok_and(|v| v == "1");
        let pin = std::env::args().any(|a| a == "--pin")
            || std::env::var("BENCH_PIN").is_ok_and(|v| v == "1");
        let open_loop = std::env::args().any(|a| a == "--open-loop")
            || std::env::var("BENCH_OPEN_LOOP").is_ok_and(|v| v == "1");
        let other_writer = match std::env::var("BENCH_OTHER_WRITER_MS") {
            Ok(ms) if ms.trim() == "0" => None,
            _ => Some(Duration::from_millis(env_number(
                "BENCH_OTHER_WRITER_MS",
                20,
            ))),
        };
        Settings {
            open_loop,
            other_writer,
            concurrency: env_number("BENCH_CONCURRENCY", 16) as usize,
            warmup: Duration::from_secs(env_number("BENCH_WARMUP_SECS", 1)),
            measure: Duration::from_secs(env_number("BENCH_SECS", 5)),
            sign: Duration::from_secs(env_number("BENCH_SIGN_SECS", 3)),
            tenant_app,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pin,
            postgres,
        }
    }
}

fn run() -> Result<u64> {
    let settings = Settings::from_env();
    println!("TechPass token endpoint benchmark");
    println!(
        "machine: {} logical cores, {}; load average {}",
        settings.cores,
        cpu_model().unwrap_or_else(|| "unknown CPU".into()),
        std::fs::read_to_string("/proc/loadavg").map_or("n/a".into(), |l| l
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "))
    );
    // Pinned, this thread signs the baseline on the server's core, and every thread it starts
    // (the server's runtime, SQLite's worker threads) begins there.
    let server_workers = if settings.pin {
        if settings.cores < 2 {
            return Err("--pin needs two cores: the server's and the load's".into());
        }
        pin_to(SERVER_CORE)?;
        1
    } else {
        settings.cores
    };
    // Two runtimes with named threads, so that the CPU time of the server and of the load
    // generator can be told apart (/proc/self/task/*/schedstat); on the same cores unless
    // pinned.
    let pin = settings.pin;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(server_workers)
        .thread_name("tp-server")
        .on_thread_start(move || pin_thread(pin, SERVER_CORE))
        .enable_all()
        .build()?;
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tp-load")
        .on_thread_start(move || pin_thread(pin, LOAD_CORE))
        .enable_all()
        .build()?;

    let server = start_server(&server_rt, &settings)?;
    if settings.tenant_app {
        println!("web app: a tenant's app, assignment required, the person assigned through a group holding a role");
    }
    println!(
        "server: {} on {} database, {} runtime worker threads{}; load: 1 runtime thread{}, {} concurrent keep-alive clients",
        server.base,
        server.state.store.backend(),
        server_workers,
        if pin { format!(" on core {SERVER_CORE}") } else { String::new() },
        if pin { format!(" on core {LOAD_CORE}") } else { String::new() },
        settings.concurrency
    );

    // 1. Baseline, while the server is idle.
    let mut baseline = measure_signing(&server.state.keys, &server.base, &settings)?;

    // 2. Apps.
    let (web, machine) = server_rt.block_on(async {
        let tenant = if settings.tenant_app {
            Some(tenant_for_person(&server.state).await?)
        } else {
            None
        };
        let web = register_for(
            &server.state,
            "Bench web app",
            &["authorization_code", "refresh_token"],
            tenant.as_ref(),
        )
        .await?;
        let machine = register(
            &server.state,
            "Bench machine client",
            &["client_credentials"],
        )
        .await?;
        Ok::<_, Error>((web, machine))
    })?;

    // 3. Load.
    let results = load_rt.block_on(load(
        &server.base,
        &server.state.store,
        server.wal.as_ref(),
        &web,
        &machine,
        &settings,
    ));

    // The baseline again, after the load: the machine may have changed pace meanwhile.
    let (after, noise) = signing_rate(1, false, Duration::from_secs(2), || {
        sign_raw(&server.state.keys, &baseline.signing_input)
    })?;
    baseline.after = after;
    println!(
        "\n(baseline again after the load, 1 thread, 2 s: {after:.0} signatures/s per core; other processes: {} cores)",
        others(noise)
    );

    server.stop(&server_rt);
    let (results, open) = results?;
    for scenario in &results {
        print_scenario(scenario, &baseline, &settings);
    }
    report(&results, &baseline, &settings);
    report_open_loop(&open);
    Ok(results.iter().map(|r| r.errors).sum::<u64>() + open.iter().map(|o| o.errors).sum::<u64>())
}

// ---------------------------------------------------------------------------------------------
// Baseline: RS256 signing with the pre-parsed key.

struct Baseline {
    /// Signatures per second on one thread (= per core), before the load.
    before: f64,
    /// The same, measured again after the load.
    after: f64,
    /// Signatures per second with one thread per core.
    all_cores: f64,
    /// `KeyManager::sign_jwt` (claims to JSON, base64, sign) per second on one thread.
    sign_jwt_per_core: f64,
    signing_input: Vec<u8>,
}

impl Baseline {
    /// The signing rate per core every ratio divides by: the faster of the two measurements
    /// (noise only ever slows a measurement down, so this is the conservative ceiling).
    fn per_core(&self) -> f64 {
        self.before.max(self.after)
    }
}

/// Claims shaped like an access token from the refresh grant.
fn access_token_claims(issuer: &str) -> Value {
    json!({
        "iss": issuer,
        "sub": uuid::Uuid::new_v4().to_string(),
        "aud": "app_0123456789abcdefghijkl",
        "client_id": "app_0123456789abcdefghijkl",
        "iat": 1_800_000_000,
        "exp": 1_800_000_600,
        "jti": URL_SAFE_NO_PAD.encode([7u8; 32]),
        "scope": SCOPE,
        "gid": uuid::Uuid::new_v4().to_string(),
        "auth_time": 1_800_000_000,
        "amr": ["mfa", "pwd"],
    })
}

fn sign_raw(keys: &KeyManager, input: &[u8]) -> Result<()> {
    keys.signing_key(SigningAlg::RS256)?.sign(input)?;
    Ok(())
}

/// Busy CPU time of the whole machine and of this process (clock ticks of 10 ms), to tell how
/// much CPU other processes took while something was measured.
#[derive(Clone, Copy)]
struct MachineCpu {
    at: Instant,
    busy: u64,
    ours: u64,
}

impl MachineCpu {
    fn now() -> Option<MachineCpu> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        // cpu  user nice system idle iowait irq softirq steal ...
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|v| v.parse().ok())
            .collect();
        let idle = ticks.get(3)? + ticks.get(4)?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let ours = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(MachineCpu {
            at: Instant::now(),
            busy: ticks.iter().sum::<u64>().saturating_sub(idle),
            ours,
        })
    }

    /// Cores' worth of CPU that other processes (and the hypervisor) took since `self`.
    fn others_since(&self) -> Option<f64> {
        self.others_until(&MachineCpu::now()?)
    }

    /// Cores' worth of CPU that other processes took between `self` and `then`.
    fn others_until(&self, then: &MachineCpu) -> Option<f64> {
        let secs = then.at.duration_since(self.at).as_secs_f64();
        let ticks =
            then.busy.saturating_sub(self.busy) as f64 - then.ours.saturating_sub(self.ours) as f64;
        (secs > 0.0).then(|| (ticks / 100.0 / secs).max(0.0))
    }
}

fn others(cores: Option<f64>) -> String {
    cores.map_or("n/a".into(), |c| format!("{c:.2}"))
}

const SERVER_CORE: usize = 0;
const LOAD_CORE: usize = 1;

/// Binds the calling thread to one core.
fn pin_to(core: usize) -> Result<()> {
    // SAFETY: an all-zero `cpu_set_t` is the empty set; `CPU_SET` sets one bit inside it (core
    // is below the machine's count, far below CPU_SETSIZE); `sched_setaffinity` only reads it,
    // for the calling thread (pid 0).
    let status = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if status != 0 {
        return Err(format!(
            "pinning a thread to core {core}: {}",
            std::io::Error::last_os_error()
        )
        .into());
    }
    Ok(())
}

/// For a runtime's threads as they start, which cannot fail: says so if pinning does.
fn pin_thread(pin: bool, core: usize) {
    if pin {
        if let Err(e) = pin_to(core) {
            eprintln!("{e}");
        }
    }
}

/// Runs `op` on `threads` threads for `duration`; returns operations per second (all threads)
/// and the CPU other processes took meanwhile (cores). With `spread`, thread i is bound to core i
/// (pinned, they would all inherit the server's core).
fn signing_rate<F>(
    threads: usize,
    spread: bool,
    duration: Duration,
    op: F,
) -> Result<(f64, Option<f64>)>
where
    F: Fn() -> Result<()> + Sync,
{
    let machine = MachineCpu::now();
    let start = Instant::now();
    let deadline = start + duration;
    let op = &op;
    let counts: Vec<Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                s.spawn(move || {
                    if spread {
                        pin_to(i)?;
                    }
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        op()?;
                        n += 1;
                    }
                    Ok::<u64, Error>(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a signing thread panicked".into()))
            })
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut total = 0u64;
    for count in counts {
        total += count?;
    }
    Ok((
        total as f64 / elapsed,
        machine.and_then(|m| m.others_since()),
    ))
}

fn measure_signing(keys: &KeyManager, issuer: &str, settings: &Settings) -> Result<Baseline> {
    let claims = access_token_claims(issuer);
    // The exact bytes an access token signs: base64url(header) "." base64url(claims).
    let token = keys.sign_jwt(SigningAlg::RS256, "at+jwt", &claims)?;
    let signing_input = token
        .rsplit_once('.')
        .map(|(input, _)| input.as_bytes().to_vec())
        .ok_or("sign_jwt returned no compact JWS")?;
    println!(
        "\n== Baseline: RS256 with the server's signing key, parsed once (aws-lc-rs), {}-byte signing input ==",
        signing_input.len()
    );
    let (per_core, noise) =
        signing_rate(1, false, settings.sign, || sign_raw(keys, &signing_input))?;
    println!(
        "  1 thread, {:.0} s:  {:>7.0} signatures/s per core ({:.0} µs per signature; other processes: {} cores)",
        settings.sign.as_secs_f64(),
        per_core,
        1e6 / per_core,
        others(noise)
    );
    let (all_cores, noise) =
        signing_rate(settings.cores, settings.pin, Duration::from_secs(2), || {
            sign_raw(keys, &signing_input)
        })?;
    println!(
        "  {} threads, 2 s:  {:>7.0} signatures/s on the machine ({:.2} × the single core; other processes: {} cores)",
        settings.cores,
        all_cores,
        all_cores / per_core,
        others(noise)
    );
    let (sign_jwt_per_core, _) = signing_rate(1, false, Duration::from_secs(1), || {
        keys.sign_jwt(SigningAlg::RS256, "at+jwt", &claims)?;
        Ok(())
    })?;
    println!(
        "  sign_jwt (JSON + base64 + signature), 1 thread, 1 s: {:>7.0}/s ({:.0} µs)",
        sign_jwt_per_core,
        1e6 / sign_jwt_per_core
    );
    Ok(Baseline {
        before: per_core,
        after: 0.0,
        all_cores,
        sign_jwt_per_core,
        signing_input,
    })
}

// ---------------------------------------------------------------------------------------------
// The server.

struct Server {
    base: String,
    state: AppState,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    data_dir: PathBuf,
    /// On PostgreSQL, a connection (made when first used, on the load's runtime) to read the
    /// cluster's WAL counters.
    wal: Option<sqlx::PgPool>,
    // Dropped last: removes the SQLite file or the PostgreSQL schema.
    _db: Option<TestDatabase>,
}

impl Server {
    fn stop(self, rt: &tokio::runtime::Runtime) {
        let _ = self.stop.send(());
        match rt.block_on(self.task) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("server error: {e}"),
            Err(e) => eprintln!("server task failed: {e}"),
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn start_server(rt: &tokio::runtime::Runtime, settings: &Settings) -> Result<Server> {
    rt.block_on(async {
        // A database prepared beforehand (tests/bench/scale.sh seeds one), or a fresh one.
        let db = match std::env::var("BENCH_DATABASE_URL") {
            Ok(_) => None,
            Err(_) if settings.postgres => Some(
                TestDatabase::postgres("bench::token_endpoint")
                    .await
                    .ok_or("--postgres needs TECHPASS_TEST_POSTGRES_URL")?,
            ),
            Err(_) => Some(TestDatabase::sqlite().await),
        };
        let url = match &db {
            Some(db) => db.url.clone(),
            None => std::env::var("BENCH_DATABASE_URL")?,
        };
        let data_dir =
            std::env::temp_dir().join(format!("techpass-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&data_dir)?;
        // The built-in defaults, ignoring this process's TECHPASS_* environment.
        let mut config = Config::load_from(
            None,
            figment::providers::Env::prefixed("TECHPASS_BENCH_NOTHING_"),
        )?;
        let wal = if url.starts_with("postgres") {
            Some(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect_lazy(&url)?,
            )
        } else {
            None
        };
        config.database_url = url;
        config.data_dir = data_dir.clone();
        config.listen = "127.0.0.1:0".parse()?;
        // A prepared database's other users (tests/bench/scale.sh's `techpass` commands) need
        // the key its signing keys are sealed with.
        let master_key = match std::env::var("BENCH_MASTER_KEY") {
            Ok(key) => key,
            Err(_) => MasterKey::generate_base64()?,
        };
        config.master_key = Some(serde_json::from_value(Value::String(master_key))?);
        config.log.level = "warn".into();
        // All load comes from one address and one client per grant: measure the endpoint, not
        // the limiter.
        config.rate_limit.client_per_second = 0;
        config.rate_limit.client_burst = 0;
        config.rate_limit.address_per_second = 0;
        config.rate_limit.address_burst = 0;
        config.http.max_in_flight_requests = 65_536;
        config.http.max_connections = 65_536;
        techpass::telemetry::init(&config);
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let issuer = config.resolve_issuer(addr)?;
        let state = techpass::server::build_state(config, issuer, Arc::new(SystemClock)).await?;
        let router = techpass::app(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(techpass::server::serve_until(
            listener,
            router,
            async move {
                let _ = stopped.await;
            },
            techpass::transport::Transport {
                shutdown_grace: Duration::from_secs(5),
                ..techpass::transport::Transport::from_config(&state.config.http)
            },
        ));
        Ok(Server {
            base: format!("http://{addr}"),
            state,
            stop,
            task,
            data_dir,
            wal,
            _db: db,
        })
    })
}

/// A registered confidential app and its `Authorization: Basic` header value.
struct App {
    client_id: String,
    basic: String,
}

async fn register(state: &AppState, name: &str, grant_types: &[&str]) -> Result<App> {
    register_for(state, name, grant_types, None).await
}

/// The tenant of `--tenant-app`: active, with a group holding the person (registered in
/// advance under the development upstream's identity, so the sign-in finds the same account).
struct BenchTenant {
    id: String,
    group_id: String,
}

/// The development upstream's Alice (`crates/upstream/src/dev/mod.rs`).
const PERSON_OID: &str = "8d1e2f30-0000-4000-8000-0000000000a1";

async fn tenant_for_person(state: &AppState) -> Result<BenchTenant> {
    let now = state.clock.now().as_secs();
    let store = &state.store;
    let user = store
        .upsert_user(&techpass_store::UserRecord {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: techpass_upstream::dev::WOG_TENANT_ID.into(),
            object_id: PERSON_OID.into(),
            email: Some(PERSON_EMAIL.into()),
            name: Some("Alice Tan".into()),
            created_at: now,
            last_signin_at: now,
            status: UserStatus::Unregistered,
            account_type: "public_officer".into(),
            terms_version: None,
            registered_at: None,
            access_ends_at: None,
            status_reason: None,
            exempt: false,
            app_signin_at: None,
            given_name: None,
            family_name: None,
            email_verified: false,
            enabled_at: None,
            terminated_at: None,
        })
        .await?;
    store
        .register_user(
            &user.id,
            UserStatus::Registered,
            &state.config.accounts.terms_version,
            now,
        )
        .await?;
    let tenant = techpass_store::TenantRecord {
        id: "tnt_bench".into(),
        slug: "bench".into(),
        name: "Bench".into(),
        description: "benchmark".into(),
        purpose: "benchmark".into(),
        status: TenantStatus::Requested,
        requested_by: user.id.clone(),
        created_at: now,
        status_at: None,
        status_by: None,
        status_reason: None,
    };
    store.insert_tenant(&tenant).await?;
    store
        .transition_tenant(
            &tenant.id,
            &[TenantStatus::Requested],
            TenantStatus::Active,
            "bench",
            None,
            now,
            Some(&user.id),
        )
        .await?;
    let group = techpass_store::GroupRecord {
        id: "grp_bench".into(),
        tenant_id: tenant.id.clone(),
        name: "developers".into(),
        created_at: now,
    };
    store.insert_group(&group).await?;
    store.add_group_member(&group.id, &user.id).await?;
    Ok(BenchTenant {
        id: tenant.id,
        group_id: group.id,
    })
}

async fn register_for(
    state: &AppState,
    name: &str,
    grant_types: &[&str],
    tenant: Option<&BenchTenant>,
) -> Result<App> {
    let redirect_uris = if grant_types.contains(&"authorization_code") {
        vec![APP_CALLBACK.to_string()]
    } else {
        vec![]
    };
    let created = create_app(
        state.store.as_ref(),
        &state.secrets,
        state.clock.now().as_secs(),
        state.http.policy(),
        NewApp {
            name: name.into(),
            confidential: true,
            redirect_uris,
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            grant_types: grant_types.iter().map(|g| g.to_string()).collect(),
            jwks: None,
            tenant_id: tenant.map(|t| t.id.clone()),
            access_policy: if tenant.is_some() {
                AccessPolicy::Assigned
            } else {
                AccessPolicy::Officers
            },
            ..NewApp::default()
        },
    )
    .await?;
    if let Some(t) = tenant {
        let store = &state.store;
        store
            .assign(&techpass_store::AssignmentRecord {
                client_id: created.client_id.clone(),
                principal_type: techpass_store::PRINCIPAL_GROUP.into(),
                principal_id: t.group_id.clone(),
                assigned_at: state.clock.now().as_secs(),
                assigned_by: "bench".into(),
            })
            .await?;
        store.define_role(&created.client_id, "maintainer").await?;
        store
            .assign_role(&techpass_store::RoleAssignmentRecord {
                client_id: created.client_id.clone(),
                role: "maintainer".into(),
                principal_type: techpass_store::PRINCIPAL_GROUP.into(),
                principal_id: t.group_id.clone(),
            })
            .await?;
    }
    let secret = created
        .client_secret
        .ok_or("a confidential app got no secret")?;
    // Client ids and secrets are base64url: nothing to form-encode (RFC 6749 §2.3.1).
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{secret}", created.client_id))
    );
    Ok(App {
        client_id: created.client_id,
        basic,
    })
}

// ---------------------------------------------------------------------------------------------
// A browser: signing in once through the development upstream, then codes from the SSO session.

struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    fn new() -> Pkce {
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        Pkce {
            challenge: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            verifier,
        }
    }
}

/// A code waiting to be exchanged, with its PKCE verifier.
struct PendingCode {
    code: String,
    verifier: String,
}

fn authorize_url(
    base: &str,
    client_id: &str,
    pkce: &Pkce,
    login_hint: Option<&str>,
) -> Result<String> {
    let mut url = url::Url::parse(&format!("{base}/authorize"))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id)
            .append_pair("redirect_uri", APP_CALLBACK)
            .append_pair("response_type", "code")
            .append_pair("scope", SCOPE)
            .append_pair("state", &uuid::Uuid::new_v4().simple().to_string())
            .append_pair("nonce", &uuid::Uuid::new_v4().simple().to_string())
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(hint) = login_hint {
            q.append_pair("login_hint", hint);
        }
    }
    Ok(url.to_string())
}

fn browser() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()?)
}

/// The `Location` of a 303.
fn see_other(response: &reqwest::Response) -> Result<String> {
    if response.status() != 303 {
        return Err(format!(
            "expected a 303 from {}, got {}",
            response.url().path(),
            response.status()
        )
        .into());
    }
    Ok(response
        .headers()
        .get("location")
        .ok_or("a 303 without Location")?
        .to_str()?
        .to_string())
}

/// The code in a redirect back to the app.
fn code_in(location: &str) -> Result<String> {
    let url = url::Url::parse(location)?;
    if !location.starts_with(APP_CALLBACK) {
        return Err(format!("expected a redirect to the app, got {}", url.path()).into());
    }
    let param = |key: &str| {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error") {
        return Err(format!("the authorization request failed: {error}").into());
    }
    Ok(param("code").ok_or("no code in the redirect to the app")?)
}

/// Signs `PERSON` in through the development upstream (registering on first sign-in, as an
/// officer does once) and returns the code of that first authorization request.
async fn sign_in(b: &reqwest::Client, base: &str, client_id: &str) -> Result<PendingCode> {
    let pkce = Pkce::new();
    let first = b
        .get(authorize_url(base, client_id, &pkce, Some(PERSON_EMAIL))?)
        .send()
        .await?;
    let login = see_other(&first)?;
    if !login.starts_with("/login?") {
        return Err(format!("expected a redirect to /login, got {login}").into());
    }
    let start = b.get(format!("{base}{login}")).send().await?;
    let upstream_authorize = see_other(&start)?;
    let picker = b.get(&upstream_authorize).send().await?;
    if picker.status() != 200 {
        return Err(format!("development upstream picker: {}", picker.status()).into());
    }
    let url = url::Url::parse(&upstream_authorize)?;
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("person".into(), PERSON.into()));
    let mut action = url.clone();
    action.set_query(None);
    let chosen = b.post(action).form(&form).send().await?;
    let callback = see_other(&chosen)?;
    let done = b.get(&callback).send().await?;
    let mut next = see_other(&done)?;
    if next.starts_with("/register") {
        next = register_person(b, base, &next).await?;
    }
    if !next.starts_with("/authorize?") {
        return Err(format!("expected a return to /authorize after sign-in, got {next}").into());
    }
    let again = b.get(format!("{base}{next}")).send().await?;
    Ok(PendingCode {
        code: code_in(&see_other(&again)?)?,
        verifier: pkce.verifier,
    })
}

/// Accepts the terms of use on the registration page; returns where registration leads.
async fn register_person(b: &reqwest::Client, base: &str, location: &str) -> Result<String> {
    let page = b.get(format!("{base}{location}")).send().await?;
    if page.status() != 200 {
        return Err(format!("registration page: {}", page.status()).into());
    }
    let html = page.text().await?;
    let field = |name: &str| -> Result<String> {
        Ok(html
            .split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| format!("no {name} in the registration form"))?
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
            .replace("&#x3d;", "=")
            .replace("&#x3f;", "?"))
    };
    let form = [
        ("csrf_token", field("csrf_token")?),
        ("terms_version", field("terms_version")?),
        ("return_to", field("return_to")?),
        ("accept_terms", "yes".to_string()),
    ];
    let done = b
        .post(format!("{base}/register"))
        .form(&form)
        .send()
        .await?;
    see_other(&done)
}

/// A code from the SSO session: `/authorize` answers 303 straight to the app.
async fn mint_code(b: &reqwest::Client, base: &str, client_id: &str) -> Result<PendingCode> {
    let pkce = Pkce::new();
    let response = b
        .get(authorize_url(base, client_id, &pkce, None)?)
        .send()
        .await?;
    Ok(PendingCode {
        code: code_in(&see_other(&response)?)?,
        verifier: pkce.verifier,
    })
}

/// Mints up to `count` codes with `concurrency` parallel requests, within `budget`.
async fn mint_codes(
    b: &reqwest::Client,
    base: &str,
    client_id: &str,
    count: usize,
    concurrency: usize,
    budget: Duration,
) -> Result<Vec<PendingCode>> {
    let deadline = Instant::now() + budget;
    let per_task = count.div_ceil(concurrency);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (b, base, client_id) = (b.clone(), base.to_string(), client_id.to_string());
        tasks.push(tokio::spawn(async move {
            let mut codes = Vec::with_capacity(per_task);
            while codes.len() < per_task && Instant::now() < deadline {
                codes.push(mint_code(&b, &base, &client_id).await?);
            }
            Ok::<_, Error>(codes)
        }));
    }
    let mut codes = Vec::with_capacity(count);
    for task in tasks {
        codes.extend(task.await??);
    }
    codes.truncate(count);
    Ok(codes)
}

// ---------------------------------------------------------------------------------------------
// The token endpoint under load.

struct TokenClient {
    http: reqwest::Client,
    url: String,
    basic: String,
}

impl TokenClient {
    fn new(http: &reqwest::Client, base: &str, app: &App) -> Arc<TokenClient> {
        Arc::new(TokenClient {
            http: http.clone(),
            url: format!("{base}/token"),
            basic: app.basic.clone(),
        })
    }

    /// Exchanges a code minted through the SSO session (PKCE, the app's callback).
    async fn exchange(&self, code: &PendingCode) -> std::result::Result<String, String> {
        self.post(&[
            ("grant_type", "authorization_code"),
            ("code", &code.code),
            ("redirect_uri", APP_CALLBACK),
            ("code_verifier", &code.verifier),
        ])
        .await
    }

    /// Opens a refresh token family per code: the first refresh token of each.
    async fn open_families(&self, codes: &[PendingCode]) -> Result<Vec<String>> {
        let mut families = Vec::with_capacity(codes.len());
        for code in codes {
            let v: Value = serde_json::from_str(&self.exchange(code).await?)?;
            let token = v["refresh_token"]
                .as_str()
                .ok_or("the code exchange returned no refresh token")?;
            families.push(token.to_string());
        }
        Ok(families)
    }

    /// POSTs a form to `/token`: the body of a 200, or why it was not one.
    async fn post(&self, form: &[(&str, &str)]) -> std::result::Result<String, String> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .http
            .post(&self.url)
            .header("authorization", &self.basic)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
        if status != 200 {
            return Err(format!("HTTP {status}: {text}"));
        }
        Ok(text)
    }
}

/// The timed part of a phase: requests that start in `[start, end)` are measured; those before
/// `start` are the warm-up.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u32>,
    errors: u64,
    error_samples: Vec<String>,
    last_done: Option<Instant>,
}

impl WorkerStats {
    /// Records a request that started at `t0`; returns whether it succeeded.
    fn record(
        &mut self,
        t0: Instant,
        window: Window,
        outcome: &std::result::Result<(), String>,
    ) -> bool {
        let done = Instant::now();
        match outcome {
            Ok(()) => {
                if t0 >= window.start {
                    let us = done.duration_since(t0).as_micros();
                    self.latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                    self.last_done = Some(done);
                }
                true
            }
            Err(why) => {
                self.errors += 1;
                if self.error_samples.len() < 3 {
                    self.error_samples.push(why.chars().take(300).collect());
                }
                false
            }
        }
    }
}

fn has(body: &str, member: &str) -> std::result::Result<(), String> {
    if body.contains(&format!("\"{member}\"")) {
        Ok(())
    } else {
        Err(format!("200 without {member}"))
    }
}

async fn client_credentials_worker(tc: Arc<TokenClient>, window: Window) -> WorkerStats {
    let mut stats = WorkerStats::default();
    loop {
        let t0 = Instant::now();
        if t0 >= window.end {
            break;
        }
        let outcome = tc
            .post(&[("grant_type", "client_credentials")])
            .await
            .and_then(|body| has(&body, "access_token"));
        stats.record(t0, window, &outcome);
    }
    stats
}

/// Rotates one refresh token family: each response's refresh token is the next request's.
async fn refresh_worker(tc: Arc<TokenClient>, window: Window, first: String) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut token = first;
    loop {
        let t0 = Instant::now();
        if t0 >= window.end {
            break;
        }
        let outcome = tc
            .post(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
            .await
            .and_then(|body| {
                has(&body, "id_token")?;
                let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
                v["refresh_token"]
                    .as_str()
                    .map(String::from)
                    .ok_or_else(|| "200 without refresh_token".to_string())
            });
        let ok = stats.record(
            t0,
            window,
            &outcome.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        match outcome {
            Ok(next) if ok => token = next,
            // The family is spent (a rotated token must not be reused): this client stops.
            _ => break,
        }
    }
    stats
}

async fn code_worker(
    tc: Arc<TokenClient>,
    window: Window,
    pool: Arc<Mutex<VecDeque<PendingCode>>>,
    exhausted: Arc<AtomicBool>,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    loop {
        let t0 = Instant::now();
        if t0 >= window.end {
            break;
        }
        let next = pool.lock().ok().and_then(|mut q| q.pop_front());
        let Some(pending) = next else {
            exhausted.store(true, Ordering::Relaxed);
            break;
        };
        let outcome = tc.exchange(&pending).await.and_then(|body| {
            has(&body, "id_token")?;
            has(&body, "refresh_token")
        });
        stats.record(t0, window, &outcome);
    }
    stats
}

/// CPU time (ns) of this process's threads, grouped by who they work for: the server's runtime
/// (`server`), SQLite's connection threads (`sqlite`, which work for the server), the load
/// generator (`load`).
fn cpu_snapshot() -> Option<HashMap<String, (&'static str, u64)>> {
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = entry.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        let Some(ns) = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        else {
            continue;
        };
        let comm = comm.trim();
        let group = if comm.starts_with("tp-server") {
            "server"
        } else if comm.starts_with("sqlx-sqlite") {
            // Part of the server too: each SQLite connection's thread, which runs its statements.
            "sqlite"
        } else if comm.starts_with("tp-load") {
            "load"
        } else {
            "other"
        };
        threads.insert(
            entry.file_name().to_string_lossy().into_owned(),
            (group, ns),
        );
    }
    Some(threads)
}

/// CPU seconds per group between two snapshots.
fn cpu_between(
    before: &HashMap<String, (&'static str, u64)>,
    after: &HashMap<String, (&'static str, u64)>,
) -> HashMap<&'static str, f64> {
    let mut groups = HashMap::new();
    for (tid, (group, ns)) in after {
        let was = before.get(tid).map_or(0, |(_, ns)| *ns);
        *groups.entry(*group).or_insert(0.0) += ns.saturating_sub(was) as f64 / 1e9;
    }
    groups
}

struct Scenario {
    name: &'static str,
    /// JWTs signed per response.
    signatures: u32,
    requests: usize,
    errors: u64,
    error_samples: Vec<String>,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU seconds during the window: (server, load generator). The server's include its
    /// SQLite connection threads.
    cpu: Option<(f64, f64)>,
    /// CPU seconds of those SQLite connection threads alone (0 on PostgreSQL).
    sqlite_cpu: Option<f64>,
    /// Cores' worth of CPU other processes took during the window.
    others: Option<f64>,
    note: String,
    /// The other writer's waits in the window, sorted (µs), if it ran.
    other_writes: Option<Vec<u32>>,
    /// What PostgreSQL's WAL grew by during the window (PostgreSQL 14 or later).
    wal: Option<Wal>,
}

impl Scenario {
    fn rps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Requests per CPU-second of the server's threads.
    fn per_server_cpu_second(&self) -> Option<f64> {
        self.cpu
            .filter(|(server, _)| *server > 0.0)
            .map(|(server, _)| self.requests as f64 / server)
    }
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

/// Runs `workers` (already bound to `window`) and summarises them.
async fn run_phase<F>(
    name: &'static str,
    signatures: u32,
    window: Window,
    workers: Vec<F>,
) -> Result<Scenario>
where
    F: Future<Output = WorkerStats> + Send + 'static,
{
    let first = tokio::spawn(async move {
        tokio::time::sleep_until(window.start.into()).await;
        // On stderr, for a profiler to attach to the measured window (`perf stat -p`).
        eprintln!(
            "measuring {name} for {:.1} s",
            window
                .end
                .saturating_duration_since(window.start)
                .as_secs_f64()
        );
        (cpu_snapshot(), MachineCpu::now())
    });
    let handles: Vec<_> = workers.into_iter().map(tokio::spawn).collect();
    let mut all = WorkerStats::default();
    for handle in handles {
        let stats = handle.await?;
        all.latencies_us.extend(stats.latencies_us);
        all.errors += stats.errors;
        for sample in stats.error_samples {
            if all.error_samples.len() < 5 {
                all.error_samples.push(sample);
            }
        }
        all.last_done = all.last_done.max(stats.last_done);
    }
    let (before, machine) = first.await?;
    let others = machine.and_then(|m| m.others_since());
    let groups = before.zip(cpu_snapshot()).map(|(b, a)| cpu_between(&b, &a));
    let group = |name| groups.as_ref().map(|g| g.get(name).copied().unwrap_or(0.0));
    let sqlite_cpu = group("sqlite");
    let cpu = group("server")
        .zip(sqlite_cpu)
        .map(|(runtime, sqlite)| runtime + sqlite)
        .zip(group("load"));
    all.latencies_us.sort_unstable();
    let seconds = all.last_done.map_or(0.0, |last| {
        last.saturating_duration_since(window.start).as_secs_f64()
    });
    Ok(Scenario {
        name,
        signatures,
        requests: all.latencies_us.len(),
        errors: all.errors,
        error_samples: all.error_samples,
        seconds,
        p50_ms: percentile_ms(&all.latencies_us, 0.50),
        p99_ms: percentile_ms(&all.latencies_us, 0.99),
        cpu,
        sqlite_cpu,
        others,
        note: String::new(),
        other_writes: None,
        wal: None,
    })
}

/// The WAL PostgreSQL wrote (`pg_stat_wal`: the whole cluster, so the other writer's audit rows
/// are in it too). A page's first change after a checkpoint writes the whole page: what a
/// database whose indexes outgrow the pages a benchmark touches pays (tests/bench/scale.sh).
#[derive(Clone, Copy)]
struct Wal {
    records: f64,
    full_pages: f64,
    bytes: f64,
}

impl Wal {
    async fn now(pool: &sqlx::PgPool) -> Option<Wal> {
        let (records, full_pages, bytes): (f64, f64, f64) = sqlx::query_as(
            "SELECT wal_records::float8, wal_fpi::float8, wal_bytes::float8 FROM pg_stat_wal",
        )
        .fetch_one(pool)
        .await
        .ok()?;
        Some(Wal {
            records,
            full_pages,
            bytes,
        })
    }
}

/// Reads the WAL counters as a window starts and as it ends (nothing without a pool).
struct WalProbe(Option<tokio::task::JoinHandle<Option<Wal>>>);

impl WalProbe {
    fn start(pool: Option<&sqlx::PgPool>, window: Window) -> WalProbe {
        WalProbe(pool.cloned().map(|pool| {
            tokio::spawn(async move {
                tokio::time::sleep_until(window.start.into()).await;
                let before = Wal::now(&pool).await?;
                tokio::time::sleep_until(window.end.into()).await;
                let after = Wal::now(&pool).await?;
                Some(Wal {
                    records: after.records - before.records,
                    full_pages: after.full_pages - before.full_pages,
                    bytes: after.bytes - before.bytes,
                })
            })
        }))
    }

    async fn finish(self) -> Option<Wal> {
        self.0?.await.ok().flatten()
    }
}

/// Another writer of the database during a phase: an audit row (what a sign-in or a portal
/// action appends) every `settings.other_writer`, through the store, within the measured
/// window. Its waits are what the token path's writes cost the rest of the product.
struct OtherWriter(Option<tokio::task::JoinHandle<Result<Vec<u32>>>>);

impl OtherWriter {
    fn start(store: &Arc<dyn Store>, window: Window, settings: &Settings) -> OtherWriter {
        let Some(every) = settings.other_writer else {
            return OtherWriter(None);
        };
        let store = store.clone();
        OtherWriter(Some(tokio::spawn(async move {
            tokio::time::sleep_until(window.start.into()).await;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut waits = Vec::new();
            loop {
                tick.tick().await;
                let started = Instant::now();
                if started >= window.end {
                    break;
                }
                let row = AuditRecord {
                    at: SystemClock.now().as_secs(),
                    event: "bench.other_writer".into(),
                    outcome: "success".into(),
                    details: "{}".into(),
                    ..AuditRecord::default()
                };
                store
                    .append_audit(&row)
                    .await
                    .map_err(|e| format!("the other writer's audit row failed: {e}"))?;
                waits.push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            waits.sort_unstable();
            Ok(waits)
        })))
    }

    async fn finish(self) -> Result<Option<Vec<u32>>> {
        match self.0 {
            Some(task) => Ok(Some(task.await??)),
            None => Ok(None),
        }
    }
}

/// "p50 / p90 / max" of sorted waits, or what is missing.
fn other_writes_summary(waits: &[u32]) -> String {
    match waits.last() {
        Some(max) => format!(
            "{} writes, wait p50 {:.2} ms, p90 {:.2} ms, max {:.2} ms",
            waits.len(),
            percentile_ms(waits, 0.50),
            percentile_ms(waits, 0.90),
            f64::from(*max) / 1000.0
        ),
        None => "no writes in the window".into(),
    }
}

fn window_from_now(settings: &Settings) -> Window {
    let start = Instant::now() + settings.warmup;
    Window {
        start,
        end: start + settings.measure,
    }
}

async fn load(
    base: &str,
    store: &Arc<dyn Store>,
    wal: Option<&sqlx::PgPool>,
    web: &App,
    machine: &App,
    settings: &Settings,
) -> Result<(Vec<Scenario>, Vec<OpenLoop>)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(settings.concurrency)
        .tcp_nodelay(true)
        .build()?;
    let mut scenarios = Vec::new();

    let running = |name: &str| {
        println!(
            "\n(running /token {name}: {:.0} s warm-up, then {:.0} s measured)",
            settings.warmup.as_secs_f64(),
            settings.measure.as_secs_f64()
        );
    };

    // (a) client_credentials.
    running("client_credentials");
    let tc = TokenClient::new(&http, base, machine);
    let window = window_from_now(settings);
    let workers = (0..settings.concurrency)
        .map(|_| client_credentials_worker(tc.clone(), window))
        .collect();
    let probe = WalProbe::start(wal, window);
    let mut machine_phase = run_phase("client_credentials", 1, window, workers).await?;
    machine_phase.wal = probe.finish().await;
    scenarios.push(machine_phase);

    // A person signs in once; the SSO session then yields codes without the upstream.
    let b = browser()?;
    let setup = Instant::now();
    let first = sign_in(&b, base, &web.client_id).await?;
    let mut pending = vec![first];
    pending.extend(
        mint_codes(
            &b,
            base,
            &web.client_id,
            settings.concurrency - 1,
            settings.concurrency,
            CODE_MINTING_BUDGET,
        )
        .await?,
    );
    let tc = TokenClient::new(&http, base, web);
    let families = tc.open_families(&pending).await?;
    println!(
        "\n(setup: signed in through the development upstream and opened {} refresh token families in {:.2} s)",
        families.len(),
        setup.elapsed().as_secs_f64()
    );

    // (b) refresh_token, one family per client.
    running("refresh_token");
    let window = window_from_now(settings);
    let workers = families
        .into_iter()
        .map(|first| refresh_worker(tc.clone(), window, first))
        .collect();
    let (other, probe) = (
        OtherWriter::start(store, window, settings),
        WalProbe::start(wal, window),
    );
    let mut refresh = run_phase("refresh_token", 2, window, workers).await?;
    refresh.other_writes = other.finish().await?;
    refresh.wal = probe.finish().await;
    refresh.note = "one rotating family per client".into();
    let refresh_rps = refresh.rps();
    scenarios.push(refresh);

    // (c) authorization_code: codes are single use and live 60 s, so a pool sized for the
    // warm-up and the window (from the refresh rate, +25 %) is minted first.
    let span = (settings.warmup + settings.measure).as_secs_f64();
    let wanted = ((refresh_rps * span * 1.25) as usize).clamp(500, 30_000);
    let minting = Instant::now();
    let codes = mint_codes(
        &b,
        base,
        &web.client_id,
        wanted,
        settings.concurrency,
        CODE_MINTING_BUDGET,
    )
    .await?;
    let mint_secs = minting.elapsed().as_secs_f64();
    println!(
        "\n(setup: minted {} codes through the SSO session in {:.2} s: {:.0} /authorize per second; asked for {wanted})",
        codes.len(),
        mint_secs,
        codes.len() as f64 / mint_secs
    );
    let minted = codes.len();
    let pool = Arc::new(Mutex::new(VecDeque::from(codes)));
    let exhausted = Arc::new(AtomicBool::new(false));
    running("authorization_code");
    let window = window_from_now(settings);
    let workers = (0..settings.concurrency)
        .map(|_| code_worker(tc.clone(), window, pool.clone(), exhausted.clone()))
        .collect();
    let (other, probe) = (
        OtherWriter::start(store, window, settings),
        WalProbe::start(wal, window),
    );
    let mut exchange = run_phase("authorization_code", 2, window, workers).await?;
    exchange.other_writes = other.finish().await?;
    exchange.wal = probe.finish().await;
    exchange.note = if exhausted.load(Ordering::Relaxed) {
        format!(
            "fixed count: the pool of {minted} codes ran out after {:.2} s of the window",
            exchange.seconds
        )
    } else {
        let left = pool.lock().map_or(0, |q| q.len());
        format!("fixed time; {left} of {minted} minted codes left unused")
    };
    let code_rps = exchange.rps();
    let client_credentials_rps = scenarios[0].rps();
    scenarios.push(exchange);
    if !settings.open_loop {
        return Ok((scenarios, Vec::new()));
    }

    // (d) Open loop at half the rates just measured.
    let mut open = Vec::new();
    let machine_tc = TokenClient::new(&http, base, machine);
    let rate = client_credentials_rps / 2.0;
    running_open("client_credentials", rate, settings);
    open.push(
        open_loop(
            "client_credentials",
            rate,
            window_from_now(settings),
            move || {
                let tc = machine_tc.clone();
                async move {
                    tc.post(&[("grant_type", "client_credentials")])
                        .await
                        .and_then(|body| has(&body, "access_token"))
                }
            },
        )
        .await,
    );

    // Refresh: families wait in a queue; a request takes one, and puts back the next token.
    let codes = mint_codes(
        &b,
        base,
        &web.client_id,
        OPEN_LOOP_FAMILIES,
        settings.concurrency,
        CODE_MINTING_BUDGET,
    )
    .await?;
    let (put, take) = tokio::sync::mpsc::unbounded_channel::<String>();
    for token in tc.open_families(&codes).await? {
        put.send(token)?;
    }
    let take = Arc::new(tokio::sync::Mutex::new(take));
    let rate = refresh_rps / 2.0;
    running_open("refresh_token", rate, settings);
    let refresh_tc = tc.clone();
    open.push(
        open_loop(
            "refresh_token",
            rate,
            window_from_now(settings),
            move || {
                let (tc, put, take) = (refresh_tc.clone(), put.clone(), take.clone());
                async move {
                    // Waiting for an idle family counts in the latency.
                    let token = take.lock().await.recv().await.ok_or("no family left")?;
                    let body = tc
                        .post(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
                        .await?;
                    has(&body, "id_token")?;
                    let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
                    let next = v["refresh_token"]
                        .as_str()
                        .ok_or("200 without refresh_token")?;
                    let _ = put.send(next.to_string());
                    Ok(())
                }
            },
        )
        .await,
    );

    // Code exchange: a pool minted first, sized for the rate.
    let rate = code_rps / 2.0;
    let wanted = (rate * (settings.warmup + settings.measure).as_secs_f64() * 1.2) as usize + 50;
    let codes = mint_codes(
        &b,
        base,
        &web.client_id,
        wanted,
        settings.concurrency,
        CODE_MINTING_BUDGET,
    )
    .await?;
    let pool = Arc::new(Mutex::new(VecDeque::from(codes)));
    running_open("authorization_code", rate, settings);
    let code_tc = tc.clone();
    open.push(
        open_loop(
            "authorization_code",
            rate,
            window_from_now(settings),
            move || {
                let (tc, pool) = (code_tc.clone(), pool.clone());
                async move {
                    let pending = pool
                        .lock()
                        .ok()
                        .and_then(|mut q| q.pop_front())
                        .ok_or("the code pool ran out")?;
                    tc.exchange(&pending).await.and_then(|body| {
                        has(&body, "id_token")?;
                        has(&body, "refresh_token")
                    })
                }
            },
        )
        .await,
    );
    Ok((scenarios, open))
}

// ---------------------------------------------------------------------------------------------
// Open loop (issue 17 item 2): requests leave at a fixed rate whatever the answers do, and each
// latency counts from when its request was due, not from when it could be sent, so queueing
// behind slow answers is measured instead of hidden (closed-loop clients wait for an answer
// before asking again, and so slow down with the server).

/// Refresh token families the open-loop refresh phase rotates (enough that requests rarely
/// wait for an idle one at half the closed-loop rate).
const OPEN_LOOP_FAMILIES: usize = 64;

struct OpenLoop {
    name: &'static str,
    target_rps: f64,
    ok: usize,
    errors: u64,
    error_samples: Vec<String>,
    measured: Duration,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    /// Other processes' CPU over the window, in cores: on average, and in its busiest slice.
    others: Option<OtherCpu>,
}

/// What other processes (a database server running here, neighbours) took while an open loop
/// was measured: a latency spike beside a busy slice was the machine's, not the server's.
#[derive(Clone, Copy)]
struct OtherCpu {
    mean: f64,
    peak: f64,
}

/// The length of the slices [`others_in`] finds the busiest of.
const OTHERS_SLICE: Duration = Duration::from_millis(250);

/// Samples other processes' CPU through `window`, slice by slice (`None` without `/proc`).
async fn others_in(window: Window) -> Option<OtherCpu> {
    tokio::time::sleep_until(window.start.into()).await;
    let first = MachineCpu::now()?;
    let (mut last, mut peak) = (first, 0.0_f64);
    while Instant::now() < window.end {
        tokio::time::sleep(OTHERS_SLICE.min(window.end.saturating_duration_since(Instant::now())))
            .await;
        let now = MachineCpu::now()?;
        // A last sliver of the window is too short for the 10 ms ticks to tell a peak.
        if now.at.duration_since(last.at) >= OTHERS_SLICE / 2 {
            peak = peak.max(last.others_until(&now)?);
        }
        last = now;
    }
    Some(OtherCpu {
        mean: first.others_until(&last)?,
        peak,
    })
}

fn running_open(name: &str, rate: f64, settings: &Settings) {
    println!(
        "\n(running /token {name} open loop at {rate:.0} req/s: {:.0} s warm-up, then {:.0} s measured)",
        settings.warmup.as_secs_f64(),
        settings.measure.as_secs_f64()
    );
}

/// Sends `request()` every 1/`rate` s until the window ends and waits for every answer.
async fn open_loop<F, Fut>(name: &'static str, rate: f64, window: Window, request: F) -> OpenLoop
where
    F: Fn() -> Fut,
    Fut: Future<Output = std::result::Result<(), String>> + Send + 'static,
{
    let period = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let others = tokio::spawn(others_in(window));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let begin = Instant::now();
    let mut n: u32 = 0;
    loop {
        let due = begin + period * n;
        if due >= window.end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let (answer, done) = (request(), done_tx.clone());
        tokio::spawn(async move {
            let outcome = answer.await;
            let _ = done.send((due, Instant::now(), outcome));
        });
        n += 1;
    }
    drop(done_tx);
    let mut latencies_us = Vec::new();
    let (mut errors, mut error_samples) = (0, Vec::new());
    while let Some((due, done, outcome)) = done_rx.recv().await {
        if due < window.start {
            continue;
        }
        match outcome {
            Ok(()) => latencies_us
                .push(u32::try_from(done.duration_since(due).as_micros()).unwrap_or(u32::MAX)),
            Err(why) => {
                errors += 1;
                if error_samples.len() < 3 {
                    error_samples.push(why.chars().take(300).collect());
                }
            }
        }
    }
    latencies_us.sort_unstable();
    OpenLoop {
        name,
        target_rps: rate,
        ok: latencies_us.len(),
        errors,
        error_samples,
        measured: window.end.duration_since(window.start),
        p50_ms: percentile_ms(&latencies_us, 0.50),
        p99_ms: percentile_ms(&latencies_us, 0.99),
        p999_ms: percentile_ms(&latencies_us, 0.999),
        max_ms: percentile_ms(&latencies_us, 1.0),
        others: others.await.ok().flatten(),
    }
}

fn report_open_loop(open: &[OpenLoop]) {
    if open.is_empty() {
        return;
    }
    println!(
        "\n== Open loop at half the closed-loop rate (latency from when each request was due) =="
    );
    println!(
        "\"others\": cores other processes took meanwhile (the database server when it runs here, \
         and neighbours), over the window and in its busiest {} ms",
        OTHERS_SLICE.as_millis()
    );
    println!(
        "| {:<18} | {:>8} | {:>8} | {:>3} | {:>7} | {:>7} | {:>8} | {:>7} | {:>6} | {:>11} |",
        "grant",
        "target/s",
        "done/s",
        "err",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "others",
        "others peak"
    );
    println!(
        "|{:-<20}|{:->10}|{:->10}|{:->5}|{:->9}|{:->9}|{:->10}|{:->9}|{:->8}|{:->13}|",
        "", "", "", "", "", "", "", "", "", ""
    );
    for o in open {
        println!(
            "| {:<18} | {:>8.0} | {:>8.0} | {:>3} | {:>7.2} | {:>7.2} | {:>8.2} | {:>7.2} | {:>6} | {:>11} |",
            o.name,
            o.target_rps,
            o.ok as f64 / o.measured.as_secs_f64(),
            o.errors,
            o.p50_ms,
            o.p99_ms,
            o.p999_ms,
            o.max_ms,
            others(o.others.map(|c| c.mean)),
            others(o.others.map(|c| c.peak))
        );
        for sample in &o.error_samples {
            println!("  error: {sample}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

fn print_scenario(s: &Scenario, baseline: &Baseline, settings: &Settings) {
    let cores = settings.cores as f64;
    let rps = s.rps();
    let sig = f64::from(s.signatures);
    println!(
        "\n== /token {} ({} JWT signature{} per response{}) ==",
        s.name,
        s.signatures,
        if s.signatures == 1 { "" } else { "s" },
        if s.note.is_empty() {
            String::new()
        } else {
            format!("; {}", s.note)
        }
    );
    println!(
        "  {} requests in {:.2} s after {:.0} s of warm-up, {} error(s)",
        s.requests,
        s.seconds,
        settings.warmup.as_secs_f64(),
        s.errors
    );
    for sample in &s.error_samples {
        println!("  error: {sample}");
    }
    println!(
        "  {:.0} requests/s; latency p50 {:.2} ms, p99 {:.2} ms",
        rps, s.p50_ms, s.p99_ms
    );
    if let Some(waits) = &s.other_writes {
        println!(
            "  another writer meanwhile (an audit row every {} ms): {}",
            settings.other_writer.map_or(0, |d| d.as_millis()),
            other_writes_summary(waits)
        );
    }
    println!(
        "  req/s ÷ (signing rate per core × {} cores) = {:.1} %   [signatures: {:.1} %]",
        settings.cores,
        100.0 * rps / (baseline.per_core() * cores),
        100.0 * sig * rps / (baseline.per_core() * cores)
    );
    println!(
        "  req/s ÷ signing rate of 1 core            = {:.1} %   [signatures: {:.1} %]",
        100.0 * rps / baseline.per_core(),
        100.0 * sig * rps / baseline.per_core()
    );
    println!(
        "  req/s ÷ measured {}-thread signing rate     = {:.1} %   [signatures: {:.1} %]",
        settings.cores,
        100.0 * rps / baseline.all_cores,
        100.0 * sig * rps / baseline.all_cores
    );
    if let (Some((server, load)), Some(per_cpu)) = (s.cpu, s.per_server_cpu_second()) {
        println!(
            "  CPU in the window: server {:.2} cores, load generator {:.2} cores, other processes {} cores",
            server / s.seconds.max(1e-9),
            load / s.seconds.max(1e-9),
            others(s.others)
        );
        println!(
            "  per server CPU-second: {:.0} requests = {:.1} % of the signing rate per core   [signatures: {:.1} %]",
            per_cpu,
            100.0 * per_cpu / baseline.per_core(),
            100.0 * sig * per_cpu / baseline.per_core()
        );
        // What a request costs the server beyond its signatures, and SQLite's threads' part.
        let per_request_us = |cpu: f64| 1e6 * cpu / (s.requests.max(1) as f64);
        let beyond = per_request_us(server) - sig * 1e6 / baseline.per_core();
        println!(
            "  per request: {:.0} µs of server CPU, {:.0} µs beyond its signatures at the baseline's rate{}",
            per_request_us(server),
            beyond,
            s.sqlite_cpu.filter(|c| *c > 0.0).map_or(String::new(), |c| format!(
                " ({:.0} µs of it on SQLite's connection threads)",
                per_request_us(c)
            ))
        );
    }
    if let Some(wal) = s.wal {
        let n = s.requests.max(1) as f64;
        println!(
            "  WAL per request (pg_stat_wal, the whole cluster): {:.1} records, {:.2} full-page images, {:.0} bytes",
            wal.records / n,
            wal.full_pages / n,
            wal.bytes / n
        );
    }
}

fn report(scenarios: &[Scenario], baseline: &Baseline, settings: &Settings) {
    let cores = settings.cores as f64;
    println!("\n== Summary ==");
    println!(
        "baseline: {:.0} RS256 signatures/s per core ({:.0} µs each; the faster of {:.0}/s before and {:.0}/s after the load), {:.0}/s on {} threads; sign_jwt {:.0}/s per core",
        baseline.per_core(),
        1e6 / baseline.per_core(),
        baseline.before,
        baseline.after,
        baseline.all_cores,
        settings.cores,
        baseline.sign_jwt_per_core
    );
    println!(
        "ratios divide by the single-thread rate × {} cores = {:.0} signatures/s; \"sig\" counts signatures (req/s × JWTs per response); \"sig/srv-CPU\" divides by the server's own CPU time instead of {} cores; \"others\": CPU other processes took meanwhile (noise, or the database server when it runs here); aim: ≥ 70 %",
        settings.cores,
        baseline.per_core() * cores,
        settings.cores
    );
    println!(
        "| {:<18} | {:>6} | {:>3} | {:>6} | {:>7} | {:>7} | {:>4} | {:>9} | {:>9} | {:>13} | {:>6} |",
        "grant",
        "req",
        "err",
        "req/s",
        "p50 ms",
        "p99 ms",
        "JWTs",
        "req/s ÷",
        "sig/s ÷",
        "sig/srv-CPU ÷",
        "others"
    );
    println!(
        "| {:<18} | {:>6} | {:>3} | {:>6} | {:>7} | {:>7} | {:>4} | {:>9} | {:>9} | {:>13} | {:>6} |",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        format!("{}×core", settings.cores),
        format!("{}×core", settings.cores),
        "core",
        "cores"
    );
    println!(
        "|{:-<20}|{:->8}|{:->5}|{:->8}|{:->9}|{:->9}|{:->6}|{:->11}|{:->11}|{:->15}|{:->8}|",
        "", "", "", "", "", "", "", "", "", "", ""
    );
    for s in scenarios {
        let rps = s.rps();
        let sig = f64::from(s.signatures);
        let per_cpu = s.per_server_cpu_second().map_or("n/a".to_string(), |r| {
            format!("{:.1} %", 100.0 * sig * r / baseline.per_core())
        });
        println!(
            "| {:<18} | {:>6} | {:>3} | {:>6.0} | {:>7.2} | {:>7.2} | {:>4} | {:>7.1} % | {:>7.1} % | {:>13} | {:>6} |",
            s.name,
            s.requests,
            s.errors,
            rps,
            s.p50_ms,
            s.p99_ms,
            s.signatures,
            100.0 * rps / (baseline.per_core() * cores),
            100.0 * sig * rps / (baseline.per_core() * cores),
            per_cpu,
            others(s.others)
        );
    }
    for s in scenarios {
        if let Some(waits) = &s.other_writes {
            println!(
                "another writer during {} (an audit row every {} ms): {}",
                s.name,
                settings.other_writer.map_or(0, |d| d.as_millis()),
                other_writes_summary(waits)
            );
        }
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}
