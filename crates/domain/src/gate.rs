//! The token gate: whether a token may be issued to a person for an app, now.
//!
//! One pure function, called before a code is issued, at every token grant (code and refresh),
//! and at every userinfo and introspection call, so a suspension, an expiry or a disabled app
//! takes effect at the next request. The order of the checks is the order a person should hear
//! about them: their own account first, then the tenant, the app, and their access to it.
//!
//! A vendor reaches only the tenants that invited them: at a tenant's app the gate asks for the
//! vendor's membership of that tenant, bounded by that tenant's invitation's end date, not the
//! account-wide date (the latest of all their invitations). The app's access policy decides
//! who else: only assigned people, the tenant's members (an officer belongs by being one of its
//! admins or in one of its groups), or every registered officer. A platform app has no tenant
//! to be a member of.
//!
//! A machine token (`client_credentials`, no person) goes through the app's half of the same
//! gate, [`check_app`]: tenant active, app enabled. [`check`] runs it too, so the two cannot
//! drift apart.

use serde::{Deserialize, Serialize};

use crate::account::AccountType;
use crate::client::AccessPolicy;
use crate::tenancy::TenantStatus;
use crate::Timestamp;

/// Where an account stands (DESIGN: "The states that gate every token").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Signed in upstream, but never registered (officers) or invited (vendors).
    Unregistered,
    /// An officer who registered.
    Registered,
    /// A vendor who accepted an invitation.
    Active,
    Suspended,
    /// Inactive too long.
    Disabled,
    /// A vendor past the access end date.
    Expired,
    Terminated,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Unregistered => "unregistered",
            UserStatus::Registered => "registered",
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
            UserStatus::Disabled => "disabled",
            UserStatus::Expired => "expired",
            UserStatus::Terminated => "terminated",
        }
    }

    /// How the status reads to people, the same for officers and vendors: a registered officer
    /// and a vendor who accepted an invitation are both "Active" (the stored names differ
    /// only by how the account began).
    pub fn label(self) -> &'static str {
        match self {
            UserStatus::Unregistered => "Not registered",
            UserStatus::Registered | UserStatus::Active => "Active",
            UserStatus::Suspended => "Suspended",
            UserStatus::Disabled => "Disabled (unused for too long)",
            UserStatus::Expired => "Access ended",
            UserStatus::Terminated => "Closed",
        }
    }

    pub fn parse(text: &str) -> Option<UserStatus> {
        [
            UserStatus::Unregistered,
            UserStatus::Registered,
            UserStatus::Active,
            UserStatus::Suspended,
            UserStatus::Disabled,
            UserStatus::Expired,
            UserStatus::Terminated,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A person's membership of the app's tenant, as the gate needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The end date of the invitation that made them a member, if any.
    pub ends_at: Option<Timestamp>,
}

/// What the gate looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateInput {
    pub status: UserStatus,
    /// Officer or vendor: only a vendor needs a membership of the app's tenant.
    pub account_type: AccountType,
    /// A vendor's account-wide access end date (the latest of their invitations), if any.
    pub access_ends_at: Option<Timestamp>,
    /// The person's membership of the app's tenant (`None`: not a member). Read only for a
    /// vendor at a tenant's app.
    pub membership: Option<Membership>,
    /// The app's tenant: `None` for a platform app (registered by an operator, no tenant).
    pub tenant: Option<TenantStatus>,
    pub app_enabled: bool,
    /// Who the app admits.
    pub policy: AccessPolicy,
    /// Whether the user is assigned to the app (directly or through a group). Read only under
    /// [`AccessPolicy::Assigned`] (and [`AccessPolicy::Members`] at a platform app).
    pub assigned: bool,
    /// Whether the user belongs to the app's tenant now (an admin, in one of its groups, or an
    /// invited member whose end date has not passed). Read only for an officer under
    /// [`AccessPolicy::Members`].
    pub belongs: bool,
    pub now: Timestamp,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    NotRegistered,
    Suspended,
    Disabled,
    Expired,
    Terminated,
    TenantInactive,
    AppDisabled,
    /// A vendor at an app of a tenant that never invited them.
    NotMember,
    /// A vendor whose invitation by the app's tenant has ended (another tenant's may not have).
    MembershipEnded,
    NoAccess,
}

impl Denial {
    /// A short stable code for the audit log and the app's `error_description`.
    pub fn reason(self) -> &'static str {
        match self {
            Denial::NotRegistered => "not_registered",
            Denial::Suspended => "account_suspended",
            Denial::Disabled => "account_disabled",
            Denial::Expired => "access_expired",
            Denial::Terminated => "account_terminated",
            Denial::TenantInactive => "tenant_inactive",
            Denial::AppDisabled => "app_disabled",
            Denial::NotMember => "not_a_member",
            Denial::MembershipEnded => "membership_ended",
            Denial::NoAccess => "no_access",
        }
    }
}

/// What the gate looks at for an app acting for itself (no person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppGateInput {
    /// The app's tenant: `None` for a platform app (registered by an operator, no tenant).
    pub tenant: Option<TenantStatus>,
    pub app_enabled: bool,
}

/// `Ok` if the app may be issued a token, or have one honoured, at all: its tenant is active
/// and it is enabled. The tenant is reported first.
pub fn check_app(input: AppGateInput) -> Result<(), Denial> {
    if input.tenant.is_some_and(|t| t != TenantStatus::Active) {
        return Err(Denial::TenantInactive);
    }
    if !input.app_enabled {
        return Err(Denial::AppDisabled);
    }
    Ok(())
}

/// `Ok` if a token may be issued; otherwise the first reason it may not.
pub fn check(input: GateInput) -> Result<(), Denial> {
    match input.status {
        UserStatus::Unregistered => return Err(Denial::NotRegistered),
        UserStatus::Suspended => return Err(Denial::Suspended),
        UserStatus::Disabled => return Err(Denial::Disabled),
        UserStatus::Expired => return Err(Denial::Expired),
        UserStatus::Terminated => return Err(Denial::Terminated),
        UserStatus::Registered | UserStatus::Active => {}
    }
    if input.access_ends_at.is_some_and(|end| input.now >= end) {
        // Before the lifecycle job has marked it: the date itself decides.
        return Err(Denial::Expired);
    }
    check_app(AppGateInput {
        tenant: input.tenant,
        app_enabled: input.app_enabled,
    })?;
    if input.tenant.is_some() && input.account_type == AccountType::Vendor {
        match input.membership {
            None => return Err(Denial::NotMember),
            Some(Membership { ends_at: Some(end) }) if input.now >= end => {
                return Err(Denial::MembershipEnded)
            }
            Some(_) => {}
        }
    }
    match input.policy {
        AccessPolicy::Assigned => {
            if !input.assigned {
                return Err(Denial::NoAccess);
            }
        }
        // A platform app has no members: the policy fails closed to assignment.
        AccessPolicy::Members if input.tenant.is_none() => {
            if !input.assigned {
                return Err(Denial::NoAccess);
            }
        }
        AccessPolicy::Members => {
            if input.account_type == AccountType::PublicOfficer && !input.belongs {
                return Err(Denial::NotMember);
            }
        }
        AccessPolicy::Officers => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_the_same_for_officers_and_vendors() {
        // A registered officer and a vendor who accepted an invitation are equally live.
        assert_eq!(UserStatus::Registered.label(), UserStatus::Active.label());
        assert_eq!(UserStatus::Expired.label(), "Access ended");
    }

    fn input(status: UserStatus) -> GateInput {
        GateInput {
            status,
            account_type: AccountType::PublicOfficer,
            access_ends_at: None,
            membership: None,
            tenant: Some(TenantStatus::Active),
            app_enabled: true,
            policy: AccessPolicy::Assigned,
            assigned: true,
            belongs: false,
            now: Timestamp(1_000),
        }
    }

    #[test]
    fn decision_table() {
        use UserStatus::*;
        let cases = [
            (input(Registered), Ok(())),
            (input(Active), Ok(())),
            (input(Unregistered), Err(Denial::NotRegistered)),
            (input(Suspended), Err(Denial::Suspended)),
            (input(Disabled), Err(Denial::Disabled)),
            (input(Expired), Err(Denial::Expired)),
            (input(Terminated), Err(Denial::Terminated)),
            (
                GateInput {
                    access_ends_at: Some(Timestamp(1_001)),
                    ..input(Active)
                },
                Ok(()),
            ),
            (
                GateInput {
                    access_ends_at: Some(Timestamp(1_000)),
                    ..input(Active)
                },
                Err(Denial::Expired),
            ),
            (
                GateInput {
                    app_enabled: false,
                    ..input(Registered)
                },
                Err(Denial::AppDisabled),
            ),
            // The person's state is reported before the app's.
            (
                GateInput {
                    app_enabled: false,
                    ..input(Suspended)
                },
                Err(Denial::Suspended),
            ),
            // The tenant: only an active one issues tokens.
            (
                GateInput {
                    tenant: Some(TenantStatus::Suspended),
                    ..input(Registered)
                },
                Err(Denial::TenantInactive),
            ),
            (
                GateInput {
                    tenant: Some(TenantStatus::Requested),
                    ..input(Active)
                },
                Err(Denial::TenantInactive),
            ),
            (
                GateInput {
                    tenant: Some(TenantStatus::Rejected),
                    ..input(Active)
                },
                Err(Denial::TenantInactive),
            ),
            // A platform app has no tenant to be inactive.
            (
                GateInput {
                    tenant: None,
                    ..input(Registered)
                },
                Ok(()),
            ),
            // A suspended tenant is reported before its disabled app.
            (
                GateInput {
                    tenant: Some(TenantStatus::Suspended),
                    app_enabled: false,
                    ..input(Registered)
                },
                Err(Denial::TenantInactive),
            ),
            // Access: assignment required and missing; not required; removed.
            (
                GateInput {
                    assigned: false,
                    ..input(Registered)
                },
                Err(Denial::NoAccess),
            ),
            (
                GateInput {
                    assigned: false,
                    policy: AccessPolicy::Officers,
                    ..input(Active)
                },
                Ok(()),
            ),
            // A disabled app is reported before missing access.
            (
                GateInput {
                    assigned: false,
                    app_enabled: false,
                    ..input(Registered)
                },
                Err(Denial::AppDisabled),
            ),
            // Assignment never rescues an account that may not sign in.
            (
                GateInput {
                    assigned: true,
                    ..input(Expired)
                },
                Err(Denial::Expired),
            ),
            (
                GateInput {
                    access_ends_at: Some(Timestamp(999)),
                    ..input(Active)
                },
                Err(Denial::Expired),
            ),
        ];
        for (i, expected) in cases {
            assert_eq!(check(i), expected, "{i:?}");
        }
    }

    /// A vendor at a tenant's app: Dave, member until 2_000 unless the case says otherwise.
    fn vendor(membership: Option<Membership>) -> GateInput {
        GateInput {
            account_type: AccountType::Vendor,
            access_ends_at: Some(Timestamp(5_000)),
            membership,
            ..input(UserStatus::Active)
        }
    }

    #[test]
    fn access_policy_table() {
        use AccessPolicy::*;
        let officer = |policy, assigned, belongs| GateInput {
            policy,
            assigned,
            belongs,
            ..input(UserStatus::Registered)
        };
        let member_vendor = |policy| GateInput {
            policy,
            assigned: false,
            belongs: false,
            account_type: AccountType::Vendor,
            membership: Some(Membership { ends_at: None }),
            ..input(UserStatus::Active)
        };
        let cases = [
            (officer(Assigned, true, false), Ok(())),
            (officer(Assigned, false, true), Err(Denial::NoAccess)),
            (officer(Members, false, true), Ok(())),
            (officer(Members, true, false), Err(Denial::NotMember)),
            (officer(Members, false, false), Err(Denial::NotMember)),
            (officer(Officers, false, false), Ok(())),
            // A vendor invited by the tenant is its member under every policy but assignment.
            (member_vendor(Members), Ok(())),
            (member_vendor(Officers), Ok(())),
            (member_vendor(Assigned), Err(Denial::NoAccess)),
            // A platform app has no members: "members" fails closed to assignment.
            (
                GateInput {
                    tenant: None,
                    ..officer(Members, false, true)
                },
                Err(Denial::NoAccess),
            ),
            (
                GateInput {
                    tenant: None,
                    ..officer(Members, true, false)
                },
                Ok(()),
            ),
        ];
        for (case, expected) in cases {
            assert_eq!(check(case), expected, "{case:?}");
        }
        for policy in AccessPolicy::ALL {
            assert_eq!(AccessPolicy::parse(policy.as_str()), Some(policy));
        }
    }

    #[test]
    fn membership_table() {
        let until = |t| {
            Some(Membership {
                ends_at: Some(Timestamp(t)),
            })
        };
        let cases = [
            (vendor(until(2_000)), Ok(())),
            (vendor(Some(Membership { ends_at: None })), Ok(())),
            // Invited elsewhere only, or by this tenant until a date now past, though the
            // account-wide date (another tenant's invitation) still runs.
            (vendor(None), Err(Denial::NotMember)),
            (vendor(until(1_000)), Err(Denial::MembershipEnded)),
            (vendor(until(999)), Err(Denial::MembershipEnded)),
            // Membership is asked before assignment: being assigned does not make a member.
            (
                GateInput {
                    policy: AccessPolicy::Assigned,
                    assigned: true,
                    ..vendor(None)
                },
                Err(Denial::NotMember),
            ),
            // A member still needs the assignment an app requires.
            (
                GateInput {
                    assigned: false,
                    ..vendor(until(2_000))
                },
                Err(Denial::NoAccess),
            ),
            // The account, the tenant and the app are reported before membership.
            (
                GateInput {
                    access_ends_at: Some(Timestamp(1_000)),
                    ..vendor(None)
                },
                Err(Denial::Expired),
            ),
            (
                GateInput {
                    tenant: Some(TenantStatus::Suspended),
                    ..vendor(None)
                },
                Err(Denial::TenantInactive),
            ),
            (
                GateInput {
                    app_enabled: false,
                    ..vendor(None)
                },
                Err(Denial::AppDisabled),
            ),
            // A platform app has no tenant to be a member of.
            (
                GateInput {
                    tenant: None,
                    ..vendor(None)
                },
                Ok(()),
            ),
            // Officers are not asked for a membership, nor held to an ended one.
            (
                GateInput {
                    account_type: AccountType::PublicOfficer,
                    ..vendor(None)
                },
                Ok(()),
            ),
            (
                GateInput {
                    account_type: AccountType::PublicOfficer,
                    ..vendor(until(1))
                },
                Ok(()),
            ),
        ];
        for (i, expected) in cases {
            assert_eq!(check(i), expected, "{i:?}");
        }
    }

    #[test]
    fn app_decision_table() {
        let app = |tenant, app_enabled| AppGateInput {
            tenant,
            app_enabled,
        };
        let cases = [
            (app(Some(TenantStatus::Active), true), Ok(())),
            (app(None, true), Ok(())),
            (app(None, false), Err(Denial::AppDisabled)),
            (
                app(Some(TenantStatus::Active), false),
                Err(Denial::AppDisabled),
            ),
            (
                app(Some(TenantStatus::Suspended), true),
                Err(Denial::TenantInactive),
            ),
            (
                app(Some(TenantStatus::Requested), true),
                Err(Denial::TenantInactive),
            ),
            (
                app(Some(TenantStatus::Rejected), true),
                Err(Denial::TenantInactive),
            ),
            (
                app(Some(TenantStatus::Suspended), false),
                Err(Denial::TenantInactive),
            ),
        ];
        for (i, expected) in cases {
            assert_eq!(check_app(i), expected, "{i:?}");
            // A person's gate refuses at least as much as the app's.
            if expected.is_err() {
                let person = GateInput {
                    tenant: i.tenant,
                    app_enabled: i.app_enabled,
                    ..input(UserStatus::Registered)
                };
                assert_eq!(check(person), expected, "{i:?}");
            }
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in [
            "unregistered",
            "registered",
            "active",
            "suspended",
            "disabled",
            "expired",
            "terminated",
        ] {
            assert_eq!(UserStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(UserStatus::parse("admin"), None);
    }
}
