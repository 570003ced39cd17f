//! Device authorization (RFC 8628) up to the person's decision: a device asks for a device
//! code and a user code ([`authorize_device`]), the person signed in at the verification page
//! finds the request by its user code ([`find_request`]) and approves or denies it
//! ([`decide`]), the gate applying at approval. The device's polling and the tokens are the
//! device code grant's (`grants::device_code`). Both codes are stored only as keyed hashes.
//!
//! It does not limit guessing of user codes: the shell does, per address, per person and
//! overall, around [`find_request`] and [`decide`].

use techpass_domain::device::DeviceStatus;
use techpass_domain::gate::Denial;
use techpass_oidc::{ErrorCode, OAuthError};
use techpass_store::{AuditRecord, DeviceApproval, DeviceCodeRecord, StoreError, UserRecord};

use crate::audit::audit;
use crate::authorize::proven_amr;
use crate::clients::{find_client, Client, GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN};
use crate::gate::{enforce, enforce_app, Refusal};
use crate::scopes::{parse_scope, SCOPES};
use crate::signin::Session;
use crate::ServiceContext;

pub const PURPOSE_DEVICE_CODE: &str = "device-code";
pub const PURPOSE_USER_CODE: &str = "user-code";

/// RFC 8628 §6.1: 32 characters that cannot be confused with one another when read aloud or
/// typed (no 0/O, no 1/I); 8 of them are 40 bits, enough against guessing that is rate-limited.
pub const USER_CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const USER_CODE_LEN: usize = 8;

/// How often a freshly drawn user code may collide with a live one before giving up.
const USER_CODE_DRAWS: usize = 5;

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    /// Shown as `XXXX-XXXX`.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// `input` as the person may have typed it (any case, dashes, spaces), as the 8 characters of
/// a user code; `None` if it cannot be one.
pub fn normalize_user_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid =
        code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// A normalized user code as people read it: `ABCD-EFGH`.
pub fn display_user_code(code: &str) -> String {
    match (code.get(..4), code.get(4..)) {
        (Some(a), Some(b)) if !b.is_empty() => format!("{a}-{b}"),
        _ => code.to_string(),
    }
}

/// Eight characters of the alphabet from the context's randomness: each base64url character
/// of a token carries 6 uniform bits, of which 5 pick a character (64 is a multiple of 32).
fn draw_user_code(ctx: &ServiceContext) -> Result<String, OAuthError> {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let token = ctx.random.token().map_err(OAuthError::server_error)?;
    let code: String = token
        .bytes()
        .take(USER_CODE_LEN)
        .map(|c| {
            let six = B64.iter().position(|b| *b == c).unwrap_or(0);
            char::from(USER_CODE_ALPHABET[six % 32])
        })
        .collect();
    Ok(code)
}

/// The scope a device asks for: the understood scopes (others ignored, as at the authorization
/// endpoint), `openid` always, `offline_access` only for an app that may refresh.
fn device_scope(requested: Option<&str>, client: &Client) -> Result<Vec<String>, OAuthError> {
    let understood: Vec<&str> = requested
        .unwrap_or("")
        .split(' ')
        .filter(|s| SCOPES.contains(s))
        .collect();
    let mut scope = parse_scope(&understood.join(" "))?;
    if !scope.iter().any(|s| s == "openid") {
        scope.insert(0, "openid".into());
    }
    if !client.allows(GRANT_REFRESH_TOKEN) {
        scope.retain(|s| s != "offline_access");
    }
    Ok(scope)
}

fn store_error(e: StoreError) -> OAuthError {
    OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later").with_detail(e.to_string())
}

/// RFC 8628 §3.1–3.2: a device code and a user code for the authenticated `client`, stored
/// pending for `settings.tokens.device_code_lifetime_secs`. Only an app that registered the
/// grant may ask (`unauthorized_client`), and only while its tenant is active and it is
/// enabled (the app's half of the gate).
pub async fn authorize_device(
    ctx: &ServiceContext,
    client: &Client,
    scope: Option<&str>,
) -> Result<DeviceAuthorization, OAuthError> {
    if !client.allows(GRANT_DEVICE_CODE) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this app may not use the device authorization grant",
        ));
    }
    match enforce_app(ctx, client, "device_authorization", None).await {
        Ok(_) => {}
        Err(Refusal::Denied(d)) => {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("access denied: {}", d.reason()),
            ))
        }
        Err(Refusal::Unavailable(e)) => return Err(store_error(e)),
    }
    let scope = device_scope(scope, client)?;
    let now = ctx.clock.now().as_secs();
    let lifetime = ctx.settings.tokens.device_code_lifetime_secs as i64;
    let interval = ctx.settings.tokens.device_poll_interval_secs as i64;
    let device_code = ctx.random.token().map_err(OAuthError::server_error)?;
    for _ in 0..USER_CODE_DRAWS {
        let user_code = draw_user_code(ctx)?;
        let record = DeviceCodeRecord {
            device_code_hash: ctx.secrets.keyed_hash(PURPOSE_DEVICE_CODE, &device_code),
            user_code_hash: ctx.secrets.keyed_hash(PURPOSE_USER_CODE, &user_code),
            client_id: client.id.clone(),
            scope: scope.join(" "),
            created_at: now,
            expires_at: now + lifetime,
            interval_secs: interval,
            last_polled_at: None,
            status: DeviceStatus::Pending,
            decided_at: None,
            user_id: None,
            session_hash: None,
            auth_time: None,
            amr: None,
            acr: None,
            grant_id: None,
        };
        match ctx.store.insert_device_code(&record, now).await {
            Ok(()) => {
                let verification_uri = techpass_oidc::discovery::endpoint(
                    &ctx.issuer,
                    techpass_oidc::paths::DEVICE_VERIFICATION,
                );
                let shown = display_user_code(&user_code);
                return Ok(DeviceAuthorization {
                    device_code,
                    verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
                    verification_uri,
                    user_code: shown,
                    expires_in: lifetime,
                    interval,
                });
            }
            // A live request holds this user code: draw another.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(store_error(e)),
        }
    }
    Err(
        OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
            .with_detail("no free user code after several draws"),
    )
}

/// A pending request as the verification page shows it.
#[derive(Debug, Clone)]
pub struct DeviceRequest {
    pub user_code: String,
    pub client: Client,
    /// The app's tenant's name (`None` for a platform app).
    pub tenant_name: Option<String>,
    pub scope: Vec<String>,
    pub expires_at: i64,
}

/// The pending, unexpired request with this (normalized) user code, or `None`: unknown,
/// expired, already decided, or its app is gone. Each `None` is a wrong guess for the shell's
/// limits.
pub async fn find_request(
    ctx: &ServiceContext,
    user_code: &str,
) -> Result<Option<DeviceRequest>, StoreError> {
    let hash = ctx.secrets.keyed_hash(PURPOSE_USER_CODE, user_code);
    let Some(record) = ctx.store.find_device_code_by_user_code(&hash).await? else {
        return Ok(None);
    };
    let now = ctx.clock.now().as_secs();
    if record.status != DeviceStatus::Pending || now >= record.expires_at {
        return Ok(None);
    }
    let Some(client) = find_client(ctx.store.as_ref(), &record.client_id).await? else {
        return Ok(None);
    };
    let tenant_name = match &client.tenant_id {
        Some(id) => ctx.store.get_tenant(id).await?.map(|t| t.name),
        None => None,
    };
    Ok(Some(DeviceRequest {
        user_code: user_code.to_string(),
        client,
        tenant_name,
        scope: record
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        expires_at: record.expires_at,
    }))
}

/// What came of the person's decision.
#[derive(Debug)]
pub enum Decided {
    Approved,
    Denied,
    /// The gate refused the person at this app: the request is denied, and the page says why.
    Refused(Denial),
    /// The request is no longer pending (decided in another tab, expired).
    Gone,
    /// Approving, but the upstream has not confirmed the person within
    /// `upstream.reverify_after_secs` and could not now ([`crate::reverify`]; refused, their
    /// sessions have ended): the request stays pending; the person signs in at the upstream
    /// again and decides then.
    SignInAgain,
}

/// The signed-in `user` (in `session`) approves (`approve`) or denies the pending request with
/// this user code. Approval runs the gate first: a refusal denies the request (the device hears
/// `access_denied`) and is audited by the gate. Each decision is audited under the app's tenant.
pub async fn decide(
    ctx: &ServiceContext,
    user: &UserRecord,
    session: &Session,
    request: &DeviceRequest,
    approve: bool,
) -> Result<Decided, StoreError> {
    let now = ctx.clock.now().as_secs();
    let hash = ctx
        .secrets
        .keyed_hash(PURPOSE_USER_CODE, &request.user_code);
    if approve {
        let verdict = crate::reverify::check(
            ctx,
            &user.id,
            Some(&session.upstream),
            session.auth_time,
            None,
        )
        .await?;
        if !verdict.allows() {
            return Ok(Decided::SignInAgain);
        }
    }
    let mut refusal = None;
    let approval = if approve {
        match enforce(ctx, user, &request.client, "device", None).await {
            Ok(_) => Some(DeviceApproval {
                user_id: user.id.clone(),
                session_hash: session.id_hash.clone(),
                auth_time: session.auth_time,
                amr: proven_amr(&session.identity),
                acr: Some(techpass_oidc::ACR_MFA.to_string()),
            }),
            Err(Refusal::Denied(d)) => {
                refusal = Some(d);
                None
            }
            Err(Refusal::Unavailable(e)) => return Err(e),
        }
    } else {
        None
    };
    if !ctx
        .store
        .decide_device_code(&hash, approval.as_ref(), now)
        .await?
    {
        return Ok(Decided::Gone);
    }
    let outcome = match (&approval, refusal) {
        (Some(_), _) => Decided::Approved,
        (None, Some(d)) => Decided::Refused(d),
        (None, None) => Decided::Denied,
    };
    if !matches!(outcome, Decided::Refused(_)) {
        audit(
            ctx,
            AuditRecord {
                at: now,
                event: "device.decided".into(),
                outcome: if approval.is_some() {
                    "success"
                } else {
                    "denied"
                }
                .into(),
                reason: approval.is_none().then(|| "denied_by_user".to_string()),
                actor: Some(user.id.clone()),
                subject: Some(user.id.clone()),
                tenant: request.client.tenant_id.clone(),
                details: serde_json::json!({ "client_id": request.client.id }).to_string(),
                ..AuditRecord::default()
            },
        )
        .await;
    }
    if approval.is_some() {
        // Approving the request on the page that names the app and its tenant is this person's
        // consent, where the app needs one: recorded, so the account page lists it and
        // withdrawing it ends the device's refresh tokens.
        if crate::consent::needed(ctx, user, &request.client, &request.scope, false).await? {
            crate::consent::give(ctx, user, &request.client, &request.scope, None).await?;
        }
        if let Err(e) = ctx.store.record_app_signin(&user.id, now).await {
            tracing::warn!(error = %e, "could not record the app sign-in");
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_normalized_from_what_people_type() {
        assert_eq!(
            normalize_user_code("wdjb-mjht").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(
            normalize_user_code(" WDJB MJHT ").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(normalize_user_code("WDJBMJHT").as_deref(), Some("WDJBMJHT"));
        for bad in [
            "",
            "WDJB-MJH",
            "WDJB-MJHTX",
            "WDJB-MJH0",
            "WDJB-MJHO",
            "IDJB-MJHT",
            "1DJB-MJHT",
            "WDJB_MJHT",
            "WDJB-MJHÉ",
        ] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
        assert_eq!(display_user_code("WDJBMJHT"), "WDJB-MJHT");
    }

    #[test]
    fn the_alphabet_has_no_lookalikes() {
        for c in [b'0', b'O', b'1', b'I'] {
            assert!(!USER_CODE_ALPHABET.contains(&c));
        }
        let mut sorted = USER_CODE_ALPHABET.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 32);
    }
}
