//! The command-line client of `techpass login`, `techpass token` and `techpass git-credential`:
//! the device authorization grant (RFC 8628) against any issuer that publishes a
//! `device_authorization_endpoint` in its discovery document, a token cache per issuer and
//! client in the user's config directory (directory 0700, files 0600), and silent refreshes
//! with the rotating refresh token, serialised by a lock file so that concurrent callers
//! (kubectl, git) never present the same refresh token twice.
//!
//! It speaks only HTTP to the issuer: nothing of the server (configuration, database) is
//! used, so it runs on a developer's laptop or in a script without a TechPass installation.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Overrides where tokens are cached (tests, several identities on one machine).
pub const CACHE_DIR_ENV: &str = "TECHPASS_CLI_CONFIG_DIR";
/// An access token this close to its expiry is refreshed before it is handed out.
const REFRESH_MARGIN_SECS: i64 = 60;
/// How long a caller waits for another's refresh before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(15);
/// A lock file older than this is left over by a process that died, and is broken.
const STALE_LOCK: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Failed(String),
    #[error("not signed in to {issuer} as {client_id}: run `techpass login --issuer {issuer} --client-id {client_id}`")]
    NotSignedIn { issuer: String, client_id: String },
}

fn failed(message: impl Into<String>) -> CliError {
    CliError::Failed(message.into())
}

/// Which issuer and app the tokens are for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub issuer: String,
    pub client_id: String,
}

impl Target {
    pub fn new(issuer: &str, client_id: &str) -> Target {
        Target {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
        }
    }
}

/// What is cached for one issuer and client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cached {
    pub issuer: String,
    pub client_id: String,
    pub token_endpoint: String,
    pub access_token: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `$TECHPASS_CLI_CONFIG_DIR`, else `$XDG_CONFIG_HOME/techpass`, else `~/.config/techpass`.
pub fn cache_dir() -> Result<PathBuf, CliError> {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty(CACHE_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(dir).join("techpass"));
    }
    match non_empty("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".config").join("techpass")),
        None => Err(failed(format!(
            "no config directory: set HOME, XDG_CONFIG_HOME or {CACHE_DIR_ENV}"
        ))),
    }
}

/// The cache directory, created private (0700) or made so.
fn private_dir() -> Result<PathBuf, CliError> {
    let dir = cache_dir()?;
    let io = |e: std::io::Error| failed(format!("{}: {e}", dir.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(&dir).map_err(io)?;
    Ok(dir)
}

/// One file per issuer and client: `tokens-<first 16 bytes of SHA-256, hex>.json`.
fn cache_file(dir: &Path, target: &Target) -> PathBuf {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{}\n{}", target.issuer, target.client_id).as_bytes(),
    );
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(format!("tokens-{hex}.json"))
}

/// Writes `bytes` to `path` through a private (0600) temporary file renamed into place, so a
/// reader never sees half a file.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let io = |e: std::io::Error| failed(format!("{}: {e}", path.display()));
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)
}

fn read_cached(dir: &Path, target: &Target) -> Option<Cached> {
    let text = std::fs::read_to_string(cache_file(dir, target)).ok()?;
    serde_json::from_str(&text).ok()
}

fn save(dir: &Path, cached: &Cached) -> Result<(), CliError> {
    let target = Target::new(&cached.issuer, &cached.client_id);
    let text = serde_json::to_vec_pretty(cached).map_err(|e| failed(e.to_string()))?;
    write_private(&cache_file(dir, &target), &text)?;
    // The target `techpass token` uses when it is named no other.
    let current = serde_json::to_vec(&target).map_err(|e| failed(e.to_string()))?;
    write_private(&dir.join("current.json"), &current)
}

/// The issuer and client of the last `techpass login`.
pub fn current_target() -> Result<Target, CliError> {
    let dir = cache_dir()?;
    let text = std::fs::read_to_string(dir.join("current.json")).map_err(|_| {
        failed("not signed in: run `techpass login --issuer URL --client-id ID` first")
    })?;
    serde_json::from_str(&text).map_err(|e| failed(format!("current.json: {e}")))
}

/// A lock file held while the cache of one target is refreshed; removed on drop.
struct Lock(PathBuf);

impl Lock {
    async fn acquire(path: PathBuf) -> Result<Lock, CliError> {
        let started = std::time::Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(Lock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|m| m.elapsed().ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if stale {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if started.elapsed() > LOCK_WAIT {
                        return Err(failed(format!(
                            "{} is held by another techpass process",
                            path.display()
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(failed(format!("{}: {e}", path.display()))),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn http() -> Result<reqwest::Client, CliError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("techpass-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| failed(format!("HTTP client: {e}")))
}

/// The endpoints of the issuer's discovery document (OpenID Connect Discovery §4), whose
/// `issuer` must be the one asked for (§4.3).
struct Endpoints {
    device_authorization: String,
    token: String,
}

async fn discover(client: &reqwest::Client, issuer: &str) -> Result<Endpoints, CliError> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| failed(format!("{url}: {e}")))?;
    if !response.status().is_success() {
        return Err(failed(format!("{url}: HTTP {}", response.status())));
    }
    let doc: Value = response
        .json()
        .await
        .map_err(|e| failed(format!("{url}: {e}")))?;
    let field = |k: &str| doc[k].as_str().map(String::from);
    if field("issuer").as_deref().map(|i| i.trim_end_matches('/')) != Some(issuer) {
        return Err(failed(format!(
            "{url} names another issuer ({})",
            doc["issuer"]
        )));
    }
    Ok(Endpoints {
        device_authorization: field("device_authorization_endpoint").ok_or_else(|| {
            failed(format!(
                "{issuer} does not offer the device authorization grant"
            ))
        })?,
        token: field("token_endpoint")
            .ok_or_else(|| failed(format!("{url} has no token_endpoint")))?,
    })
}

/// POSTs a form; `Ok` with the JSON body of a success, `Err((error, description))` with the
/// OAuth error of a refusal (RFC 6749 §5.2).
async fn post_form(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Result<Value, (String, String)>, CliError> {
    let response = client
        .post(url)
        .form(form)
        .send()
        .await
        .map_err(|e| failed(format!("{url}: {e}")))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(Ok(body));
    }
    match body["error"].as_str() {
        Some(error) => Ok(Err((
            error.to_string(),
            body["error_description"].as_str().unwrap_or("").to_string(),
        ))),
        None => Err(failed(format!("{url}: HTTP {status}"))),
    }
}

fn cached_from(
    target: &Target,
    token_endpoint: &str,
    body: &Value,
    previous: Option<&Cached>,
) -> Result<Cached, CliError> {
    let access_token = body["access_token"]
        .as_str()
        .ok_or_else(|| failed("the token response has no access_token"))?;
    let text = |k: &str| body[k].as_str().map(String::from);
    Ok(Cached {
        issuer: target.issuer.clone(),
        client_id: target.client_id.clone(),
        token_endpoint: token_endpoint.to_string(),
        access_token: access_token.to_string(),
        expires_at: now() + body["expires_in"].as_i64().unwrap_or(300),
        // A refresh response may omit what did not change (RFC 6749 §6).
        refresh_token: text("refresh_token")
            .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
        id_token: text("id_token").or_else(|| previous.and_then(|p| p.id_token.clone())),
        scope: text("scope").or_else(|| previous.and_then(|p| p.scope.clone())),
    })
}

/// What `techpass login` asks for.
#[derive(Debug, Clone)]
pub struct Login {
    pub target: Target,
    pub scope: String,
    /// Open the verification page in the default browser.
    pub open: bool,
}

/// RFC 8628 end to end: asks for the codes, tells the person where to go (on `out`), polls at
/// the interval (slower after `slow_down`) until the tokens come, and caches them.
pub async fn login(login: &Login, out: &mut dyn Write) -> Result<Cached, CliError> {
    let client = http()?;
    let endpoints = discover(&client, &login.target.issuer).await?;
    let codes = match post_form(
        &client,
        &endpoints.device_authorization,
        &[
            ("client_id", login.target.client_id.as_str()),
            ("scope", login.scope.as_str()),
        ],
    )
    .await?
    {
        Ok(body) => body,
        Err((error, description)) => {
            return Err(failed(format!(
                "the issuer refused the device request: {error} {description}"
            )))
        }
    };
    let field = |k: &str| {
        codes[k]
            .as_str()
            .map(String::from)
            .ok_or_else(|| failed(format!("the device authorization response has no {k}")))
    };
    let device_code = field("device_code")?;
    let user_code = field("user_code")?;
    let verification_uri = field("verification_uri")?;
    let complete = codes["verification_uri_complete"].as_str();
    let mut interval = codes["interval"].as_i64().unwrap_or(5).max(1);
    let deadline = now() + codes["expires_in"].as_i64().unwrap_or(600);
    let _ = writeln!(
        out,
        "To sign in, open {verification_uri} in a browser and enter the code {user_code}"
    );
    if let Some(complete) = complete {
        let _ = writeln!(out, "(or open {complete})");
    }
    let _ = out.flush();
    if login.open {
        open_browser(complete.unwrap_or(&verification_uri));
    }
    loop {
        tokio::time::sleep(Duration::from_secs(interval as u64)).await;
        if now() > deadline {
            return Err(failed(
                "the code expired before it was approved; run techpass login again",
            ));
        }
        let answer = post_form(
            &client,
            &endpoints.token,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code.as_str()),
                ("client_id", login.target.client_id.as_str()),
            ],
        )
        .await?;
        match answer {
            Ok(body) => {
                let cached = cached_from(&login.target, &endpoints.token, &body, None)?;
                save(&private_dir()?, &cached)?;
                let _ = writeln!(out, "Signed in to {}.", login.target.issuer);
                return Ok(cached);
            }
            Err((error, _)) if error == "authorization_pending" => {}
            Err((error, _)) if error == "slow_down" => interval += 5,
            Err((error, _)) if error == "access_denied" => {
                return Err(failed("the request was denied in the browser"))
            }
            Err((error, _)) if error == "expired_token" => {
                return Err(failed(
                    "the code expired before it was approved; run techpass login again",
                ))
            }
            Err((error, description)) => {
                return Err(failed(format!("the issuer refused: {error} {description}")))
            }
        }
    }
}

/// Opens `url` in the desktop's browser, if there is one; a failure only means the person
/// opens it by hand.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// A cached token set whose access token is good for at least a minute more, refreshed (and
/// cached again) if needed. Concurrent callers take turns: the second one finds the first
/// one's fresh tokens instead of replaying its refresh token.
pub async fn fresh(target: &Target) -> Result<Cached, CliError> {
    let not_signed_in = || CliError::NotSignedIn {
        issuer: target.issuer.clone(),
        client_id: target.client_id.clone(),
    };
    let dir = cache_dir()?;
    let usable = |c: &Cached| c.expires_at - REFRESH_MARGIN_SECS > now();
    match read_cached(&dir, target) {
        Some(c) if usable(&c) => return Ok(c),
        Some(_) => {}
        None => return Err(not_signed_in()),
    }
    let dir = private_dir()?;
    let _lock = Lock::acquire(cache_file(&dir, target).with_extension("lock")).await?;
    let cached = read_cached(&dir, target).ok_or_else(not_signed_in)?;
    if usable(&cached) {
        return Ok(cached);
    }
    let refresh_token = cached.refresh_token.clone().ok_or_else(not_signed_in)?;
    let client = http()?;
    let answer = post_form(
        &client,
        &cached.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", target.client_id.as_str()),
        ],
    )
    .await?;
    match answer {
        Ok(body) => {
            let next = cached_from(target, &cached.token_endpoint, &body, Some(&cached))?;
            save(&dir, &next)?;
            Ok(next)
        }
        // The grant ended (expired, revoked, the person suspended): sign in again.
        Err((error, _)) if error == "invalid_grant" => Err(not_signed_in()),
        Err((error, description)) => Err(failed(format!(
            "the issuer refused to refresh: {error} {description}"
        ))),
    }
}

/// The `exp` of a JWT, read without checking its signature (the issuer just handed it over;
/// this only tells kubectl when to ask again).
fn jwt_expiry(token: &str) -> Option<i64> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["exp"].as_i64()
}

/// The token to hand out and when it expires (its `exp` if it is a JWT, else what the token
/// response said): the access token, or with `id_token` the ID token (what a Kubernetes API
/// server's OIDC authenticator expects).
pub fn chosen(cached: &Cached, id_token: bool) -> Result<(String, i64), CliError> {
    let token = if id_token {
        cached
            .id_token
            .clone()
            .ok_or_else(|| failed("no ID token was issued (sign in with the openid scope)"))?
    } else {
        cached.access_token.clone()
    };
    let expires_at = jwt_expiry(&token).unwrap_or(cached.expires_at);
    Ok((token, expires_at))
}

/// A Kubernetes client-go credential plugin answer (`client.authentication.k8s.io/v1`).
pub fn exec_credential(token: &str, expires_at: i64) -> Value {
    let expiration = time::OffsetDateTime::from_unix_timestamp(expires_at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "token": token,
            "expirationTimestamp": expiration,
        }
    })
}

/// The attributes git sends a credential helper on stdin (`key=value` lines up to a blank
/// line or the end), as (key, value) pairs.
pub fn read_git_request(input: &str) -> Vec<(String, String)> {
    input
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The answer to `get`: the username (the one asked for, else `default_username`) and the
/// access token as the password.
pub fn git_answer(request: &[(String, String)], default_username: &str, token: &str) -> String {
    let username = request
        .iter()
        .find(|(k, _)| k == "username")
        .map_or(default_username, |(_, v)| v.as_str());
    format!("username={username}\npassword={token}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_requests_are_read_to_the_blank_line() {
        let req = read_git_request("protocol=https\nhost=git.example.gov.sg\n\nignored=1\n");
        assert_eq!(
            req,
            vec![
                ("protocol".to_string(), "https".to_string()),
                ("host".to_string(), "git.example.gov.sg".to_string())
            ]
        );
        assert_eq!(
            git_answer(&req, "oauth2", "t"),
            "username=oauth2\npassword=t\n"
        );
        let named = read_git_request("protocol=https\nhost=h\nusername=alice\n");
        assert_eq!(
            git_answer(&named, "oauth2", "t"),
            "username=alice\npassword=t\n"
        );
    }

    #[test]
    fn exec_credentials_carry_an_rfc3339_expiry() {
        let v = exec_credential("tok", 1_800_000_000);
        assert_eq!(v["status"]["expirationTimestamp"], "2027-01-15T08:00:00Z");
        assert_eq!(v["kind"], "ExecCredential");
    }
}
