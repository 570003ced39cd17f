//! Tenants' signed webhooks: `user-invited`, `user-updated`, `user-deleted`,
//! `app-credentials-expiring`. Registering one verifies the endpoint with a challenge it must
//! echo; each event becomes a stored delivery, sent by the scheduled job of any replica with a
//! signature (`TechPass-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`) under the
//! webhook's own secret, retried with exponential back-off, and kept in a delivery log.

use crate::outbound::OutboundPolicy;
use aws_lc_rs::hmac;
use serde::Serialize;
use techpass_domain::client::validate_redirect_uri;
use techpass_domain::tenancy::{DeliveryStatus, TenantStatus};
use techpass_oidc::Secrets;
use techpass_store::{DeliveryRecord, WebhookRecord};

use crate::tenancy::{admin_tenant, audit, new_id, Actor, Result, TenancyError};
use crate::ServiceContext;

/// The event a "send a test event" delivers (subscribed or not).
pub const TEST_EVENT: &str = "test";

pub const EVENTS: [&str; 4] = [
    "user-invited",
    "user-updated",
    "user-deleted",
    "app-credentials-expiring",
];
pub const SIGNATURE_HEADER: &str = "techpass-signature";
pub const EVENT_HEADER: &str = "techpass-event";
pub const DELIVERY_HEADER: &str = "techpass-delivery";
/// Attempts before a delivery is marked failed; the wait doubles from 30 s.
const MAX_ATTEMPTS: i64 = 6;
const LEASE_SECS: i64 = 60;

/// `t=<unix>,v1=<hex>`: HMAC-SHA256 under `secret` of `"<t>.<body>"`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Where a webhook may point: the outbound policy's rule ([`OutboundPolicy::check_url`]),
/// https to a public host outside development; a DNS name is checked again by the addresses it
/// resolves to when a delivery connects.
pub fn check_target(url: &str, development: bool) -> std::result::Result<(), String> {
    let policy = if development {
        OutboundPolicy::development()
    } else {
        OutboundPolicy::production()
    };
    policy
        .check_url(url)
        .map(|_| ())
        .map_err(|e| format!("a webhook URL {e}"))
}

/// A webhook as its tenant admins see it (never the secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookInfo {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub verified: bool,
    pub created_at: i64,
    /// When the last challenge was sent, and why it failed (absent after a success).
    pub challenge_at: Option<i64>,
    pub challenge_error: Option<String>,
}

impl From<&WebhookRecord> for WebhookInfo {
    fn from(w: &WebhookRecord) -> Self {
        WebhookInfo {
            id: w.id.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            verified: w.verified_at.is_some(),
            created_at: w.created_at,
            challenge_at: None,
            challenge_error: None,
        }
    }
}

/// A webhook as shown: with its last challenge's outcome.
async fn info(state: &ServiceContext, w: &WebhookRecord) -> Result<WebhookInfo> {
    let mut info = WebhookInfo::from(w);
    if let Some((at, error)) = state.store.webhook_challenge(&w.id).await? {
        info.challenge_at = Some(at);
        info.challenge_error = error;
    }
    Ok(info)
}

/// A registered webhook with its secret, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookInfo,
    pub secret: String,
}

/// How long a rotated-out secret keeps signing next to the new one.
pub const ROTATION_OVERLAP_SECS: i64 = 24 * 3600;

/// The signature header of `body` at `now`: the current secret's `v1`, and while a rotation
/// overlaps, the previous secret's `v1` after it (a receiver accepts the request if any `v1`
/// verifies under a secret it holds).
async fn signature(
    state: &ServiceContext,
    webhook: &WebhookRecord,
    secret: &str,
    now: i64,
    body: &str,
) -> String {
    let mut header = sign(secret, now, body);
    let previous = match state.store.webhook_previous_secret(&webhook.id, now).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a webhook's previous secret");
            None
        }
    };
    if let Some((sealed, _)) = previous {
        let opened = state
            .sealer
            .open(&webhook.id, &sealed)
            .ok()
            .and_then(|p| String::from_utf8(p).ok());
        if let Some(old) = opened {
            if let Some((_, v1)) = sign(&old, now, body).split_once(",v1=") {
                header.push_str(",v1=");
                header.push_str(v1);
            }
        }
    }
    header
}

/// A new signing secret, shown once; the old one keeps signing next to it for
/// [`ROTATION_OVERLAP_SECS`], so receivers can switch without losing a delivery. Audited.
pub async fn rotate_secret(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    webhook_id: &str,
) -> Result<RotatedSecret> {
    let webhook = tenant_webhook(state, actor, tenant_id, webhook_id).await?;
    let secret = crate::tenancy::random_secret(state)?;
    let sealed = state
        .sealer
        .seal(&webhook.id, secret.as_bytes())
        .map_err(|e| TenancyError::Invalid(e.to_string()))?;
    let until = state.clock.now().as_secs() + ROTATION_OVERLAP_SECS;
    state
        .store
        .rotate_webhook_secret(&webhook.id, &sealed, until)
        .await?;
    audit(
        state,
        actor,
        "webhook.secret_rotated",
        Some(tenant_id),
        Some(&webhook.id),
        serde_json::json!({ "previous_signs_until": until }),
    )
    .await;
    Ok(RotatedSecret {
        secret,
        previous_signs_until: until,
    })
}

/// A rotated webhook secret, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    pub secret: String,
    /// Until then (Unix seconds) deliveries carry a second `v1` under the previous secret.
    pub previous_signs_until: i64,
}

fn open_secret(state: &ServiceContext, webhook: &WebhookRecord) -> Option<String> {
    let plain = state
        .sealer
        .open(&webhook.id, &webhook.secret_sealed)
        .ok()?;
    String::from_utf8(plain).ok()
}

/// Registers a webhook and sends it the challenge; it receives events once it has answered.
pub async fn create(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    url: &str,
    events: &[String],
) -> Result<CreatedWebhook> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    if tenant.status != TenantStatus::Active {
        return Err(TenancyError::Conflict(
            "only an active tenant can register webhooks".into(),
        ));
    }
    validate_redirect_uri(url)
        .map_err(|e| TenancyError::Invalid(format!("webhook URL {url} {e}")))?;
    state
        .http
        .policy()
        .check_url(url)
        .map_err(|e| TenancyError::Invalid(format!("a webhook URL {e}")))?;
    checked_events(events)?;
    let id = new_id(state, "whk");
    let secret = crate::tenancy::random_secret(state)?;
    let sealed = state
        .sealer
        .seal(&id, secret.as_bytes())
        .map_err(|e| TenancyError::Invalid(e.to_string()))?;
    let record = WebhookRecord {
        id,
        tenant_id: tenant.id.clone(),
        url: url.to_string(),
        events: events.to_vec(),
        secret_sealed: sealed,
        verified_at: None,
        created_at: state.clock.now().as_secs(),
        created_by: actor.audit_name(),
    };
    state.store.insert_webhook(&record).await?;
    audit(
        state,
        actor,
        "webhook.created",
        Some(&tenant.id),
        Some(&record.id),
        serde_json::json!({ "url": record.url, "events": events }),
    )
    .await;
    let failure = verify(state, &record, &secret).await;
    let mut shown = info(state, &record).await?;
    shown.verified = failure.is_none();
    Ok(CreatedWebhook {
        webhook: shown,
        secret,
    })
}

/// Sends the challenge again (after fixing the endpoint): `Ok(None)` when it was answered,
/// `Ok(Some(reason))` with why not (also kept for the webhook's page).
pub async fn reverify(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    webhook_id: &str,
) -> Result<Option<String>> {
    let webhook = tenant_webhook(state, actor, tenant_id, webhook_id).await?;
    let secret = open_secret(state, &webhook)
        .ok_or_else(|| TenancyError::Invalid("the webhook's secret cannot be read".into()))?;
    Ok(verify(state, &webhook, &secret).await)
}

/// The challenge: a signed `{"type":"challenge","challenge":"…"}`; the endpoint answers 2xx
/// with `{"challenge":"…"}` carrying the same value. `None` when it did, otherwise why not;
/// the outcome is stored with the webhook either way.
async fn verify(state: &ServiceContext, webhook: &WebhookRecord, secret: &str) -> Option<String> {
    let failure = challenge(state, webhook, secret).await;
    let now = state.clock.now().as_secs();
    if let Err(e) = state
        .store
        .record_webhook_challenge(&webhook.id, now, failure.as_deref())
        .await
    {
        tracing::error!(error = %e, "cannot record a webhook challenge");
    }
    failure
}

async fn challenge(
    state: &ServiceContext,
    webhook: &WebhookRecord,
    secret: &str,
) -> Option<String> {
    let Ok(challenge) = Secrets::random_token() else {
        return Some("no randomness for the challenge".into());
    };
    let body = serde_json::json!({ "type": "challenge", "challenge": challenge }).to_string();
    let now = state.clock.now().as_secs();
    let signed = signature(state, webhook, secret, now, &body).await;
    let answer = state
        .http
        .post(&webhook.url, |r| {
            r.header("content-type", "application/json")
                .header(SIGNATURE_HEADER, signed)
                .header(EVENT_HEADER, "challenge")
                .body(body)
        })
        .await;
    let failure = match answer {
        Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>() {
            Err(_) => Some(format!(
                "answered HTTP {} without a JSON body; answer {{\"challenge\": \"<the value sent>\"}}",
                r.status().as_u16()
            )),
            Ok(v) => match v.get("challenge").and_then(|c| c.as_str()) {
                Some(c) if c == challenge => None,
                Some(_) => Some("answered with another challenge value than the one sent".into()),
                None => Some("answered JSON without a \"challenge\" member".into()),
            },
        },
        Ok(r) => Some(format!(
            "answered HTTP {}; the challenge needs a 2xx answer",
            r.status().as_u16()
        )),
        Err(e) => Some(format!("could not be reached: {e}")),
    };
    match &failure {
        None => {
            if let Err(e) = state.store.mark_webhook_verified(&webhook.id, now).await {
                tracing::error!(error = %e, "cannot record a webhook verification");
                return Some("TechPass could not record the verification; try again".into());
            }
        }
        Some(reason) => {
            tracing::info!(webhook = %webhook.id, %reason, "webhook challenge failed")
        }
    }
    failure
}

async fn tenant_webhook(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    webhook_id: &str,
) -> Result<WebhookRecord> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    state
        .store
        .get_webhook(webhook_id)
        .await?
        .filter(|w| w.tenant_id == tenant.id)
        .ok_or(TenancyError::NotFound("webhook"))
}

pub async fn list(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
) -> Result<Vec<WebhookInfo>> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    let mut shown = Vec::new();
    for w in state.store.webhooks_of_tenant(&tenant.id).await? {
        shown.push(info(state, &w).await?);
    }
    Ok(shown)
}

fn checked_events(events: &[String]) -> Result<()> {
    if events.is_empty() || events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
        return Err(TenancyError::Invalid(format!(
            "events must be one or more of: {}",
            EVENTS.join(", ")
        )));
    }
    Ok(())
}

/// Changes the events the webhook receives (at least one), audited.
pub async fn update_events(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    webhook_id: &str,
    events: &[String],
) -> Result<WebhookInfo> {
    let webhook = tenant_webhook(state, actor, tenant_id, webhook_id).await?;
    checked_events(events)?;
    let mut events: Vec<String> = events.to_vec();
    events.sort();
    events.dedup();
    state.store.set_webhook_events(&webhook.id, &events).await?;
    audit(
        state,
        actor,
        "webhook.updated",
        Some(tenant_id),
        Some(&webhook.id),
        serde_json::json!({ "events": events, "before": webhook.events }),
    )
    .await;
    let updated = state
        .store
        .get_webhook(&webhook.id)
        .await?
        .ok_or(TenancyError::NotFound("webhook"))?;
    info(state, &updated).await
}

/// A new pending delivery of `event` to `webhook_id`, due now: the signed body is
/// `{"id", "type", "tenant_id", "created_at", "data"}`.
fn new_delivery(
    state: &ServiceContext,
    webhook_id: &str,
    tenant_id: &str,
    event: &str,
    data: &serde_json::Value,
    now: i64,
) -> DeliveryRecord {
    let id = new_id(state, "dlv");
    let payload = serde_json::json!({
        "id": id, "type": event, "tenant_id": tenant_id, "created_at": now, "data": data,
    })
    .to_string();
    DeliveryRecord {
        id,
        webhook_id: webhook_id.to_string(),
        event: event.to_string(),
        payload,
        created_at: now,
        next_attempt_at: now,
        attempts: 0,
        status: DeliveryStatus::Pending,
        last_status_code: None,
        last_error: None,
        delivered_at: None,
    }
}

/// What an attempt made at once came to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptOutcome {
    pub delivery_id: String,
    /// delivered | pending (retried later) | failed | queued (a job is sending it)
    pub status: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
}

/// Sends a signed `test` event to a verified webhook now, recorded in its delivery log like
/// any event (and retried like one if it fails).
pub async fn send_test(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    webhook_id: &str,
) -> Result<AttemptOutcome> {
    let webhook = tenant_webhook(state, actor, tenant_id, webhook_id).await?;
    if webhook.verified_at.is_none() {
        return Err(TenancyError::Conflict(
            "the webhook is not verified yet: send the challenge again once the endpoint answers it"
                .into(),
        ));
    }
    let now = state.clock.now().as_secs();
    let delivery = new_delivery(
        state,
        &webhook.id,
        tenant_id,
        TEST_EVENT,
        &serde_json::json!({}),
        now,
    );
    let id = delivery.id.clone();
    state.store.insert_delivery(&delivery).await?;
    audit(
        state,
        actor,
        "webhook.test_sent",
        Some(tenant_id),
        Some(&webhook.id),
        serde_json::json!({ "delivery": id }),
    )
    .await;
    attempt_now(state, &webhook, &id).await
}

/// Delivers a delivered or failed delivery again now (the same event and body, attempts
/// counted from zero), audited. A pending one is already on its way: `Conflict`.
pub async fn redeliver(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    webhook_id: &str,
    delivery_id: &str,
) -> Result<AttemptOutcome> {
    let webhook = tenant_webhook(state, actor, tenant_id, webhook_id).await?;
    let now = state.clock.now().as_secs();
    if !state
        .store
        .requeue_delivery(delivery_id, &webhook.id, now)
        .await?
    {
        return Err(TenancyError::Conflict(
            "there is no delivered or failed delivery with that id in this webhook's log (a pending one is still being sent)".into(),
        ));
    }
    audit(
        state,
        actor,
        "webhook.redelivered",
        Some(tenant_id),
        Some(&webhook.id),
        serde_json::json!({ "delivery": delivery_id }),
    )
    .await;
    attempt_now(state, &webhook, delivery_id).await
}

async fn attempt_now(
    state: &ServiceContext,
    webhook: &WebhookRecord,
    delivery_id: &str,
) -> Result<AttemptOutcome> {
    let now = state.clock.now().as_secs();
    let Some(d) = state
        .store
        .claim_delivery(delivery_id, now, now + LEASE_SECS)
        .await?
    else {
        return Ok(AttemptOutcome {
            delivery_id: delivery_id.to_string(),
            status: "queued".into(),
            status_code: None,
            error: None,
        });
    };
    Ok(attempt(state, webhook, &d, now).await?)
}

pub async fn delete(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    webhook_id: &str,
) -> Result<()> {
    let webhook = tenant_webhook(state, actor, tenant_id, webhook_id).await?;
    state.store.delete_webhook(&webhook.id).await?;
    audit(
        state,
        actor,
        "webhook.deleted",
        Some(tenant_id),
        Some(&webhook.id),
        serde_json::json!({ "url": webhook.url }),
    )
    .await;
    Ok(())
}

pub async fn deliveries(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    webhook_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<DeliveryRecord>> {
    let webhook = tenant_webhook(state, actor, tenant_id, webhook_id).await?;
    Ok(state
        .store
        .deliveries_of_webhook(&webhook.id, limit, offset)
        .await?)
}

/// Queues `event` for every verified webhook of the tenant subscribed to it. Never fails the
/// operation that caused it (a storage failure is logged).
pub async fn emit(state: &ServiceContext, tenant_id: &str, event: &str, data: serde_json::Value) {
    let webhooks = match state.store.webhooks_of_tenant(tenant_id).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, event, "cannot read webhooks");
            return;
        }
    };
    let now = state.clock.now().as_secs();
    for webhook in webhooks.iter().filter(|w| w.verified_at.is_some()) {
        if !webhook.events.iter().any(|e| e == event) {
            continue;
        }
        let delivery = new_delivery(state, &webhook.id, tenant_id, event, &data, now);
        if let Err(e) = state.store.insert_delivery(&delivery).await {
            tracing::error!(error = %e, event, "cannot queue a webhook delivery");
        }
    }
}

/// The scheduled job: sends due deliveries; returns how many were delivered.
pub async fn deliver_due(
    state: &ServiceContext,
) -> std::result::Result<usize, techpass_store::StoreError> {
    let now = state.clock.now().as_secs();
    let claimed = state
        .store
        .claim_deliveries(now, now + LEASE_SECS, 50)
        .await?;
    let mut delivered = 0;
    for d in claimed {
        let webhook = match state.store.get_webhook(&d.webhook_id).await? {
            Some(w) => w,
            None => continue,
        };
        if attempt(state, &webhook, &d, now).await?.status == DeliveryStatus::Delivered.as_str() {
            delivered += 1;
        }
    }
    Ok(delivered)
}

/// One attempt at a claimed delivery: signed, sent, its result recorded (delivered, pending
/// with the next attempt backed off, or failed after the last attempt).
async fn attempt(
    state: &ServiceContext,
    webhook: &WebhookRecord,
    d: &DeliveryRecord,
    now: i64,
) -> std::result::Result<AttemptOutcome, techpass_store::StoreError> {
    let outcome =
        |status: DeliveryStatus, status_code: Option<i64>, error: Option<String>| AttemptOutcome {
            delivery_id: d.id.clone(),
            status: status.as_str().into(),
            status_code,
            error,
        };
    let Some(secret) = open_secret(state, webhook) else {
        state
            .store
            .record_delivery_attempt(
                &d.id,
                DeliveryStatus::Failed,
                None,
                Some("secret unreadable"),
                now,
                now,
            )
            .await?;
        return Ok(outcome(
            DeliveryStatus::Failed,
            None,
            Some("secret unreadable".into()),
        ));
    };
    let signed = signature(state, webhook, &secret, now, &d.payload).await;
    let result = state
        .http
        .post(&webhook.url, |r| {
            r.header("content-type", "application/json")
                .header(SIGNATURE_HEADER, signed)
                .header(EVENT_HEADER, &d.event)
                .header(DELIVERY_HEADER, &d.id)
                .body(d.payload.clone())
        })
        .await;
    let (code, error) = match result {
        Ok(r) if r.status().is_success() => (Some(i64::from(r.status().as_u16())), None),
        Ok(r) => (
            Some(i64::from(r.status().as_u16())),
            Some(format!("answered {}", r.status())),
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    match error {
        None => {
            state
                .store
                .record_delivery_attempt(&d.id, DeliveryStatus::Delivered, code, None, now, now)
                .await?;
            Ok(outcome(DeliveryStatus::Delivered, code, None))
        }
        Some(error) => {
            let give_up = d.attempts >= MAX_ATTEMPTS;
            let next = now + 30 * (1_i64 << d.attempts.clamp(0, 12));
            let status = if give_up {
                DeliveryStatus::Failed
            } else {
                DeliveryStatus::Pending
            };
            state
                .store
                .record_delivery_attempt(&d.id, status, code, Some(&error), next, now)
                .await?;
            Ok(outcome(status, code, Some(error)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_targets() {
        for ok in [
            "https://hooks.example.gov.sg/techpass",
            "https://203.0.113.7/hook",
            "https://[2001:db8::1]/hook",
        ] {
            assert_eq!(check_target(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "http://hooks.example.gov.sg/techpass",
            "https://127.0.0.1/hook",
            "https://10.1.2.3/hook",
            "https://172.16.0.1/hook",
            "https://192.168.1.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/hook",
            "https://0.0.0.0/hook",
            "https://[::1]/hook",
            "https://[fd00::1]/hook",
            "https://[fe80::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://localhost/hook",
            "https://api.localhost./hook",
            "ftp://hooks.example.gov.sg/",
        ] {
            assert!(check_target(bad, false).is_err(), "{bad}");
        }
        // Development: a receiver on the laptop is the point.
        assert_eq!(check_target("http://127.0.0.1:9000/hook", true), Ok(()));
        assert!(check_target("ftp://127.0.0.1/", true).is_err());
    }
}
