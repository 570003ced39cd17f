//! What TechPass keeps to re-verify a person at their upstream (issue 13 item 6), and the
//! development upstream's disabled test people.

use async_trait::async_trait;

use crate::StoreError;

/// A person's link to an upstream they signed in through.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UpstreamLinkRecord {
    pub user_id: String,
    pub upstream: String,
    /// The upstream's refresh token, sealed by the caller (the store never sees the
    /// plaintext); `None` when the upstream issued none.
    pub sealed_refresh_token: Option<String>,
    /// When the upstream last confirmed the person (a sign-in or a successful refresh).
    pub last_verified_at: i64,
    /// Re-verifications since then that got no answer from the upstream.
    pub failures: i64,
}

#[async_trait]
pub trait UpstreamLinkStore {
    /// Stores the link a sign-in made, replacing the person's earlier one for that upstream
    /// (its refresh token, `last_verified_at`, and `failures` back to 0).
    async fn put_upstream_link(&self, link: &UpstreamLinkRecord) -> Result<(), StoreError>;

    /// The person's links, the most recently verified first.
    async fn upstream_links_of_user(
        &self,
        user_id: &str,
    ) -> Result<Vec<UpstreamLinkRecord>, StoreError>;

    /// A successful re-verification at `at`: `last_verified_at` = `at` (never moved backwards),
    /// `failures` = 0, and the refresh token replaced when the upstream rotated it
    /// (`sealed_refresh_token` is `Some`); the claim ([`Self::claim_upstream_check`]) ends.
    /// False if there is no such link.
    async fn upstream_link_verified(
        &self,
        user_id: &str,
        upstream: &str,
        sealed_refresh_token: Option<&str>,
        at: i64,
    ) -> Result<bool, StoreError>;

    /// Claims the re-verification of a link whose `last_verified_at` is still
    /// `seen_verified_at` and that no one else is checking at `now`: it is marked as being
    /// checked until `until`. True for exactly one of concurrent claimers; false if the link
    /// was verified meanwhile, is being checked, or is gone.
    async fn claim_upstream_check(
        &self,
        user_id: &str,
        upstream: &str,
        seen_verified_at: i64,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError>;

    /// A re-verification that got no answer: `failures` + 1; the claim ends.
    async fn upstream_link_failed(&self, user_id: &str, upstream: &str) -> Result<(), StoreError>;

    /// Forgets every link of the person (the upstream refused them); returns how many.
    async fn delete_upstream_links_of_user(&self, user_id: &str) -> Result<u64, StoreError>;

    /// Disables (`true`) or enables a development upstream test person; idempotent.
    async fn set_dev_person_disabled(
        &self,
        person: &str,
        disabled: bool,
        at: i64,
    ) -> Result<(), StoreError>;

    /// The development upstream's disabled test people, sorted.
    async fn dev_people_disabled(&self) -> Result<Vec<String>, StoreError>;
}
