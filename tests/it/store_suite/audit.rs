//! Store-suite cases for the audit log and its webhook outbox (run on every backend by
//! `store_suite!` in the parent file).

use std::collections::HashSet;

use keyplane::domain::audit::{Actor, AuditEvent, AuditQuery, DeliveryOutcome, EventType, Origin};
use keyplane::domain::ids::{Id, Kind};
use keyplane::domain::model::{Organization, Project};
use keyplane::store::StoreError;
use serde_json::json;

use super::{account_of, id, new_org, new_project, project_of, S, T0};

fn event(
    org: Option<&Organization>,
    event_type: EventType,
    resource: &str,
    actor: Actor,
    at: i64,
    project: Option<&Project>,
    webhook: bool,
) -> AuditEvent {
    AuditEvent {
        id: id(),
        organization_id: org.map(|o| o.id.clone()),
        event_type,
        effective_at: at,
        project_id: project.map(|p| p.id.clone()),
        resource_id: resource.into(),
        actor,
        origin: Origin {
            request_id: Some("req_1".into()),
            client_request_id: Some("0b7e8d8c-6a1e-4c8e-9d55-3c0c2f0b1a2d".into()),
            ip_address: Some("192.0.2.7".parse().unwrap()),
        },
        details: json!({ "data": { "name": resource } }),
        notify_webhook: webhook,
    }
}

fn query(limit: u32) -> AuditQuery {
    AuditQuery {
        limit,
        ..AuditQuery::default()
    }
}

async fn listed(store: &S, org: &Organization, q: &AuditQuery) -> Vec<Id> {
    store
        .list_audit_events(&org.id, q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.event.id)
        .collect()
}

pub async fn audit_events_commit_with_their_change_and_only_then(store: S) {
    let (org, _) = new_org(&store, "acme").await;
    let admin = Actor::AdminKey(id());
    let project = project_of(&org, "Billing", false);
    let created = event(
        Some(&org),
        EventType::ProjectCreated,
        &Kind::Project.render_openai(&project.id),
        admin.clone(),
        T0,
        Some(&project),
        false,
    );
    store
        .insert_project(&project, std::slice::from_ref(&created))
        .await
        .unwrap();
    let all = store.list_audit_events(&org.id, &query(10)).await.unwrap();
    assert_eq!(all.items.len(), 1);
    assert_eq!(all.items[0].event, created, "every field round-trips");
    assert_eq!(all.items[0].project_name.as_deref(), Some("Billing"));
    assert!(!all.has_more);

    let archived = event(
        Some(&org),
        EventType::ProjectArchived,
        "p",
        admin.clone(),
        T0 + 1,
        Some(&project),
        false,
    );
    store
        .archive_project(
            &org.id,
            &project.id,
            T0 + 1,
            std::slice::from_ref(&archived),
        )
        .await
        .unwrap();
    // A change whose guard fails writes nothing, its audit event included.
    let refused = event(
        Some(&org),
        EventType::ProjectUpdated,
        "p",
        admin.clone(),
        T0 + 2,
        Some(&project),
        false,
    );
    let err = store
        .update_project(&project, std::slice::from_ref(&refused))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let account = account_of(&project, "late");
    let err = store
        .insert_service_account(&account, None, std::slice::from_ref(&refused))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .delete_service_account(&org.id, &id(), T0 + 3, &[refused])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        listed(&store, &org, &query(10)).await,
        vec![archived.id, created.id],
        "newest first, nothing from the refused changes"
    );
}

pub async fn audit_lists_filter_and_page_both_ways(store: S) {
    let (a, _) = new_org(&store, "a").await;
    let (b, _) = new_org(&store, "b").await;
    let pa = new_project(&store, &a, "pa").await;
    let key_1 = Actor::AdminKey(id());
    let key_2 = Actor::AdminKey(id());
    let types = [
        EventType::ServiceAccountCreated,
        EventType::ApiKeyCreated,
        EventType::ServiceAccountDeleted,
    ];
    let mut written = Vec::new();
    for i in 0..12i64 {
        let actor = if i % 2 == 0 { &key_1 } else { &key_2 };
        let e = event(
            Some(&a),
            types[i as usize % 3],
            &format!("res_{}", i % 4),
            actor.clone(),
            T0 + i * 1000,
            (i % 3 == 0).then_some(&pa),
            false,
        );
        store
            .insert_project(&project_of(&a, "x", false), std::slice::from_ref(&e))
            .await
            .unwrap();
        written.push(e.id);
    }
    let foreign = event(
        Some(&b),
        EventType::ProjectCreated,
        "rb",
        key_1.clone(),
        T0,
        None,
        false,
    );
    store
        .insert_project(&project_of(&b, "y", false), std::slice::from_ref(&foreign))
        .await
        .unwrap();
    let global = event(
        None,
        EventType::SigningKeyRotated,
        "kid",
        Actor::System,
        T0 + 20_000,
        None,
        false,
    );
    store
        .insert_signing_key(
            &super::signing_key("kid", T0),
            Some(T0),
            std::slice::from_ref(&global),
        )
        .await
        .unwrap();

    let newest_first: Vec<Id> = std::iter::once(global.id.clone())
        .chain(written.iter().rev().cloned())
        .collect();
    // Forward in pages of 5, then back from the last page with `before`.
    let mut seen = Vec::new();
    let mut q = query(5);
    loop {
        let page = store.list_audit_events(&a.id, &q).await.unwrap();
        seen.extend(page.items.iter().map(|e| e.event.id.clone()));
        if !page.has_more {
            break;
        }
        q.after = page.items.last().map(|e| e.event.id.clone());
    }
    assert_eq!(
        seen, newest_first,
        "org A sees its events and global ones, once each"
    );
    let back = AuditQuery {
        before: Some(newest_first[10].clone()),
        ..query(5)
    };
    let page = store.list_audit_events(&a.id, &back).await.unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|e| e.event.id.clone())
            .collect::<Vec<_>>(),
        newest_first[5..10].to_vec(),
        "a `before` page is the five just newer, still newest first"
    );
    assert!(page.has_more);
    assert_eq!(
        listed(&store, &b, &query(10)).await,
        vec![global.id.clone(), foreign.id.clone()]
    );

    let count = |q: AuditQuery| {
        let store = store.clone();
        let a = a.clone();
        async move { listed(&store, &a, &q).await.len() }
    };
    let by_type = AuditQuery {
        event_types: vec![EventType::ApiKeyCreated, EventType::ServiceAccountDeleted],
        ..query(100)
    };
    assert_eq!(count(by_type).await, 8);
    let by_actor = AuditQuery {
        actor_ids: vec![key_2.rendered_id().unwrap()],
        ..query(100)
    };
    assert_eq!(count(by_actor).await, 6);
    let by_resource = AuditQuery {
        resource_ids: vec!["res_1".into(), "res_2".into()],
        ..query(100)
    };
    assert_eq!(count(by_resource).await, 6);
    let by_project = AuditQuery {
        project_ids: vec![pa.id.as_str().to_owned()],
        ..query(100)
    };
    assert_eq!(count(by_project).await, 4);
    let window = AuditQuery {
        from: Some(T0 + 3000),
        until: Some(T0 + 6000),
        ..query(100)
    };
    assert_eq!(
        listed(&store, &a, &window).await,
        vec![written[5].clone(), written[4].clone(), written[3].clone()]
    );
    let combined = AuditQuery {
        actor_ids: vec![key_1.rendered_id().unwrap()],
        event_types: vec![EventType::ServiceAccountCreated],
        ..query(100)
    };
    assert_eq!(
        listed(&store, &a, &combined).await,
        vec![written[6].clone(), written[0].clone()]
    );

    // Cursors: another organization's event is unknown; a global one is fine for both.
    let foreign_cursor = AuditQuery {
        after: Some(foreign.id.clone()),
        ..query(5)
    };
    assert!(matches!(
        store.list_audit_events(&a.id, &foreign_cursor).await,
        Err(StoreError::UnknownCursor)
    ));
    let unknown = AuditQuery {
        before: Some(id()),
        ..query(5)
    };
    assert!(matches!(
        store.list_audit_events(&a.id, &unknown).await,
        Err(StoreError::UnknownCursor)
    ));
    let from_global = AuditQuery {
        after: Some(global.id.clone()),
        ..query(1)
    };
    assert_eq!(listed(&store, &b, &from_global).await, vec![foreign.id]);
}

pub async fn webhook_deliveries_are_leased_retried_and_finished(store: S) {
    let (org, _) = new_org(&store, "hooks").await;
    let mut queued = Vec::new();
    for (i, webhook) in [true, false, true, true].into_iter().enumerate() {
        let e = event(
            Some(&org),
            EventType::ProjectCreated,
            &format!("p{i}"),
            Actor::System,
            T0 + i as i64,
            None,
            webhook,
        );
        store
            .insert_project(&project_of(&org, "x", false), std::slice::from_ref(&e))
            .await
            .unwrap();
        if webhook {
            queued.push(e.id);
        }
    }
    assert_eq!(store.pending_webhook_deliveries().await.unwrap(), 3);
    let now = T0 + 10_000;
    let first = store
        .claim_webhook_deliveries(now, now + 1000, 2)
        .await
        .unwrap();
    let ids: Vec<Id> = first.iter().map(|(e, _)| e.event.id.clone()).collect();
    assert_eq!(ids, queued[..2].to_vec(), "oldest first, at most the limit");
    assert!(first.iter().all(|(_, attempts)| *attempts == 0));
    let rest = store
        .claim_webhook_deliveries(now, now + 1000, 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter()
            .map(|(e, _)| e.event.id.clone())
            .collect::<Vec<_>>(),
        vec![queued[2].clone()],
        "leased events are not handed out twice"
    );
    assert!(store
        .claim_webhook_deliveries(now + 999, now + 2000, 10)
        .await
        .unwrap()
        .is_empty());

    store
        .finish_webhook_delivery(&queued[0], &DeliveryOutcome::Delivered { at: now })
        .await
        .unwrap();
    store
        .finish_webhook_delivery(
            &queued[1],
            &DeliveryOutcome::Failed {
                next_attempt_at: now + 5000,
                error: "receiver answered 500".into(),
            },
        )
        .await
        .unwrap();
    // The third one's holder died: its lease runs out and it is due again.
    let again = store
        .claim_webhook_deliveries(now + 1000, now + 9000, 10)
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|(e, _)| e.event.id.clone())
            .collect::<Vec<_>>(),
        vec![queued[2].clone()]
    );
    let retried = store
        .claim_webhook_deliveries(now + 5000, now + 6000, 10)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].0.event.id, queued[1]);
    assert_eq!(retried[0].1, 1, "one failed attempt recorded");
    for id in [&queued[1], &queued[2]] {
        store
            .finish_webhook_delivery(id, &DeliveryOutcome::Delivered { at: now + 6000 })
            .await
            .unwrap();
    }
    assert_eq!(store.pending_webhook_deliveries().await.unwrap(), 0);
    assert!(store
        .claim_webhook_deliveries(now + 86_400_000, now + 86_400_000, 10)
        .await
        .unwrap()
        .is_empty());
    let delivered: HashSet<Id> = store
        .list_audit_events(&org.id, &query(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| !e.event.notify_webhook)
        .map(|e| e.event.id)
        .collect();
    assert_eq!(delivered.len(), 4, "delivered events are no longer pending");
}

pub async fn export_and_import_carry_audit_events(source: S, target: S) {
    let (org, _) = new_org(&source, "moving").await;
    let project = project_of(&org, "p", false);
    let created = event(
        Some(&org),
        EventType::ProjectCreated,
        &Kind::Project.render_openai(&project.id),
        Actor::AdminKey(id()),
        T0,
        Some(&project),
        true,
    );
    source
        .insert_project(&project, std::slice::from_ref(&created))
        .await
        .unwrap();
    let rotated = event(
        None,
        EventType::SigningKeyRotated,
        "kid-1",
        Actor::System,
        T0 + 1,
        None,
        false,
    );
    source
        .insert_signing_key(
            &super::signing_key("kid-1", T0),
            Some(T0),
            std::slice::from_ref(&rotated),
        )
        .await
        .unwrap();

    let mut records = vec![];
    let n = source
        .export(&mut |r| {
            records.push(r);
            Ok(())
        })
        .await
        .unwrap();
    let audit: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            keyplane::store::Record::AuditEvent(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        audit,
        vec![created.clone(), rotated.clone()],
        "oldest first, every field"
    );
    let mut iter = records.clone().into_iter().map(Ok);
    assert_eq!(target.import(&mut iter).await.unwrap(), n);
    let listed = target.list_audit_events(&org.id, &query(10)).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|e| e.event.clone())
            .collect::<Vec<_>>(),
        vec![rotated, created]
    );
    assert_eq!(listed.items[1].project_name.as_deref(), Some("p"));
    assert_eq!(
        target.pending_webhook_deliveries().await.unwrap(),
        1,
        "an undelivered event is still to be delivered"
    );
}
