//! The settings services read: the sections of the configuration that carry business rules
//! (sessions, tokens, accounts, invitations, the lifecycle, apps) and the mode. They are
//! deserialised from the configuration file and environment by the root package, which owns
//! loading and validation; here they are plain values.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    pub idle_timeout_secs: u64,
    pub max_lifetime_secs: u64,
    pub login_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsConfig {
    /// The version of the terms of use and privacy policy people accept now.
    pub terms_version: String,
    /// The document itself: a Markdown file, or empty for the built-in one.
    pub terms_document: String,
    pub officer_domains: Vec<String>,
    pub invite_only_domains: Vec<String>,
    pub vendor_local_part_marker: String,
}

impl AccountsConfig {
    pub fn classification(&self) -> techpass_domain::account::ClassificationRules {
        techpass_domain::account::ClassificationRules {
            officer_domains: self.officer_domains.clone(),
            invite_only_domains: self.invite_only_domains.clone(),
            vendor_local_part_marker: self.vendor_local_part_marker.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationsConfig {
    pub link_lifetime_days: u64,
    pub max_vendor_access_days: u64,
}

impl InvitationsConfig {
    pub fn policy(&self) -> techpass_domain::tenancy::InvitationPolicy {
        techpass_domain::tenancy::InvitationPolicy {
            link_lifetime_secs: days(self.link_lifetime_days),
            max_vendor_access_secs: days(self.max_vendor_access_days),
        }
    }
}

fn days(n: u64) -> i64 {
    i64::try_from(n)
        .unwrap_or(i64::MAX / 86_400)
        .saturating_mul(86_400)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleConfig {
    pub never_used_terminate_days: u64,
    pub inactive_disable_days: u64,
    pub inactive_terminate_days: u64,
    pub reminder_days: u64,
    /// A terminated account (with its grants, sessions and memberships; not its audit trail)
    /// is deleted this many days after its termination.
    pub delete_terminated_after_days: u64,
}

impl LifecycleConfig {
    pub fn policy(&self) -> techpass_domain::lifecycle::LifecyclePolicy {
        techpass_domain::lifecycle::LifecyclePolicy {
            never_used_terminate_secs: days(self.never_used_terminate_days),
            inactive_disable_secs: days(self.inactive_disable_days),
            inactive_terminate_secs: days(self.inactive_terminate_days),
            reminder_secs: days(self.reminder_days),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppsConfig {
    pub max_secrets: u32,
    pub max_public_keys: u32,
    pub secret_max_lifetime_days: u64,
    pub credential_reminder_days: u64,
    pub access_review_interval_days: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    pub access_token_lifetime_secs: u64,
    pub id_token_lifetime_secs: u64,
    pub refresh_token_idle_secs: u64,
    pub refresh_token_max_lifetime_secs: u64,
    pub clock_skew_secs: u64,
    /// How long a device code waits for the person's decision (RFC 8628 §3.2 `expires_in`).
    #[serde(default = "default_device_code_lifetime")]
    pub device_code_lifetime_secs: u64,
    /// The polling interval a device is told to keep (RFC 8628 §3.2 `interval`).
    #[serde(default = "default_device_poll_interval")]
    pub device_poll_interval_secs: u64,
    /// A rotated refresh token used again this soon after its first use, while its successor
    /// is unused, is a retry after a lost response rather than a replay (0: never).
    #[serde(default = "default_refresh_reuse_grace")]
    pub refresh_reuse_grace_secs: u64,
}

fn default_refresh_reuse_grace() -> u64 {
    10
}

fn default_device_code_lifetime() -> u64 {
    600
}

fn default_device_poll_interval() -> u64 {
    5
}

/// Bounded staleness against the upstreams (see [`crate::reverify`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamPolicy {
    /// A TechPass refresh or SSO reuse this long after the upstream last confirmed the person
    /// refreshes at the upstream first.
    pub reverify_after_secs: u64,
    /// Further attempts when the upstream gives no answer.
    pub reverify_retries: u32,
    /// How long after the check became due an unanswered re-verification still lets the
    /// request through; refused after.
    pub reverify_grace_secs: u64,
}

impl Default for UpstreamPolicy {
    fn default() -> Self {
        UpstreamPolicy {
            reverify_after_secs: 3600,
            reverify_retries: 1,
            reverify_grace_secs: 900,
        }
    }
}

/// What the services are told of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub session: SessionConfig,
    pub tokens: TokensConfig,
    pub accounts: AccountsConfig,
    pub invitations: InvitationsConfig,
    pub lifecycle: LifecycleConfig,
    pub apps: AppsConfig,
    pub upstream: UpstreamPolicy,
}
