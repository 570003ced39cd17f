//! What the OpenID Provider stores: users, clients and their secrets, grants, authorization
//! codes, refresh tokens and revoked access tokens. Secrets, codes and tokens arrive here only
//! as keyed hashes.

use async_trait::async_trait;
use techpass_domain::client::AccessPolicy;
use techpass_domain::gate::UserStatus;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    pub id: String,
    pub tenant_id: String,
    pub object_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: i64,
    pub last_signin_at: i64,
    #[sqlx(try_from = "crate::column::Stored<UserStatus>")]
    pub status: UserStatus,
    pub account_type: String,
    pub terms_version: Option<String>,
    pub registered_at: Option<i64>,
    pub access_ends_at: Option<i64>,
    pub status_reason: Option<String>,
    /// Kept out of the lifecycle jobs (product and test accounts, investigations).
    pub exempt: bool,
    /// The last time an app signed this person in (a code issued); `None`: never.
    pub app_signin_at: Option<i64>,
    /// From the upstream, refreshed at each sign-in (OpenID Connect Core §5.1).
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Whether the upstream proved the email address (never assumed).
    pub email_verified: bool,
    /// When a platform admin last re-enabled the account (from `disabled`); `None`: never.
    pub enabled_at: Option<i64>,
    /// When the lifecycle terminated the account (set with the status `terminated`).
    pub terminated_at: Option<i64>,
}

#[async_trait]
pub trait UserStore {
    /// The user with this upstream identity, created from `user` if there is none; records the
    /// sign-in time and the latest email, names, email verification and account type (never
    /// the status). Concurrent
    /// calls for one identity agree on one user.
    async fn upsert_user(&self, user: &UserRecord) -> Result<UserRecord, StoreError>;

    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Users whose email equals `email`, compared case-insensitively.
    async fn find_users_by_email(&self, email: &str) -> Result<Vec<UserRecord>, StoreError>;

    /// Moves an `unregistered` user to `status` (registered or active) with the accepted terms.
    /// False if the user is not unregistered (registration happens once).
    async fn register_user(
        &self,
        id: &str,
        status: UserStatus,
        terms_version: &str,
        at: i64,
    ) -> Result<bool, StoreError>;

    /// Records that a registered person accepted `terms_version` of the terms of use (a newer
    /// one than they accepted at registration). False, writing nothing, if the user does not
    /// exist or has not registered (registration records the first acceptance).
    async fn accept_terms(&self, id: &str, terms_version: &str) -> Result<bool, StoreError>;

    /// Sets the status and its reason. False if there is no such user.
    async fn set_user_status(
        &self,
        id: &str,
        status: UserStatus,
        reason: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Sets the status and reason only if the current status is `from` (compare-and-set: of
    /// concurrent callers exactly one gets true). False, writing nothing, otherwise. A move to
    /// `terminated` records `at` as the termination time.
    async fn transition_user(
        &self,
        id: &str,
        from: UserStatus,
        to: UserStatus,
        reason: Option<&str>,
        at: i64,
    ) -> Result<bool, StoreError>;

    /// Gives a `disabled` (re-enabled) or `suspended` (reinstated) user back their access: sets
    /// `status`, clears the reason and records `at` as the time of re-enablement (the lifecycle
    /// counts inactivity from it), only if the status is still `from` (compare-and-set). False,
    /// writing nothing, otherwise (or if there is no such user).
    async fn enable_user(
        &self,
        id: &str,
        from: UserStatus,
        status: UserStatus,
        at: i64,
    ) -> Result<bool, StoreError>;

    /// Users whose status is `terminated` with a termination time at or before `before`, by
    /// id, at most `limit` (exempt ones too: termination already happened).
    async fn terminated_before(
        &self,
        before: i64,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StoreError>;

    /// Deletes a user terminated at or before `before`, in one transaction with everything
    /// that names them: grants (with their refresh tokens), authorization codes, sessions,
    /// device codes, tenant memberships and administration, platform administration, group
    /// memberships, app and role assignments, and lifecycle notices. The audit log is kept.
    /// False, deleting nothing, if the user is not (or no longer) terminated that long ago:
    /// of concurrent callers exactly one gets true.
    async fn delete_terminated_user(&self, id: &str, before: i64) -> Result<bool, StoreError>;

    /// Marks the user exempt from (or subject to) the lifecycle jobs. False if unknown.
    async fn set_user_exempt(&self, id: &str, exempt: bool) -> Result<bool, StoreError>;

    /// Records that an app signed the user in at `at` (keeps the latest).
    async fn record_app_signin(&self, id: &str, at: i64) -> Result<(), StoreError>;

    /// Users whose status is one of `statuses` and who are not exempt, ordered by id, after
    /// `after_id` (keyset paging: pass the last id of the previous page, "" first).
    async fn users_for_lifecycle(
        &self,
        statuses: &[UserStatus],
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StoreError>;

    /// Users whose email, name or id contains `query` (case-insensitive; all when empty),
    /// by email, paged.
    async fn search_users(
        &self,
        query: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<UserRecord>, StoreError>;

    /// As [`UserStore::search_users`], only people whose status is one of `statuses` (any
    /// when empty) and whose account type is `account_type` (any when `None`).
    async fn search_users_filtered(
        &self,
        query: &str,
        statuses: &[UserStatus],
        account_type: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<UserRecord>, StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClientRecord {
    pub client_id: String,
    pub name: String,
    pub confidential: bool,
    /// Exact redirect URIs.
    #[sqlx(try_from = "crate::column::JsonList")]
    pub redirect_uris: Vec<String>,
    #[sqlx(try_from = "crate::column::JsonList")]
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    /// Grant type names.
    #[sqlx(try_from = "crate::column::JsonList")]
    pub grant_types: Vec<String>,
    /// The client's public keys for `private_key_jwt` (RFC 7517 JWK set), if it has any.
    pub jwks: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
    /// The owning tenant; `None` for a platform app registered from the command line.
    pub tenant_id: Option<String>,
    pub homepage: Option<String>,
    /// Who may sign in.
    #[sqlx(try_from = "crate::column::Stored<AccessPolicy>")]
    pub access_policy: AccessPolicy,
    /// Lifetimes chosen by the app (within the platform's limits); `None`: the platform's.
    pub access_token_lifetime_secs: Option<i64>,
    pub refresh_token_idle_secs: Option<i64>,
    /// The tenant granted this (client_credentials) app the automation API.
    pub api_access: bool,
    /// JWS algorithms the app chose for its ID tokens and its access tokens; `None`: the
    /// platform default. Validated by the service, stored as given.
    pub id_token_signed_response_alg: Option<String>,
    pub access_token_signed_response_alg: Option<String>,
    /// RFC 9449 §5.2: every token request of the app must carry a DPoP proof.
    pub dpop_bound_access_tokens: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClientSecretRecord {
    pub id: String,
    pub client_id: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Revoked secrets stay listed (with the time) but never authenticate.
    pub revoked_at: Option<i64>,
}

#[async_trait]
pub trait ClientStore {
    /// Creates a client with its first secrets in one transaction: all or nothing.
    /// [`StoreError::Conflict`] if the client id exists.
    async fn insert_client(
        &self,
        client: &ClientRecord,
        secrets: &[ClientSecretRecord],
    ) -> Result<(), StoreError>;

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;

    /// The client's secrets (expired and revoked ones included; the caller checks), oldest first.
    async fn client_secrets(&self, client_id: &str) -> Result<Vec<ClientSecretRecord>, StoreError>;

    /// Replaces the client's editable fields (everything but `client_id`, `created_at` and
    /// `tenant_id`). False if unknown.
    async fn update_client(&self, client: &ClientRecord) -> Result<bool, StoreError>;

    /// Deletes the client in one transaction with everything that names it: its secrets,
    /// authorization codes, grants (with their refresh tokens), device codes, assignments,
    /// roles (with their assignments), consents, resource grants, pending grants of access to
    /// it and used client assertions. The audit log is kept. False, deleting nothing, if there
    /// is no such client: of concurrent callers exactly one gets true.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;

    /// The tenant's apps, by name.
    async fn clients_of_tenant(&self, tenant_id: &str) -> Result<Vec<ClientRecord>, StoreError>;

    /// Adds a secret if the client has fewer than `max_live` live secrets (not revoked,
    /// `expires_at` > `now`); false, writing nothing, otherwise. Concurrent adds never exceed
    /// the limit.
    async fn add_client_secret(
        &self,
        secret: &ClientSecretRecord,
        now: i64,
        max_live: i64,
    ) -> Result<bool, StoreError>;

    /// Revokes one secret of the client. False if unknown or already revoked.
    async fn revoke_client_secret(
        &self,
        client_id: &str,
        secret_id: &str,
        at: i64,
    ) -> Result<bool, StoreError>;

    /// Live secrets expiring in (`now`, `before`], with their client, for expiry reminders.
    async fn secrets_expiring(
        &self,
        now: i64,
        before: i64,
    ) -> Result<Vec<ClientSecretRecord>, StoreError>;
}

/// Client assertions already used (`private_key_jwt`).
#[async_trait]
pub trait AssertionLog {
    /// Records a client assertion's `jti` (RFC 7523 §3 item 7), kept until `expires_at`: the
    /// last moment the assertion is accepted (its `exp` plus the accepted clock skew). False,
    /// writing nothing, if the client used it before: a replay. Concurrent callers with one
    /// `jti`: exactly one gets true.
    async fn record_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError>;

    /// Forgets assertions whose `expires_at` is before `now` (DPoP proofs' too).
    async fn delete_expired_assertions(&self, now: i64) -> Result<u64, StoreError>;

    /// Records a DPoP proof's `jti` (RFC 9449 §11.1) for the key with thumbprint `jkt`, kept
    /// until `expires_at`, in the same single-use log as client assertions under the name
    /// `dpop:<jkt>` (no client id has that form). False if that key used the `jti` before.
    async fn record_dpop_proof(
        &self,
        jkt: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.record_assertion(&format!("dpop:{jkt}"), jti, expires_at)
            .await
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GrantRecord {
    pub id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub session_hash: Option<String>,
    pub scope: String,
    pub auth_time: Option<i64>,
    #[sqlx(try_from = "crate::column::JsonList")]
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub created_at: i64,
    /// Absolute end of the grant and of every refresh token in it.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// DPoP (RFC 9449): the thumbprint of the key a public client's refresh tokens are bound to.
    pub dpop_jkt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuthCodeRecord {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub session_hash: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    #[sqlx(try_from = "crate::column::JsonList")]
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The grant the code was redeemed into (set with `used_at`): what a replay revokes.
    pub grant_id: Option<String>,
}

/// What presenting a one-time value found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption<T> {
    /// First use: now marked used.
    Redeemed(T),
    /// Used before: a replay.
    Replayed(T),
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: i64,
    /// Idle end: the token must be used (rotated) before this.
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// A refresh token's row, its grant's and its person's, as one joined read.
#[derive(sqlx::FromRow)]
pub(crate) struct RefreshTokenWithGrant {
    #[sqlx(flatten)]
    pub grant: GrantRecord,
    pub token_hash: String,
    pub token_created_at: i64,
    pub token_expires_at: i64,
    pub token_used_at: Option<i64>,
    #[sqlx(flatten)]
    pub person: JoinedUser,
}

impl RefreshTokenWithGrant {
    pub(crate) fn split(self) -> Result<RefreshFamily, StoreError> {
        let token = RefreshTokenRecord {
            token_hash: self.token_hash,
            grant_id: self.grant.id.clone(),
            created_at: self.token_created_at,
            expires_at: self.token_expires_at,
            used_at: self.token_used_at,
        };
        Ok(RefreshFamily {
            token,
            grant: self.grant,
            person: self.person.into_record()?,
        })
    }
}

/// What the refresh grant reads in one round trip: the presented token, its grant, and the
/// grant's person (`None`: a grant without one, or a person since deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    pub token: RefreshTokenRecord,
    pub grant: GrantRecord,
    pub person: Option<UserRecord>,
}

/// An authorization code's row with its person's, as one joined read.
#[derive(sqlx::FromRow)]
pub(crate) struct CodeWithUser {
    #[sqlx(flatten)]
    pub code: AuthCodeRecord,
    #[sqlx(flatten)]
    pub person: JoinedUser,
}

impl CodeWithUser {
    pub(crate) fn split(self) -> Result<(AuthCodeRecord, Option<UserRecord>), StoreError> {
        Ok((self.code, self.person.into_record()?))
    }
}

/// A person's columns in a `LEFT JOIN users u` ([`crate::portable::joined_user_columns`]):
/// each named with a `u_` prefix, so they do not collide with the other table's, and all NULL
/// when the join found no one.
#[derive(sqlx::FromRow)]
pub(crate) struct JoinedUser {
    pub(crate) u_id: Option<String>,
    pub(crate) u_tenant_id: Option<String>,
    pub(crate) u_object_id: Option<String>,
    pub(crate) u_email: Option<String>,
    pub(crate) u_name: Option<String>,
    pub(crate) u_created_at: Option<i64>,
    pub(crate) u_last_signin_at: Option<i64>,
    pub(crate) u_status: Option<String>,
    pub(crate) u_account_type: Option<String>,
    pub(crate) u_terms_version: Option<String>,
    pub(crate) u_registered_at: Option<i64>,
    pub(crate) u_access_ends_at: Option<i64>,
    pub(crate) u_status_reason: Option<String>,
    pub(crate) u_exempt: Option<bool>,
    pub(crate) u_app_signin_at: Option<i64>,
    pub(crate) u_given_name: Option<String>,
    pub(crate) u_family_name: Option<String>,
    pub(crate) u_email_verified: Option<bool>,
    pub(crate) u_enabled_at: Option<i64>,
    pub(crate) u_terminated_at: Option<i64>,
}

impl JoinedUser {
    /// The person, or `None` when the join found no one; a stored status this version does
    /// not know is an error naming it, as in [`UserRecord`]'s own mapping.
    fn into_record(self) -> Result<Option<UserRecord>, StoreError> {
        use crate::column::Name as _;
        let Some(id) = self.u_id else {
            return Ok(None);
        };
        let missing = |column: &str| StoreError::Backend(format!("users.{column} is NULL"));
        let status_text = self.u_status.ok_or_else(|| missing("status"))?;
        let status = UserStatus::from_name(&status_text).ok_or_else(|| {
            StoreError::Backend(format!(
                "unknown user status {status_text:?} in the database"
            ))
        })?;
        Ok(Some(UserRecord {
            id,
            tenant_id: self.u_tenant_id.ok_or_else(|| missing("tenant_id"))?,
            object_id: self.u_object_id.ok_or_else(|| missing("object_id"))?,
            email: self.u_email,
            name: self.u_name,
            created_at: self.u_created_at.ok_or_else(|| missing("created_at"))?,
            last_signin_at: self
                .u_last_signin_at
                .ok_or_else(|| missing("last_signin_at"))?,
            status,
            account_type: self.u_account_type.ok_or_else(|| missing("account_type"))?,
            terms_version: self.u_terms_version,
            registered_at: self.u_registered_at,
            access_ends_at: self.u_access_ends_at,
            status_reason: self.u_status_reason,
            exempt: self.u_exempt.ok_or_else(|| missing("exempt"))?,
            app_signin_at: self.u_app_signin_at,
            given_name: self.u_given_name,
            family_name: self.u_family_name,
            email_verified: self
                .u_email_verified
                .ok_or_else(|| missing("email_verified"))?,
            enabled_at: self.u_enabled_at,
            terminated_at: self.u_terminated_at,
        }))
    }
}

#[async_trait]
pub trait GrantStore {
    async fn insert_grant(&self, grant: &GrantRecord) -> Result<(), StoreError>;

    async fn get_grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError>;

    /// Revokes a grant (idempotent; the first revocation time stays). False if unknown.
    async fn revoke_grant(&self, id: &str, at: i64) -> Result<bool, StoreError>;

    /// Every grant made in this SSO session (revoked ones included), oldest first.
    async fn grants_of_session(&self, session_hash: &str) -> Result<Vec<GrantRecord>, StoreError>;

    /// Revokes every grant of a user (all devices, all apps); returns how many.
    async fn revoke_grants_of_user(&self, user_id: &str, at: i64) -> Result<u64, StoreError>;

    /// The user's grants neither revoked nor past `expires_at` at `now`, oldest first.
    async fn live_grants_of_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<GrantRecord>, StoreError>;

    /// Revokes the user's grants to one client (their refresh tokens stop working). Returns
    /// how many were live.
    async fn revoke_grants_of_user_for_client(
        &self,
        user_id: &str,
        client_id: &str,
        at: i64,
    ) -> Result<u64, StoreError>;

    /// Revokes every grant of this SSO session; returns how many.
    async fn revoke_grants_of_session(
        &self,
        session_hash: &str,
        at: i64,
    ) -> Result<u64, StoreError>;

    async fn insert_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError>;

    /// The code as stored (used or not), without using it: the caller checks who presents it
    /// before [`GrantStore::redeem_code_into_grant`], so a wrong caller never burns it.
    async fn get_code(&self, code_hash: &str) -> Result<Option<AuthCodeRecord>, StoreError>;

    /// The code and its person in one read (`None` for a person since deleted): what the code
    /// grant decides on.
    async fn get_code_with_user(
        &self,
        code_hash: &str,
    ) -> Result<Option<(AuthCodeRecord, Option<UserRecord>)>, StoreError>;

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<(), StoreError>;

    /// Marks the refresh token used and returns it, atomically (`UPDATE … WHERE used_at IS
    /// NULL`: of concurrent redeemers exactly one gets [`Redemption::Redeemed`], every later one
    /// [`Redemption::Replayed`]), and in the same transaction stores its `successor` (the
    /// rotated token) if it was redeemed: a crash or a lost connection never leaves a spent
    /// token without its successor.
    async fn redeem_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
        successor: Option<&RefreshTokenRecord>,
    ) -> Result<Redemption<RefreshTokenRecord>, StoreError>;

    /// A retry after a lost refresh response: if the token `token_hash` was redeemed at or
    /// after `used_since` and the successor it was rotated to is still unused, that successor
    /// is deleted and `successor` takes its place, in one transaction; true. False, writing
    /// nothing, otherwise (the successor was used, or another retry replaced it first).
    async fn reissue_refresh_token(
        &self,
        token_hash: &str,
        used_since: i64,
        successor: &RefreshTokenRecord,
    ) -> Result<bool, StoreError>;

    /// Spends the code and stores the grant it opens, with the grant's first refresh token if
    /// there is one, in one transaction: only the first of concurrent redeemers gets
    /// [`Redemption::Redeemed`] and stores anything (the code then names the grant in
    /// `grant_id`); a later one gets [`Redemption::Replayed`] with the code as the first left it,
    /// and writes nothing. The caller decided everything (caller, gate, tokens) beforehand from
    /// [`GrantStore::get_code`], whose fields never change but `used_at` and `grant_id`, so
    /// checking first and redeeming after is one decision, and a request refused on the way
    /// spends nothing.
    async fn redeem_code_into_grant(
        &self,
        code_hash: &str,
        now: i64,
        grant: &GrantRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<Redemption<AuthCodeRecord>, StoreError>;

    /// The refresh token, its grant and the grant's person in one read (the refresh grant
    /// needs all three).
    async fn get_refresh_token_with_grant(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshFamily>, StoreError>;

    /// The refresh token, without using it (for introspection and revocation).
    async fn get_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshTokenRecord>, StoreError>;

    /// Records an access token as revoked until it expires anyway.
    async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError>;

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;
}
