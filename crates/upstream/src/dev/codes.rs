//! Pending authorization codes, in memory, keyed by the SHA-256 of the code so the raw value
//! exists only in the redirect that hands it out. A code is consumed atomically on first use; a
//! tombstone remembers it so that a replay is told apart from a code never issued.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use aws_lc_rs::digest::{digest, SHA256};

use super::DevPerson;

/// RFC 6749 §4.1.2 recommends at most ten minutes; Azure AD's codes live about five.
pub(super) const CODE_LIFETIME: i64 = 300;

/// How long a used or expired code is remembered, to answer "already redeemed" or "expired".
const TOMBSTONE_LIFETIME: i64 = 3600;

/// What the authorization step granted, bound to the code.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub(super) person: &'static DevPerson,
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    /// The tenant whose authorization endpoint issued the code.
    pub(super) tenant: &'static str,
    pub(super) nonce: Option<String>,
    /// S256 challenge (RFC 7636 §4.2), when one was sent.
    pub(super) code_challenge: Option<String>,
    pub(super) scope: String,
    pub(super) expires_at: i64,
}

#[derive(Debug)]
enum Slot {
    Live(Grant),
    Redeemed { forget_at: i64 },
}

/// The outcome of presenting a code.
#[derive(Debug)]
pub(super) enum Redemption {
    Granted(Grant),
    Expired,
    AlreadyRedeemed,
    Unknown,
}

#[derive(Debug, Default)]
pub(super) struct CodeStore(Mutex<HashMap<[u8; 32], Slot>>);

impl CodeStore {
    pub(super) fn insert(&self, code: &str, grant: Grant, now: i64) {
        let mut slots = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|_, slot| match slot {
            Slot::Live(grant) => now <= grant.expires_at + TOMBSTONE_LIFETIME,
            Slot::Redeemed { forget_at } => now <= *forget_at,
        });
        slots.insert(hash(code), Slot::Live(grant));
    }

    /// Takes the code: whatever the outcome, it cannot be redeemed again.
    pub(super) fn redeem(&self, code: &str, now: i64) -> Redemption {
        let mut slots = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = slots.get_mut(&hash(code)) else {
            return Redemption::Unknown;
        };
        let tombstone = Slot::Redeemed {
            forget_at: now + TOMBSTONE_LIFETIME,
        };
        match std::mem::replace(slot, tombstone) {
            Slot::Redeemed { forget_at } => {
                *slot = Slot::Redeemed { forget_at };
                Redemption::AlreadyRedeemed
            }
            Slot::Live(grant) if now > grant.expires_at => Redemption::Expired,
            Slot::Live(grant) => Redemption::Granted(grant),
        }
    }
}

fn hash(code: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, code.as_bytes()).as_ref());
    out
}
