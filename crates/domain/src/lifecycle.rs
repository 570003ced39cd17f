//! The account lifecycle: what the scheduled job does to one account now. Pure: the job loads
//! accounts, asks [`next_step`], and applies the answer with a compare-and-set on the status,
//! so replicas running the job at once agree on one outcome.
//!
//! Rules (TechPass's user lifecycle, defaults configurable): an account never used to sign in to
//! an app within 30 days of its creation is terminated; no sign-in for 90 days disables it and
//! 180 days terminates it; a vendor past the access end date is expired. A reminder goes out a
//! configurable number of days before each.

use crate::gate::UserStatus;
use crate::Timestamp;

const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecyclePolicy {
    pub never_used_terminate_secs: i64,
    pub inactive_disable_secs: i64,
    pub inactive_terminate_secs: i64,
    /// How long before each transition the reminder is sent (0: none).
    pub reminder_secs: i64,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        LifecyclePolicy {
            never_used_terminate_secs: 30 * DAY,
            inactive_disable_secs: 90 * DAY,
            inactive_terminate_secs: 180 * DAY,
            reminder_secs: 7 * DAY,
        }
    }
}

/// What the job knows of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountFacts {
    pub status: UserStatus,
    pub exempt: bool,
    pub created_at: Timestamp,
    /// The last upstream sign-in through TechPass.
    pub last_signin_at: Timestamp,
    /// The last time an app signed the person in; `None`: never.
    pub app_signin_at: Option<Timestamp>,
    pub access_ends_at: Option<Timestamp>,
    /// When a platform admin last re-enabled the account: inactivity counts from then at the
    /// earliest, so the next run does not disable it again at once.
    pub enabled_at: Option<Timestamp>,
}

/// Why the lifecycle acts, as recorded in the status reason and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleReason {
    NeverUsed,
    Inactive,
    AccessEnded,
}

impl LifecycleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleReason::NeverUsed => "never_signed_in",
            LifecycleReason::Inactive => "inactive",
            LifecycleReason::AccessEnded => "access_ended",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleStep {
    /// Move from `from` to `to`.
    Transition {
        from: UserStatus,
        to: UserStatus,
        reason: LifecycleReason,
    },
    /// Tell the person that `to` happens at `due_at` unless they sign in (or, for an access
    /// end, unless their project manager extends it).
    Remind {
        to: UserStatus,
        reason: LifecycleReason,
        due_at: Timestamp,
    },
}

/// The one thing the lifecycle does to this account now, if anything. Exempt accounts and
/// accounts that are not in use (unregistered, suspended, expired, terminated) are left alone,
/// except that a disabled account still moves on to terminated.
pub fn next_step(
    facts: &AccountFacts,
    policy: &LifecyclePolicy,
    now: Timestamp,
) -> Option<LifecycleStep> {
    if facts.exempt {
        return None;
    }
    let live = matches!(facts.status, UserStatus::Registered | UserStatus::Active);
    if !live && facts.status != UserStatus::Disabled {
        return None;
    }
    let mut last_use = match facts.app_signin_at {
        Some(app) => app.max(facts.last_signin_at),
        None => facts.last_signin_at,
    };
    let mut fresh_start = facts.created_at;
    if let Some(enabled) = facts.enabled_at {
        last_use = last_use.max(enabled);
        fresh_start = fresh_start.max(enabled);
    }
    // Candidate transitions with their due times; the earliest due one that has come wins.
    let mut candidates: Vec<(Timestamp, UserStatus, LifecycleReason)> = Vec::new();
    if live {
        if let Some(end) = facts.access_ends_at {
            candidates.push((end, UserStatus::Expired, LifecycleReason::AccessEnded));
        }
        if facts.app_signin_at.is_none() {
            candidates.push((
                fresh_start.plus(policy.never_used_terminate_secs),
                UserStatus::Terminated,
                LifecycleReason::NeverUsed,
            ));
        }
        candidates.push((
            last_use.plus(policy.inactive_disable_secs),
            UserStatus::Disabled,
            LifecycleReason::Inactive,
        ));
    }
    candidates.push((
        last_use.plus(policy.inactive_terminate_secs),
        UserStatus::Terminated,
        LifecycleReason::Inactive,
    ));
    candidates.sort_by_key(|(due, _, _)| *due);
    let (due, to, reason) = *candidates.first()?;
    if now >= due {
        return Some(LifecycleStep::Transition {
            from: facts.status,
            to,
            reason,
        });
    }
    // A disabled account is not reminded again before termination: it cannot sign in anyway.
    if live && policy.reminder_secs > 0 && now >= due.plus(-policy.reminder_secs) {
        return Some(LifecycleStep::Remind {
            to,
            reason,
            due_at: due,
        });
    }
    None
}

/// The status a `disabled` account returns to when a platform admin re-enables it: an account
/// that never registered is `unregistered` again; a vendor whose access end date has passed is
/// `expired` (re-enabling does not extend an invitation); other vendors are `active` and
/// officers `registered`.
pub fn re_enabled_status(
    registered: bool,
    vendor: bool,
    access_ends_at: Option<Timestamp>,
    now: Timestamp,
) -> UserStatus {
    if !registered {
        UserStatus::Unregistered
    } else if vendor {
        match access_ends_at {
            Some(end) if now >= end => UserStatus::Expired,
            _ => UserStatus::Active,
        }
    } else {
        UserStatus::Registered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleReason::*;
    use UserStatus::*;

    const T0: Timestamp = Timestamp(1_700_000_000);

    fn facts(status: UserStatus) -> AccountFacts {
        AccountFacts {
            status,
            exempt: false,
            created_at: T0,
            last_signin_at: T0,
            app_signin_at: Some(T0),
            access_ends_at: None,
            enabled_at: None,
        }
    }

    fn at(days: i64) -> Timestamp {
        T0.plus(days * DAY)
    }

    fn step(f: AccountFacts, days: i64) -> Option<LifecycleStep> {
        next_step(&f, &LifecyclePolicy::default(), at(days))
    }

    fn transition(
        from: UserStatus,
        to: UserStatus,
        reason: LifecycleReason,
    ) -> Option<LifecycleStep> {
        Some(LifecycleStep::Transition { from, to, reason })
    }

    fn remind(to: UserStatus, reason: LifecycleReason, due_days: i64) -> Option<LifecycleStep> {
        Some(LifecycleStep::Remind {
            to,
            reason,
            due_at: at(due_days),
        })
    }

    #[test]
    fn inactivity_disables_then_terminates() {
        assert_eq!(step(facts(Registered), 10), None);
        assert_eq!(step(facts(Registered), 83), remind(Disabled, Inactive, 90));
        assert_eq!(
            step(facts(Registered), 90),
            transition(Registered, Disabled, Inactive)
        );
        assert_eq!(
            step(facts(Active), 120),
            transition(Active, Disabled, Inactive)
        );
        assert_eq!(step(facts(Disabled), 120), None);
        assert_eq!(
            step(facts(Disabled), 179),
            None,
            "no reminder once disabled"
        );
        assert_eq!(
            step(facts(Disabled), 180),
            transition(Disabled, Terminated, Inactive)
        );
    }

    #[test]
    fn never_used_accounts_are_terminated_after_30_days() {
        let f = AccountFacts {
            app_signin_at: None,
            ..facts(Registered)
        };
        assert_eq!(step(f, 22), None);
        assert_eq!(step(f, 23), remind(Terminated, NeverUsed, 30));
        assert_eq!(step(f, 30), transition(Registered, Terminated, NeverUsed));
    }

    #[test]
    fn a_vendor_past_the_access_end_is_expired() {
        let f = AccountFacts {
            access_ends_at: Some(at(20)),
            ..facts(Active)
        };
        assert_eq!(step(f, 12), None);
        assert_eq!(step(f, 13), remind(Expired, AccessEnded, 20));
        assert_eq!(step(f, 20), transition(Active, Expired, AccessEnded));
        // Long past both dates: the earliest due transition is the one taken.
        assert_eq!(step(f, 400), transition(Active, Expired, AccessEnded));
    }

    #[test]
    fn recent_use_resets_the_clock() {
        let f = AccountFacts {
            last_signin_at: at(60),
            ..facts(Registered)
        };
        assert_eq!(step(f, 100), None);
        let f = AccountFacts {
            app_signin_at: Some(at(60)),
            ..facts(Registered)
        };
        assert_eq!(step(f, 149), remind(Disabled, Inactive, 150));
        assert_eq!(step(f, 150), transition(Registered, Disabled, Inactive));
    }

    #[test]
    fn exempt_and_out_of_use_accounts_are_left_alone() {
        let exempt = AccountFacts {
            exempt: true,
            app_signin_at: None,
            ..facts(Registered)
        };
        assert_eq!(step(exempt, 1000), None);
        for s in [Unregistered, Suspended, Expired, Terminated] {
            assert_eq!(step(facts(s), 1000), None, "{s:?}");
        }
    }

    #[test]
    fn re_enabling_restarts_the_clocks() {
        let f = AccountFacts {
            enabled_at: Some(at(200)),
            ..facts(Registered)
        };
        assert_eq!(step(f, 201), None, "not disabled again at once");
        assert_eq!(step(f, 290), transition(Registered, Disabled, Inactive));
        let never_used = AccountFacts {
            app_signin_at: None,
            enabled_at: Some(at(200)),
            ..facts(Registered)
        };
        assert_eq!(step(never_used, 222), None);
        assert_eq!(step(never_used, 223), remind(Terminated, NeverUsed, 230));
        assert_eq!(
            step(never_used, 230),
            transition(Registered, Terminated, NeverUsed)
        );
    }

    #[test]
    fn re_enabled_status_table() {
        let now = at(10);
        assert_eq!(re_enabled_status(false, false, None, now), Unregistered);
        assert_eq!(
            re_enabled_status(false, true, Some(at(1)), now),
            Unregistered
        );
        assert_eq!(re_enabled_status(true, false, None, now), Registered);
        assert_eq!(re_enabled_status(true, true, None, now), Active);
        assert_eq!(re_enabled_status(true, true, Some(at(11)), now), Active);
        assert_eq!(re_enabled_status(true, true, Some(at(10)), now), Expired);
    }

    #[test]
    fn reminders_can_be_switched_off() {
        let policy = LifecyclePolicy {
            reminder_secs: 0,
            ..LifecyclePolicy::default()
        };
        assert_eq!(next_step(&facts(Registered), &policy, at(89)), None);
    }
}
