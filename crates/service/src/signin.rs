//! The sign-in service: start, finish, read and end sessions. Handlers call these; they hold no
//! HTTP types beyond plain values.

use serde::{Deserialize, Serialize};
use techpass_domain::account::{classify, classify_claimed, AccountType};
use techpass_domain::gate::UserStatus;
use techpass_domain::session::{session_is_live, SessionLimits};
use techpass_domain::Timestamp;
use techpass_oidc::Secrets;
use techpass_store::{LoginAttemptRecord, SessionRecord, StoreError, UserRecord};
use techpass_upstream::{
    AuthorizationResponse, LoginParams, SignedIn, UpstreamError, UpstreamIdentity,
};
use url::Url;

pub use crate::upstreams::{Upstream, Upstreams};
use crate::ServiceContext;

const PURPOSE_STATE: &str = "login-state";
const PURPOSE_BROWSER: &str = "login-browser";
const PURPOSE_PKCE: &str = "login-pkce";
const PURPOSE_NONCE: &str = "login-nonce";
const PURPOSE_SESSION: &str = "session";
const PURPOSE_CSRF: &str = "csrf";
/// Activity is written at most this often per session, not on every request.
const TOUCH_EVERY_SECS: i64 = 60;

/// A refused sign-in: a short stable reason (audit log, metrics, page) and detail for logs.
#[derive(Debug, Clone)]
pub struct Denial {
    pub reason: &'static str,
    pub upstream: Option<String>,
    pub detail: String,
    /// Where the sign-in was to return (a local URL, often an app's authorization request),
    /// when the refusal came after the attempt was known: the page offers the way back.
    pub return_to: Option<String>,
}

impl Denial {
    fn new(reason: &'static str, upstream: Option<&str>, detail: impl Into<String>) -> Self {
        Denial {
            reason,
            upstream: upstream.map(String::from),
            detail: detail.into(),
            return_to: None,
        }
    }

    fn returning_to(mut self, return_to: &str) -> Self {
        self.return_to = Some(return_to.to_string());
        self
    }
}

impl From<StoreError> for Denial {
    fn from(e: StoreError) -> Self {
        Denial::new("storage_unavailable", None, e.to_string())
    }
}

impl From<techpass_oidc::KeyError> for Denial {
    fn from(e: techpass_oidc::KeyError) -> Self {
        Denial::new("internal_error", None, e.to_string())
    }
}

/// Begins a sign-in at `upstream`: records the attempt and returns the URL to send the browser
/// to, and the browser-binding cookie value (the existing one if the browser has it).
pub async fn start_login(
    state: &ServiceContext,
    upstream: &Upstream,
    return_to: String,
    login_hint: Option<String>,
    force_reauthentication: bool,
    browser: Option<String>,
) -> Result<(Url, String), Denial> {
    let id = upstream.connector.id().to_string();
    let browser = match browser.filter(|b| b.len() == 43) {
        Some(b) => b,
        None => state.random.token()?,
    };
    let login_state = state.random.token()?;
    let now = state.clock.now().as_secs();
    let back = return_to.clone();
    state
        .store
        .insert_login_attempt(&LoginAttemptRecord {
            state_hash: state.secrets.keyed_hash(PURPOSE_STATE, &login_state),
            browser_hash: state.secrets.keyed_hash(PURPOSE_BROWSER, &browser),
            upstream: id.clone(),
            return_to,
            created_at: now,
            expires_at: now + state.settings.session.login_timeout_secs as i64,
        })
        .await
        .map_err(|e| Denial::from(e).returning_to(&back))?;
    let params = login_params(
        &state.secrets,
        &login_state,
        login_hint,
        force_reauthentication,
    );
    let url = upstream
        .connector
        .login_url(&params)
        .await
        .map_err(|e| Denial::new(e.reason(), Some(&id), e.to_string()).returning_to(&back))?;
    Ok((url, browser))
}

fn login_params(
    secrets: &Secrets,
    login_state: &str,
    login_hint: Option<String>,
    force_reauthentication: bool,
) -> LoginParams {
    LoginParams {
        state: login_state.to_string(),
        nonce: secrets.keyed_hash(PURPOSE_NONCE, login_state),
        // 43 characters of base64url: a valid RFC 7636 verifier.
        pkce_verifier: secrets.keyed_hash(PURPOSE_PKCE, login_state),
        login_hint,
        force_reauthentication,
    }
}

/// What the upstream sent back to `/callback`.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207 §2: the upstream's issuer, checked by the connector.
    pub iss: Option<String>,
}

/// A session just created: the cookie value (shown once, stored only hashed) and where to go.
#[derive(Debug)]
pub struct NewSession {
    pub cookie: String,
    pub return_to: String,
    pub identity: UpstreamIdentity,
    pub user: UserRecord,
}

/// Completes a sign-in. Every refusal is audited and counted by the caller's handler.
pub async fn finish_login(
    state: &ServiceContext,
    query: CallbackQuery,
    browser: Option<&str>,
) -> Result<NewSession, Denial> {
    finish_login_from(state, query, browser, &Device::default()).await
}

/// What tells a session apart for its person: the browser's User-Agent and the address it
/// signed in from, both as the request gave them (recorded, never trusted for a decision).
#[derive(Debug, Clone, Default)]
pub struct Device {
    pub user_agent: Option<String>,
    pub address: Option<String>,
}

/// Longest User-Agent kept with a session.
const MAX_USER_AGENT: usize = 256;

/// As [`finish_login`], recording `device` with the new session.
pub async fn finish_login_from(
    state: &ServiceContext,
    query: CallbackQuery,
    browser: Option<&str>,
    device: &Device,
) -> Result<NewSession, Denial> {
    let Some(login_state) = query.state.as_deref().filter(|s| !s.is_empty()) else {
        return Err(Denial::new("missing_state", None, "callback without state"));
    };
    let attempt = state
        .store
        .take_login_attempt(&state.secrets.keyed_hash(PURPOSE_STATE, login_state))
        .await?
        .ok_or_else(|| {
            Denial::new(
                "unknown_or_replayed_state",
                None,
                "no pending sign-in for this state",
            )
        })?;
    let return_to = attempt.return_to.clone();
    let login_state = login_state.to_string();
    complete_login(state, attempt, &login_state, query, browser, device)
        .await
        .map_err(|d| d.returning_to(&return_to))
}

/// The rest of [`finish_login`] once the attempt is known (and consumed): the attempt still
/// good in this browser, the upstream's verified answer, the account, then the session.
async fn complete_login(
    state: &ServiceContext,
    attempt: LoginAttemptRecord,
    login_state: &str,
    query: CallbackQuery,
    browser: Option<&str>,
    device: &Device,
) -> Result<NewSession, Denial> {
    let upstream = attempt_upstream(state, &attempt, browser)?;
    let SignedIn {
        mut identity,
        refresh_token,
    } = upstream_answer(state, upstream, login_state, query).await?;
    // From here on `email_verified` means "TechPass believes the address": proven by the
    // upstream, or vouched for by the operator (`email_authority = "trusted"`).
    identity.email_verified = upstream.email_authority.believes(identity.email_verified);
    let user = account(state, upstream, &identity).await?;
    // The upstream confirmed the person now; its refresh token re-verifies them later.
    crate::upstream_links::remember(
        state,
        &user.id,
        upstream.connector.id(),
        refresh_token.as_deref(),
    )
    .await?;
    let cookie = state.random.token()?;
    open_session(state, &cookie, &user, &identity, device).await?;
    Ok(NewSession {
        cookie,
        return_to: attempt.return_to,
        identity,
        user,
    })
}

/// The attempt is still in time, back in the browser that started it (RFC 9700 §4.7), through
/// an upstream still configured.
fn attempt_upstream<'a>(
    state: &'a ServiceContext,
    attempt: &LoginAttemptRecord,
    browser: Option<&str>,
) -> Result<&'a Upstream, Denial> {
    let upstream_id = attempt.upstream.as_str();
    if state.clock.now().as_secs() >= attempt.expires_at {
        return Err(Denial::new(
            "login_expired",
            Some(upstream_id),
            "sign-in took too long",
        ));
    }
    let same_browser = browser.is_some_and(|b| {
        state
            .secrets
            .verify(PURPOSE_BROWSER, b, &attempt.browser_hash)
    });
    if !same_browser {
        return Err(Denial::new(
            "browser_mismatch",
            Some(upstream_id),
            "the callback arrived in another browser than the one that started the sign-in",
        ));
    }
    state.upstreams.get(upstream_id).ok_or_else(|| {
        Denial::new(
            "unknown_upstream",
            Some(upstream_id),
            "upstream no longer configured",
        )
    })
}

/// What the upstream answered, verified by its connector: an error response (only if its
/// `iss` is the upstream's) or a code redeemed for a checked ID token.
async fn upstream_answer(
    state: &ServiceContext,
    upstream: &Upstream,
    login_state: &str,
    query: CallbackQuery,
) -> Result<SignedIn, Denial> {
    let upstream_id = upstream.connector.id();
    if let Some(error) = query.error.as_deref() {
        // RFC 9207 §2.4: an error response is the upstream's only if its `iss` says so; a
        // forged "cancelled" must not send the person back to the app as if they had left.
        upstream
            .connector
            .check_issuer_parameter(query.iss.as_deref())
            .await
            .map_err(|e| Denial::new(e.reason(), Some(upstream_id), e.to_string()))?;
        let reason = if error == "access_denied" {
            "upstream_access_denied"
        } else {
            "upstream_error"
        };
        return Err(Denial::new(
            reason,
            Some(upstream_id),
            format!("{error}: {}", query.error_description.unwrap_or_default()),
        ));
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(Denial::new(
            "missing_code",
            Some(upstream_id),
            "callback without code",
        ));
    };
    let params = login_params(&state.secrets, login_state, None, false);
    let response = AuthorizationResponse::new(code, query.iss.as_deref());
    upstream
        .connector
        .exchange(&response, &params)
        .await
        .map_err(|e: UpstreamError| Denial::new(e.reason(), Some(upstream_id), e.to_string()))
}

/// The person's account, created at the first sign-in (unregistered) and refreshed from the
/// upstream's claims at every one; refused when the upstream may not sign in this kind of
/// account.
async fn account(
    state: &ServiceContext,
    upstream: &Upstream,
    identity: &UpstreamIdentity,
) -> Result<UserRecord, Denial> {
    let upstream_id = upstream.connector.id();
    let Some(email) = identity.email.as_deref() else {
        return Err(Denial::new(
            "missing_email",
            Some(upstream_id),
            "the upstream sent no email claim",
        ));
    };
    // An address in an officer domain that the upstream did not prove is refused outright, so
    // the person hears what to fix (AZURE.md §3): admitted as a vendor it would only meet "you
    // are not registered" (an unproven address matches no invitation), and it must never make
    // an officer.
    if !identity.email_verified
        && classify(email, &state.classification) == AccountType::PublicOfficer
    {
        return Err(Denial::new(
            "email_unverified",
            Some(upstream_id),
            format!(
                "{upstream_id} did not verify the email claim and its email_authority is \"{}\"",
                upstream.email_authority.as_str()
            ),
        ));
    }
    let account_type =
        classify_claimed(Some(email), identity.email_verified, &state.classification);
    if !upstream.account_types.contains(&account_type) {
        return Err(Denial::new(
            "account_type_not_allowed",
            Some(upstream_id),
            format!(
                "{} accounts may not sign in through {upstream_id}",
                account_type.as_str()
            ),
        ));
    }
    let now = state.clock.now().as_secs();
    Ok(state
        .store
        .upsert_user(&UserRecord {
            id: state.random.uuid().to_string(),
            tenant_id: identity.tenant_id.clone(),
            object_id: identity.object_id.clone(),
            email: identity.email.clone(),
            name: identity.name.clone(),
            created_at: now,
            last_signin_at: now,
            status: UserStatus::Unregistered,
            account_type: account_type.as_str().to_string(),
            terms_version: None,
            registered_at: None,
            access_ends_at: None,
            status_reason: None,
            exempt: false,
            app_signin_at: None,
            given_name: identity.given_name.clone(),
            family_name: identity.family_name.clone(),
            email_verified: identity.email_verified,
            enabled_at: None,
            terminated_at: None,
        })
        .await?)
}

/// The SSO session, stored under the keyed hash of its cookie.
async fn open_session(
    state: &ServiceContext,
    cookie: &str,
    user: &UserRecord,
    identity: &UpstreamIdentity,
    device: &Device,
) -> Result<(), Denial> {
    let now = state.clock.now().as_secs();
    let user_agent = device.user_agent.as_deref().map(|ua| {
        ua.chars()
            .filter(|c| !c.is_control())
            .take(MAX_USER_AGENT)
            .collect::<String>()
    });
    let identity_json = serde_json::to_string(identity)
        .map_err(|e| Denial::new("internal_error", Some(&identity.upstream), e.to_string()))?;
    state
        .store
        .insert_session(&SessionRecord {
            id_hash: state.secrets.keyed_hash(PURPOSE_SESSION, cookie),
            user_id: user.id.clone(),
            upstream: identity.upstream.clone(),
            tenant_id: identity.tenant_id.clone(),
            object_id: identity.object_id.clone(),
            identity: identity_json,
            auth_time: identity.auth_time,
            created_at: now,
            last_seen_at: now,
            expires_at: now + state.settings.session.max_lifetime_secs as i64,
            user_agent,
            address: device.address.clone(),
        })
        .await?;
    Ok(())
}

/// A live session as the pages see it.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    #[serde(skip)]
    pub id_hash: String,
    pub user_id: String,
    pub upstream: String,
    pub tenant_id: String,
    pub object_id: String,
    pub identity: UpstreamIdentity,
    pub account_type: AccountType,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

fn limits(state: &ServiceContext) -> SessionLimits {
    SessionLimits {
        idle_timeout: state.settings.session.idle_timeout_secs as i64,
        max_lifetime: state.settings.session.max_lifetime_secs as i64,
    }
}

/// The session the cookie names, if it is live; records activity (at most once a minute). A
/// session past its idle or absolute limit is deleted.
pub async fn current_session(
    state: &ServiceContext,
    cookie: Option<&str>,
) -> Result<Option<Session>, StoreError> {
    let Some(cookie) = cookie.filter(|c| c.len() == 43) else {
        return Ok(None);
    };
    let id_hash = state.secrets.keyed_hash(PURPOSE_SESSION, cookie);
    let Some(record) = state.store.get_session(&id_hash).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    if !session_is_live(
        limits(state),
        Timestamp(record.expires_at),
        Timestamp(record.last_seen_at),
        now,
    ) {
        state.store.delete_session(&id_hash).await?;
        return Ok(None);
    }
    if now.as_secs() - record.last_seen_at >= TOUCH_EVERY_SECS {
        state.store.touch_session(&id_hash, now.as_secs()).await?;
    }
    let Ok(identity) = serde_json::from_str::<UpstreamIdentity>(&record.identity) else {
        tracing::warn!("unreadable session identity; ending the session");
        state.store.delete_session(&id_hash).await?;
        return Ok(None);
    };
    let account_type = classify_claimed(
        identity.email.as_deref(),
        identity.email_verified,
        &state.classification,
    );
    Ok(Some(Session {
        id_hash,
        user_id: record.user_id,
        upstream: record.upstream,
        tenant_id: record.tenant_id,
        object_id: record.object_id,
        identity,
        account_type,
        auth_time: record.auth_time,
        created_at: record.created_at,
        expires_at: record.expires_at,
    }))
}

/// The CSRF token of forms shown within a session (a synchronizer token derived from the
/// session, so it needs no storage and dies with the session).
pub fn csrf_token(secrets: &Secrets, session: &Session) -> String {
    secrets.keyed_hash(PURPOSE_CSRF, &session.id_hash)
}

/// Whether `csrf` is the CSRF token of forms shown within `session` (constant time).
pub fn csrf_valid(secrets: &Secrets, session: &Session, csrf: &str) -> bool {
    secrets.verify(PURPOSE_CSRF, &session.id_hash, csrf)
}
