//! Bounded staleness against the upstream (issue 13 item 6; AZURE.md §8).
//!
//! A person disabled at Azure AD (or whose password was reset, or whose sessions were revoked)
//! must not keep getting tokens through TechPass for a whole SSO session or refresh lifetime.
//! So TechPass keeps the upstream's refresh token of each person and upstream (sealed under the
//! master key, bound to that person and upstream) and, when a TechPass refresh or an SSO reuse at
//! `/authorize` comes more than `upstream.reverify_after_secs` after the upstream last confirmed
//! the person, it refreshes at the upstream first:
//!
//! - accepted: the rotated refresh token (if any) and the time are stored; go on;
//! - `invalid_grant`: the person's sessions end everywhere (back-channel logout to their apps),
//!   every grant is revoked, their links are forgotten, `upstream.reverify_failed` is audited,
//!   and the request is refused;
//! - no usable answer: retried `upstream.reverify_retries` times, then allowed while within
//!   `upstream.reverify_grace_secs` of when the check became due (audited
//!   `upstream.reverify_unavailable`, outcome `allowed`), refused after (outcome `denied`).
//!
//! Without a stored refresh token (an upstream that issues none, i.e. `offline_access` not in its
//! scopes; a sign-in from before this existed, when the bound counts from the session's or
//! grant's authentication time) nothing can be asked, and once the bound has passed the request
//! is refused: the person signs in at the upstream again. That is the secure choice: the bound
//! holds whatever the upstream offers.
//!
//! One request at a time asks the upstream for a person (a claim in the database, on any
//! replica); another one due meanwhile goes on if the check has just succeeded or the grace
//! still runs, and is refused otherwise. The upstream's answer is taken as the proof; an ID
//! token in it is not read.

use std::time::Duration;

use serde_json::json;
use techpass_store::{AuditRecord, StoreError};
use techpass_upstream::RefreshError;

use crate::accounts::end_everything;
use crate::audit;
pub use crate::upstream_links::remember;
use crate::upstream_links::{open, seal};
use crate::ServiceContext;

/// Pause before each retry of an upstream that did not answer.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How long a claimed check ([`techpass_store::UpstreamLinkStore::claim_upstream_check`]) keeps
/// others from asking: longer than the connector's attempts take.
const CLAIM_SECS: i64 = 60;
/// How much of the upstream's error description goes into the audit log.
const DESCRIPTION_CHARS: usize = 300;

/// What the re-verification decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Confirmed within the bound (now or before): go on.
    Current,
    /// The check was due and the upstream gave no answer, but the grace has not run out: go on.
    WithinGrace,
    /// The upstream refused the person: everything of theirs has been ended. Refuse.
    Refused,
    /// Past the bound with no way to confirm (no answer past the grace, no refresh token, the
    /// upstream no longer configured): refuse; the person signs in at the upstream again.
    Unverifiable,
}

impl Verdict {
    /// Whether the request may go on.
    pub fn allows(self) -> bool {
        matches!(self, Verdict::Current | Verdict::WithinGrace)
    }
}

/// Re-verifies the person if the bound has passed (see the module). `upstream` prefers that
/// upstream's link (the SSO session's); otherwise the most recently confirmed one counts.
/// `authenticated_at` is when the person last proved themselves at an upstream, as the session
/// or grant records it: without any link the bound counts from then.
pub async fn check(
    ctx: &ServiceContext,
    user_id: &str,
    upstream: Option<&str>,
    authenticated_at: i64,
    request_id: Option<String>,
) -> Result<Verdict, StoreError> {
    let policy = &ctx.settings.upstream;
    let after = i64::try_from(policy.reverify_after_secs).unwrap_or(i64::MAX);
    let grace = i64::try_from(policy.reverify_grace_secs).unwrap_or(i64::MAX);
    let now = ctx.clock.now().as_secs();
    // Within the bound of the authentication itself nothing is due, whatever the links say:
    // the most recently confirmed link was confirmed then or later. (A preferred upstream's
    // link may be older than that, so it is always read.)
    if upstream.is_none() && now < authenticated_at.saturating_add(after) {
        return Ok(Verdict::Current);
    }
    let links = ctx.store.upstream_links_of_user(user_id).await?;
    let link = upstream
        .and_then(|u| links.iter().find(|l| l.upstream == u))
        .or_else(|| links.first());
    let Some(link) = link else {
        if now < authenticated_at.saturating_add(after) {
            return Ok(Verdict::Current);
        }
        let upstream = upstream.unwrap_or_default();
        unverifiable(ctx, user_id, upstream, "no_upstream_link", request_id).await;
        return Ok(Verdict::Unverifiable);
    };
    let due_at = link.last_verified_at.saturating_add(after);
    if now < due_at {
        return Ok(Verdict::Current);
    }
    let Some(connector) = ctx.upstreams.get(&link.upstream).map(|u| &u.connector) else {
        unverifiable(
            ctx,
            user_id,
            &link.upstream,
            "upstream_not_configured",
            request_id,
        )
        .await;
        return Ok(Verdict::Unverifiable);
    };
    if link.sealed_refresh_token.is_none() {
        unverifiable(
            ctx,
            user_id,
            &link.upstream,
            "no_upstream_refresh_token",
            request_id,
        )
        .await;
        return Ok(Verdict::Unverifiable);
    }
    let Some(token) = open(ctx, link) else {
        tracing::error!(upstream = %link.upstream, "a stored upstream refresh token could not be opened");
        unverifiable(
            ctx,
            user_id,
            &link.upstream,
            "upstream_token_unreadable",
            request_id,
        )
        .await;
        return Ok(Verdict::Unverifiable);
    };
    // One check at a time per person and upstream, on every replica: a second request must not
    // present a refresh token the first is rotating (a strict upstream would take that for
    // theft and revoke the person's grant there).
    let claimed = ctx
        .store
        .claim_upstream_check(
            user_id,
            &link.upstream,
            link.last_verified_at,
            now,
            now.saturating_add(CLAIM_SECS),
        )
        .await?;
    if !claimed {
        let fresh = ctx
            .store
            .upstream_links_of_user(user_id)
            .await?
            .into_iter()
            .find(|l| l.upstream == link.upstream);
        return Ok(match fresh {
            // Verified meanwhile by the other request.
            Some(l) if now < l.last_verified_at.saturating_add(after) => Verdict::Current,
            // Still being checked: as an unanswered check would be.
            Some(_) if now < due_at.saturating_add(grace) => Verdict::WithinGrace,
            // Refused meanwhile (the link is gone), or the grace is over.
            _ => Verdict::Unverifiable,
        });
    }
    let mut attempt = 0;
    let outcome = loop {
        match connector.refresh(&token).await {
            Err(RefreshError::Unavailable(e)) if attempt < policy.reverify_retries => {
                tracing::warn!(upstream = %link.upstream, attempt, error = %e, "re-verification got no answer; retrying");
                attempt += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            other => break other,
        }
    };
    match outcome {
        Ok(refreshed) => {
            let sealed = refreshed
                .refresh_token
                .as_deref()
                .and_then(|t| seal(ctx, user_id, &link.upstream, t));
            ctx.store
                .upstream_link_verified(user_id, &link.upstream, sealed.as_deref(), now)
                .await?;
            Ok(Verdict::Current)
        }
        Err(RefreshError::Refused { error, description }) => {
            let ended = end_everything(ctx, user_id).await?;
            ctx.store.delete_upstream_links_of_user(user_id).await?;
            tracing::warn!(upstream = %link.upstream, %error, "the upstream refused the person at re-verification; their sessions and grants are ended");
            audit(
                ctx,
                AuditRecord {
                    at: now,
                    event: "upstream.reverify_failed".into(),
                    outcome: "denied".into(),
                    reason: Some("upstream_refused".into()),
                    subject: Some(user_id.to_string()),
                    upstream: Some(link.upstream.clone()),
                    request_id,
                    details: json!({
                        "error": error,
                        "description": description.chars().take(DESCRIPTION_CHARS).collect::<String>(),
                        "sessions_ended": ended.sessions_ended,
                        "grants_revoked": ended.grants_revoked,
                    })
                    .to_string(),
                    ..AuditRecord::default()
                },
            )
            .await;
            Ok(Verdict::Refused)
        }
        Err(RefreshError::Unavailable(e)) => {
            ctx.store
                .upstream_link_failed(user_id, &link.upstream)
                .await?;
            let within = now < due_at.saturating_add(grace);
            audit(
                ctx,
                AuditRecord {
                    at: now,
                    event: "upstream.reverify_unavailable".into(),
                    outcome: if within { "allowed" } else { "denied" }.into(),
                    reason: Some("upstream_unavailable".into()),
                    subject: Some(user_id.to_string()),
                    upstream: Some(link.upstream.clone()),
                    request_id,
                    details: json!({
                        "error": e.chars().take(DESCRIPTION_CHARS).collect::<String>(),
                        "attempts": attempt + 1,
                        "due_at": due_at,
                        "grace_ends_at": due_at.saturating_add(grace),
                    })
                    .to_string(),
                    ..AuditRecord::default()
                },
            )
            .await;
            Ok(if within {
                Verdict::WithinGrace
            } else {
                Verdict::Unverifiable
            })
        }
    }
}

async fn unverifiable(
    ctx: &ServiceContext,
    user_id: &str,
    upstream: &str,
    reason: &str,
    request_id: Option<String>,
) {
    audit(
        ctx,
        AuditRecord {
            at: ctx.clock.now().as_secs(),
            event: "upstream.reverify_failed".into(),
            outcome: "denied".into(),
            reason: Some(reason.to_string()),
            subject: Some(user_id.to_string()),
            upstream: (!upstream.is_empty()).then(|| upstream.to_string()),
            request_id,
            details: "{}".into(),
            ..AuditRecord::default()
        },
    )
    .await;
}
