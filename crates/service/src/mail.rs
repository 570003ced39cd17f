//! Email: messages are queued in the outbox (in the database, by the request that decides to
//! send them) and delivered by the scheduled job of any replica over SMTP (`lettre`). Without
//! `mail.smtp_url` (development) they stay in the outbox, where the development outbox page
//! shows them. Bodies are plain text; they may contain an invitation link, so they are never
//! logged.

use techpass_store::{EmailRecord, StoreError};

pub use crate::mailer::Smtp;
use crate::random::new_id;
use crate::ServiceContext;

/// How many messages one job run sends at most, and how long a claimed message is leased.
const BATCH: i64 = 50;
const LEASE_SECS: i64 = 120;
/// Attempts before a message is given up (back-off doubles from a minute).
const MAX_ATTEMPTS: i64 = 8;

/// An email to queue.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// What caused it, for the outbox and the logs.
    pub kind: &'static str,
}

/// Queues a message; it is sent by the next job run.
pub async fn queue(ctx: &ServiceContext, email: Email) -> Result<(), StoreError> {
    let now = ctx.clock.now().as_secs();
    ctx.store
        .enqueue_email(&EmailRecord {
            id: new_id(ctx.random.as_ref(), "mail_"),
            recipient: email.to,
            subject: email.subject,
            body: email.body,
            kind: email.kind.to_string(),
            created_at: now,
            next_attempt_at: now,
            attempts: 0,
            sent_at: None,
            last_error: None,
        })
        .await
}

/// As [`queue`], logging instead of failing: for notifications that follow an operation that
/// has already happened.
pub async fn notify(ctx: &ServiceContext, email: Email) {
    let kind = email.kind;
    if let Err(e) = queue(ctx, email).await {
        tracing::error!(error = %e, kind, "could not queue an email");
    }
}

/// Sends what is due, if a relay is configured; returns how many were sent.
pub async fn deliver_due(ctx: &ServiceContext) -> Result<usize, StoreError> {
    let Some(smtp) = &ctx.mailer else {
        return Ok(0);
    };
    let now = ctx.clock.now().as_secs();
    let claimed = ctx.store.claim_emails(now, now + LEASE_SECS, BATCH).await?;
    let mut sent = 0;
    for email in claimed {
        match smtp.send(&email).await {
            Ok(()) => {
                ctx.store.mark_email_sent(&email.id, now).await?;
                tracing::info!(id = %email.id, kind = %email.kind, "email sent");
                sent += 1;
            }
            Err(error) => {
                let next = (email.attempts < MAX_ATTEMPTS)
                    .then(|| now + 60 * (1_i64 << email.attempts.clamp(0, 10)));
                tracing::warn!(id = %email.id, kind = %email.kind, attempts = email.attempts, %error, gave_up = next.is_none(), "email not sent");
                ctx.store.mark_email_failed(&email.id, &error, next).await?;
            }
        }
    }
    Ok(sent)
}

/// The outbox, newest first (the development outbox page).
pub async fn list(
    ctx: &ServiceContext,
    limit: i64,
    offset: i64,
) -> Result<Vec<EmailRecord>, StoreError> {
    ctx.store.list_emails(None, limit, offset).await
}
