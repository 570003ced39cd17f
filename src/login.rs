//! The command-line client of `techpass login`, `techpass token` and `techpass git-credential`:
//! the device authorization grant (RFC 8628) against any issuer that publishes a
//! `device_authorization_endpoint` in its discovery document, a token cache per issuer and
//! client in the user's config directory (directory 0700, files 0600), and silent refreshes
//! with the rotating refresh token, serialised by a lock file so that concurrent callers
//! (kubectl, git) never present the same refresh token twice.
//!
//! Tokens are sender-constrained with DPoP (RFC 9449) when the issuer supports it, unless the
//! person asks otherwise (`--no-dpop`): `techpass login` makes an EC P-256 key, kept in the same
//! private cache file, and signs a proof with it for every token request, so a copied refresh
//! token is useless without the key, and a bound access token is shown to resource servers
//! with a proof (`techpass token --dpop METHOD URL` prints both headers).
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
    /// The DPoP key the tokens are bound to: a P-256 private key, PKCS#8, base64url. Absent:
    /// bearer tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<String>,
}

/// The CLI's DPoP key (RFC 9449): ES256, made at login.
struct DpopKey {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    pkcs8: String,
}

impl DpopKey {
    fn generate() -> Result<DpopKey, CliError> {
        use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        use base64::Engine;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| failed("cannot make a DPoP key"))?;
        DpopKey::read(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pkcs8.as_ref()))
    }

    fn read(text: &str) -> Result<DpopKey, CliError> {
        use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| failed("the cached DPoP key is damaged; run techpass login again"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &bytes)
            .map_err(|_| failed("the cached DPoP key is damaged; run techpass login again"))?;
        Ok(DpopKey {
            pair,
            pkcs8: text.to_string(),
        })
    }

    /// A proof for one request (RFC 9449 §4.2), with `ath` when it carries an access token.
    fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, CliError> {
        use aws_lc_rs::signature::KeyPair;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let point = self.pair.public_key().as_ref();
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| failed("no randomness for a DPoP proof"))?;
        let mut url = url::Url::parse(url).map_err(|e| failed(format!("{url}: {e}")))?;
        url.set_query(None);
        url.set_fragment(None);
        let mut claims = serde_json::json!({
            "htm": method.to_ascii_uppercase(),
            "htu": url.as_str(),
            "iat": now(),
            "jti": URL_SAFE_NO_PAD.encode(jti),
        });
        if let Some(token) = access_token {
            claims["ath"] = Value::from(techpass_oidc::dpop::access_token_hash(token));
        }
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .map_err(|_| failed("cannot sign a DPoP proof"))?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// The headers that present the cached access token to a resource server at `method` `url`:
/// `Authorization: DPoP …` with a fresh `DPoP` proof for a bound token, else
/// `Authorization: Bearer …` (one header per line, as `curl -H @-` reads them).
pub fn request_headers(cached: &Cached, method: &str, url: &str) -> Result<String, CliError> {
    match &cached.dpop_key {
        Some(key) => {
            let proof = DpopKey::read(key)?.proof(method, url, Some(&cached.access_token))?;
            Ok(format!(
                "Authorization: DPoP {}\nDPoP: {proof}\n",
                cached.access_token
            ))
        }
        None => Ok(format!("Authorization: Bearer {}\n", cached.access_token)),
    }
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
    /// RFC 9449 §5.1: the issuer takes ES256 DPoP proofs.
    dpop_es256: bool,
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
        dpop_es256: doc["dpop_signing_alg_values_supported"]
            .as_array()
            .is_some_and(|algs| algs.iter().any(|a| a == "ES256")),
    })
}

/// POSTs a form; `Ok` with the JSON body of a success, `Err((error, description))` with the
/// OAuth error of a refusal (RFC 6749 §5.2).
async fn post_form(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    dpop: Option<&DpopKey>,
) -> Result<Result<Value, (String, String)>, CliError> {
    let mut request = client.post(url).form(form);
    if let Some(key) = dpop {
        request = request.header("DPoP", key.proof("POST", url, None)?);
    }
    let response = request
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
    dpop: Option<&DpopKey>,
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
        // Kept only if the issuer bound the tokens to it.
        dpop_key: dpop
            .filter(|_| body["token_type"].as_str() == Some("DPoP"))
            .map(|k| k.pkcs8.clone()),
    })
}

/// What `techpass login` asks for.
#[derive(Debug, Clone)]
pub struct Login {
    pub target: Target,
    pub scope: String,
    /// Open the verification page in the default browser.
    pub open: bool,
    /// Bind the tokens to a DPoP key when the issuer supports it.
    pub dpop: bool,
}

/// RFC 8628 end to end: asks for the codes, tells the person where to go (on `out`), polls at
/// the interval (slower after `slow_down`) until the tokens come, and caches them.
pub async fn login(login: &Login, out: &mut dyn Write) -> Result<Cached, CliError> {
    let client = http()?;
    let endpoints = discover(&client, &login.target.issuer).await?;
    let dpop = if login.dpop && endpoints.dpop_es256 {
        Some(DpopKey::generate()?)
    } else {
        if login.dpop {
            let _ = writeln!(
                out,
                "{} does not take DPoP proofs: the tokens will be bearer tokens",
                login.target.issuer
            );
        }
        None
    };
    let codes = match post_form(
        &client,
        &endpoints.device_authorization,
        &[
            ("client_id", login.target.client_id.as_str()),
            ("scope", login.scope.as_str()),
        ],
        None,
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
            dpop.as_ref(),
        )
        .await?;
        match answer {
            Ok(body) => {
                let cached =
                    cached_from(&login.target, &endpoints.token, &body, None, dpop.as_ref())?;
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
    let dpop = cached.dpop_key.as_deref().map(DpopKey::read).transpose()?;
    let answer = post_form(
        &client,
        &cached.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", target.client_id.as_str()),
        ],
        dpop.as_ref(),
    )
    .await?;
    match answer {
        Ok(body) => {
            let next = cached_from(
                target,
                &cached.token_endpoint,
                &body,
                Some(&cached),
                dpop.as_ref(),
            )?;
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

    fn cached(dpop_key: Option<String>) -> Cached {
        Cached {
            issuer: "https://id.example.gov.sg".into(),
            client_id: "app_1".into(),
            token_endpoint: "https://id.example.gov.sg/token".into(),
            access_token: "at-1".into(),
            expires_at: 0,
            refresh_token: None,
            id_token: None,
            scope: None,
            dpop_key,
        }
    }

    #[test]
    fn dpop_proofs_verify_as_the_server_checks_them() {
        let key = DpopKey::generate().unwrap();
        let again = DpopKey::read(&key.pkcs8).unwrap();
        let url = "https://api.example.gov.sg/v1/things?page=2#top";
        let proof = again.proof("get", url, Some("at-1")).unwrap();
        let checked = techpass_oidc::dpop::verify(
            &proof,
            &techpass_oidc::dpop::Expected {
                method: "GET",
                url: "https://api.example.gov.sg/v1/things",
                access_token: Some("at-1"),
                now: now(),
            },
        )
        .unwrap();
        let other = key
            .proof("POST", "https://id.example.gov.sg/token", None)
            .unwrap();
        let token_proof = techpass_oidc::dpop::verify(
            &other,
            &techpass_oidc::dpop::Expected {
                method: "POST",
                url: "https://id.example.gov.sg/token",
                access_token: None,
                now: now(),
            },
        )
        .unwrap();
        assert_eq!(checked.jkt, token_proof.jkt, "one key");
        assert_ne!(checked.jti, token_proof.jti, "a new jti each time");
        assert!(DpopKey::read("not-a-key").is_err());

        let headers = request_headers(&cached(Some(key.pkcs8.clone())), "GET", url).unwrap();
        let lines: Vec<&str> = headers.lines().collect();
        assert_eq!(lines[0], "Authorization: DPoP at-1");
        assert!(lines[1].starts_with("DPoP: ey"), "{headers}");
        assert_eq!(
            request_headers(&cached(None), "GET", url).unwrap(),
            "Authorization: Bearer at-1\n"
        );
    }

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
