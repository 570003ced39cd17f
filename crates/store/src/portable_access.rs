//! [`AccessStore`](crate::AccessStore) in SQL that is the same on SQLite and PostgreSQL, generated
//! for each backend's store type (see `portable`): app assignments, groups and app roles.
//!
//! Principal types appear in the SQL as the literals `'user'` and `'group'`, the values of
//! [`PRINCIPAL_USER`](crate::PRINCIPAL_USER) and [`PRINCIPAL_GROUP`](crate::PRINCIPAL_GROUP).
//! Access through a group counts only for a group of the app's own tenant.

macro_rules! access_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::AccessStore for $store {
            async fn assign(
                &self,
                a: &$crate::AssignmentRecord,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "INSERT INTO app_assignments
                       (client_id, principal_type, principal_id, assigned_at, assigned_by)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (client_id, principal_type, principal_id) DO NOTHING",
                )
                .bind(&a.client_id)
                .bind(&a.principal_type)
                .bind(&a.principal_id)
                .bind(a.assigned_at)
                .bind(&a.assigned_by)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn unassign(
                &self,
                client_id: &str,
                principal_type: &str,
                principal_id: &str,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                let removed = sqlx::query(
                    "DELETE FROM app_assignments
                     WHERE client_id = $1 AND principal_type = $2 AND principal_id = $3",
                )
                .bind(client_id)
                .bind(principal_type)
                .bind(principal_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if removed == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "DELETE FROM role_assignments
                     WHERE client_id = $1 AND principal_type = $2 AND principal_id = $3",
                )
                .bind(client_id)
                .bind(principal_type)
                .bind(principal_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn assignments_of_app(
                &self,
                client_id: &str,
            ) -> Result<Vec<$crate::AssignmentRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::AssignmentRecord>(
                    "SELECT client_id, principal_type, principal_id, assigned_at, assigned_by
                     FROM app_assignments WHERE client_id = $1
                     ORDER BY assigned_at, principal_type, principal_id",
                )
                .bind(client_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn belongs_to_tenant(
                &self,
                tenant_id: &str,
                user_id: &str,
                now: i64,
            ) -> Result<bool, $crate::StoreError> {
                let found = sqlx::query_scalar::<_, i64>(
                    "SELECT
                       (SELECT COUNT(*) FROM tenant_admins
                         WHERE tenant_id = $1 AND user_id = $2)
                     + (SELECT COUNT(*) FROM group_members m
                         JOIN groups g ON g.id = m.group_id
                         WHERE g.tenant_id = $1 AND m.user_id = $2)
                     + (SELECT COUNT(*) FROM tenant_members
                         WHERE tenant_id = $1 AND user_id = $2
                           AND (access_ends_at IS NULL OR access_ends_at > $3))",
                )
                .bind(tenant_id)
                .bind(user_id)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                Ok(found > 0)
            }

            async fn grant_consent(
                &self,
                c: &$crate::ConsentRecord,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO consents (user_id, client_id, scopes, granted_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (user_id, client_id)
                     DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
                )
                .bind(&c.user_id)
                .bind(&c.client_id)
                .bind(&c.scopes)
                .bind(c.granted_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn consent(
                &self,
                user_id: &str,
                client_id: &str,
            ) -> Result<Option<$crate::ConsentRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::ConsentRecord>(
                    "SELECT user_id, client_id, scopes, granted_at FROM consents
                     WHERE user_id = $1 AND client_id = $2",
                )
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn consents_of_user(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::ConsentRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::ConsentRecord>(
                    "SELECT user_id, client_id, scopes, granted_at FROM consents
                     WHERE user_id = $1 ORDER BY granted_at DESC, client_id",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn revoke_consent(
                &self,
                user_id: &str,
                client_id: &str,
                at: i64,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                let removed = sqlx::query(
                    "DELETE FROM consents WHERE user_id = $1 AND client_id = $2",
                )
                .bind(user_id)
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !removed {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE grants SET revoked_at = $3
                     WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(client_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn has_access(
                &self,
                client_id: &str,
                user_id: &str,
            ) -> Result<bool, $crate::StoreError> {
                let found = sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM app_assignments a
                     WHERE a.client_id = $1
                       AND ((a.principal_type = 'user' AND a.principal_id = $2)
                         OR (a.principal_type = 'group' AND a.principal_id IN (
                               SELECT m.group_id FROM group_members m
                               JOIN groups g ON g.id = m.group_id
                               JOIN clients c ON c.tenant_id = g.tenant_id
                               WHERE m.user_id = $2 AND c.client_id = $1)))",
                )
                .bind(client_id)
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
                Ok(found > 0)
            }

            async fn apps_assigned_to(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::ClientRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::ClientRecord>(&format!(
                    "SELECT {} FROM clients c
                     WHERE c.client_id IN (
                       SELECT a.client_id FROM app_assignments a
                       WHERE a.principal_type = 'user' AND a.principal_id = $1
                       UNION
                       SELECT a.client_id FROM app_assignments a
                       JOIN groups g ON g.id = a.principal_id
                       JOIN group_members m ON m.group_id = g.id
                       JOIN clients ac ON ac.client_id = a.client_id
                       WHERE a.principal_type = 'group' AND m.user_id = $1
                         AND ac.tenant_id = g.tenant_id)
                     ORDER BY c.name, c.client_id",
                    $crate::portable::qualified($crate::portable::CLIENT_COLUMNS, "c")
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn access_holders(
                &self,
                client_id: &str,
            ) -> Result<Vec<$crate::AccessHolder>, $crate::StoreError> {
                #[derive(sqlx::FromRow)]
                struct ViaGroup {
                    #[sqlx(flatten)]
                    user: $crate::UserRecord,
                    group_name: String,
                }
                let users = $crate::portable::qualified($crate::portable::USER_COLUMNS, "u");
                let direct = sqlx::query_as::<_, $crate::UserRecord>(&format!(
                    "SELECT {users} FROM app_assignments a JOIN users u ON u.id = a.principal_id
                     WHERE a.client_id = $1 AND a.principal_type = 'user'"
                ))
                .bind(client_id)
                .fetch_all(&self.pool)
                .await?;
                let via_groups = sqlx::query_as::<_, ViaGroup>(&format!(
                    "SELECT {users}, g.name AS group_name
                     FROM app_assignments a
                     JOIN clients c ON c.client_id = a.client_id
                     JOIN groups g ON g.id = a.principal_id AND g.tenant_id = c.tenant_id
                     JOIN group_members m ON m.group_id = g.id
                     JOIN users u ON u.id = m.user_id
                     WHERE a.client_id = $1 AND a.principal_type = 'group'"
                ))
                .bind(client_id)
                .fetch_all(&self.pool)
                .await?;
                let mut holders =
                    std::collections::BTreeMap::<String, $crate::AccessHolder>::new();
                for user in direct {
                    holders.insert(
                        user.id.clone(),
                        $crate::AccessHolder {
                            user,
                            direct: true,
                            via_groups: Vec::new(),
                        },
                    );
                }
                for row in via_groups {
                    holders
                        .entry(row.user.id.clone())
                        .or_insert_with(|| $crate::AccessHolder {
                            user: row.user,
                            direct: false,
                            via_groups: Vec::new(),
                        })
                        .via_groups
                        .push(row.group_name);
                }
                Ok(holders
                    .into_values()
                    .map(|mut holder| {
                        holder.via_groups.sort();
                        holder.via_groups.dedup();
                        holder
                    })
                    .collect())
            }

            async fn insert_group(&self, g: &$crate::GroupRecord) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO groups (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&g.id)
                .bind(&g.tenant_id)
                .bind(&g.name)
                .bind(g.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_group(
                &self,
                id: &str,
            ) -> Result<Option<$crate::GroupRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::GroupRecord>(
                    "SELECT id, tenant_id, name, created_at FROM groups WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn groups_of_tenant(
                &self,
                tenant_id: &str,
            ) -> Result<Vec<$crate::GroupRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::GroupRecord>(
                    "SELECT id, tenant_id, name, created_at FROM groups WHERE tenant_id = $1
                     ORDER BY name, id",
                )
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_group(&self, id: &str) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                for sql in [
                    "DELETE FROM role_assignments
                     WHERE principal_type = 'group' AND principal_id = $1",
                    "DELETE FROM app_assignments
                     WHERE principal_type = 'group' AND principal_id = $1",
                    "DELETE FROM group_members WHERE group_id = $1",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                }
                let deleted = sqlx::query("DELETE FROM groups WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(deleted == 1)
            }

            async fn add_group_member(
                &self,
                group_id: &str,
                user_id: &str,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)
                     ON CONFLICT (group_id, user_id) DO NOTHING",
                )
                .bind(group_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn remove_group_member(
                &self,
                group_id: &str,
                user_id: &str,
            ) -> Result<bool, $crate::StoreError> {
                Ok(
                    sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
                        .bind(group_id)
                        .bind(user_id)
                        .execute(&self.pool)
                        .await?
                        .rows_affected()
                        == 1,
                )
            }

            async fn group_members(&self, group_id: &str) -> Result<Vec<String>, $crate::StoreError> {
                Ok(sqlx::query_scalar::<_, String>(
                    "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id",
                )
                .bind(group_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn groups_of_user(
                &self,
                tenant_id: &str,
                user_id: &str,
            ) -> Result<Vec<$crate::GroupRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::GroupRecord>(
                    "SELECT id, tenant_id, name, created_at FROM groups
                     WHERE tenant_id = $1
                       AND id IN (SELECT group_id FROM group_members WHERE user_id = $2)
                     ORDER BY name, id",
                )
                .bind(tenant_id)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn define_role(
                &self,
                client_id: &str,
                role: &str,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "INSERT INTO app_roles (client_id, role) VALUES ($1, $2)
                     ON CONFLICT (client_id, role) DO NOTHING",
                )
                .bind(client_id)
                .bind(role)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn delete_role(
                &self,
                client_id: &str,
                role: &str,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM role_assignments WHERE client_id = $1 AND role = $2")
                    .bind(client_id)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
                let deleted = sqlx::query("DELETE FROM app_roles WHERE client_id = $1 AND role = $2")
                    .bind(client_id)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(deleted == 1)
            }

            async fn roles_of_app(&self, client_id: &str) -> Result<Vec<String>, $crate::StoreError> {
                Ok(sqlx::query_scalar::<_, String>(
                    "SELECT role FROM app_roles WHERE client_id = $1 ORDER BY role",
                )
                .bind(client_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn role_assignments_of_app(
                &self,
                client_id: &str,
            ) -> Result<Vec<$crate::RoleAssignmentRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::RoleAssignmentRecord>(
                    "SELECT client_id, role, principal_type, principal_id FROM role_assignments
                     WHERE client_id = $1 ORDER BY role, principal_type, principal_id",
                )
                .bind(client_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn assign_role(
                &self,
                r: &$crate::RoleAssignmentRecord,
            ) -> Result<bool, $crate::StoreError> {
                // Inserts only if the role is defined, in one statement (a role deleted meanwhile
                // cannot leave an orphan assignment).
                let inserted = sqlx::query(
                    "INSERT INTO role_assignments (client_id, role, principal_type, principal_id)
                     SELECT client_id, role, $3, $4 FROM app_roles
                     WHERE client_id = $1 AND role = $2
                     ON CONFLICT (client_id, role, principal_type, principal_id) DO NOTHING",
                )
                .bind(&r.client_id)
                .bind(&r.role)
                .bind(&r.principal_type)
                .bind(&r.principal_id)
                .execute(&self.pool)
                .await?
                .rows_affected();
                if inserted == 1 {
                    return Ok(true);
                }
                let defined = sqlx::query_scalar::<_, String>(
                    "SELECT role FROM app_roles WHERE client_id = $1 AND role = $2",
                )
                .bind(&r.client_id)
                .bind(&r.role)
                .fetch_optional(&self.pool)
                .await?;
                match defined {
                    Some(_) => Ok(false),
                    None => Err($crate::StoreError::NotFound),
                }
            }

            async fn unassign_role(
                &self,
                r: &$crate::RoleAssignmentRecord,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "DELETE FROM role_assignments
                     WHERE client_id = $1 AND role = $2 AND principal_type = $3
                       AND principal_id = $4",
                )
                .bind(&r.client_id)
                .bind(&r.role)
                .bind(&r.principal_type)
                .bind(&r.principal_id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn roles_of_user(
                &self,
                client_id: &str,
                user_id: &str,
            ) -> Result<Vec<String>, $crate::StoreError> {
                Ok(sqlx::query_scalar::<_, String>(
                    "SELECT DISTINCT r.role FROM role_assignments r
                     WHERE r.client_id = $1
                       AND ((r.principal_type = 'user' AND r.principal_id = $2)
                         OR (r.principal_type = 'group' AND r.principal_id IN (
                               SELECT m.group_id FROM group_members m
                               JOIN groups g ON g.id = m.group_id
                               JOIN clients c ON c.tenant_id = g.tenant_id
                               WHERE m.user_id = $2 AND c.client_id = $1)))
                     ORDER BY r.role",
                )
                .bind(client_id)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use access_impls;
