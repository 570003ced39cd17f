//! Startup and shutdown: resolve the master key, open the database, migrate, load the signing
//! keys, bind, serve, and on SIGTERM/SIGINT stop accepting and let in-flight requests finish.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use techpass_domain::Clock;
use techpass_oidc::discovery::ProviderMetadata;
use techpass_oidc::{KeyError, KeyManager, KeySettings, MasterKey};
use techpass_store::ConnectOptions;
use tokio::net::TcpListener;
use url::Url;

use techpass_domain::account::{AccountType, EmailAuthority};
use techpass_oidc::discovery::endpoint;
use techpass_oidc::Secrets;
use techpass_upstream::dev::{self, DevUpstream};
use techpass_upstream::{MfaRule, OidcConnector, OidcConnectorConfig};

use crate::config::{is_loopback, AccountTypeName, Config, ConfigError, MfaMode, Mode};
use crate::cookies::CookiePolicy;
use crate::metrics::Metrics;
use crate::signin::{Upstream, Upstreams};
use crate::state::AppState;
use crate::transport::Transport;
use crate::web::Pages;
use techpass_service::outbound::{Outbound, OutboundPolicy};
use techpass_service::{OsRandom, ServiceContext, Settings};

/// Why the process could not start. Configuration errors exit with 2, the rest with 1.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Failed(String),
}

impl StartupError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StartupError::Config(_) => 2,
            StartupError::Failed(_) => 1,
        }
    }
}

fn failed(context: &str, e: impl std::fmt::Display) -> StartupError {
    StartupError::Failed(format!("{context}: {e}"))
}

pub const MASTER_KEY_FILE: &str = "master.key";

/// The master key and a human description of where it came from (for error messages).
pub fn master_key(config: &Config) -> Result<(MasterKey, String), StartupError> {
    if let Some(secret) = &config.master_key {
        let key = MasterKey::from_base64(secret.expose())
            .map_err(|e| ConfigError::for_key("master_key", e))?;
        return Ok((key, "TECHPASS_MASTER_KEY".into()));
    }
    if config.mode == Mode::Production {
        return Err(ConfigError::for_key("master_key", "is required in production").into());
    }
    ensure_data_dir(&config.data_dir)?;
    let path = config.data_dir.join(MASTER_KEY_FILE);
    let text = read_or_create_key_file(&path)?;
    let key = MasterKey::from_base64(&text)
        .map_err(|e| StartupError::Failed(format!("{}: {e}", path.display())))?;
    Ok((key, path.display().to_string()))
}

fn ensure_data_dir(dir: &Path) -> Result<(), StartupError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        failed(
            &format!("cannot create data directory {}", dir.display()),
            e,
        )
    })
}

/// Reads the development master key file, creating it (mode 0600) on first start. A file that
/// others can read is refused rather than used.
fn read_or_create_key_file(path: &Path) -> Result<String, StartupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            let text = MasterKey::generate_base64().map_err(|e| failed("master key", e))?;
            file.write_all(format!("{text}\n").as_bytes())
                .map_err(|e| failed(&format!("cannot write {}", path.display()), e))?;
            tracing::info!(path = %path.display(), "generated a development master key");
            Ok(text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)
                    .map_err(|e| failed(&format!("cannot read {}", path.display()), e))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(StartupError::Failed(format!(
                        "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
                        path.display(),
                        mode & 0o777,
                        path.display()
                    )));
                }
            }
            std::fs::read_to_string(path)
                .map_err(|e| failed(&format!("cannot read {}", path.display()), e))
        }
        Err(e) => Err(failed(&format!("cannot create {}", path.display()), e)),
    }
}

pub fn connect_options(config: &Config) -> ConnectOptions {
    ConnectOptions {
        url: config.database_url(),
        max_connections: config.database.max_connections,
        acquire_timeout: Duration::from_secs(config.database.acquire_timeout_secs),
        sqlite_synchronous: config.database.sqlite_synchronous.store(),
        row_cache_ttl: techpass_store::ROW_CACHE_TTL,
        ping_idle_after: techpass_store::PING_IDLE_AFTER,
    }
}

/// Opens (and for SQLite creates) the database and brings its schema up to date.
pub async fn open_store(config: &Config) -> Result<Arc<dyn techpass_store::Store>, StartupError> {
    if config.database_url.is_empty() {
        ensure_data_dir(&config.data_dir)?;
    }
    let options = connect_options(config);
    techpass_store::migrate(&options)
        .await
        .map_err(|e| failed("cannot migrate the database", e))?;
    techpass_store::connect(&options)
        .await
        .map_err(|e| failed("cannot connect to the database", e))
}

pub fn key_settings(config: &Config) -> KeySettings {
    KeySettings {
        prepublication_delay: config.keys.prepublication_delay_secs as i64,
        max_token_lifetime: config.max_token_lifetime_secs() as i64,
    }
}

/// Opens the signing keys, creating the first one if the database has none.
pub async fn open_keys(
    config: &Config,
    store: Arc<dyn techpass_store::Store>,
    clock: Arc<dyn Clock>,
) -> Result<KeyManager, StartupError> {
    let (master, source) = master_key(config)?;
    load_keys(config, store, clock, master, &source).await
}

async fn load_keys(
    config: &Config,
    store: Arc<dyn techpass_store::Store>,
    clock: Arc<dyn Clock>,
    master: MasterKey,
    source: &str,
) -> Result<KeyManager, StartupError> {
    KeyManager::open(store, master, clock, key_settings(config))
        .await
        .map_err(|e| match e {
            KeyError::WrongMasterKey { .. } => StartupError::Failed(format!(
                "{e}. The master key comes from {source}; start with the key the keys were created with"
            )),
            other => failed("cannot load the signing keys", other),
        })
}

/// The HTTP client for the configured upstreams (set by the operator, not by tenants; the
/// development upstream is on loopback): no redirects followed, bounded time. Registered URLs go
/// through [`Outbound`] instead.
fn outbound_http_client() -> Result<reqwest::Client, StartupError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| failed("cannot build the HTTP client", e))
}

fn account_types(names: &[AccountTypeName]) -> Vec<AccountType> {
    names
        .iter()
        .map(|n| match n {
            AccountTypeName::PublicOfficer => AccountType::PublicOfficer,
            AccountTypeName::Vendor => AccountType::Vendor,
        })
        .collect()
}

/// The configured upstreams, then (when enabled) the development upstream's two directories.
fn build_upstreams(
    config: &Config,
    issuer: &Url,
    clock: &Arc<dyn Clock>,
    store: &Arc<dyn techpass_store::Store>,
) -> Result<(Upstreams, Option<Arc<DevUpstream>>), StartupError> {
    let http = outbound_http_client()?;
    let callback = endpoint(issuer, crate::signin::routes::CALLBACK);
    let skew = config.tokens.clock_skew_secs as i64;
    let mut upstreams = Vec::new();
    for u in &config.upstreams {
        let client_secret = match (&u.client_secret, &u.client_secret_env) {
            (Some(secret), _) => secret.expose().to_string(),
            (None, Some(var)) => std::env::var(var).unwrap_or_default(),
            (None, None) => String::new(),
        };
        let mfa = match u.mfa {
            MfaMode::Amr => MfaRule::Amr(u.mfa_amr_values.clone()),
            MfaMode::TrustedUpstream => {
                tracing::warn!(upstream = %u.id, "MFA is not checked for this upstream: it is trusted to enforce MFA by Conditional Access (mfa = \"trusted-upstream\")");
                MfaRule::TrustedUpstream
            }
        };
        let connector = OidcConnector::new(
            OidcConnectorConfig {
                id: u.id.clone(),
                display_name: u.display_name.clone(),
                issuer: u.issuer.clone(),
                client_id: u.client_id.clone(),
                client_secret,
                redirect_uri: callback.clone(),
                scopes: u.scopes.clone(),
                allowed_tenants: u.allowed_tenants.clone(),
                mfa,
                clock_skew_secs: skew,
            },
            http.clone(),
            clock.clone(),
        )
        .map_err(|e| failed(&format!("upstream {}", u.id), e))?;
        upstreams.push(Upstream {
            connector: Arc::new(connector),
            account_types: account_types(&u.account_types),
            email_authority: u.email_authority,
        });
    }
    if !config.dev_upstream_enabled() {
        return Ok((Upstreams(upstreams), None));
    }
    if config.mode == Mode::Production || !is_loopback(issuer) {
        return Err(ConfigError::for_key(
            "dev_upstream.enabled",
            "the development upstream runs only in development mode on a loopback issuer",
        )
        .into());
    }
    tracing::warn!("the development upstream is enabled: anyone can sign in as a test person");
    let client_secret =
        techpass_oidc::Secrets::random_token().map_err(|e| failed("dev upstream", e))?;
    let base = Url::parse(&endpoint(issuer, dev::PATH_PREFIX))
        .map_err(|e| failed("dev upstream URL", e))?;
    let dev_upstream = DevUpstream::new(
        base,
        vec![dev::DevClient {
            client_id: DEV_CLIENT_ID.to_string(),
            client_secret: client_secret.clone(),
            redirect_uris: vec![callback.clone()],
        }],
        clock.clone(),
        dev::Tamper::None,
    )
    .map_err(|e| failed("cannot start the development upstream", e))?
    // Who is disabled lives in the database: every replica and the CLI agree.
    .with_disabled_people(Arc::new(
        techpass_service::dev_people::StoredDisabledPeople {
            store: store.clone(),
            clock: clock.clone(),
        },
    ));
    for (id, name, tid, kind, email_authority) in [
        (
            "dev-wog",
            "Public officer (development)",
            dev::WOG_TENANT_ID,
            AccountType::PublicOfficer,
            config.dev_upstream.email_authority,
        ),
        (
            "dev-vendors",
            "Vendor (development)",
            dev::VENDOR_TENANT_ID,
            AccountType::Vendor,
            EmailAuthority::Trusted,
        ),
    ] {
        let connector = OidcConnector::new(
            OidcConnectorConfig {
                id: id.to_string(),
                display_name: name.to_string(),
                issuer: dev_upstream.issuer(tid),
                client_id: DEV_CLIENT_ID.to_string(),
                client_secret: client_secret.clone(),
                redirect_uri: callback.clone(),
                // offline_access: a refresh token, to re-verify people (issue 13 item 6).
                scopes: ["openid", "profile", "email", "offline_access"]
                    .map(String::from)
                    .to_vec(),
                allowed_tenants: vec![tid.to_string()],
                mfa: MfaRule::Amr(vec!["mfa".into()]),
                clock_skew_secs: skew,
            },
            http.clone(),
            clock.clone(),
        )
        .map_err(|e| failed("development upstream connector", e))?;
        upstreams.push(Upstream {
            connector: Arc::new(connector),
            account_types: vec![kind],
            email_authority,
        });
    }
    Ok((Upstreams(upstreams), Some(Arc::new(dev_upstream))))
}

/// The client id TechPass uses at its development upstream.
pub const DEV_CLIENT_ID: &str = "techpass-development";

/// Everything a server needs, wired.
pub async fn build_state(
    config: Config,
    issuer: Url,
    clock: Arc<dyn Clock>,
) -> Result<AppState, StartupError> {
    let store = open_store(&config).await?;
    let (master, source) = master_key(&config)?;
    let secrets = Secrets::derive(&master).map_err(|e| failed("master key", e))?;
    let keys = load_keys(&config, store.clone(), clock.clone(), master, &source).await?;
    let (upstreams, dev_upstream) = build_upstreams(&config, &issuer, &clock, &store)?;
    let pages = Pages::new()
        .map_err(|e| failed("page templates", e))?
        .with_support(&config.support);
    let terms = crate::terms::Terms::load(&config.accounts)?;
    let rate_limits = crate::ratelimit::RateLimits::new(&config.rate_limit, &config.http)
        .map_err(|e| ConfigError::for_key("http.trusted_proxies", e))?;
    let config_classification = config.accounts.classification();
    // The master key again, for sealing (the first copy now belongs to the key manager).
    let (sealer, _) = master_key(&config)?;
    let smtp = if config.mail.smtp_url.is_empty() {
        if config.mode == crate::config::Mode::Production {
            tracing::warn!("mail.smtp_url is not set: emails (invitations, notices) stay in the outbox and are not sent");
        }
        None
    } else {
        Some(Arc::new(
            techpass_service::mail::Smtp::new(&config.mail.smtp_url, &config.mail.from)
                .map_err(|m| StartupError::Config(ConfigError { message: m }))?,
        ))
    };
    let settings = Settings {
        mode: config.mode,
        session: config.session.clone(),
        tokens: config.tokens.clone(),
        accounts: config.accounts.clone(),
        invitations: config.invitations.clone(),
        lifecycle: config.lifecycle.clone(),
        apps: config.apps.clone(),
        upstream: config.upstream.clone(),
    };
    let svc = ServiceContext {
        metadata: Arc::new(ProviderMetadata::new(&issuer)),
        issuer: issuer.clone(),
        store,
        keys: Arc::new(keys),
        clock,
        random: Arc::new(OsRandom),
        secrets,
        classification: Arc::new(config_classification),
        upstreams: Arc::new(upstreams),
        settings: Arc::new(settings),
        http: Outbound::new(OutboundPolicy::for_mode(config.mode))
            .map_err(|e| failed("cannot build the outbound HTTP client", e))?,
        sealer: Arc::new(sealer),
        mailer: smtp,
        ci_keys: Default::default(),
        audit_stream: techpass_service::audit_stream::AuditStream::open(&config.audit.stream)
            .map_err(|e| ConfigError::for_key("audit.stream", format!("cannot be opened: {e}")))?
            .map(Arc::new),
    };
    Ok(AppState {
        svc: Arc::new(svc),
        cookies: CookiePolicy {
            secure: issuer.scheme() == "https",
        },
        config: Arc::new(config),
        metrics: Arc::new(Metrics::new()),
        pages: Arc::new(pages),
        terms: Arc::new(terms),
        dev_upstream,
        rate_limits: Arc::new(rate_limits),
        user_code_guesses: Arc::new(crate::guesses::UserCodeGuesses::default()),
    })
}

/// Work every replica does in the background (safe to run on all of them at once): following
/// the database's notices of changed apps and tenants (so the row cache drops them), re-reading
/// keys so that rotations made elsewhere are seen and expired keys deleted, and purging expired
/// sign-in attempts and sessions. Stops when the returned handle is aborted.
pub fn spawn_background(state: &AppState) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        tokio::join!(follow_row_changes(&state), housekeeping(&state));
    })
}

/// Keeps following the changes other processes make to apps and tenants
/// ([`techpass_store::CachedRows::follow_row_changes`]); while it cannot, cached rows still live at
/// most their time to live. Runs until aborted.
pub async fn follow_row_changes(state: &AppState) {
    loop {
        if let Err(e) = state.store.follow_row_changes().await {
            tracing::warn!(error = %e, "lost the database's notices of changed apps and tenants; retrying");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn housekeeping(state: &AppState) {
    let every = Duration::from_secs(state.config.keys.reload_interval_secs);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        state.rate_limits.shrink();
        if let Err(e) = state.keys.reload().await {
            tracing::warn!(error = %e, "could not reload signing keys; keeping the ones in memory");
        }
        let now = state.clock.now().as_secs();
        let idle_before = now - state.config.session.idle_timeout_secs as i64;
        let purged = async {
            let attempts = state.store.delete_expired_login_attempts(now).await?;
            let sessions = state
                .store
                .delete_expired_sessions(now, idle_before)
                .await?;
            state.store.delete_expired_assertions(now).await?;
            Ok::<_, techpass_store::StoreError>((attempts, sessions))
        };
        match purged.await {
            Ok((0, 0)) => {}
            Ok((attempts, sessions)) => {
                tracing::debug!(
                    attempts,
                    sessions,
                    "purged expired sign-in attempts and sessions"
                )
            }
            Err(e) => tracing::warn!(error = %e, "could not purge expired sessions"),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting connections and
/// waits up to the grace period for in-flight requests; connections are bounded as `transport`
/// says ([`crate::transport`]).
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    transport: Transport,
) -> std::io::Result<()> {
    crate::transport::serve(listener, router, shutdown, transport).await
}

/// Resolves on SIGINT or SIGTERM.
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// SIGTERM that arrives once the server answers requests must never kill the process outright.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = streams;
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt.take()) => {},
                () = wait(terminate.take()) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `techpass serve`.
pub async fn serve(config: Config, clock: Arc<dyn Clock>) -> Result<(), StartupError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| failed(&format!("cannot listen on {}", config.listen), e))?;
    let bound: SocketAddr = listener
        .local_addr()
        .map_err(|e| failed("cannot read the bound address", e))?;
    let issuer = config.resolve_issuer(bound)?;
    let transport = Transport::from_config(&config.http);
    let metrics_listener = match config.metrics_address()? {
        Some(address) => Some(TcpListener::bind(address).await.map_err(|e| {
            failed(
                &format!("cannot listen for metrics on {address} (metrics_listen)"),
                e,
            )
        })?),
        None => None,
    };
    let mode = config.mode;
    let state = build_state(config, issuer, clock).await?;
    let background = spawn_background(&state);
    let jobs = crate::jobs::spawn(&state);
    let metrics_bound = match &metrics_listener {
        Some(listener) => Some(
            listener
                .local_addr()
                .map_err(|e| failed("cannot read the metrics address", e))?,
        ),
        None => None,
    };
    let metrics = metrics_listener.map(|listener| {
        tokio::spawn(serve_until(
            listener,
            crate::http::metrics_app(state.clone()),
            std::future::pending(),
            transport.clone(),
        ))
    });
    let metrics_at = metrics_bound.map_or_else(
        || "no metrics".to_string(),
        |a| format!("metrics on http://{a}/metrics"),
    );
    tracing::info!(
        %bound,
        issuer = %state.metadata.issuer,
        database = state.store.backend(),
        metrics = %metrics_at,
        ?mode,
        "TechPass is serving"
    );
    println!(
        "TechPass is serving at {} (listening on {bound}, {metrics_at}, {} database)",
        state.metadata.issuer,
        state.store.backend()
    );
    if crate::state::AppState::dev_tools_enabled(&state) {
        if let Err(e) = crate::dev::ensure_demo_app(&state).await {
            tracing::warn!(error = %e, "could not register the development demo app");
        }
        // A log line, not stdout: whoever reads the serving line may have closed the pipe.
        let base = state
            .metadata
            .issuer
            .as_str()
            .trim_end_matches('/')
            .to_string();
        tracing::info!(
            demo_app = %format!("{base}/dev/demo"),
            outbox = %format!("{base}/dev/outbox"),
            "development pages: a demo app and the email outbox"
        );
    }
    let result = serve_until(
        listener,
        crate::http::app(state),
        shutdown_signal(),
        transport,
    )
    .await;
    background.abort();
    jobs.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    result.map_err(|e| failed("server error", e))
}
