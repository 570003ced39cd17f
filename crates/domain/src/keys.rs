//! The signing-key schedule: which key signs, which keys are published, when a rotation may start.
//!
//! Keys form one sequence ordered by `generation`. A key is published as soon as it exists (so
//! relying parties can cache it before it is used), signs from `activates_at` until its successor
//! activates, and stays published after that until every token it signed has expired. Two replicas
//! rotating at once both ask for the same next generation; the store accepts only one of them.
//! Nothing here does IO: the caller supplies the keys and `now`.

use crate::Timestamp;

/// What the schedule needs to know about one stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMeta {
    pub kid: String,
    pub generation: i64,
    pub activates_at: Timestamp,
}

/// Where a key stands at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published ahead of use; not signing yet.
    Pending,
    /// The one key that signs.
    Active,
    /// Superseded at `since`; still published so that tokens it signed verify until `until`.
    Retired { since: Timestamp, until: Timestamp },
    /// Superseded long enough that no token it signed is still valid; may be deleted.
    Expired,
}

impl KeyState {
    pub fn is_published(self) -> bool {
        !matches!(self, KeyState::Expired)
    }

    pub fn label(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired { .. } => "retired",
            KeyState::Expired => "expired",
        }
    }
}

/// The state of every key at `now`, in the order given. `keys` must be sorted by generation
/// (the store's contract); `max_token_lifetime` is the longest lifetime of any token a key signs.
///
/// A key's retirement is the activation of its immediate successor. When several keys have
/// activated, only the newest is active, so there is never more than one active key.
pub fn key_states(keys: &[KeyMeta], now: Timestamp, max_token_lifetime: i64) -> Vec<KeyState> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            if now < key.activates_at {
                return KeyState::Pending;
            }
            match keys.get(i + 1) {
                Some(next) if next.activates_at <= now => {
                    let until = next.activates_at.plus(max_token_lifetime);
                    if now < until {
                        KeyState::Retired {
                            since: next.activates_at,
                            until,
                        }
                    } else {
                        KeyState::Expired
                    }
                }
                _ => KeyState::Active,
            }
        })
        .collect()
}

/// Why a rotation was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationRefused {
    #[error("key {kid} is already published and will start signing at {activates_at}; rotate again after that, or force it")]
    AlreadyPending {
        kid: String,
        activates_at: Timestamp,
    },
}

/// Generation and activation time of the key a rotation creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPlan {
    pub generation: i64,
    pub activates_at: Timestamp,
}

/// Plans the next key. With no keys at all (first start) the key signs at once: nobody can hold a
/// token or a cached key set yet. Otherwise it is published `prepublication_delay` seconds before
/// it signs. A rotation while another key is still pending is refused unless `force` is set, so
/// two operators (or two replicas) rotating minutes apart do not skip a key. Activation times never
/// go backwards along the sequence.
pub fn plan_rotation(
    keys: &[KeyMeta],
    now: Timestamp,
    prepublication_delay: i64,
    force: bool,
) -> Result<RotationPlan, RotationRefused> {
    let Some(last) = keys.last() else {
        return Ok(RotationPlan {
            generation: 1,
            activates_at: now,
        });
    };
    if !force && now < last.activates_at {
        return Err(RotationRefused::AlreadyPending {
            kid: last.kid.clone(),
            activates_at: last.activates_at,
        });
    }
    Ok(RotationPlan {
        generation: last.generation + 1,
        activates_at: std::cmp::max(now.plus(prepublication_delay), last.activates_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(generation: i64, activates_at: i64) -> KeyMeta {
        KeyMeta {
            kid: format!("k{generation}"),
            generation,
            activates_at: Timestamp(activates_at),
        }
    }

    const TTL: i64 = 600;
    const DELAY: i64 = 3_600;

    #[test]
    fn first_key_signs_immediately() {
        let plan = plan_rotation(&[], Timestamp(100), DELAY, false).unwrap();
        assert_eq!(plan.generation, 1);
        assert_eq!(plan.activates_at, Timestamp(100));
    }

    #[test]
    fn rotated_key_is_published_before_it_signs_and_old_key_outlives_its_tokens() {
        let mut keys = vec![key(1, 0)];
        let plan = plan_rotation(&keys, Timestamp(1_000), DELAY, false).unwrap();
        assert_eq!(plan.activates_at, Timestamp(1_000 + DELAY));
        keys.push(key(plan.generation, plan.activates_at.0));

        // During pre-publication the old key still signs; both are published.
        assert_eq!(
            key_states(&keys, Timestamp(1_001), TTL),
            vec![KeyState::Active, KeyState::Pending]
        );
        // The switch happens exactly at activation.
        assert_eq!(
            key_states(&keys, Timestamp(1_000 + DELAY), TTL),
            vec![
                KeyState::Retired {
                    since: Timestamp(1_000 + DELAY),
                    until: Timestamp(1_000 + DELAY + TTL)
                },
                KeyState::Active
            ]
        );
        // Published until its last token expired, then not any more.
        let last_second = Timestamp(1_000 + DELAY + TTL - 1);
        assert!(key_states(&keys, last_second, TTL)[0].is_published());
        let gone = Timestamp(1_000 + DELAY + TTL);
        assert_eq!(key_states(&keys, gone, TTL)[0], KeyState::Expired);
        assert!(!key_states(&keys, gone, TTL)[0].is_published());
    }

    #[test]
    fn never_two_active_keys() {
        let keys = vec![key(1, 0), key(2, 10), key(3, 20), key(4, 30)];
        for now in 0..40 {
            let active = key_states(&keys, Timestamp(now), TTL)
                .into_iter()
                .filter(|s| *s == KeyState::Active)
                .count();
            assert_eq!(active, 1, "at {now}");
        }
    }

    #[test]
    fn second_rotation_while_pending_is_refused_unless_forced() {
        let keys = vec![key(1, 0), key(2, 5_000)];
        let err = plan_rotation(&keys, Timestamp(1_000), DELAY, false).unwrap_err();
        assert!(matches!(err, RotationRefused::AlreadyPending { ref kid, .. } if kid == "k2"));
        let forced = plan_rotation(&keys, Timestamp(1_000), 10, true).unwrap();
        // Never activates before the key it follows.
        assert_eq!(forced.generation, 3);
        assert_eq!(forced.activates_at, Timestamp(5_000));
    }
}
