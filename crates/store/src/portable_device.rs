//! [`DeviceCodeStore`](crate::DeviceCodeStore) in SQL that is the same on SQLite and PostgreSQL.

pub(crate) const DEVICE_CODE_COLUMNS: &str = "device_code_hash, user_code_hash, client_id, scope,
    created_at, expires_at, interval_secs, last_polled_at, status, decided_at, user_id,
    session_hash, auth_time, amr, acr, grant_id";

macro_rules! device_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::DeviceCodeStore for $store {
            async fn insert_device_code(
                &self,
                c: &$crate::DeviceCodeRecord,
                now: i64,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query("DELETE FROM device_codes WHERE expires_at < $1")
                    .bind(now - $crate::device::DEVICE_CODE_KEPT_SECS)
                    .execute(&self.pool)
                    .await?;
                sqlx::query(
                    "INSERT INTO device_codes (device_code_hash, user_code_hash, client_id, scope,
                       created_at, expires_at, interval_secs, last_polled_at, status, decided_at,
                       user_id, session_hash, auth_time, amr, acr, grant_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                       $16)",
                )
                .bind(&c.device_code_hash)
                .bind(&c.user_code_hash)
                .bind(&c.client_id)
                .bind(&c.scope)
                .bind(c.created_at)
                .bind(c.expires_at)
                .bind(c.interval_secs)
                .bind(c.last_polled_at)
                .bind(c.status.as_str())
                .bind(c.decided_at)
                .bind(&c.user_id)
                .bind(&c.session_hash)
                .bind(c.auth_time)
                .bind(c.amr.as_deref().map($crate::column::json_list))
                .bind(&c.acr)
                .bind(&c.grant_id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_device_code(
                &self,
                device_code_hash: &str,
            ) -> Result<Option<$crate::DeviceCodeRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::DeviceCodeRecord>(&format!(
                    "SELECT {} FROM device_codes WHERE device_code_hash = $1",
                    $crate::portable_device::DEVICE_CODE_COLUMNS
                ))
                .bind(device_code_hash)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn find_device_code_by_user_code(
                &self,
                user_code_hash: &str,
            ) -> Result<Option<$crate::DeviceCodeRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::DeviceCodeRecord>(&format!(
                    "SELECT {} FROM device_codes WHERE user_code_hash = $1",
                    $crate::portable_device::DEVICE_CODE_COLUMNS
                ))
                .bind(user_code_hash)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn decide_device_code(
                &self,
                user_code_hash: &str,
                approval: Option<&$crate::DeviceApproval>,
                now: i64,
            ) -> Result<bool, $crate::StoreError> {
                let status = if approval.is_some() {
                    techpass_domain::device::DeviceStatus::Approved
                } else {
                    techpass_domain::device::DeviceStatus::Denied
                };
                Ok(sqlx::query(
                    "UPDATE device_codes SET status = $2, decided_at = $3, user_id = $4,
                       session_hash = $5, auth_time = $6, amr = $7, acr = $8
                     WHERE user_code_hash = $1 AND status = $9 AND expires_at > $3",
                )
                .bind(user_code_hash)
                .bind(status.as_str())
                .bind(now)
                .bind(approval.map(|a| a.user_id.as_str()))
                .bind(approval.map(|a| a.session_hash.as_str()))
                .bind(approval.map(|a| a.auth_time))
                .bind(approval.map(|a| $crate::column::json_list(&a.amr)))
                .bind(approval.and_then(|a| a.acr.as_deref()))
                .bind(techpass_domain::device::DeviceStatus::Pending.as_str())
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn record_device_poll(
                &self,
                device_code_hash: &str,
                previous_poll: Option<i64>,
                interval_secs: i64,
                now: i64,
            ) -> Result<bool, $crate::StoreError> {
                // -1 stands for "never polled": no poll happens before the epoch.
                Ok(sqlx::query(
                    "UPDATE device_codes SET last_polled_at = $2, interval_secs = $3
                     WHERE device_code_hash = $1 AND COALESCE(last_polled_at, -1) = $4",
                )
                .bind(device_code_hash)
                .bind(now)
                .bind(interval_secs)
                .bind(previous_poll.unwrap_or(-1))
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn redeem_device_code(
                &self,
                device_code_hash: &str,
                now: i64,
                grant_id: &str,
            ) -> Result<Option<$crate::DeviceCodeRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::DeviceCodeRecord>(&format!(
                    "UPDATE device_codes SET status = $2, grant_id = $5
                     WHERE device_code_hash = $1 AND status = $3 AND expires_at > $4
                     RETURNING {}",
                    $crate::portable_device::DEVICE_CODE_COLUMNS
                ))
                .bind(device_code_hash)
                .bind(techpass_domain::device::DeviceStatus::Redeemed.as_str())
                .bind(techpass_domain::device::DeviceStatus::Approved.as_str())
                .bind(now)
                .bind(grant_id)
                .fetch_optional(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use device_impls;
