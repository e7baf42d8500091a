//! The workload identity federation statements both backends run alike (see `statements.rs`
//! for how these macros work): reads, lists and guarded single-row writes of providers and
//! rules. Inserts and the provider delete, whose guards each backend enforces its own way
//! (SQLite's single writer, PostgreSQL's row locks), are in `sqlite/federation.rs` and
//! `postgres/federation.rs`.

macro_rules! federation_statements {
    ($store:ty) => {
        impl $store {
            pub(super) async fn provider(
                &self,
                org: &Id,
                id: &Id,
            ) -> StoreResult<Option<Provider>> {
                let sql = format!(
                    "SELECT {PROVIDER_COLS} FROM workload_identity_providers \
                     WHERE id = ? AND organization_id = ? AND deleted_at IS NULL"
                );
                self.fetch_opt(&sql, args![id, org], provider_row).await
            }

            pub(super) async fn provider_by_id(&self, id: &Id) -> StoreResult<Option<Provider>> {
                let sql = format!(
                    "SELECT {PROVIDER_COLS} FROM workload_identity_providers \
                     WHERE id = ? AND deleted_at IS NULL"
                );
                self.fetch_opt(&sql, args![id], provider_row).await
            }

            pub(super) async fn list_providers(
                &self,
                org: &Id,
                page: &PageRequest,
            ) -> StoreResult<Page<Provider>> {
                let cursor = match &page.after {
                    None => None,
                    Some(after) => Some(
                        self.cursor_seq(
                            "workload_identity_providers",
                            "organization_id = ?",
                            Some(after),
                            &[org.as_str()],
                        )
                        .await?,
                    ),
                };
                let (cmp, from, order) = page.keyset(cursor);
                let sql = format!(
                    "SELECT {PROVIDER_COLS} FROM workload_identity_providers \
                     WHERE organization_id = ? AND deleted_at IS NULL AND seq {cmp} ? \
                     ORDER BY seq {order} LIMIT ?"
                );
                let args = args![org, from, i64::from(page.limit) + 1];
                self.fetch_page(&sql, args, page.limit, provider_row).await
            }

            pub(super) async fn update_provider(
                &self,
                provider: &Provider,
                audit: &[AuditEvent],
            ) -> StoreResult<()> {
                let p = provider;
                self.update_one(
                    "UPDATE workload_identity_providers SET name = ?, description = ?, \
                     issuer = ?, audience = ?, enabled = ?, attribute_transformations = ?, \
                     verification = ?, updated_at = ?ts \
                     WHERE id = ? AND organization_id = ? AND deleted_at IS NULL",
                    args![
                        &p.name,
                        &p.description,
                        &p.issuer,
                        &p.audience,
                        p.enabled,
                        transformations_to_json(&p.attribute_transformations).to_string(),
                        p.verification.to_json().to_string(),
                        p.updated_at,
                        &p.id,
                        &p.organization_id,
                    ],
                    "provider is gone",
                    audit,
                )
                .await
            }

            pub(super) async fn rule(
                &self,
                org: &Id,
                provider: &Id,
                id: &Id,
            ) -> StoreResult<Option<FederationRule>> {
                let sql = format!(
                    "SELECT {RULE_COLS} FROM federation_rules WHERE id = ? \
                     AND organization_id = ? AND provider_id = ? AND deleted_at IS NULL"
                );
                self.fetch_opt(&sql, args![id, org, provider], rule_row)
                    .await
            }

            pub(super) async fn list_rules(
                &self,
                org: &Id,
                provider: &Id,
                service_account: Option<&Id>,
                page: &PageRequest,
            ) -> StoreResult<Page<FederationRule>> {
                let cursor = match &page.after {
                    None => None,
                    Some(after) => Some(
                        self.cursor_seq(
                            "federation_rules",
                            "organization_id = ? AND provider_id = ?",
                            Some(after),
                            &[org.as_str(), provider.as_str()],
                        )
                        .await?,
                    ),
                };
                let (cmp, from, order) = page.keyset(cursor);
                let sql = format!(
                    "SELECT {RULE_COLS} FROM federation_rules \
                     WHERE organization_id = ? AND provider_id = ? AND deleted_at IS NULL \
                     AND (? IS NULL OR service_account_id = ?) AND seq {cmp} ? \
                     ORDER BY seq {order} LIMIT ?"
                );
                let account = service_account.map(|a| a.as_str().to_owned());
                let args = args![
                    org,
                    provider,
                    account.clone(),
                    account,
                    from,
                    i64::from(page.limit) + 1
                ];
                self.fetch_page(&sql, args, page.limit, rule_row).await
            }

            pub(super) async fn update_rule(
                &self,
                rule: &FederationRule,
                audit: &[AuditEvent],
            ) -> StoreResult<()> {
                let r = rule;
                self.update_one(
                    "UPDATE federation_rules SET name = ?, description = ?, enabled = ?, \
                     attribute_matchers = ?, permissions = ?, updated_at = ?ts \
                     WHERE id = ? AND organization_id = ? AND provider_id = ? \
                     AND deleted_at IS NULL",
                    args![
                        &r.name,
                        &r.description,
                        r.enabled,
                        matchers_to_json(&r.attribute_matchers).to_string(),
                        r.permissions.to_json().to_string(),
                        r.updated_at,
                        &r.id,
                        &r.organization_id,
                        &r.provider_id,
                    ],
                    "rule is gone",
                    audit,
                )
                .await
            }

            pub(super) async fn delete_rule(
                &self,
                org: &Id,
                provider: &Id,
                id: &Id,
                at: Millis,
                audit: &[AuditEvent],
            ) -> StoreResult<()> {
                self.update_one(
                    "UPDATE federation_rules SET deleted_at = ?ts WHERE id = ? \
                     AND organization_id = ? AND provider_id = ? AND deleted_at IS NULL",
                    args![at, id, org, provider],
                    "rule is gone",
                    audit,
                )
                .await
            }
        }
    };
}

pub(super) use federation_statements;
