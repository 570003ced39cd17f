//! Configuration: the documented defaults of `config/default.toml` (built in), then an optional
//! file, then `TECHPASS_*` environment variables. Unknown keys and bad values are refused with a
//! message that names the key; `main` turns that into exit code 2.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use url::Url;

pub use crate::client_address::ForwardedHeader;

// The sections the services read are defined with them (one definition, no copies); reading
// files and the environment stays here.
pub use techpass_service::settings::{
    AccountsConfig, AppsConfig, InvitationsConfig, LifecycleConfig, Mode, SessionConfig,
    TokensConfig,
};

/// The documented defaults, compiled in so that the binary and the documentation cannot differ.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// Environment variables with the prefix that are never configuration keys: `TECHPASS_CONFIG`
/// names the file (clap reads it) and `TECHPASS_TEST_*` is reserved for the test suites.
const NOT_CONFIG: &[&str] = &["config"];
const TEST_PREFIX: &str = "test_";

/// Top-level keys that `config/default.toml` does not set (optional, or arrays of tables).
const UNSET_TOP_LEVEL: &[&str] = &["master_key", "upstreams"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Pretty,
    Json,
}

/// A secret configuration value; never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub mode: Mode,
    pub issuer: String,
    pub listen: SocketAddr,
    /// Where `/metrics` is served: its own listener, apart from the public one (empty: nowhere).
    pub metrics_listen: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    #[serde(default)]
    pub master_key: Option<Secret>,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub keys: KeysConfig,
    pub tokens: TokensConfig,
    pub session: SessionConfig,
    pub rate_limit: RateLimitConfig,
    pub accounts: AccountsConfig,
    pub invitations: InvitationsConfig,
    pub lifecycle: LifecycleConfig,
    pub apps: AppsConfig,
    pub support: SupportConfig,
    pub audit: AuditConfig,
    pub mail: MailConfig,
    pub jobs: JobsConfig,
    pub dev_upstream: DevUpstreamConfig,
    /// What applies to every upstream: bounded staleness (re-verification).
    pub upstream: techpass_service::settings::UpstreamPolicy,
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
}

/// Where people get help: shown in every page's footer, on refusal pages, and (the MFA
/// help) on the page that refuses a sign-in without multi-factor authentication.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SupportConfig {
    /// Who to contact, as it reads after "Contact" ("the TechPass team").
    pub contact: String,
    /// Empty, or an `https://` or `mailto:` link for the contact.
    pub url: String,
    /// Empty, or an `https://` page on setting up multi-factor authentication.
    pub mfa_help_url: String,
}

/// The audit log's copy for a SIEM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Empty: none; `stdout`; or a file path each event is appended to as one JSON line.
    pub stream: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// Empty: keep messages in the outbox (development), none sent.
    pub smtp_url: String,
    pub from: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    pub interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub client_per_second: u32,
    pub client_burst: u32,
    pub address_per_second: u32,
    pub address_burst: u32,
    pub failed_auth_per_minute: u32,
    pub failed_auth_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevUpstreamConfig {
    /// `None`: on in development mode, off in production.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The `email_authority` of the development officer upstream (`dev-wog`); the vendor one
    /// (`dev-vendors`) is always "trusted", its guests being added only by invitation.
    #[serde(default)]
    pub email_authority: techpass_domain::account::EmailAuthority,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MfaMode {
    Amr,
    TrustedUpstream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountTypeName {
    PublicOfficer,
    Vendor,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub id: String,
    pub display_name: String,
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Name of an environment variable holding the client secret (keeps it out of files).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    pub allowed_tenants: Vec<String>,
    pub account_types: Vec<AccountTypeName>,
    #[serde(default = "default_mfa")]
    pub mfa: MfaMode,
    #[serde(default = "default_amr_values")]
    pub mfa_amr_values: Vec<String>,
    /// Whether an `email` claim the upstream did not prove is believed (AZURE.md §3).
    #[serde(default)]
    pub email_authority: techpass_domain::account::EmailAuthority,
}

fn default_scopes() -> Vec<String> {
    // offline_access: Azure AD issues a refresh token only for it (AZURE.md §8), and without one
    // TechPass cannot re-verify the person (`upstream.reverify_after_secs`).
    ["openid", "profile", "email", "offline_access"]
        .map(String::from)
        .to_vec()
}

fn default_mfa() -> MfaMode {
    MfaMode::Amr
}

fn default_amr_values() -> Vec<String> {
    vec!["mfa".to_string()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// SQLite's durability: `full` (every commit on disk) or `normal` (see
    /// [`techpass_store::SqliteSync`]).
    pub sqlite_synchronous: SqliteSynchronous,
}

/// `database.sqlite_synchronous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

impl SqliteSynchronous {
    pub fn store(self) -> techpass_store::SqliteSync {
        match self {
            SqliteSynchronous::Full => techpass_store::SqliteSync::Full,
            SqliteSynchronous::Normal => techpass_store::SqliteSync::Normal,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    pub header_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    pub max_in_flight_requests: usize,
    /// Peers (addresses or CIDR blocks) whose forwarding header gives the client's address.
    pub trusted_proxies: Vec<String>,
    pub forwarded_header: ForwardedHeader,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    pub prepublication_delay_secs: u64,
    pub reload_interval_secs: u64,
    pub jwks_max_age_secs: u64,
}

/// A configuration that cannot be used, naming the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {message}")]
pub struct ConfigError {
    pub message: String,
}

impl ConfigError {
    /// An error about one configuration key.
    pub fn for_key(key: &str, problem: impl std::fmt::Display) -> Self {
        ConfigError {
            message: format!("`{key}` {problem}"),
        }
    }
}

impl Config {
    /// The address of the metrics listener, or `None` when `metrics_listen` is empty (no
    /// metrics served).
    pub fn metrics_address(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let value = self.metrics_listen.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let address: SocketAddr = value.parse().map_err(|_| {
            ConfigError::for_key(
                "metrics_listen",
                "must be an address and port such as 127.0.0.1:9464 (or empty for no metrics)",
            )
        })?;
        if address == self.listen && address.port() != 0 {
            return Err(ConfigError::for_key(
                "metrics_listen",
                "must differ from `listen`: metrics are not served to the public",
            ));
        }
        Ok(Some(address))
    }

    /// Loads defaults, then `file` (if given), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_from(file, Env::prefixed("TECHPASS_"))
    }

    /// As [`Config::load`], with the environment provider given (tests pass their own).
    pub fn load_from(file: Option<&Path>, env: Env) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError {
                    message: format!("config file {} does not exist", path.display()),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let known = top_level_keys();
        let env = env
            .split("__")
            .filter(move |key| env_is_config(key.as_str(), &known));
        let config: Config = figment.merge(env).extract().map_err(describe)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.issuer.is_empty() {
            check_issuer(&self.issuer)?;
        } else if self.mode == Mode::Production {
            return Err(ConfigError::for_key(
                "issuer",
                "must be set in production (the public https URL of TechPass)",
            ));
        }
        self.metrics_address()?;
        let stream = self.audit.stream.trim();
        if !stream.is_empty() && stream != "stdout" {
            let path = std::path::Path::new(stream);
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            if !parent.is_dir() || path.is_dir() {
                return Err(ConfigError::for_key(
                    "audit.stream",
                    format!(
                        "must be empty, \"stdout\" or a file in an existing directory ({stream})"
                    ),
                ));
            }
        }
        if self.support.contact.trim().is_empty() {
            return Err(ConfigError::for_key(
                "support.contact",
                "must name who people contact for help",
            ));
        }
        for (key, value, mailto) in [
            ("support.url", &self.support.url, true),
            ("support.mfa_help_url", &self.support.mfa_help_url, false),
        ] {
            let ok = value.is_empty()
                || url::Url::parse(value).is_ok_and(|u| {
                    (u.scheme() == "https" && u.host().is_some())
                        || (mailto && u.scheme() == "mailto" && u.path().contains('@'))
                });
            if !ok {
                return Err(ConfigError::for_key(
                    key,
                    if mailto {
                        "must be empty, an https:// link or a mailto: address"
                    } else {
                        "must be empty or an https:// link"
                    },
                ));
            }
        }
        if !self.database_url.is_empty() && techpass_store::backend_of(&self.database_url).is_none()
        {
            return Err(ConfigError::for_key(
                "database_url",
                "must start with sqlite:// or postgres:// (or be empty for SQLite in data_dir)",
            ));
        }
        if let Some(key) = &self.master_key {
            techpass_oidc::MasterKey::from_base64(key.expose())
                .map_err(|e| ConfigError::for_key("master_key", e))?;
        } else if self.mode == Mode::Production {
            return Err(ConfigError::for_key(
                "master_key",
                "is required in production: set TECHPASS_MASTER_KEY to 32 random bytes in base64 (openssl rand -base64 32)",
            ));
        }
        if let Err(e) = self.log.level.parse::<tracing_subscriber::EnvFilter>() {
            return Err(ConfigError::for_key(
                "log.level",
                format!("is not a valid filter: {e}"),
            ));
        }
        positive(
            "database.max_connections",
            u64::from(self.database.max_connections),
        )?;
        positive(
            "database.acquire_timeout_secs",
            self.database.acquire_timeout_secs,
        )?;
        positive("http.max_body_bytes", self.http.max_body_bytes as u64)?;
        positive("http.request_timeout_secs", self.http.request_timeout_secs)?;
        positive(
            "http.header_read_timeout_secs",
            self.http.header_read_timeout_secs,
        )?;
        positive("http.idle_timeout_secs", self.http.idle_timeout_secs)?;
        for proxy in &self.http.trusted_proxies {
            crate::client_address::Cidr::parse(proxy)
                .map_err(|e| ConfigError::for_key("http.trusted_proxies", e))?;
        }
        positive("http.max_connections", self.http.max_connections as u64)?;
        positive(
            "http.max_in_flight_requests",
            self.http.max_in_flight_requests as u64,
        )?;
        positive("keys.reload_interval_secs", self.keys.reload_interval_secs)?;
        positive(
            "tokens.access_token_lifetime_secs",
            self.tokens.access_token_lifetime_secs,
        )?;
        positive(
            "tokens.id_token_lifetime_secs",
            self.tokens.id_token_lifetime_secs,
        )?;
        positive(
            "tokens.refresh_token_idle_secs",
            self.tokens.refresh_token_idle_secs,
        )?;
        if self.tokens.refresh_token_max_lifetime_secs < self.tokens.refresh_token_idle_secs {
            return Err(ConfigError::for_key(
                "tokens.refresh_token_max_lifetime_secs",
                "must be at least tokens.refresh_token_idle_secs",
            ));
        }
        if self.accounts.terms_version.trim().is_empty() {
            return Err(ConfigError::for_key(
                "accounts.terms_version",
                "must be set",
            ));
        }
        positive(
            "invitations.link_lifetime_days",
            self.invitations.link_lifetime_days,
        )?;
        positive(
            "invitations.max_vendor_access_days",
            self.invitations.max_vendor_access_days,
        )?;
        positive(
            "lifecycle.never_used_terminate_days",
            self.lifecycle.never_used_terminate_days,
        )?;
        positive(
            "lifecycle.inactive_disable_days",
            self.lifecycle.inactive_disable_days,
        )?;
        if self.lifecycle.inactive_terminate_days < self.lifecycle.inactive_disable_days {
            return Err(ConfigError::for_key(
                "lifecycle.inactive_terminate_days",
                "must be at least lifecycle.inactive_disable_days",
            ));
        }
        positive("apps.max_secrets", u64::from(self.apps.max_secrets))?;
        positive(
            "apps.secret_max_lifetime_days",
            self.apps.secret_max_lifetime_days,
        )?;
        positive("jobs.interval_secs", self.jobs.interval_secs)?;
        if !self.mail.smtp_url.is_empty() {
            let url = Url::parse(&self.mail.smtp_url)
                .map_err(|e| ConfigError::for_key("mail.smtp_url", format!("is not a URL: {e}")))?;
            if !matches!(url.scheme(), "smtp" | "smtps") {
                return Err(ConfigError::for_key(
                    "mail.smtp_url",
                    "must start with smtp:// (STARTTLS required unless on loopback) or smtps://",
                ));
            }
        }
        if !self.mail.from.contains('@') {
            return Err(ConfigError::for_key(
                "mail.from",
                "must be an email address",
            ));
        }
        positive("session.idle_timeout_secs", self.session.idle_timeout_secs)?;
        positive("session.max_lifetime_secs", self.session.max_lifetime_secs)?;
        positive(
            "session.login_timeout_secs",
            self.session.login_timeout_secs,
        )?;
        positive(
            "upstream.reverify_after_secs",
            self.upstream.reverify_after_secs,
        )?;
        self.validate_upstreams()?;
        let needed = self.keys.reload_interval_secs + self.keys.jwks_max_age_secs;
        if self.keys.prepublication_delay_secs < needed {
            return Err(ConfigError::for_key(
                "keys.prepublication_delay_secs",
                format!(
                    "must be at least keys.reload_interval_secs + keys.jwks_max_age_secs ({needed}), so every replica and every cached key set has a new key before it signs"
                ),
            ));
        }
        Ok(())
    }

    fn validate_upstreams(&self) -> Result<(), ConfigError> {
        if self.dev_upstream.enabled == Some(true) && self.mode == Mode::Production {
            return Err(ConfigError::for_key(
                "dev_upstream.enabled",
                "cannot be true in production: the development upstream signs anyone in",
            ));
        }
        if self.dev_upstream.enabled == Some(true) && !self.issuer.is_empty() {
            let url = check_issuer(&self.issuer)?;
            if !is_loopback(&url) {
                return Err(ConfigError::for_key(
                    "dev_upstream.enabled",
                    "requires an issuer on a loopback host (127.0.0.1, [::1], localhost)",
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            let key = |field: &str| format!("upstreams[{i}].{field}");
            let id_ok = !u.id.is_empty()
                && u.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !id_ok {
                return Err(ConfigError::for_key(
                    &key("id"),
                    "must be lowercase letters, digits and '-'",
                ));
            }
            if u.id.starts_with("dev-") {
                return Err(ConfigError::for_key(
                    &key("id"),
                    "the prefix dev- is reserved for the development upstream",
                ));
            }
            if !seen.insert(u.id.clone()) {
                return Err(ConfigError::for_key(
                    &key("id"),
                    format!("{:?} is used twice", u.id),
                ));
            }
            let issuer = Url::parse(&u.issuer)
                .map_err(|e| ConfigError::for_key(&key("issuer"), format!("is not a URL: {e}")))?;
            if issuer.scheme() != "https" && !(issuer.scheme() == "http" && is_loopback(&issuer)) {
                return Err(ConfigError::for_key(&key("issuer"), "must use https"));
            }
            if u.client_id.is_empty() {
                return Err(ConfigError::for_key(&key("client_id"), "must be set"));
            }
            match (&u.client_secret, &u.client_secret_env) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::for_key(
                        &key("client_secret"),
                        "and client_secret_env are both set; use one",
                    ))
                }
                (None, None) => {
                    return Err(ConfigError::for_key(
                        &key("client_secret_env"),
                        "(or client_secret) must be set",
                    ))
                }
                (None, Some(var)) if std::env::var(var).map_or(true, |v| v.is_empty()) => {
                    return Err(ConfigError::for_key(
                        &key("client_secret_env"),
                        format!("names {var}, which is not set"),
                    ))
                }
                _ => {}
            }
            if !u.scopes.iter().any(|s| s == "openid") {
                return Err(ConfigError::for_key(&key("scopes"), "must include openid"));
            }
            if u.allowed_tenants.is_empty() {
                return Err(ConfigError::for_key(
                    &key("allowed_tenants"),
                    "must list at least one tenant id (tid)",
                ));
            }
            if u.account_types.is_empty() {
                return Err(ConfigError::for_key(
                    &key("account_types"),
                    "must list public_officer and/or vendor",
                ));
            }
            if u.mfa == MfaMode::Amr && u.mfa_amr_values.is_empty() {
                return Err(ConfigError::for_key(
                    &key("mfa_amr_values"),
                    "must list at least one amr value",
                ));
            }
        }
        if self.upstreams.is_empty() && !self.dev_upstream_enabled() {
            return Err(ConfigError::for_key(
                "upstreams",
                "is empty and the development upstream is off: nobody could sign in",
            ));
        }
        Ok(())
    }

    /// Whether the development upstream runs: as configured, else only in development mode.
    pub fn dev_upstream_enabled(&self) -> bool {
        self.dev_upstream
            .enabled
            .unwrap_or(self.mode == Mode::Development)
    }

    /// The database URL to use: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("techpass.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The issuer: the configured one, or `http://<bound address>` in development.
    pub fn resolve_issuer(&self, bound: SocketAddr) -> Result<Url, ConfigError> {
        let text = if self.issuer.is_empty() {
            format!("http://{bound}")
        } else {
            self.issuer.clone()
        };
        check_issuer(&text)
    }

    /// The longest a signed token stays valid, which bounds how long a retired key is published.
    pub fn max_token_lifetime_secs(&self) -> u64 {
        self.tokens
            .access_token_lifetime_secs
            .max(self.tokens.id_token_lifetime_secs)
            + self.tokens.clock_skew_secs
    }

    pub fn json_logs(&self) -> bool {
        match self.log.format {
            LogFormat::Json => true,
            LogFormat::Pretty => false,
            LogFormat::Auto => self.mode == Mode::Production,
        }
    }
}

fn positive(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::for_key(key, "must be greater than 0"));
    }
    Ok(())
}

/// RFC 8414 §2 / OIDC Discovery §3: an https URL with no query or fragment; plain http only for
/// a loopback host (development and tests).
fn check_issuer(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text)
        .map_err(|e| ConfigError::for_key("issuer", format!("is not a URL: {e}")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::for_key(
            "issuer",
            "must not have a query or fragment",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::for_key(
            "issuer",
            "must not contain credentials",
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ConfigError::for_key(
            "issuer",
            "must use https (plain http is allowed only on 127.0.0.1, [::1] or localhost)",
        )),
        other => Err(ConfigError::for_key(
            "issuer",
            format!("has unsupported scheme {other}"),
        )),
    }
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The top-level keys and section names of the configuration: those of the built-in defaults
/// and the few they leave unset.
fn top_level_keys() -> Vec<String> {
    let defaults: figment::value::Dict = Figment::from(Toml::string(DEFAULTS))
        .extract()
        .unwrap_or_default();
    defaults
        .into_keys()
        .chain(UNSET_TOP_LEVEL.iter().map(|k| k.to_string()))
        .collect()
}

/// Whether the environment variable `TECHPASS_<name>` (`name` lowercased, `__` already turned
/// into `.`) is read as configuration. It is when its first part is a top-level key or section
/// (an unknown key within a known section is then refused by name), or when that part is a
/// near miss of one (a misspelling such as `DATABSE_URL`, refused by name too). Anything else
/// (`TECHPASS_ARTIFACTS` of the browser tests, `TECHPASS_TEST_*`, `TECHPASS_CONFIG`) is not
/// configuration and is left alone, so other tools may share the prefix.
fn env_is_config(name: &str, known: &[String]) -> bool {
    let name = name.to_ascii_lowercase();
    if NOT_CONFIG.contains(&name.as_str()) || name.starts_with(TEST_PREFIX) {
        return false;
    }
    let first = name.split('.').next().unwrap_or_default();
    known.iter().any(|k| k == first || is_near_miss(first, k))
}

/// A likely misspelling: one edit away from a short name, two from a longer one.
fn is_near_miss(candidate: &str, key: &str) -> bool {
    let allowed = if key.len() <= 4 { 1 } else { 2 };
    edit_distance(candidate, key) <= allowed
}

/// Edit distance over characters, counting insertions, deletions, substitutions and swaps of
/// two neighbours (optimal string alignment: `lgo` is one edit from `log`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between the first i characters of a and the first j of b.
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// figment names the key and where the value came from; keep that, drop the noise.
fn describe(error: figment::Error) -> ConfigError {
    let messages: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .and_then(|m| m.source.as_ref().map(|s| format!(" (from {s})")))
                .unwrap_or_default();
            let kind = match &e.kind {
                figment::error::Kind::UnknownField(field, _) => {
                    // figment sometimes already ends the path with the field.
                    let full = if key.is_empty() {
                        field.clone()
                    } else if e.path.last() == Some(field) {
                        key.clone()
                    } else {
                        format!("{key}.{field}")
                    };
                    return format!("unknown key `{full}`{source}");
                }
                other => other.to_string(),
            };
            if key.is_empty() {
                format!("{kind}{source}")
            } else {
                format!("`{key}`: {kind}{source}")
            }
        })
        .collect();
    ConfigError {
        message: messages.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("techpass-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("techpass.toml");
        std::fs::write(&file, toml).unwrap();
        // A private environment: the variables given, under a prefix nobody else uses.
        let prefix = format!("TPT{}_", uuid::Uuid::new_v4().simple());
        for (k, v) in env {
            std::env::set_var(format!("{prefix}{k}"), v);
        }
        let result = Config::load_from(Some(&file), Env::prefixed(&prefix));
        for (k, _) in env {
            std::env::remove_var(format!("{prefix}{k}"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    fn error(toml: &str, env: &[(&str, &str)]) -> String {
        load(toml, env).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_a_working_development_config() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.mode, Mode::Development);
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(c.database_url().starts_with("sqlite://"));
        assert!(c.database_url().ends_with("techpass.db"));
        assert!(!c.json_logs());
        assert_eq!(
            c.resolve_issuer("127.0.0.1:8080".parse().unwrap())
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/"
        );
    }

    #[test]
    fn file_then_environment_override() {
        let c = load(
            "listen = \"127.0.0.1:9000\"\n[log]\nlevel = \"debug\"\n",
            &[
                ("LOG__LEVEL", "warn"),
                ("DATABASE_URL", "postgres://db/techpass"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.log.level, "warn");
        assert_eq!(c.database_url(), "postgres://db/techpass");
    }

    #[test]
    fn unknown_keys_are_named() {
        assert!(error("listne = \"x\"", &[]).contains("unknown key `listne`"));
        assert!(
            error("[keys]\nrotate_every = 1\n", &[]).contains("unknown key `keys.rotate_every`")
        );
        let env = error("", &[("DATABSE_URL", "x")]);
        assert!(env.contains("unknown key `databse_url`"), "{env}");
        let env = error("", &[("LOG__FROMAT", "json")]);
        assert!(env.contains("unknown key `log.fromat`"), "{env}");
    }

    #[test]
    fn variables_that_are_not_config_keys_are_ignored() {
        // TECHPASS_CONFIG names the file (clap reads it), TECHPASS_TEST_* is the tests' and
        // TECHPASS_ARTIFACTS the browser tests' screenshot folder: none is a configuration key.
        let c = load(
            "",
            &[
                ("CONFIG", "/etc/techpass.toml"),
                ("TEST_POSTGRES_URL", "postgres://x"),
                ("TEST_ANYTHING__ELSE", "x"),
                ("ARTIFACTS", "/tmp/screenshots"),
                ("HOME", "/home/x"),
            ],
        );
        assert!(c.is_ok(), "{:?}", c.err());
    }

    #[test]
    fn environment_names_are_configuration_when_they_name_or_nearly_name_a_key() {
        let known = top_level_keys();
        for section in ["log", "keys", "dev_upstream", "rate_limit"] {
            assert!(known.iter().any(|k| k == section), "{section}");
        }
        let table = [
            // Known keys and sections, and unknown keys within known sections.
            ("listen", true),
            ("master_key", true),
            ("log.level", true),
            ("log.fromat", true),
            ("upstreams", true),
            // Near misses of keys and sections: refused by name rather than ignored.
            ("databse_url", true),
            ("database_ur", true),
            ("lgo.level", true),
            ("logs.level", true),
            ("sesion.idle_timeout_secs", true),
            // Not configuration.
            ("artifacts", false),
            ("home", false),
            ("test_postgres_url", false),
            ("test_artifacts", false),
            ("config", false),
            ("browser.screenshots", false),
        ];
        for (name, expected) in table {
            assert_eq!(env_is_config(name, &known), expected, "{name}");
        }
        assert_eq!(edit_distance("databse_url", "database_url"), 1);
        assert_eq!(edit_distance("", "log"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("lgo", "log"), 1);
    }

    #[test]
    fn bad_values_are_named() {
        for (file, key) in [
            (
                "[support]\nurl = \"javascript:alert(1)\"\n",
                "`support.url`",
            ),
            (
                "[support]\nurl = \"http://help.example\"\n",
                "`support.url`",
            ),
            (
                "[support]\nmfa_help_url = \"mailto:a@b.gov.sg\"\n",
                "`support.mfa_help_url`",
            ),
            ("[support]\ncontact = \" \"\n", "`support.contact`"),
            (
                "[database]\nsqlite_synchronous = \"off\"\n",
                "sqlite_synchronous",
            ),
            (
                "[audit]\nstream = \"/nonexistent-dir/audit.jsonl\"\n",
                "`audit.stream`",
            ),
            ("[audit]\nstream = \"/tmp\"\n", "`audit.stream`"),
        ] {
            assert!(error(file, &[]).contains(key), "{file}");
        }
        assert!(error("listen = \"everywhere\"", &[]).contains("`listen`"));
        assert!(error("mode = \"staging\"", &[]).contains("`mode`"));
        assert!(
            error("[database]\nmax_connections = -1\n", &[]).contains("`database.max_connections`")
        );
        assert!(
            error("[database]\nmax_connections = 0\n", &[]).contains("`database.max_connections`")
        );
        assert!(error("database_url = \"mysql://x\"", &[]).contains("`database_url`"));
        assert!(error("issuer = \"http://id.example.gov.sg\"", &[]).contains("must use https"));
        assert!(error("issuer = \"https://id.example/?a=b\"", &[]).contains("query"));
        assert!(error("master_key = \"short\"", &[]).contains("`master_key`"));
        assert!(error("[log]\nlevel = \"[[\"\n", &[]).contains("`log.level`"));
        assert!(error(
            "[tokens]\nrefresh_token_idle_secs = 10\nrefresh_token_max_lifetime_secs = 5\n",
            &[]
        )
        .contains("`tokens.refresh_token_max_lifetime_secs`"));
        assert!(error("[keys]\nprepublication_delay_secs = 10\n", &[])
            .contains("`keys.prepublication_delay_secs`"));
        assert!(
            error("[http]\ntrusted_proxies = [\"lb\"]\n", &[]).contains("`http.trusted_proxies`")
        );
        assert!(
            error("[http]\nforwarded_header = \"x-real-ip\"\n", &[]).contains("forwarded_header")
        );
        assert!(error("[http]\nmax_connections = 0\n", &[]).contains("`http.max_connections`"));
        assert!(error("[http]\nheader_read_timeout_secs = 0\n", &[])
            .contains("`http.header_read_timeout_secs`"));
    }

    #[test]
    fn production_requires_issuer_and_master_key() {
        assert!(error("mode = \"production\"", &[]).contains("`issuer`"));
        let e = error(
            "mode = \"production\"\nissuer = \"https://id.example\"\n",
            &[],
        );
        assert!(
            e.contains("`master_key`") && e.contains("TECHPASS_MASTER_KEY"),
            "{e}"
        );
        let key = techpass_oidc::MasterKey::generate_base64().unwrap();
        let prod = format!("mode = \"production\"\nissuer = \"https://id.example\"\n{WOG}");
        let c = load(&prod, &[("MASTER_KEY", &key)]).unwrap();
        assert!(
            !c.dev_upstream_enabled(),
            "off in production unless configured"
        );
        assert!(c.json_logs());
        assert_eq!(format!("{:?}", c.master_key), "Some(Secret(..))");
    }

    const WOG: &str = r#"
[[upstreams]]
id = "wog"
display_name = "Public officer"
issuer = "https://login.microsoftonline.com/5d1e2c3b-0000-4000-8000-00000000a001/v2.0"
client_id = "c1"
client_secret = "s1"
allowed_tenants = ["5d1e2c3b-0000-4000-8000-00000000a001"]
account_types = ["public_officer"]
"#;

    #[test]
    fn upstreams_are_validated() {
        let c = load(WOG, &[]).unwrap();
        assert_eq!(
            c.upstreams[0].scopes,
            vec!["openid", "profile", "email", "offline_access"]
        );
        assert_eq!(c.upstreams[0].mfa, MfaMode::Amr);
        assert_eq!(c.upstreams[0].mfa_amr_values, vec!["mfa"]);
        assert!(c.dev_upstream_enabled(), "on in development by default");

        let twice = format!("{WOG}{WOG}");
        assert!(error(&twice, &[]).contains("`upstreams[1].id`"));
        let bad = [
            ("id = \"wog\"", "id = \"WOG!\"", "`upstreams[0].id`"),
            ("id = \"wog\"", "id = \"dev-wog\"", "reserved"),
            ("https://login", "http://login", "`upstreams[0].issuer`"),
            (
                "client_secret = \"s1\"",
                "client_secret_env = \"TECHPASS_NO_SUCH_VAR\"",
                "TECHPASS_NO_SUCH_VAR",
            ),
            (
                "client_secret = \"s1\"",
                "",
                "`upstreams[0].client_secret_env`",
            ),
            (
                "allowed_tenants = [\"5d1e2c3b-0000-4000-8000-00000000a001\"]",
                "allowed_tenants = []",
                "`upstreams[0].allowed_tenants`",
            ),
            (
                "account_types = [\"public_officer\"]",
                "account_types = [\"robot\"]",
                "account_types",
            ),
        ];
        for (from, to, expected) in bad {
            let text = WOG.replace(from, to);
            let e = error(&text, &[]);
            assert!(e.contains(expected), "{to}: {e}");
        }
        let e = error(&format!("{WOG}mfa = \"sometimes\"\n"), &[]);
        assert!(e.contains("mfa"), "{e}");
        let trusted = load(&format!("{WOG}mfa = \"trusted-upstream\"\n"), &[]).unwrap();
        assert_eq!(trusted.upstreams[0].mfa, MfaMode::TrustedUpstream);
        use techpass_domain::account::EmailAuthority;
        let plain = load(WOG, &[]).unwrap();
        assert_eq!(plain.upstreams[0].email_authority, EmailAuthority::Verified);
        assert_eq!(plain.dev_upstream.email_authority, EmailAuthority::Verified);
        let trusted = load(&format!("{WOG}email_authority = \"trusted\"\n"), &[]).unwrap();
        assert_eq!(
            trusted.upstreams[0].email_authority,
            EmailAuthority::Trusted
        );
        let e = error(&format!("{WOG}email_authority = \"maybe\"\n"), &[]);
        assert!(e.contains("email_authority"), "{e}");
    }

    #[test]
    fn production_example_is_valid() {
        std::env::set_var("AZURE_WOG_CLIENT_SECRET", "s");
        std::env::set_var("AZURE_VENDORS_CLIENT_SECRET", "s");
        let example = include_str!("../config/production.example.toml");
        let key = techpass_oidc::MasterKey::generate_base64().unwrap();
        // The issuer comes from the environment there (docker-compose.yml), as here.
        let c = load(
            example,
            &[
                ("MASTER_KEY", &key),
                ("ISSUER", "https://id.example.gov.sg"),
            ],
        );
        assert!(c.is_ok(), "{:?}", c.err());
    }

    #[test]
    fn reverification_has_documented_defaults_and_needs_a_bound() {
        let c = load("", &[]).unwrap();
        assert_eq!(
            (
                c.upstream.reverify_after_secs,
                c.upstream.reverify_retries,
                c.upstream.reverify_grace_secs
            ),
            (3600, 1, 900)
        );
        let e = error("[upstream]\nreverify_after_secs = 0\n", &[]);
        assert!(e.contains("`upstream.reverify_after_secs`"), "{e}");
        let e = error("[upstream]\nreverify_afer_secs = 60\n", &[]);
        assert!(e.contains("reverify_afer_secs"), "{e}");
    }

    #[test]
    fn development_upstream_is_refused_outside_development() {
        let e = error("mode = \"production\"\nissuer = \"https://id.example\"\n[dev_upstream]\nenabled = true\n", &[("MASTER_KEY", &techpass_oidc::MasterKey::generate_base64().unwrap())]);
        assert!(e.contains("`dev_upstream.enabled`"), "{e}");
        let e = error(
            "issuer = \"https://id.example\"\n[dev_upstream]\nenabled = true\n",
            &[],
        );
        assert!(e.contains("loopback"), "{e}");
        let e = error("[dev_upstream]\nenabled = false\n", &[]);
        assert!(e.contains("nobody could sign in"), "{e}");
    }

    #[test]
    fn loopback_issuers_may_use_http() {
        for ok in [
            "http://127.0.0.1:1",
            "http://localhost:8080",
            "http://[::1]:9",
        ] {
            assert!(check_issuer(ok).is_ok(), "{ok}");
        }
        assert!(check_issuer("http://10.0.0.1").is_err());
    }
}
