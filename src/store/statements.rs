//! The statements both backends run alike, written once: reads, lists and guarded single-row
//! updates whose SQL differs only in how parameters and timestamps are spelled (`?`, `?ts`;
//! see `dialect.rs`). Each aggregate's macro is expanded in that aggregate's file of each
//! backend (`sqlite/keys.rs`, `postgres/keys.rs`, …), which keeps only the SQL of its own:
//! inserts with their guards, locks, batch updates.
//!
//! Macros rather than generic functions for the reason `rows::decode_rows!` gives (sqlx's
//! executor bounds); the names they use (`KEY_COLS`, `key_row`, `fetch_opt`, `update_one`, …)
//! are the expanding backend's.

/// Projects: read, list, rename.
macro_rules! project_statements {
    ($store:ty) => {
        impl $store {
            pub(super) async fn project(&self, org: &Id, id: &Id) -> StoreResult<Option<Project>> {
                let sql = format!(
                    "SELECT {PROJECT_COLS} FROM projects WHERE id = ? AND organization_id = ?"
                );
                self.fetch_opt(&sql, args![id, org], project_row).await
            }

            pub(super) async fn list_projects(
                &self,
                org: &Id,
                include_archived: bool,
                page: &PageRequest,
            ) -> StoreResult<Page<Project>> {
                let scope = "organization_id = ?";
                let after = self
                    .cursor_seq("projects", scope, page.after.as_ref(), &[org.as_str()])
                    .await?;
                let sql = format!(
                    "SELECT {PROJECT_COLS} FROM projects WHERE organization_id = ? AND seq > ? \
                     AND (? OR archived_at IS NULL) ORDER BY seq LIMIT ?"
                );
                let args = args![org, after, include_archived, i64::from(page.limit) + 1];
                self.fetch_page(&sql, args, page.limit, project_row).await
            }

            pub(super) async fn update_project(
                &self,
                project: &Project,
                audit: &[AuditEvent],
            ) -> StoreResult<()> {
                let p = project;
                self.update_one(
                    "UPDATE projects SET name = ?, external_key_id = ?, allowed_ips = ? \
                     WHERE id = ? AND organization_id = ? AND archived_at IS NULL",
                    args![
                        &p.name,
                        &p.external_key_id,
                        allowlist_text(&p.allowed_ips),
                        &p.id,
                        &p.organization_id,
                    ],
                    "project is not active",
                    audit,
                )
                .await
            }
        }
    };
}

/// Service accounts: read, list a project's, update, list an organization's.
macro_rules! account_statements {
    ($store:ty) => {
        impl $store {
            pub(super) async fn service_account(
                &self,
                org: &Id,
                id: &Id,
            ) -> StoreResult<Option<ServiceAccount>> {
                let sql = format!(
                    "SELECT {ACCOUNT_COLS} FROM service_accounts \
                     WHERE id = ? AND organization_id = ? AND deleted_at IS NULL"
                );
                self.fetch_opt(&sql, args![id, org], account_row).await
            }

            pub(super) async fn list_project_service_accounts(
                &self,
                org: &Id,
                project: &Id,
                page: &PageRequest,
            ) -> StoreResult<Page<ServiceAccount>> {
                // Deleted accounts still resolve as cursors, so a client paging while another
                // deletes the last account it saw carries on instead of failing.
                let after = self
                    .cursor_seq(
                        "service_accounts",
                        "organization_id = ? AND project_id = ?",
                        page.after.as_ref(),
                        &[org.as_str(), project.as_str()],
                    )
                    .await?;
                let sql = format!(
                    "SELECT {ACCOUNT_COLS} FROM service_accounts WHERE project_id = ? \
                     AND organization_id = ? AND deleted_at IS NULL AND seq > ? \
                     ORDER BY seq LIMIT ?"
                );
                let args = args![project, org, after, i64::from(page.limit) + 1];
                self.fetch_page(&sql, args, page.limit, account_row).await
            }

            pub(super) async fn update_service_account(
                &self,
                account: &ServiceAccount,
                audit: &[AuditEvent],
            ) -> StoreResult<()> {
                let a = account;
                self.update_one(
                    "UPDATE service_accounts SET name = ?, description = ?, role = ?, \
                     updated_at = ?ts WHERE id = ? AND organization_id = ? \
                     AND deleted_at IS NULL",
                    args![
                        &a.name,
                        &a.description,
                        a.role.as_str(),
                        a.updated_at,
                        &a.id,
                        &a.organization_id,
                    ],
                    "service account is not live",
                    audit,
                )
                .await
            }

            pub(super) async fn list_org_service_accounts(
                &self,
                org: &Id,
                window: &Window,
            ) -> StoreResult<WindowPage<ServiceAccount>> {
                self.window_rows(
                    ("service_accounts", ACCOUNT_COLS),
                    "organization_id = ?",
                    &[org.as_str()],
                    window,
                    account_row,
                )
                .await
            }
        }
    };
}

/// Credentials: read (by ID and by client ID), list, update, delete.
macro_rules! credential_statements {
    ($store:ty) => {
        impl $store {
            pub(super) async fn credential(
                &self,
                org: &Id,
                account: &Id,
                id: &Id,
            ) -> StoreResult<Option<Credential>> {
                let sql = format!(
                    "SELECT {CREDENTIAL_COLS} FROM credentials WHERE id = ? \
                     AND organization_id = ? AND service_account_id = ? AND deleted_at IS NULL"
                );
                self.fetch_opt(&sql, args![id, org, account], credential_row)
                    .await
            }

            pub(super) async fn credential_by_client_id(
                &self,
                client_id: &str,
            ) -> StoreResult<Option<Credential>> {
                // No stored client ID has a NUL (PostgreSQL text cannot even bind one).
                if client_id.contains('\0') {
                    return Ok(None);
                }
                let sql = format!(
                    "SELECT {CREDENTIAL_COLS} FROM credentials \
                     WHERE client_id = ? AND deleted_at IS NULL"
                );
                self.fetch_opt(&sql, args![client_id], credential_row).await
            }

            pub(super) async fn list_credentials(
                &self,
                org: &Id,
                account: &Id,
                window: &Window,
            ) -> StoreResult<WindowPage<Credential>> {
                self.window_rows(
                    ("credentials", CREDENTIAL_COLS),
                    "organization_id = ? AND service_account_id = ?",
                    &[org.as_str(), account.as_str()],
                    window,
                    credential_row,
                )
                .await
            }

            pub(super) async fn update_credential(
                &self,
                credential: &Credential,
                audit: &[AuditEvent],
            ) -> StoreResult<()> {
                let c = credential;
                self.update_one(
                    "UPDATE credentials SET name = ?, description = ?, updated_at = ?ts \
                     WHERE id = ? AND organization_id = ? AND service_account_id = ? \
                     AND deleted_at IS NULL",
                    args![
                        &c.name,
                        &c.description,
                        c.updated_at,
                        &c.id,
                        &c.organization_id,
                        &c.service_account_id,
                    ],
                    "credential is not live",
                    audit,
                )
                .await
            }

            pub(super) async fn delete_credential(
                &self,
                org: &Id,
                account: &Id,
                id: &Id,
                at: Millis,
                audit: &[AuditEvent],
            ) -> StoreResult<()> {
                self.update_one(
                    "UPDATE credentials SET deleted_at = ?ts WHERE id = ? \
                     AND organization_id = ? AND service_account_id = ? AND deleted_at IS NULL",
                    args![at, id, org, account],
                    "credential is not live",
                    audit,
                )
                .await
            }
        }
    };
}

/// API keys: read (by hash and by ID), list a project's (owners through the backend's
/// `accounts_by_ids`), list admin keys, update, revoke a service account's.
macro_rules! key_statements {
    ($store:ty) => {
        impl $store {
            pub(super) async fn api_key_by_hash(
                &self,
                hash: &KeyHash,
            ) -> StoreResult<Option<ApiKey>> {
                let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE key_hash = ?");
                self.fetch_opt(&sql, args![hash.as_bytes()], key_row).await
            }

            pub(super) async fn api_key(&self, org: &Id, id: &Id) -> StoreResult<Option<ApiKey>> {
                let sql =
                    format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ? AND organization_id = ?");
                self.fetch_opt(&sql, args![id, org], key_row).await
            }

            pub(super) async fn list_project_api_keys(
                &self,
                org: &Id,
                project: &Id,
                access: OwnerAccess,
                page: &PageRequest,
            ) -> StoreResult<Page<(ApiKey, ServiceAccount)>> {
                let after = self
                    .cursor_seq(
                        "api_keys",
                        "organization_id = ? AND project_id = ?",
                        page.after.as_ref(),
                        &[org.as_str(), project.as_str()],
                    )
                    .await?;
                let role = match access {
                    OwnerAccess::Active => " AND s.role <> 'none'",
                    OwnerAccess::Inactive => " AND s.role = 'none'",
                    OwnerAccess::Any => "",
                };
                let sql = format!(
                    "SELECT {KEY_COLS_K} FROM api_keys k \
                     JOIN service_accounts s ON s.id = k.service_account_id \
                     WHERE k.project_id = ? AND k.organization_id = ? AND k.revoked_at IS NULL \
                     AND s.deleted_at IS NULL{role} AND k.seq > ? ORDER BY k.seq LIMIT ?"
                );
                let args = args![project, org, after, i64::from(page.limit) + 1];
                let page = self.fetch_page(&sql, args, page.limit, key_row).await?;
                // The owners, in one query.
                let owner_ids: Vec<&str> = page
                    .items
                    .iter()
                    .filter_map(|k| k.service_account_id.as_ref().map(Id::as_str))
                    .collect();
                let owners = self.accounts_by_ids(&owner_ids).await?;
                attach_owners(page, owners)
            }

            pub(super) async fn list_admin_keys(
                &self,
                org: &Id,
                page: &PageRequest,
            ) -> StoreResult<Page<ApiKey>> {
                let cursor = match &page.after {
                    None => None,
                    Some(_) => Some(
                        self.cursor_seq(
                            "api_keys",
                            "organization_id = ? AND kind = 'admin'",
                            page.after.as_ref(),
                            &[org.as_str()],
                        )
                        .await?,
                    ),
                };
                let (cmp, from, order) = page.keyset(cursor);
                let sql = format!(
                    "SELECT {KEY_COLS} FROM api_keys WHERE organization_id = ? AND kind = 'admin' \
                     AND revoked_at IS NULL AND seq {cmp} ? ORDER BY seq {order} LIMIT ?"
                );
                let args = args![org, from, i64::from(page.limit) + 1];
                self.fetch_page(&sql, args, page.limit, key_row).await
            }

            pub(super) async fn update_api_key(
                &self,
                key: &ApiKey,
                audit: &[AuditEvent],
            ) -> StoreResult<()> {
                self.update_one(
                    "UPDATE api_keys SET scopes = ?, expires_at = ?ts, allowed_ips = ?, \
                     max_requests_per_1_minute = ?, max_requests_per_1_day = ?, \
                     max_tokens_per_1_minute = ? \
                     WHERE id = ? AND organization_id = ? AND revoked_at IS NULL",
                    args![
                        &key.scopes,
                        key.expires_at,
                        allowlist_text(&key.allowed_ips),
                        key.limits.max_requests_per_1_minute,
                        key.limits.max_requests_per_1_day,
                        key.limits.max_tokens_per_1_minute,
                        &key.id,
                        &key.organization_id,
                    ],
                    "key is deleted",
                    audit,
                )
                .await
            }

            pub(super) async fn revoke_api_key(
                &self,
                org: &Id,
                id: &Id,
                effective: Millis,
                audit: &[AuditEvent],
            ) -> StoreResult<()> {
                self.update_one(
                    "UPDATE api_keys SET revoked_at = ?ts WHERE id = ? AND organization_id = ? \
                     AND kind = 'service_account' AND revoked_at IS NULL",
                    args![effective, id, org],
                    "key is deleted",
                    audit,
                )
                .await
            }
        }
    };
}

/// Project rate-limit overrides: a project's list (the upsert's guard is the backend's own).
macro_rules! rate_limit_statements {
    ($store:ty) => {
        impl $store {
            pub(super) async fn project_rate_limits(
                &self,
                org: &Id,
                project: &Id,
            ) -> StoreResult<Vec<ProjectRateLimit>> {
                // Both backends order `model` bytewise (PostgreSQL declares it COLLATE "C").
                let sql = format!(
                    "SELECT {RATE_LIMIT_COLS} FROM project_rate_limits \
                     WHERE organization_id = ? AND project_id = ? ORDER BY model"
                );
                self.fetch_all(&sql, args![org, project], rate_limit_row)
                    .await
            }
        }
    };
}

/// The audit log's list (its filters in `audit_sql.rs`).
macro_rules! audit_statements {
    ($store:ty) => {
        impl $store {
            pub(super) async fn list_audit_events(
                &self,
                org: &Id,
                query: &AuditQuery,
            ) -> StoreResult<Page<AuditEntry>> {
                let cursor = match query.before.as_ref().or(query.after.as_ref()) {
                    None => None,
                    // Installation-wide events are visible to every organization.
                    Some(id) => {
                        let scope = "(organization_id = ? OR organization_id IS NULL)";
                        Some(
                            self.cursor_seq("audit_events", scope, Some(id), &[org.as_str()])
                                .await?,
                        )
                    }
                };
                let (clause, binds) = audit_sql::list_clause(&DIALECT, org, query, cursor);
                let sql = format!("{AUDIT_SELECT}{clause}");
                let args = binds.into_iter().map(Arg::from).collect();
                let mut page = self.fetch_page(&sql, args, query.limit, audit_row).await?;
                // A `before` page was read oldest first; the list is newest first.
                if query.before.is_some() {
                    page.items.reverse();
                }
                Ok(page)
            }
        }
    };
}

pub(super) use {
    account_statements, audit_statements, credential_statements, key_statements,
    project_statements, rate_limit_statements,
};
