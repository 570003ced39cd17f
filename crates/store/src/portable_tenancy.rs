//! [`TenantStore`](crate::TenantStore) and [`InvitationStore`](crate::InvitationStore) in SQL that
//! is the same on SQLite and PostgreSQL, generated for each backend's store type (see `portable`).
//!
//! Multi-step contracts run in one transaction whose first statement is a write: on PostgreSQL
//! that write takes the row lock that serialises concurrent callers (the tenant's row for
//! "count then act" rules, the invitation's row for acceptance); on SQLite it takes the database
//! write lock before anything is read, so no transaction acts on a stale read.

macro_rules! tenancy_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::TenantStore for $store {
            async fn insert_tenant(
                &self,
                t: &$crate::TenantRecord,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(&format!(
                    "INSERT INTO tenants ({})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    $crate::portable::TENANT_COLUMNS
                ))
                .bind(&t.id)
                .bind(&t.slug)
                .bind(&t.name)
                .bind(&t.description)
                .bind(&t.purpose)
                .bind(t.status.as_str())
                .bind(&t.requested_by)
                .bind(t.created_at)
                .bind(t.status_at)
                .bind(&t.status_by)
                .bind(&t.status_reason)
                .execute(&self.pool)
                .await?;
                self.rows.changed();
                Ok(())
            }

            async fn get_tenant(
                &self,
                id: &str,
            ) -> Result<Option<$crate::TenantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::TenantRecord>(&format!(
                    "SELECT {} FROM tenants WHERE id = $1",
                    $crate::portable::TENANT_COLUMNS
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn get_tenant_by_slug(
                &self,
                slug: &str,
            ) -> Result<Option<$crate::TenantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::TenantRecord>(&format!(
                    "SELECT {} FROM tenants WHERE slug = $1",
                    $crate::portable::TENANT_COLUMNS
                ))
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn list_tenants(
                &self,
                status: Option<techpass_domain::tenancy::TenantStatus>,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<$crate::TenantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::TenantRecord>(&format!(
                    "SELECT {} FROM tenants WHERE ($1 IS NULL OR status = $1)
                     ORDER BY created_at, id LIMIT $2 OFFSET $3",
                    $crate::portable::TENANT_COLUMNS
                ))
                .bind(status.map(|s| s.as_str()))
                .bind(limit.max(0))
                .bind(offset.max(0))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn transition_tenant(
                &self,
                id: &str,
                from: &[techpass_domain::tenancy::TenantStatus],
                to: techpass_domain::tenancy::TenantStatus,
                by: &str,
                reason: Option<&str>,
                at: i64,
                first_admin: Option<&str>,
            ) -> Result<bool, $crate::StoreError> {
                if from.is_empty() {
                    return Ok(false);
                }
                let sql = format!(
                    "UPDATE tenants SET status = $2, status_at = $3, status_by = $4,
                       status_reason = $5
                     WHERE id = $1 AND status IN ({})",
                    $crate::portable::placeholders(6, from.len())
                );
                let mut tx = self.pool.begin().await?;
                let mut update = sqlx::query(&sql)
                    .bind(id)
                    .bind(to.as_str())
                    .bind(at)
                    .bind(by)
                    .bind(reason);
                for status in from {
                    update = update.bind(status.as_str());
                }
                if update.execute(&mut *tx).await?.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if let Some(admin) = first_admin {
                    sqlx::query(
                        "INSERT INTO tenant_admins (tenant_id, user_id, added_at, added_by)
                         VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, user_id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(admin)
                    .bind(at)
                    .bind(by)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                self.rows.changed();
                Ok(true)
            }

            async fn add_tenant_admin(
                &self,
                a: &$crate::TenantAdminRecord,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "INSERT INTO tenant_admins (tenant_id, user_id, added_at, added_by)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, user_id) DO NOTHING",
                )
                .bind(&a.tenant_id)
                .bind(&a.user_id)
                .bind(a.added_at)
                .bind(&a.added_by)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn remove_tenant_admin(
                &self,
                tenant_id: &str,
                user_id: &str,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                // Lock the tenant before counting its admins: a concurrent removal waits here and
                // then counts what this one left.
                sqlx::query("UPDATE tenants SET status = status WHERE id = $1")
                    .bind(tenant_id)
                    .execute(&mut *tx)
                    .await?;
                let admins = sqlx::query_scalar::<_, String>(
                    "SELECT user_id FROM tenant_admins WHERE tenant_id = $1",
                )
                .bind(tenant_id)
                .fetch_all(&mut *tx)
                .await?;
                if !admins.iter().any(|a| a == user_id) {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if admins.len() == 1 {
                    tx.rollback().await?;
                    return Err($crate::StoreError::Conflict(
                        "the last admin of a tenant cannot be removed".into(),
                    ));
                }
                sqlx::query("DELETE FROM tenant_admins WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn tenant_admins(
                &self,
                tenant_id: &str,
            ) -> Result<Vec<$crate::TenantAdminRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::TenantAdminRecord>(
                    "SELECT tenant_id, user_id, added_at, added_by FROM tenant_admins
                     WHERE tenant_id = $1 ORDER BY added_at, user_id",
                )
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn tenants_of_admin(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::TenantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::TenantRecord>(&format!(
                    "SELECT {} FROM tenants
                     WHERE id IN (SELECT tenant_id FROM tenant_admins WHERE user_id = $1)
                     ORDER BY created_at, id",
                    $crate::portable::TENANT_COLUMNS
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn tenants_requested_by(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::TenantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::TenantRecord>(&format!(
                    "SELECT {} FROM tenants WHERE requested_by = $1 ORDER BY created_at, id",
                    $crate::portable::TENANT_COLUMNS
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn is_tenant_admin(
                &self,
                tenant_id: &str,
                user_id: &str,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query_scalar::<_, String>(
                    "SELECT user_id FROM tenant_admins WHERE tenant_id = $1 AND user_id = $2",
                )
                .bind(tenant_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some())
            }

            async fn grant_platform_admin(
                &self,
                user_id: &str,
                by: &str,
                at: i64,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "INSERT INTO platform_admins (user_id, granted_by, granted_at)
                     VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user_id)
                .bind(by)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn revoke_platform_admin(
                &self,
                user_id: &str,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query("DELETE FROM platform_admins WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn is_platform_admin(&self, user_id: &str) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query_scalar::<_, String>(
                    "SELECT user_id FROM platform_admins WHERE user_id = $1",
                )
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some())
            }
        }

        #[async_trait::async_trait]
        impl $crate::InvitationStore for $store {
            async fn insert_invitation(
                &self,
                i: &$crate::InvitationRecord,
            ) -> Result<Vec<$crate::InvitationRecord>, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                // Lock the tenant first, so two invitations of one person at once end with the
                // later one pending (rather than a unique violation on the pending index).
                sqlx::query("UPDATE tenants SET status = status WHERE id = $1")
                    .bind(&i.tenant_id)
                    .execute(&mut *tx)
                    .await?;
                let mut replaced = sqlx::query_as::<_, $crate::InvitationRecord>(&format!(
                    "UPDATE invitations SET status = 'replaced', status_at = $3
                     WHERE tenant_id = $1 AND email = $2 AND status = 'pending'
                     RETURNING {}",
                    $crate::portable::INVITATION_COLUMNS
                ))
                .bind(&i.tenant_id)
                .bind(&i.email)
                .bind(i.created_at)
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query(&format!(
                    "INSERT INTO invitations ({})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    $crate::portable::INVITATION_COLUMNS
                ))
                .bind(&i.id)
                .bind(&i.tenant_id)
                .bind(&i.email)
                .bind(&i.token_hash)
                .bind(&i.invited_by)
                .bind(i.created_at)
                .bind(i.expires_at)
                .bind(i.access_ends_at)
                .bind(i.status.as_str())
                .bind(i.status_at)
                .bind(&i.accepted_by)
                .bind(i.sent_count)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                replaced.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                Ok(replaced)
            }

            async fn get_invitation(
                &self,
                id: &str,
            ) -> Result<Option<$crate::InvitationRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::InvitationRecord>(&format!(
                    "SELECT {} FROM invitations WHERE id = $1",
                    $crate::portable::INVITATION_COLUMNS
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn find_invitation_by_token(
                &self,
                token_hash: &str,
            ) -> Result<Option<$crate::InvitationRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::InvitationRecord>(&format!(
                    "SELECT {} FROM invitations WHERE token_hash = $1",
                    $crate::portable::INVITATION_COLUMNS
                ))
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn invitations_of_tenant(
                &self,
                tenant_id: &str,
                status: Option<techpass_domain::tenancy::InvitationStatus>,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<$crate::InvitationRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::InvitationRecord>(&format!(
                    "SELECT {} FROM invitations
                     WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2)
                     ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
                    $crate::portable::INVITATION_COLUMNS
                ))
                .bind(tenant_id)
                .bind(status.map(|s| s.as_str()))
                .bind(limit.max(0))
                .bind(offset.max(0))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn renew_invitation(
                &self,
                id: &str,
                token_hash: &str,
                expires_at: i64,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE invitations
                     SET token_hash = $2, expires_at = $3, sent_count = sent_count + 1
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(token_hash)
                .bind(expires_at)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn revoke_invitation(&self, id: &str, at: i64) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE invitations SET status = 'revoked', status_at = $2
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn accept_invitation(
                &self,
                a: &$crate::Acceptance,
            ) -> Result<$crate::AcceptOutcome, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                // The compare-and-set on the invitation comes first: of concurrent acceptances
                // one wins its row; the others wait for it and then find it accepted.
                let accepted = sqlx::query_as::<_, $crate::InvitationRecord>(&format!(
                    "UPDATE invitations SET status = 'accepted', status_at = $2, accepted_by = $3
                     WHERE id = $1 AND status = 'pending' AND expires_at > $2
                     RETURNING {}",
                    $crate::portable::INVITATION_COLUMNS
                ))
                .bind(&a.invitation_id)
                .bind(a.at)
                .bind(&a.user_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(invitation) = accepted else {
                    tx.rollback().await?;
                    return Ok($crate::AcceptOutcome::NotPending);
                };
                let eligible = sqlx::query(
                    "UPDATE users SET status = $2, registered_at = COALESCE(registered_at, $3),
                       terms_version = COALESCE($4, terms_version), access_ends_at = $5
                     WHERE id = $1
                       AND status IN ('unregistered', 'registered', 'active', 'expired')",
                )
                .bind(&a.user_id)
                .bind(a.status.as_str())
                .bind(a.at)
                .bind(&a.terms_version)
                .bind(a.access_ends_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if eligible == 0 {
                    tx.rollback().await?;
                    return Ok($crate::AcceptOutcome::UserNotEligible);
                }
                sqlx::query(
                    "INSERT INTO tenant_members
                       (tenant_id, user_id, joined_at, access_ends_at, invitation_id)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (tenant_id, user_id) DO UPDATE
                       SET access_ends_at = excluded.access_ends_at,
                           invitation_id = excluded.invitation_id",
                )
                .bind(&invitation.tenant_id)
                .bind(&a.user_id)
                .bind(a.at)
                .bind(invitation.access_ends_at)
                .bind(&invitation.id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::AcceptOutcome::Accepted)
            }

            async fn expire_invitations(
                &self,
                now: i64,
            ) -> Result<Vec<$crate::InvitationRecord>, $crate::StoreError> {
                // One statement whose WHERE is re-checked on each row it locks (PostgreSQL) or
                // run under the write lock (SQLite): a concurrent caller skips rows this one
                // expired.
                let mut expired = sqlx::query_as::<_, $crate::InvitationRecord>(&format!(
                    "UPDATE invitations SET status = 'expired', status_at = $1
                     WHERE status = 'pending' AND expires_at <= $1
                     RETURNING {}",
                    $crate::portable::INVITATION_COLUMNS
                ))
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                expired.sort_by(|a, b| (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id)));
                Ok(expired)
            }

            async fn members_of_tenant(
                &self,
                tenant_id: &str,
            ) -> Result<Vec<$crate::MembershipRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::MembershipRecord>(&format!(
                    "SELECT {} FROM tenant_members WHERE tenant_id = $1
                     ORDER BY joined_at, user_id",
                    $crate::portable::MEMBER_COLUMNS
                ))
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn memberships_of_user(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::MembershipRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::MembershipRecord>(&format!(
                    "SELECT {} FROM tenant_members WHERE user_id = $1
                     ORDER BY joined_at, tenant_id",
                    $crate::portable::MEMBER_COLUMNS
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn membership(
                &self,
                tenant_id: &str,
                user_id: &str,
            ) -> Result<Option<$crate::MembershipRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::MembershipRecord>(&format!(
                    "SELECT {} FROM tenant_members WHERE tenant_id = $1 AND user_id = $2",
                    $crate::portable::MEMBER_COLUMNS
                ))
                .bind(tenant_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn end_membership(
                &self,
                tenant_id: &str,
                user_id: &str,
                at: i64,
            ) -> Result<Option<$crate::EndedMembership>, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                let membership = sqlx::query_as::<_, $crate::MembershipRecord>(&format!(
                    "UPDATE tenant_members
                     SET access_ends_at = CASE
                       WHEN access_ends_at IS NOT NULL AND access_ends_at < $3
                       THEN access_ends_at ELSE $3 END
                     WHERE tenant_id = $1 AND user_id = $2
                     RETURNING {}",
                    $crate::portable::MEMBER_COLUMNS
                ))
                .bind(tenant_id)
                .bind(user_id)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(membership) = membership else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let grants_revoked = sqlx::query(
                    "UPDATE grants SET revoked_at = $3
                     WHERE user_id = $2 AND revoked_at IS NULL
                       AND client_id IN (SELECT client_id FROM clients WHERE tenant_id = $1)",
                )
                .bind(tenant_id)
                .bind(user_id)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Their refresh tokens die with the grants; marking them used as well keeps
                // them dead whatever a later change to the grant does.
                sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $3
                     WHERE used_at IS NULL AND grant_id IN (
                       SELECT id FROM grants WHERE user_id = $2
                         AND client_id IN (SELECT client_id FROM clients WHERE tenant_id = $1))",
                )
                .bind(tenant_id)
                .bind(user_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                let assignments_removed = sqlx::query(
                    "DELETE FROM app_assignments
                     WHERE principal_type = 'user' AND principal_id = $2
                       AND client_id IN (SELECT client_id FROM clients WHERE tenant_id = $1)",
                )
                .bind(tenant_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let roles_removed = sqlx::query(
                    "DELETE FROM role_assignments
                     WHERE principal_type = 'user' AND principal_id = $2
                       AND client_id IN (SELECT client_id FROM clients WHERE tenant_id = $1)",
                )
                .bind(tenant_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let groups_left = sqlx::query(
                    "DELETE FROM group_members
                     WHERE user_id = $2
                       AND group_id IN (SELECT id FROM groups WHERE tenant_id = $1)",
                )
                .bind(tenant_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let invitations_revoked = sqlx::query(
                    "UPDATE invitations SET status = 'revoked', status_at = $3
                     WHERE tenant_id = $1 AND status = 'pending'
                       AND email = (SELECT LOWER(email) FROM users WHERE id = $2)",
                )
                .bind(tenant_id)
                .bind(user_id)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(Some($crate::EndedMembership {
                    invitations_revoked,
                    membership,
                    grants_revoked,
                    assignments_removed,
                    roles_removed,
                    groups_left,
                }))
            }

            async fn invitations_to_email(
                &self,
                tenant_id: &str,
                email: &str,
            ) -> Result<Vec<$crate::InvitationRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::InvitationRecord>(&format!(
                    "SELECT {} FROM invitations WHERE tenant_id = $1 AND email = $2
                     ORDER BY created_at DESC, id DESC",
                    $crate::portable::INVITATION_COLUMNS
                ))
                .bind(tenant_id)
                .bind(email)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn pending_invitations_to_email(
                &self,
                email: &str,
                now: i64,
            ) -> Result<Vec<$crate::InvitationRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::InvitationRecord>(&format!(
                    "SELECT {} FROM invitations
                     WHERE email = $1 AND status = 'pending' AND expires_at > $2
                     ORDER BY created_at DESC, id DESC",
                    $crate::portable::INVITATION_COLUMNS
                ))
                .bind(email)
                .bind(now)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use tenancy_impls;
