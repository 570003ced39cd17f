//! What a page shows once: a new client secret, a webhook's signing secret. The action that
//! creates it stores what to show (sealed under the master key, for a few minutes, readable only
//! by the person who acted) and answers with a redirect to it (Post/Redirect/Get), so reloading
//! neither repeats the action nor shows the secret again.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use techpass_store::{RevealRecord, StoreError};

use crate::ServiceContext;

/// How long what is shown once waits to be read.
pub const LIFETIME_SECS: i64 = 300;
const PURPOSE: &str = "reveal";

/// A page of values shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shown {
    pub title: String,
    pub intro: String,
    pub values: Vec<ShownValue>,
    /// Where the person goes next (a local path).
    pub next_href: String,
    pub next_label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShownValue {
    pub label: String,
    /// The field's name (for a label's `for`, and tests).
    pub name: String,
    pub value: String,
    pub secret: bool,
}

/// Why what was to be shown could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum RevealError {
    #[error("cannot seal: {0}")]
    Seal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn kid(id_hash: &str) -> String {
    format!("{PURPOSE}:{id_hash}")
}

/// Stores `shown` for `owner` (a user id); returns the id to put in the reading's URL.
pub async fn stash(
    ctx: &ServiceContext,
    owner: &str,
    shown: &Shown,
) -> Result<String, RevealError> {
    let id = ctx
        .random
        .token()
        .map_err(|e| RevealError::Seal(e.to_string()))?;
    let id_hash = ctx.secrets.keyed_hash(PURPOSE, &id);
    let json = serde_json::to_vec(shown).map_err(|e| RevealError::Seal(e.to_string()))?;
    let sealed = ctx
        .sealer
        .seal(&kid(&id_hash), &json)
        .map_err(|e| RevealError::Seal(e.to_string()))?;
    let now = ctx.clock.now().as_secs();
    ctx.store
        .put_reveal(
            &RevealRecord {
                id_hash,
                owner: owner.to_string(),
                sealed: STANDARD.encode(sealed),
                expires_at: now + LIFETIME_SECS,
            },
            now,
        )
        .await?;
    Ok(id)
}

/// What `id` shows, once, to its owner; `None` for anyone else, a second time, or too late.
pub async fn take(
    ctx: &ServiceContext,
    owner: &str,
    id: &str,
) -> Result<Option<Shown>, StoreError> {
    let id_hash = ctx.secrets.keyed_hash(PURPOSE, id);
    let now = ctx.clock.now().as_secs();
    let Some(record) = ctx.store.take_reveal(&id_hash, owner, now).await? else {
        return Ok(None);
    };
    let opened = STANDARD
        .decode(&record.sealed)
        .ok()
        .and_then(|sealed| ctx.sealer.open(&kid(&record.id_hash), &sealed).ok())
        .and_then(|json| serde_json::from_slice(&json).ok());
    if opened.is_none() {
        tracing::error!("a stored reveal could not be opened");
    }
    Ok(opened)
}
