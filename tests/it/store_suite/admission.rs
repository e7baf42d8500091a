//! Store-suite cases for admission state: allowlists and limits on keys and projects, disabled
//! keys (and the admin lock-out guard they share with revocation), project rate-limit
//! overrides (run on every backend by `store_suite!` in the parent file).

use std::sync::Arc;

use ipnet::IpNet;
use keyplane::domain::audit::{Actor, AuditEvent, AuditQuery, EventType, Origin};
use keyplane::domain::keys::{SCOPE_READ, SCOPE_WRITE};
use keyplane::domain::limits::{
    Disabled, DisabledReason, KeyLimits, ProjectRateLimit, RateLimitFields,
};
use keyplane::domain::model::{ApiKey, Organization, OwnerAccess, Project};
use keyplane::store::StoreError;
use serde_json::json;

use super::{account_of, admin_key, id, key_for, new_org, new_project, page, S, T0};

pub(super) fn nets(list: &[&str]) -> Option<Vec<IpNet>> {
    Some(list.iter().map(|s| s.parse().unwrap()).collect())
}

pub(super) fn disabled(reason: DisabledReason, at: i64) -> Disabled {
    Disabled { reason, at }
}

fn event(org: &Organization, event_type: EventType, resource: &ApiKey) -> AuditEvent {
    AuditEvent {
        id: id(),
        organization_id: Some(org.id.clone()),
        event_type,
        effective_at: T0,
        project_id: resource.project_id.clone(),
        resource_id: resource.id.to_string(),
        actor: Actor::System,
        origin: Origin::default(),
        details: json!({}),
        notify_webhook: false,
    }
}

async fn audited(store: &S, org: &Organization) -> usize {
    let q = AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    };
    store
        .list_audit_events(&org.id, &q)
        .await
        .unwrap()
        .items
        .len()
}

fn refused(r: Result<(), StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

async fn fetched(store: &S, key: &ApiKey) -> ApiKey {
    store
        .api_key(&key.organization_id, &key.id)
        .await
        .unwrap()
        .unwrap()
}

pub async fn admission_fields_of_keys_and_projects_round_trip(store: S) {
    let (org, _) = new_org(&store, "acme").await;
    let project = Project {
        allowed_ips: nets(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]),
        ..super::project_of(&org, "fenced", false)
    };
    store.insert_project(&project, &[]).await.unwrap();
    assert_eq!(
        store.project(&org.id, &project.id).await.unwrap(),
        Some(project.clone())
    );
    let listed = store
        .list_projects(&org.id, false, &page(10, None))
        .await
        .unwrap();
    assert!(listed.items.contains(&project));
    let open = Project {
        allowed_ips: None,
        name: "open".into(),
        ..project.clone()
    };
    store.update_project(&open, &[]).await.unwrap();
    assert_eq!(
        store.project(&org.id, &project.id).await.unwrap(),
        Some(open.clone())
    );
    let fenced = Project {
        allowed_ips: nets(&["::ffff:0:0/96"]),
        ..open
    };
    store.update_project(&fenced, &[]).await.unwrap();
    assert_eq!(
        store.project(&org.id, &project.id).await.unwrap(),
        Some(fenced.clone())
    );

    let acct = account_of(&fenced, "svc");
    let (plain, _) = key_for(&acct);
    let key = ApiKey {
        allowed_ips: nets(&["203.0.113.0/24"]),
        limits: KeyLimits {
            max_requests_per_1_minute: Some(60),
            max_requests_per_1_day: Some(0),
            max_tokens_per_1_minute: None,
        },
        disabled: Some(disabled(DisabledReason::Exposed, T0 + 5)),
        ..plain
    };
    store
        .insert_service_account(&acct, Some(&key), &[])
        .await
        .unwrap();
    assert_eq!(fetched(&store, &key).await, key);
    assert_eq!(
        store.api_key_by_hash(&key.hash).await.unwrap(),
        Some(key.clone())
    );
    let keys = store
        .list_project_api_keys(&org.id, &fenced.id, OwnerAccess::Any, &page(10, None))
        .await
        .unwrap();
    assert_eq!(keys.items, vec![(key.clone(), acct.clone())]);
    // An update writes allowlist and limits; the disabled state is not its business.
    let updated = ApiKey {
        allowed_ips: None,
        limits: KeyLimits {
            max_requests_per_1_minute: None,
            max_requests_per_1_day: Some(1000),
            max_tokens_per_1_minute: Some(5000),
        },
        disabled: None,
        ..key.clone()
    };
    store.update_api_key(&updated, &[]).await.unwrap();
    assert_eq!(
        fetched(&store, &key).await,
        ApiKey {
            disabled: key.disabled,
            ..updated.clone()
        }
    );
    // Admin keys keep their (empty) admission fields too.
    let admin = admin_key(&org);
    store.insert_api_key(&admin, &[]).await.unwrap();
    assert_eq!(fetched(&store, &admin).await, admin);
}

pub async fn project_keys_are_disabled_and_enabled(store: S) {
    let (org, default) = new_org(&store, "acme").await;
    let acct = account_of(&default, "svc");
    let (key, _) = key_for(&acct);
    store
        .insert_service_account(&acct, Some(&key), &[])
        .await
        .unwrap();
    let before = audited(&store, &org).await;
    let off = disabled(DisabledReason::UserInitiated, T0 + 1);
    let audit = [event(&org, EventType::ApiKeyUpdated, &key)];
    store
        .set_api_key_disabled(&org.id, &key.id, Some(&off), T0 + 1, &audit)
        .await
        .unwrap();
    assert_eq!(fetched(&store, &key).await.disabled, Some(off));
    assert_eq!(
        audited(&store, &org).await,
        before + 1,
        "audited with the change"
    );
    // Disabling again records the newer reason; enabling clears both columns.
    let again = disabled(DisabledReason::Compromised, T0 + 2);
    store
        .set_api_key_disabled(&org.id, &key.id, Some(&again), T0 + 2, &[])
        .await
        .unwrap();
    assert_eq!(fetched(&store, &key).await.disabled, Some(again));
    store
        .set_api_key_disabled(&org.id, &key.id, None, T0 + 3, &[])
        .await
        .unwrap();
    assert_eq!(fetched(&store, &key).await, key);
    // A deleted key, an unknown key, or another organization's: Conflict, and no audit.
    let (other, _) = new_org(&store, "other").await;
    for (org_id, key_id) in [(&other.id, &key.id), (&org.id, &id())] {
        assert!(refused(
            store
                .set_api_key_disabled(org_id, key_id, Some(&off), T0, &audit)
                .await
        ));
    }
    store
        .revoke_api_key(&org.id, &key.id, T0 + 4, &[])
        .await
        .unwrap();
    assert!(refused(
        store
            .set_api_key_disabled(&org.id, &key.id, Some(&off), T0 + 5, &audit)
            .await
    ));
    assert!(refused(
        store
            .set_api_key_disabled(&org.id, &key.id, None, T0 + 5, &audit)
            .await
    ));
    assert_eq!(
        audited(&store, &org).await,
        before + 1,
        "no audit for refusals"
    );
}

/// The key `new_org` created (no scopes: full access).
async fn first_admin_key(store: &S, org: &Organization) -> ApiKey {
    let keys = store
        .list_admin_keys(&org.id, &page(10, None))
        .await
        .unwrap()
        .items;
    keys.into_iter().next().unwrap()
}

fn scoped(org: &Organization, scopes: &[&str]) -> ApiKey {
    ApiKey {
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..admin_key(org)
    }
}

pub async fn disabled_admin_keys_do_not_count_as_the_remaining_one(store: S) {
    let (org, _) = new_org(&store, "acme").await;
    let legacy = first_admin_key(&store, &org).await;
    let writer = scoped(&org, &[SCOPE_READ, SCOPE_WRITE]);
    let reader = scoped(&org, &[SCOPE_READ]);
    for k in [&writer, &reader] {
        store.insert_api_key(k, &[]).await.unwrap();
    }
    let now = T0 + 10;
    let off = disabled(DisabledReason::Compromised, now);
    store
        .set_api_key_disabled(&org.id, &legacy.id, Some(&off), now, &[])
        .await
        .unwrap();
    // The writer is the only enabled write-capable key left: it can be neither disabled nor
    // revoked; the read-only key can go either way.
    assert!(refused(
        store
            .set_api_key_disabled(&org.id, &writer.id, Some(&off), now, &[])
            .await
    ));
    assert!(refused(
        store.revoke_admin_key(&org.id, &writer.id, now, &[]).await
    ));
    store
        .set_api_key_disabled(&org.id, &reader.id, Some(&off), now, &[])
        .await
        .unwrap();
    assert_eq!(fetched(&store, &writer).await.disabled, None);
    // Enabling the legacy key makes it count again.
    store
        .set_api_key_disabled(&org.id, &legacy.id, None, now, &[])
        .await
        .unwrap();
    store
        .set_api_key_disabled(&org.id, &writer.id, Some(&off), now, &[])
        .await
        .unwrap();
    assert!(refused(
        store
            .set_api_key_disabled(&org.id, &legacy.id, Some(&off), now, &[])
            .await
    ));
    // An expired or revoked write-capable key does not count either.
    let expired = ApiKey {
        expires_at: Some(now),
        ..scoped(&org, &[SCOPE_WRITE])
    };
    store.insert_api_key(&expired, &[]).await.unwrap();
    assert!(refused(
        store.revoke_admin_key(&org.id, &legacy.id, now, &[]).await
    ));
    // Another organization's keys never count.
    let _other = new_org(&store, "other").await;
    assert!(refused(
        store
            .set_api_key_disabled(&org.id, &legacy.id, Some(&off), now, &[])
            .await
    ));
    assert_eq!(fetched(&store, &legacy).await.disabled, None);
}

pub async fn concurrent_disables_keep_one_enabled_admin_key(store: S) {
    for round in 0..5 {
        let (org, _) = new_org(&store, &format!("race{round}")).await;
        let legacy = first_admin_key(&store, &org).await;
        let writer = scoped(&org, &[SCOPE_WRITE]);
        store.insert_api_key(&writer, &[]).await.unwrap();
        let org = Arc::new(org);
        // Round by round: two disables, or a disable racing a revocation.
        let revoke_second = round % 2 == 1;
        let tasks: Vec<_> = [
            (legacy.id.clone(), false),
            (writer.id.clone(), revoke_second),
        ]
        .into_iter()
        .map(|(id, revoke)| {
            let (store, org) = (store.clone(), org.clone());
            tokio::spawn(async move {
                let off = disabled(DisabledReason::UserInitiated, T0 + 1);
                match revoke {
                    true => store.revoke_admin_key(&org.id, &id, T0 + 1, &[]).await,
                    false => {
                        store
                            .set_api_key_disabled(&org.id, &id, Some(&off), T0 + 1, &[])
                            .await
                    }
                }
            })
        })
        .collect();
        let mut done = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => done += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(done, 1, "exactly one of the last two enabled keys goes");
        let usable = [&legacy, &writer];
        let mut left = 0;
        for k in usable {
            let k = fetched(&store, k).await;
            if k.disabled.is_none() && k.revoked_at.is_none() {
                left += 1;
            }
        }
        assert_eq!(left, 1);
    }
}

fn overrides(model: &str, project: &Project, rpm: Option<i64>, at: i64) -> ProjectRateLimit {
    ProjectRateLimit {
        organization_id: project.organization_id.clone(),
        project_id: project.id.clone(),
        model: model.into(),
        overrides: RateLimitFields {
            max_requests_per_1_minute: rpm,
            max_tokens_per_1_minute: Some(1_000),
            max_images_per_1_minute: None,
            max_audio_megabytes_per_1_minute: Some(0),
            max_requests_per_1_day: None,
            batch_1_day_max_input_tokens: Some(9_000_000),
        },
        updated_at: at,
    }
}

pub async fn rate_limit_overrides_upsert_and_need_an_active_project(store: S) {
    let (org, default) = new_org(&store, "acme").await;
    let p = new_project(&store, &org, "p").await;
    assert_eq!(
        store.project_rate_limits(&org.id, &p.id).await.unwrap(),
        vec![]
    );
    // Listed in bytewise model order whatever the insertion order or collation.
    let models = ["gpt-4o", "Zeta", "gpt-4o-mini", "a"];
    for (i, m) in models.iter().enumerate() {
        let audit = [AuditEvent {
            id: id(),
            organization_id: Some(org.id.clone()),
            event_type: EventType::ProjectUpdated,
            effective_at: T0,
            project_id: Some(p.id.clone()),
            resource_id: p.id.to_string(),
            actor: Actor::System,
            origin: Origin::default(),
            details: json!({}),
            notify_webhook: false,
        }];
        store
            .put_project_rate_limit(&overrides(m, &p, Some(i as i64), T0), &audit)
            .await
            .unwrap();
    }
    let listed = store.project_rate_limits(&org.id, &p.id).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|l| l.model.as_str()).collect();
    assert_eq!(names, ["Zeta", "a", "gpt-4o", "gpt-4o-mini"]);
    assert_eq!(listed[2], overrides("gpt-4o", &p, Some(0), T0));
    // Upsert: a second put replaces every field of that model only.
    let replaced = ProjectRateLimit {
        overrides: RateLimitFields {
            max_requests_per_1_day: Some(7),
            ..RateLimitFields::default()
        },
        ..overrides("gpt-4o", &p, None, T0 + 1)
    };
    store.put_project_rate_limit(&replaced, &[]).await.unwrap();
    let listed = store.project_rate_limits(&org.id, &p.id).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[2], replaced);
    assert_eq!(listed[3], overrides("gpt-4o-mini", &p, Some(2), T0));
    // Scoped: another project, another organization see none of them.
    assert_eq!(
        store
            .project_rate_limits(&org.id, &default.id)
            .await
            .unwrap(),
        vec![]
    );
    let (other, _) = new_org(&store, "other").await;
    assert_eq!(
        store.project_rate_limits(&other.id, &p.id).await.unwrap(),
        vec![]
    );
    let foreign = ProjectRateLimit {
        organization_id: other.id.clone(),
        ..overrides("x", &p, None, T0)
    };
    assert!(refused(store.put_project_rate_limit(&foreign, &[]).await));
    // An archived project takes no new overrides and changes none; unknown projects neither.
    store
        .archive_project(&org.id, &p.id, T0 + 2, &[])
        .await
        .unwrap();
    let audits = audited(&store, &org).await;
    let bad = event(&org, EventType::ProjectUpdated, &admin_key(&org));
    for limit in [
        overrides("new", &p, Some(1), T0 + 3),
        overrides("gpt-4o", &p, Some(1), T0 + 3),
        overrides(
            "gpt-4o",
            &Project {
                id: id(),
                ..p.clone()
            },
            Some(1),
            T0 + 3,
        ),
    ] {
        assert!(refused(
            store
                .put_project_rate_limit(&limit, std::slice::from_ref(&bad))
                .await
        ));
    }
    assert_eq!(audited(&store, &org).await, audits);
    assert_eq!(
        store.project_rate_limits(&org.id, &p.id).await.unwrap()[2],
        replaced
    );
}
