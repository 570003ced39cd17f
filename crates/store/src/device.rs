//! Device authorization (RFC 8628): device codes and user codes, both only as keyed hashes, the
//! person's decision, the device's polls, and the one redemption.

use async_trait::async_trait;
use techpass_domain::device::DeviceStatus;

use crate::StoreError;

/// How long a device code is kept after its expiry, so a late poll still hears
/// `expired_token` rather than an unknown code.
pub const DEVICE_CODE_KEPT_SECS: i64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceCodeRecord {
    pub device_code_hash: String,
    pub user_code_hash: String,
    pub client_id: String,
    /// Space-separated.
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub interval_secs: i64,
    pub last_polled_at: Option<i64>,
    #[sqlx(try_from = "crate::column::Stored<DeviceStatus>")]
    pub status: DeviceStatus,
    pub decided_at: Option<i64>,
    /// Set when approved: who, and the sign-in they approved from.
    pub user_id: Option<String>,
    pub session_hash: Option<String>,
    pub auth_time: Option<i64>,
    #[sqlx(try_from = "crate::column::OptionalJsonList")]
    pub amr: Option<Vec<String>>,
    pub acr: Option<String>,
    /// Set when redeemed: the grant the code was redeemed into, what a second redemption revokes.
    pub grant_id: Option<String>,
}

/// The approving person and their sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceApproval {
    pub user_id: String,
    pub session_hash: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: Option<String>,
}

#[async_trait]
pub trait DeviceCodeStore {
    /// Stores a new code (its status as given, normally pending), and forgets codes that
    /// expired more than an hour (`DEVICE_CODE_KEPT_SECS`) before `now`. `Conflict` if either
    /// hash is taken (the caller draws another user code); nothing is written then.
    async fn insert_device_code(&self, code: &DeviceCodeRecord, now: i64)
        -> Result<(), StoreError>;

    async fn get_device_code(
        &self,
        device_code_hash: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError>;

    async fn find_device_code_by_user_code(
        &self,
        user_code_hash: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError>;

    /// Approves (`Some`) or denies (`None`) the code with this user code if it is pending and
    /// unexpired at `now`: a compare-and-set, so of concurrent decisions exactly one gets true.
    /// False, writing nothing, otherwise.
    async fn decide_device_code(
        &self,
        user_code_hash: &str,
        approval: Option<&DeviceApproval>,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Records a poll at `now` with the interval the device must keep from now on, if the
    /// previous poll is still `previous_poll` (compare-and-set: of concurrent polls exactly one
    /// gets true). False, writing nothing, otherwise.
    async fn record_device_poll(
        &self,
        device_code_hash: &str,
        previous_poll: Option<i64>,
        interval_secs: i64,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Marks an approved code unexpired at `now` redeemed into the grant `grant_id` (which the
    /// caller stores next) and returns it: of concurrent redeemers exactly one gets it; `None`
    /// for anything else (pending, denied, redeemed, expired, unknown).
    async fn redeem_device_code(
        &self,
        device_code_hash: &str,
        now: i64,
        grant_id: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError>;
}
