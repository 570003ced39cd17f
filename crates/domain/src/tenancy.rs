//! The tenant model's states and rules: tenants (services onboarded to the toolchain), their
//! invitations, and the names of their groups. Pure: callers pass `now` and the policy.

use serde::{Deserialize, Serialize};

use crate::account::AccountType;
use crate::Timestamp;

/// DESIGN: `requested` → `active` | `rejected`; `active` ⇄ `suspended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Requested,
    Active,
    Rejected,
    Suspended,
}

impl TenantStatus {
    pub const ALL: [TenantStatus; 4] = [
        TenantStatus::Requested,
        TenantStatus::Active,
        TenantStatus::Rejected,
        TenantStatus::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Requested => "requested",
            TenantStatus::Active => "active",
            TenantStatus::Rejected => "rejected",
            TenantStatus::Suspended => "suspended",
        }
    }

    pub fn parse(text: &str) -> Option<TenantStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A platform admin's decision on a tenant, and the states it may be taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantAction {
    Approve,
    Reject,
    Suspend,
    Reinstate,
}

impl TenantAction {
    /// (from, to): the only transitions DESIGN allows.
    pub fn transition(self) -> (TenantStatus, TenantStatus) {
        match self {
            TenantAction::Approve => (TenantStatus::Requested, TenantStatus::Active),
            TenantAction::Reject => (TenantStatus::Requested, TenantStatus::Rejected),
            TenantAction::Suspend => (TenantStatus::Active, TenantStatus::Suspended),
            TenantAction::Reinstate => (TenantStatus::Suspended, TenantStatus::Active),
        }
    }

    /// Whether the platform admin must say why (the requester or the tenant admins are told).
    pub fn needs_reason(self) -> bool {
        matches!(self, TenantAction::Reject | TenantAction::Suspend)
    }
}

/// DESIGN: `pending` → `accepted` | `revoked` | `expired`; a new invitation to the same email in
/// the same tenant marks the pending one `replaced`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
    Replaced,
}

impl InvitationStatus {
    pub const ALL: [InvitationStatus; 5] = [
        InvitationStatus::Pending,
        InvitationStatus::Accepted,
        InvitationStatus::Revoked,
        InvitationStatus::Expired,
        InvitationStatus::Replaced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Revoked => "revoked",
            InvitationStatus::Expired => "expired",
            InvitationStatus::Replaced => "replaced",
        }
    }

    pub fn parse(text: &str) -> Option<InvitationStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A webhook delivery: `pending` (due, or leased by a job) → `delivered` | `failed` (given
/// up); a redelivery makes a delivered or failed one `pending` again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Why a tenant slug is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("must be 2 to 40 characters")]
    Length,
    #[error("may contain only lowercase letters, digits and '-', starting with a letter")]
    Characters,
}

/// A tenant's short name: `[a-z][a-z0-9-]{1,39}`, no trailing or doubled `-`. It prefixes the
/// tenant's group names in tokens (`slug:group`), so it must never contain `:`.
pub fn validate_slug(slug: &str) -> Result<(), SlugError> {
    if !(2..=40).contains(&slug.len()) {
        return Err(SlugError::Length);
    }
    let mut chars = slug.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !first_ok || !rest_ok || slug.ends_with('-') || slug.contains("--") {
        return Err(SlugError::Characters);
    }
    Ok(())
}

/// Why a group name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a group name is 1 to 64 characters of letters, digits, '-', '_' or '.'")]
pub struct GroupNameError;

pub fn validate_group_name(name: &str) -> Result<(), GroupNameError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(GroupNameError)
    }
}

/// A group as it appears in a token's `groups` claim: `<tenant>:<group>`.
pub fn qualified_group(tenant_slug: &str, group: &str) -> String {
    format!("{tenant_slug}:{group}")
}

/// The invitation policy (configurable; defaults from the accounts issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvitationPolicy {
    /// How long the link works.
    pub link_lifetime_secs: i64,
    /// The longest access a vendor can be given.
    pub max_vendor_access_secs: i64,
}

impl Default for InvitationPolicy {
    fn default() -> Self {
        InvitationPolicy {
            link_lifetime_secs: 5 * 24 * 3600,
            max_vendor_access_secs: 365 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvitationError {
    #[error("a vendor's invitation needs an access end date")]
    EndDateRequired,
    #[error("the access end date must be in the future")]
    EndDateInPast,
    #[error("the access end date may be at most {max_days} days from now")]
    EndDateTooFar { max_days: i64 },
}

/// Checks the access end date of an invitation to an address of `kind`: required for vendors
/// and at most the policy's maximum; optional for officers (then unlimited).
pub fn check_access_end(
    kind: AccountType,
    access_ends_at: Option<Timestamp>,
    policy: &InvitationPolicy,
    now: Timestamp,
) -> Result<(), InvitationError> {
    match (kind, access_ends_at) {
        (AccountType::Vendor, None) => Err(InvitationError::EndDateRequired),
        (_, Some(end)) if end <= now => Err(InvitationError::EndDateInPast),
        (AccountType::Vendor, Some(end)) if end > now.plus(policy.max_vendor_access_secs) => {
            Err(InvitationError::EndDateTooFar {
                max_days: policy.max_vendor_access_secs / 86_400,
            })
        }
        _ => Ok(()),
    }
}

/// Whether a verified upstream email may accept an invitation addressed to `invited`:
/// case-insensitive, otherwise exact (no trimming of dots or `+tags`, no Unicode folding).
pub fn email_matches(invited: &str, verified: &str) -> bool {
    invited.len() == verified.len() && invited.eq_ignore_ascii_case(verified)
}

/// The vendor's access end after accepting: the later of what they have and what this
/// invitation gives (access granted by one tenant never shortens another's).
pub fn combined_access_end(
    current: Option<Timestamp>,
    invited: Option<Timestamp>,
) -> Option<Timestamp> {
    match (current, invited) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A tenant's slug proposed from its name: lowercase ASCII letters and digits, other runs of
/// characters as one `-`, at most 40 characters; `None` when nothing valid is left (the caller
/// then asks for a slug).
pub fn slug_from_name(name: &str) -> Option<String> {
    let mut slug = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(40);
    let slug = slug.trim_end_matches('-').to_string();
    validate_slug(&slug).is_ok().then_some(slug)
}

/// Why a grant to a person named by email (before their first sign-in) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailGrantError {
    /// A vendor's address the tenant has not invited: granting it would reach people the
    /// tenant has no relationship with.
    #[error("is not a public officer's address; invite the person to this tenant first, then grant access")]
    VendorNotInvited,
    /// Only public officers administer tenants.
    #[error("is not a public officer's address; a tenant admin must be a public officer")]
    AdminNotOfficer,
}

/// What a grant by email gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailGrant {
    /// Access to one of the tenant's apps.
    AppAccess,
    /// The administration of a tenant.
    TenantAdmin,
}

/// Whether a grant by email may be given to (and later redeemed by) an address of `kind`: an
/// officer's address (in an officer domain, see [`crate::account::classify`]) may be named as
/// an existing officer could be; a vendor's only for app access and only when the tenant has
/// invited that address (a pending or accepted invitation).
pub fn check_email_grant(
    grant: EmailGrant,
    kind: AccountType,
    invited_by_tenant: bool,
) -> Result<(), EmailGrantError> {
    match (grant, kind) {
        (_, AccountType::PublicOfficer) => Ok(()),
        (EmailGrant::AppAccess, AccountType::Vendor) if invited_by_tenant => Ok(()),
        (EmailGrant::AppAccess, AccountType::Vendor) => Err(EmailGrantError::VendorNotInvited),
        (EmailGrant::TenantAdmin, AccountType::Vendor) => Err(EmailGrantError::AdminNotOfficer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_transitions_are_the_designed_ones() {
        use TenantAction::*;
        use TenantStatus::*;
        assert_eq!(Approve.transition(), (Requested, Active));
        assert_eq!(Reject.transition(), (Requested, Rejected));
        assert_eq!(Suspend.transition(), (Active, Suspended));
        assert_eq!(Reinstate.transition(), (Suspended, Active));
        assert!(Reject.needs_reason() && Suspend.needs_reason());
        assert!(!Approve.needs_reason() && !Reinstate.needs_reason());
        for s in TenantStatus::ALL {
            assert_eq!(TenantStatus::parse(s.as_str()), Some(s));
        }
        for s in InvitationStatus::ALL {
            assert_eq!(InvitationStatus::parse(s.as_str()), Some(s));
        }
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TenantStatus::parse("Active"), None);
    }

    #[test]
    fn slugs() {
        for ok in ["wiki", "git-hosting", "ci2", "ab"] {
            assert_eq!(validate_slug(ok), Ok(()), "{ok}");
        }
        for (bad, e) in [
            ("a", SlugError::Length),
            ("x".repeat(41).as_str(), SlugError::Length),
            ("Wiki", SlugError::Characters),
            ("2fa", SlugError::Characters),
            ("wiki-", SlugError::Characters),
            ("a--b", SlugError::Characters),
            ("a:b", SlugError::Characters),
            ("wiki tools", SlugError::Characters),
        ] {
            assert_eq!(validate_slug(bad), Err(e), "{bad}");
        }
    }

    #[test]
    fn group_names() {
        assert!(validate_group_name("developers").is_ok());
        assert!(validate_group_name("team_a.ops-1").is_ok());
        assert!(validate_group_name("").is_err());
        assert!(validate_group_name("a:b").is_err());
        assert!(validate_group_name("with space").is_err());
        assert_eq!(qualified_group("wiki", "editors"), "wiki:editors");
    }

    #[test]
    fn access_end_dates() {
        let policy = InvitationPolicy::default();
        let now = Timestamp(1_000_000);
        let year = policy.max_vendor_access_secs;
        use AccountType::*;
        assert_eq!(
            check_access_end(Vendor, None, &policy, now),
            Err(InvitationError::EndDateRequired)
        );
        assert_eq!(check_access_end(PublicOfficer, None, &policy, now), Ok(()));
        assert_eq!(
            check_access_end(Vendor, Some(now), &policy, now),
            Err(InvitationError::EndDateInPast)
        );
        assert_eq!(
            check_access_end(PublicOfficer, Some(Timestamp(5)), &policy, now),
            Err(InvitationError::EndDateInPast)
        );
        assert_eq!(
            check_access_end(Vendor, Some(now.plus(year)), &policy, now),
            Ok(())
        );
        assert_eq!(
            check_access_end(Vendor, Some(now.plus(year + 1)), &policy, now),
            Err(InvitationError::EndDateTooFar { max_days: 365 })
        );
        // Officers are not bound by the vendor maximum.
        assert_eq!(
            check_access_end(PublicOfficer, Some(now.plus(3 * year)), &policy, now),
            Ok(())
        );
    }

    #[test]
    fn invited_email_must_match_exactly_but_for_case() {
        assert!(email_matches(
            "dave@vendorco.example",
            "Dave@VendorCo.Example"
        ));
        assert!(!email_matches(
            "dave@vendorco.example",
            "dave+x@vendorco.example"
        ));
        assert!(!email_matches(
            "dave@vendorco.example",
            "d.ave@vendorco.example"
        ));
        assert!(!email_matches(
            "dave@vendorco.example",
            " dave@vendorco.example"
        ));
        assert!(!email_matches(
            "dave@vendorco.example",
            "dave@vendorco.example.evil"
        ));
    }

    #[test]
    fn access_end_never_shortens() {
        let (a, b) = (Some(Timestamp(10)), Some(Timestamp(20)));
        assert_eq!(combined_access_end(a, b), b);
        assert_eq!(combined_access_end(b, a), b);
        assert_eq!(combined_access_end(None, a), a);
        assert_eq!(combined_access_end(a, None), a);
        assert_eq!(combined_access_end(None, None), None);
    }

    #[test]
    fn slugs_are_proposed_from_names() {
        for (name, slug) in [
            ("Wiki", Some("wiki")),
            ("  GitLab CE (staging) ", Some("gitlab-ce-staging")),
            ("CI/CD -- Runners", Some("ci-cd-runners")),
            ("42 Registry", None),
            ("Über", Some("ber")),
            ("", None),
            ("x", None),
        ] {
            assert_eq!(slug_from_name(name).as_deref(), slug, "{name}");
        }
        let long = slug_from_name(&"a".repeat(60)).unwrap();
        assert_eq!(long.len(), 40);
        assert_eq!(
            slug_from_name(&format!("{} b", "a".repeat(39))).as_deref(),
            Some("a".repeat(39).as_str()),
            "no trailing dash after truncation"
        );
    }

    #[test]
    fn email_grants_table() {
        use AccountType::*;
        use EmailGrant::*;
        let cases = [
            (AppAccess, PublicOfficer, false, Ok(())),
            (AppAccess, PublicOfficer, true, Ok(())),
            (AppAccess, Vendor, true, Ok(())),
            (
                AppAccess,
                Vendor,
                false,
                Err(EmailGrantError::VendorNotInvited),
            ),
            (TenantAdmin, PublicOfficer, false, Ok(())),
            (
                TenantAdmin,
                Vendor,
                true,
                Err(EmailGrantError::AdminNotOfficer),
            ),
            (
                TenantAdmin,
                Vendor,
                false,
                Err(EmailGrantError::AdminNotOfficer),
            ),
        ];
        for (grant, kind, invited, expected) in cases {
            assert_eq!(
                check_email_grant(grant, kind, invited),
                expected,
                "{grant:?} {kind:?} {invited}"
            );
        }
    }
}
