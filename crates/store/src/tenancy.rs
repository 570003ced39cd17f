//! What the tenant model stores: tenants and their admins, platform admins, invitations and the
//! memberships they create, and who may use which app (direct and group assignments, app roles).
//!
//! Every state change is a compare-and-set on the stored state (`WHERE status = …`), so two
//! replicas acting at once agree on one winner, and the winner alone performs side effects
//! (emails, webhooks). Emails are always stored lowercased.

use async_trait::async_trait;
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::{InvitationStatus, TenantStatus};

use crate::{StoreError, UserRecord};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TenantRecord {
    pub id: String,
    /// Short unique name (`[a-z0-9-]`), the prefix of the tenant's group names (`slug:group`).
    pub slug: String,
    pub name: String,
    pub description: String,
    pub purpose: String,
    #[sqlx(try_from = "crate::column::Stored<TenantStatus>")]
    pub status: TenantStatus,
    /// The user id of the officer who asked for it.
    pub requested_by: String,
    pub created_at: i64,
    /// When and by whom (user id) the status last changed, and why.
    pub status_at: Option<i64>,
    pub status_by: Option<String>,
    pub status_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TenantAdminRecord {
    pub tenant_id: String,
    pub user_id: String,
    pub added_at: i64,
    pub added_by: String,
}

#[async_trait]
pub trait TenantStore {
    /// Stores a new tenant (normally `requested`). [`StoreError::Conflict`] if the id or the
    /// slug is taken (slugs compare exactly; callers lowercase them).
    async fn insert_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError>;

    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError>;

    async fn get_tenant_by_slug(&self, slug: &str) -> Result<Option<TenantRecord>, StoreError>;

    /// Tenants, oldest first, with the given status (any when `None`); `limit`/`offset` page.
    async fn list_tenants(
        &self,
        status: Option<TenantStatus>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TenantRecord>, StoreError>;

    /// Moves the tenant to `to` if its status is one of `from`, recording `at`, `by` and
    /// `reason`; with `first_admin`, that user becomes a tenant admin in the same transaction.
    /// False, writing nothing, if the tenant is unknown or not in a `from` state (of two
    /// concurrent callers exactly one gets true).
    #[allow(clippy::too_many_arguments)]
    async fn transition_tenant(
        &self,
        id: &str,
        from: &[TenantStatus],
        to: TenantStatus,
        by: &str,
        reason: Option<&str>,
        at: i64,
        first_admin: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Makes the user an admin of the tenant. False if they already are.
    async fn add_tenant_admin(&self, admin: &TenantAdminRecord) -> Result<bool, StoreError>;

    /// Removes an admin. False if they are not one; [`StoreError::Conflict`], writing nothing,
    /// if they are the last admin. Two concurrent removals of the last two admins leave one.
    async fn remove_tenant_admin(&self, tenant_id: &str, user_id: &str)
        -> Result<bool, StoreError>;

    /// The tenant's admins, oldest first.
    async fn tenant_admins(&self, tenant_id: &str) -> Result<Vec<TenantAdminRecord>, StoreError>;

    /// Tenants the user administers, oldest first.
    async fn tenants_of_admin(&self, user_id: &str) -> Result<Vec<TenantRecord>, StoreError>;

    /// Tenants the user asked for (whatever their status), oldest first.
    async fn tenants_requested_by(&self, user_id: &str) -> Result<Vec<TenantRecord>, StoreError>;

    async fn is_tenant_admin(&self, tenant_id: &str, user_id: &str) -> Result<bool, StoreError>;

    /// Makes the user a platform admin. False if they already are.
    async fn grant_platform_admin(
        &self,
        user_id: &str,
        by: &str,
        at: i64,
    ) -> Result<bool, StoreError>;

    async fn is_platform_admin(&self, user_id: &str) -> Result<bool, StoreError>;

    /// Takes the platform admin role away. False if the user did not have it.
    async fn revoke_platform_admin(&self, user_id: &str) -> Result<bool, StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InvitationRecord {
    pub id: String,
    pub tenant_id: String,
    /// Lowercased.
    pub email: String,
    /// Keyed hash of the link's secret; the secret itself is only in the email.
    pub token_hash: String,
    /// User id of the inviting tenant admin.
    pub invited_by: String,
    pub created_at: i64,
    /// The link works until this time.
    pub expires_at: i64,
    /// The invitee's access ends here (required for vendors).
    pub access_ends_at: Option<i64>,
    #[sqlx(try_from = "crate::column::Stored<InvitationStatus>")]
    pub status: InvitationStatus,
    pub status_at: Option<i64>,
    /// The user who accepted it.
    pub accepted_by: Option<String>,
    /// How many times the link was sent (1 at creation, +1 per resend).
    pub sent_count: i64,
}

/// The account side of accepting an invitation, applied in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub invitation_id: String,
    pub user_id: String,
    pub at: i64,
    /// The user's status afterwards (`registered` for officers, `active` for vendors).
    pub status: UserStatus,
    /// The terms the person accepted, when they register in this step.
    pub terms_version: Option<String>,
    /// The user's access end date afterwards (`None`: none).
    pub access_ends_at: Option<i64>,
}

/// What accepting found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    Accepted,
    /// The invitation is not pending, or expired before `at`: nothing written.
    NotPending,
    /// The user is suspended, disabled or terminated (or unknown): nothing written.
    UserNotEligible,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MembershipRecord {
    pub tenant_id: String,
    pub user_id: String,
    pub joined_at: i64,
    pub access_ends_at: Option<i64>,
    pub invitation_id: Option<String>,
}

/// What ending a membership changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedMembership {
    /// The membership as it is now (its end date at most the time it was ended).
    pub membership: MembershipRecord,
    pub grants_revoked: u64,
    pub assignments_removed: u64,
    pub roles_removed: u64,
    pub groups_left: u64,
    /// Pending invitations of the tenant to the user's email, revoked so that none of them
    /// silently gives the access back (a new invitation does).
    pub invitations_revoked: u64,
}

#[async_trait]
pub trait InvitationStore {
    /// Stores a pending invitation; any pending invitation to the same email in the same tenant
    /// becomes `replaced` in the same transaction. Returns the replaced invitations.
    async fn insert_invitation(
        &self,
        invitation: &InvitationRecord,
    ) -> Result<Vec<InvitationRecord>, StoreError>;

    async fn get_invitation(&self, id: &str) -> Result<Option<InvitationRecord>, StoreError>;

    /// The invitation whose link has this hash (whatever its status).
    async fn find_invitation_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<InvitationRecord>, StoreError>;

    /// The tenant's invitations, newest first, with the given status (any when `None`).
    async fn invitations_of_tenant(
        &self,
        tenant_id: &str,
        status: Option<InvitationStatus>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<InvitationRecord>, StoreError>;

    /// A resend: a pending invitation gets a new link hash and expiry, `sent_count` + 1 (the old
    /// link stops working). False if it is not pending.
    async fn renew_invitation(
        &self,
        id: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError>;

    /// pending → revoked. False if it was not pending.
    async fn revoke_invitation(&self, id: &str, at: i64) -> Result<bool, StoreError>;

    /// In one transaction: the invitation (pending, `expires_at` > `at`) becomes accepted by
    /// the user; the user's status, `registered_at` (if unset), terms (if given) and access end
    /// date are set from `acceptance` (only if the user is unregistered, registered, active or
    /// expired); the tenant membership is created or updated with the invitation's access end
    /// date. Of concurrent acceptances of one invitation exactly one succeeds.
    async fn accept_invitation(&self, acceptance: &Acceptance)
        -> Result<AcceptOutcome, StoreError>;

    /// Pending invitations with `expires_at` ≤ `now` become expired; returns them. Concurrent
    /// callers never both return the same invitation.
    async fn expire_invitations(&self, now: i64) -> Result<Vec<InvitationRecord>, StoreError>;

    /// The tenant's members (people who accepted an invitation to it), oldest first.
    async fn members_of_tenant(&self, tenant_id: &str)
        -> Result<Vec<MembershipRecord>, StoreError>;

    /// The tenants the user is a member of.
    async fn memberships_of_user(&self, user_id: &str)
        -> Result<Vec<MembershipRecord>, StoreError>;

    /// The user's membership of the tenant, if they are one (whatever its end date: the gate
    /// compares it with the time).
    async fn membership(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> Result<Option<MembershipRecord>, StoreError>;

    /// Ends the user's membership of the tenant at `at`, in one transaction: the membership's
    /// end date becomes `at` (or stays, if it ended earlier; the row is kept for the record),
    /// the user's grants at the tenant's apps are revoked (so their refresh tokens stop
    /// working), and their direct app assignments, app roles and group memberships in the
    /// tenant are removed, and the tenant's pending invitations to their email revoked.
    /// Nothing of other tenants is touched. `None` (nothing written) if the
    /// user is not a member of the tenant.
    async fn end_membership(
        &self,
        tenant_id: &str,
        user_id: &str,
        at: i64,
    ) -> Result<Option<EndedMembership>, StoreError>;

    /// The tenant's invitations to `email` (lowercased), whatever their status, newest first.
    async fn invitations_to_email(
        &self,
        tenant_id: &str,
        email: &str,
    ) -> Result<Vec<InvitationRecord>, StoreError>;

    /// The invitations to `email` (lowercased) of every tenant that are pending and not expired
    /// at `now`, newest first: what a signed-in invitee is waiting to accept.
    async fn pending_invitations_to_email(
        &self,
        email: &str,
        now: i64,
    ) -> Result<Vec<InvitationRecord>, StoreError>;
}

/// What a pending grant gives: access to an app ([`GRANT_APP_ACCESS`]), the administration
/// of a tenant ([`GRANT_TENANT_ADMIN`]) or of the platform ([`GRANT_PLATFORM_ADMIN`]).
pub const GRANT_APP_ACCESS: &str = "app_access";
pub const GRANT_TENANT_ADMIN: &str = "tenant_admin";
pub const GRANT_PLATFORM_ADMIN: &str = "platform_admin";

/// A grant to a person named by email who has no account yet (or has not signed in since).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingGrantRecord {
    pub id: String,
    /// Lowercased.
    pub email: String,
    /// [`GRANT_APP_ACCESS`], [`GRANT_TENANT_ADMIN`] or [`GRANT_PLATFORM_ADMIN`].
    pub kind: String,
    /// The tenant (the app's, for app access); `None` for a platform admin.
    pub tenant_id: Option<String>,
    /// The app, for app access only.
    pub client_id: Option<String>,
    /// Who granted it (as the audit log names actors); recorded on what it becomes.
    pub granted_by: String,
    pub granted_at: i64,
}

#[async_trait]
pub trait PendingGrantStore {
    /// Stores a pending grant. False, writing nothing, if the same grant (kind, email and app,
    /// tenant or platform) is already pending. A grant naming an unknown tenant or app is
    /// refused by the database ([`StoreError::Backend`]).
    async fn insert_pending_grant(&self, grant: &PendingGrantRecord) -> Result<bool, StoreError>;

    async fn get_pending_grant(&self, id: &str) -> Result<Option<PendingGrantRecord>, StoreError>;

    /// The tenant's pending grants (access to its apps and its administration), oldest first.
    async fn pending_grants_of_tenant(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<PendingGrantRecord>, StoreError>;

    /// The pending grants to `email` (lowercased), of every kind, oldest first.
    async fn pending_grants_for_email(
        &self,
        email: &str,
    ) -> Result<Vec<PendingGrantRecord>, StoreError>;

    /// Revokes a pending grant. False if it is not pending (unknown, revoked or redeemed).
    async fn delete_pending_grant(&self, id: &str) -> Result<bool, StoreError>;

    /// In one transaction: the pending grant goes, and `user_id` gets what it grants (the app
    /// assigned to them, or tenant or platform admin), recorded as given by its granter at
    /// `at`; what they already have is left as it is. False, writing nothing, if the grant is
    /// no longer pending: of concurrent redemptions exactly one gets true.
    async fn redeem_pending_grant(
        &self,
        id: &str,
        user_id: &str,
        at: i64,
    ) -> Result<bool, StoreError>;
}

/// Who an assignment is for.
pub const PRINCIPAL_USER: &str = "user";
pub const PRINCIPAL_GROUP: &str = "group";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AssignmentRecord {
    pub client_id: String,
    /// [`PRINCIPAL_USER`] or [`PRINCIPAL_GROUP`].
    pub principal_type: String,
    /// A user id or a group id.
    pub principal_id: String,
    pub assigned_at: i64,
    pub assigned_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GroupRecord {
    pub id: String,
    pub tenant_id: String,
    /// The name within the tenant (shown in tokens as `tenant-slug:name`).
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleAssignmentRecord {
    pub client_id: String,
    pub role: String,
    pub principal_type: String,
    pub principal_id: String,
}

/// A user with access to an app, for access reviews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessHolder {
    pub user: UserRecord,
    /// True if assigned directly; the names of the groups through which they have access.
    pub direct: bool,
    pub via_groups: Vec<String>,
}

/// A person's consent to hand their identity to an app they have no relationship with.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsentRecord {
    pub user_id: String,
    pub client_id: String,
    /// The scopes consented to, space-separated.
    pub scopes: String,
    pub granted_at: i64,
}

#[async_trait]
pub trait AccessStore {
    /// Assigns a user or group to an app. False if already assigned.
    async fn assign(&self, assignment: &AssignmentRecord) -> Result<bool, StoreError>;

    /// Removes an assignment (and the role assignments of that principal in that app). False
    /// if there was none.
    async fn unassign(
        &self,
        client_id: &str,
        principal_type: &str,
        principal_id: &str,
    ) -> Result<bool, StoreError>;

    /// The app's assignments, oldest first.
    async fn assignments_of_app(
        &self,
        client_id: &str,
    ) -> Result<Vec<AssignmentRecord>, StoreError>;

    /// Whether the user belongs to the tenant at `now`: one of its admins, in one of its
    /// groups, or a member by invitation whose end date has not passed.
    async fn belongs_to_tenant(
        &self,
        tenant_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Records (or renews, with the new scopes and time) a person's consent to an app.
    async fn grant_consent(&self, consent: &ConsentRecord) -> Result<(), StoreError>;

    /// The person's consent to the app, if they gave one.
    async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<ConsentRecord>, StoreError>;

    /// The person's consents, newest first.
    async fn consents_of_user(&self, user_id: &str) -> Result<Vec<ConsentRecord>, StoreError>;

    /// Withdraws a consent and, in the same transaction, revokes the person's grants at that app
    /// (their refresh tokens stop working). False if there was no consent.
    async fn revoke_consent(
        &self,
        user_id: &str,
        client_id: &str,
        at: i64,
    ) -> Result<bool, StoreError>;

    /// Whether the user is assigned to the app, directly or through a group of the app's tenant.
    async fn has_access(&self, client_id: &str, user_id: &str) -> Result<bool, StoreError>;

    /// The apps the user is assigned to, directly or through a group of the app's tenant, by
    /// name (disabled ones included; the caller decides).
    async fn apps_assigned_to(&self, user_id: &str)
        -> Result<Vec<crate::ClientRecord>, StoreError>;

    /// Every user assigned to the app directly or through a group, by user id.
    async fn access_holders(&self, client_id: &str) -> Result<Vec<AccessHolder>, StoreError>;

    /// [`StoreError::Conflict`] if the tenant already has a group of that name.
    async fn insert_group(&self, group: &GroupRecord) -> Result<(), StoreError>;

    async fn get_group(&self, id: &str) -> Result<Option<GroupRecord>, StoreError>;

    /// The tenant's groups, by name.
    async fn groups_of_tenant(&self, tenant_id: &str) -> Result<Vec<GroupRecord>, StoreError>;

    /// Deletes the group with its memberships, app assignments and role assignments.
    async fn delete_group(&self, id: &str) -> Result<bool, StoreError>;

    /// False if already a member.
    async fn add_group_member(&self, group_id: &str, user_id: &str) -> Result<bool, StoreError>;

    async fn remove_group_member(&self, group_id: &str, user_id: &str) -> Result<bool, StoreError>;

    /// Member user ids of the group.
    async fn group_members(&self, group_id: &str) -> Result<Vec<String>, StoreError>;

    /// The user's groups in one tenant, by name.
    async fn groups_of_user(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> Result<Vec<GroupRecord>, StoreError>;

    /// Defines a role of an app. False if it exists.
    async fn define_role(&self, client_id: &str, role: &str) -> Result<bool, StoreError>;

    /// Deletes a role and its assignments. False if it did not exist.
    async fn delete_role(&self, client_id: &str, role: &str) -> Result<bool, StoreError>;

    /// The app's role names, sorted.
    async fn roles_of_app(&self, client_id: &str) -> Result<Vec<String>, StoreError>;

    /// Who holds the app's roles (users and groups, directly), by role then principal.
    async fn role_assignments_of_app(
        &self,
        client_id: &str,
    ) -> Result<Vec<RoleAssignmentRecord>, StoreError>;

    /// Assigns a defined role to a user or group. False if already assigned;
    /// [`StoreError::NotFound`] if the role is not defined for the app.
    async fn assign_role(&self, assignment: &RoleAssignmentRecord) -> Result<bool, StoreError>;

    async fn unassign_role(&self, assignment: &RoleAssignmentRecord) -> Result<bool, StoreError>;

    /// The roles the user holds in the app, directly or through their groups, sorted, unique.
    async fn roles_of_user(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<Vec<String>, StoreError>;
}
