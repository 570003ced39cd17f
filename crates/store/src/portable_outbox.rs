//! [`OutboxStore`](crate::OutboxStore), [`NoticeLog`](crate::NoticeLog) and
//! [`WebhookStore`](crate::WebhookStore) in SQL that is the same on SQLite and PostgreSQL,
//! generated for each backend's store type (see `portable`).
//!
//! Claims are one `UPDATE … WHERE id IN (SELECT … LIMIT n <CLAIM_LOCK>) RETURNING …`. The
//! backend supplies `CLAIM_LOCK`: PostgreSQL's `FOR UPDATE SKIP LOCKED`, so a concurrent claim
//! skips rows another is taking (without it both could lease the same row); nothing on SQLite,
//! where the statement runs under the database write lock.

macro_rules! outbox_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::OutboxStore for $store {
            async fn enqueue_email(&self, e: &$crate::EmailRecord) -> Result<(), $crate::StoreError> {
                sqlx::query(&format!(
                    "INSERT INTO outbox ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    $crate::portable::EMAIL_COLUMNS
                ))
                .bind(&e.id)
                .bind(&e.recipient)
                .bind(&e.subject)
                .bind(&e.body)
                .bind(&e.kind)
                .bind(e.created_at)
                .bind(e.next_attempt_at)
                .bind(e.attempts)
                .bind(e.sent_at)
                .bind(&e.last_error)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn claim_emails(
                &self,
                now: i64,
                lease_until: i64,
                limit: i64,
            ) -> Result<Vec<$crate::EmailRecord>, $crate::StoreError> {
                let mut claimed = sqlx::query_as::<_, $crate::EmailRecord>(&format!(
                    "UPDATE outbox SET next_attempt_at = $2, attempts = attempts + 1
                     WHERE id IN (SELECT id FROM outbox
                                  WHERE sent_at IS NULL AND next_attempt_at <= $1
                                  ORDER BY created_at, id LIMIT $3 {})
                     RETURNING {}",
                    Self::CLAIM_LOCK,
                    $crate::portable::EMAIL_COLUMNS
                ))
                .bind(now)
                .bind(lease_until)
                .bind(limit.max(0))
                .fetch_all(&self.pool)
                .await?;
                claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                Ok(claimed)
            }

            async fn mark_email_sent(&self, id: &str, at: i64) -> Result<(), $crate::StoreError> {
                sqlx::query("UPDATE outbox SET sent_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn mark_email_failed(
                &self,
                id: &str,
                error: &str,
                next_attempt_at: Option<i64>,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query("UPDATE outbox SET last_error = $2, next_attempt_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(error)
                    .bind(next_attempt_at.unwrap_or($crate::GIVEN_UP))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn list_emails(
                &self,
                recipient: Option<&str>,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<$crate::EmailRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::EmailRecord>(&format!(
                    "SELECT {} FROM outbox WHERE ($1 IS NULL OR recipient = $1)
                     ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
                    $crate::portable::EMAIL_COLUMNS
                ))
                .bind(recipient)
                .bind(limit.max(0))
                .bind(offset.max(0))
                .fetch_all(&self.pool)
                .await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::NoticeLog for $store {
            async fn record_notice(
                &self,
                subject: &str,
                kind: &str,
                due_at: i64,
                at: i64,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "INSERT INTO notices (subject, kind, due_at, sent_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (subject, kind, due_at) DO NOTHING",
                )
                .bind(subject)
                .bind(kind)
                .bind(due_at)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }
        }

        #[async_trait::async_trait]
        impl $crate::WebhookStore for $store {
            async fn insert_webhook(
                &self,
                w: &$crate::WebhookRecord,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(&format!(
                    "INSERT INTO webhooks ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    $crate::portable::WEBHOOK_COLUMNS
                ))
                .bind(&w.id)
                .bind(&w.tenant_id)
                .bind(&w.url)
                .bind($crate::column::json_list(&w.events))
                .bind(&w.secret_sealed)
                .bind(w.verified_at)
                .bind(w.created_at)
                .bind(&w.created_by)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_webhook(
                &self,
                id: &str,
            ) -> Result<Option<$crate::WebhookRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::WebhookRecord>(&format!(
                    "SELECT {} FROM webhooks WHERE id = $1",
                    $crate::portable::WEBHOOK_COLUMNS
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn webhooks_of_tenant(
                &self,
                tenant_id: &str,
            ) -> Result<Vec<$crate::WebhookRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::WebhookRecord>(&format!(
                    "SELECT {} FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id",
                    $crate::portable::WEBHOOK_COLUMNS
                ))
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn mark_webhook_verified(
                &self,
                id: &str,
                at: i64,
            ) -> Result<bool, $crate::StoreError> {
                // The first verification time stays.
                Ok(sqlx::query(
                    "UPDATE webhooks SET verified_at = COALESCE(verified_at, $2) WHERE id = $1",
                )
                .bind(id)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn delete_webhook(&self, id: &str) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(deleted == 1)
            }

            async fn insert_delivery(
                &self,
                d: &$crate::DeliveryRecord,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(&format!(
                    "INSERT INTO webhook_deliveries ({})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    $crate::portable::DELIVERY_COLUMNS
                ))
                .bind(&d.id)
                .bind(&d.webhook_id)
                .bind(&d.event)
                .bind(&d.payload)
                .bind(d.created_at)
                .bind(d.next_attempt_at)
                .bind(d.attempts)
                .bind(d.status.as_str())
                .bind(d.last_status_code)
                .bind(&d.last_error)
                .bind(d.delivered_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn claim_deliveries(
                &self,
                now: i64,
                lease_until: i64,
                limit: i64,
            ) -> Result<Vec<$crate::DeliveryRecord>, $crate::StoreError> {
                let mut claimed = sqlx::query_as::<_, $crate::DeliveryRecord>(&format!(
                    "UPDATE webhook_deliveries SET next_attempt_at = $2, attempts = attempts + 1
                     WHERE id IN (SELECT id FROM webhook_deliveries
                                  WHERE status = 'pending' AND next_attempt_at <= $1
                                  ORDER BY created_at, id LIMIT $3 {})
                     RETURNING {}",
                    Self::CLAIM_LOCK,
                    $crate::portable::DELIVERY_COLUMNS
                ))
                .bind(now)
                .bind(lease_until)
                .bind(limit.max(0))
                .fetch_all(&self.pool)
                .await?;
                claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                Ok(claimed)
            }

            async fn record_delivery_attempt(
                &self,
                id: &str,
                status: techpass_domain::tenancy::DeliveryStatus,
                status_code: Option<i64>,
                error: Option<&str>,
                next_attempt_at: i64,
                at: i64,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "UPDATE webhook_deliveries
                     SET status = $2, last_status_code = $3, last_error = $4,
                         next_attempt_at = $5,
                         delivered_at = CASE WHEN $2 = 'delivered' THEN $6 ELSE delivered_at END
                     WHERE id = $1",
                )
                .bind(id)
                .bind(status.as_str())
                .bind(status_code)
                .bind(error)
                .bind(next_attempt_at)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn record_webhook_challenge(
                &self,
                id: &str,
                at: i64,
                error: Option<&str>,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE webhooks SET challenge_at = $2, challenge_error = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(at)
                .bind(error)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn webhook_challenge(
                &self,
                id: &str,
            ) -> Result<Option<(i64, Option<String>)>, $crate::StoreError> {
                let row: Option<(Option<i64>, Option<String>)> = sqlx::query_as(
                    "SELECT challenge_at, challenge_error FROM webhooks WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.and_then(|(at, error)| at.map(|at| (at, error))))
            }

            async fn set_webhook_events(
                &self,
                id: &str,
                events: &[String],
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query("UPDATE webhooks SET events = $2 WHERE id = $1")
                    .bind(id)
                    .bind($crate::column::json_list(events))
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn requeue_delivery(
                &self,
                id: &str,
                webhook_id: &str,
                now: i64,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE webhook_deliveries
                     SET status = 'pending', attempts = 0, next_attempt_at = $3
                     WHERE id = $1 AND webhook_id = $2 AND status <> 'pending'",
                )
                .bind(id)
                .bind(webhook_id)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn claim_delivery(
                &self,
                id: &str,
                now: i64,
                lease_until: i64,
            ) -> Result<Option<$crate::DeliveryRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::DeliveryRecord>(&format!(
                    "UPDATE webhook_deliveries SET next_attempt_at = $3, attempts = attempts + 1
                     WHERE id = $1 AND status = 'pending' AND next_attempt_at <= $2
                     RETURNING {}",
                    $crate::portable::DELIVERY_COLUMNS
                ))
                .bind(id)
                .bind(now)
                .bind(lease_until)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn rotate_webhook_secret(
                &self,
                id: &str,
                sealed: &[u8],
                previous_until: i64,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE webhooks SET previous_secret_sealed = secret_sealed,
                       previous_until = $3, secret_sealed = $2
                     WHERE id = $1",
                )
                .bind(id)
                .bind(sealed)
                .bind(previous_until)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn webhook_previous_secret(
                &self,
                id: &str,
                now: i64,
            ) -> Result<Option<(Vec<u8>, i64)>, $crate::StoreError> {
                let row: Option<(Option<Vec<u8>>, Option<i64>)> = sqlx::query_as(
                    "SELECT previous_secret_sealed, previous_until FROM webhooks WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(match row {
                    Some((Some(sealed), Some(until))) if until > now => Some((sealed, until)),
                    _ => None,
                })
            }

            async fn deliveries_of_webhook(
                &self,
                webhook_id: &str,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<$crate::DeliveryRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::DeliveryRecord>(&format!(
                    "SELECT {} FROM webhook_deliveries WHERE webhook_id = $1
                     ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
                    $crate::portable::DELIVERY_COLUMNS
                ))
                .bind(webhook_id)
                .bind(limit.max(0))
                .bind(offset.max(0))
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use outbox_impls;
