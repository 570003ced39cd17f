//! SSO session lifetime rules: an idle timeout and an absolute lifetime.

use crate::Timestamp;

/// The two limits of a session, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle_timeout: i64,
    pub max_lifetime: i64,
}

/// Whether a session created at `created_at` (absolute end `expires_at`), last active at
/// `last_seen_at`, is still valid at `now`.
pub fn session_is_live(
    limits: SessionLimits,
    expires_at: Timestamp,
    last_seen_at: Timestamp,
    now: Timestamp,
) -> bool {
    now < expires_at && now < last_seen_at.plus(limits.idle_timeout)
}

/// Whether a sign-in that happened at `auth_time` is too old for a request's `max_age`
/// (OpenID Connect Core §3.1.2.1), which then requires a fresh sign-in.
pub fn needs_reauthentication(auth_time: Timestamp, max_age: Option<i64>, now: Timestamp) -> bool {
    max_age.is_some_and(|max| now > auth_time.plus(max.max(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SessionLimits = SessionLimits {
        idle_timeout: 100,
        max_lifetime: 1_000,
    };

    #[test]
    fn idle_and_absolute_limits() {
        let end = Timestamp(1_000);
        assert!(session_is_live(LIMITS, end, Timestamp(0), Timestamp(99)));
        assert!(
            !session_is_live(LIMITS, end, Timestamp(0), Timestamp(100)),
            "idle"
        );
        assert!(session_is_live(LIMITS, end, Timestamp(950), Timestamp(999)));
        assert!(
            !session_is_live(LIMITS, end, Timestamp(950), Timestamp(1_000)),
            "absolute"
        );
    }

    #[test]
    fn max_age() {
        assert!(!needs_reauthentication(
            Timestamp(100),
            None,
            Timestamp(10_000)
        ));
        assert!(!needs_reauthentication(
            Timestamp(100),
            Some(60),
            Timestamp(160)
        ));
        assert!(needs_reauthentication(
            Timestamp(100),
            Some(60),
            Timestamp(161)
        ));
        assert!(needs_reauthentication(
            Timestamp(100),
            Some(0),
            Timestamp(101)
        ));
    }
}
