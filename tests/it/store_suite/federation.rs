//! Store-suite cases for workload identity federation: providers and rules round trip, are
//! scoped, paged, limited, guarded, and move with export/import (run on every backend by the
//! suite macros in `mod.rs`).

use std::collections::BTreeMap;

use keyplane::domain::federation::{
    AttributeTransformation, FederationRule, MatcherValue, Permissions, Provider, Verification,
    MAX_PROVIDERS_PER_ORGANIZATION, MAX_RULES_PER_PROVIDER,
};
use keyplane::domain::ids::Id;
use keyplane::domain::model::{Organization, Project, ServiceAccount};
use keyplane::domain::page::PageRequest;
use keyplane::store::{Record, StoreError};
use serde_json::json;

use super::{account_of, id, new_org, new_project, S, T0};

fn provider_of(org: &Organization, name: &str) -> Provider {
    Provider {
        id: id(),
        organization_id: org.id.clone(),
        name: name.into(),
        description: None,
        issuer: "https://token.actions.githubusercontent.com".into(),
        audience: "keyplane".into(),
        enabled: true,
        attribute_transformations: vec![AttributeTransformation {
            attribute: "repo".into(),
            expression: "lower(assertion.repository)".into(),
        }],
        verification: Verification::Discovery {
            discovery_url: None,
        },
        created_at: T0,
        updated_at: T0,
        deleted_at: None,
    }
}

fn rule_of(provider: &Provider, account: &ServiceAccount) -> FederationRule {
    FederationRule {
        id: id(),
        organization_id: provider.organization_id.clone(),
        provider_id: provider.id.clone(),
        project_id: account.project_id.clone().unwrap(),
        service_account_id: account.id.clone(),
        name: Some("main branch".into()),
        description: None,
        enabled: true,
        attribute_matchers: BTreeMap::from([
            ("repo".to_owned(), MatcherValue::String("acme/api".into())),
            ("run_attempt".to_owned(), MatcherValue::Number(1.into())),
        ]),
        permissions: Permissions::ServiceAccountDefault,
        created_at: T0,
        updated_at: T0,
        deleted_at: None,
    }
}

async fn account_in(store: &S, project: &Project, name: &str) -> ServiceAccount {
    let a = account_of(project, name);
    store.insert_service_account(&a, None, &[]).await.unwrap();
    a
}

fn page(limit: u32, after: Option<&Id>, descending: bool) -> PageRequest {
    PageRequest {
        limit,
        after: after.cloned(),
        descending,
    }
}

fn conflict(err: StoreError) -> &'static str {
    match err {
        StoreError::Conflict(why) => why,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub async fn providers_round_trip_are_scoped_paged_and_deleted(store: S) {
    let (org, _) = new_org(&store, "a").await;
    let (other, _) = new_org(&store, "b").await;
    let mut a = provider_of(&org, "github");
    a.description = Some("CI".into());
    let mut b = provider_of(&org, "k8s");
    b.verification = Verification::UploadedJwks {
        jwks: json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": "AAAA"}]}),
    };
    let c = provider_of(&org, "third");
    for p in [&a, &b, &c] {
        store.insert_provider(p, &[]).await.unwrap();
    }
    assert_eq!(
        store.provider(&org.id, &b.id).await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(store.provider(&other.id, &b.id).await.unwrap(), None);

    let first = store
        .list_providers(&org.id, &page(2, None, false))
        .await
        .unwrap();
    assert_eq!(first.items, vec![a.clone(), b.clone()]);
    assert!(first.has_more);
    let rest = store
        .list_providers(&org.id, &page(2, Some(&b.id), false))
        .await
        .unwrap();
    assert_eq!(rest.items, vec![c.clone()]);
    assert!(!rest.has_more);
    let newest = store
        .list_providers(&org.id, &page(2, None, true))
        .await
        .unwrap();
    assert_eq!(newest.items, vec![c.clone(), b.clone()]);
    assert!(store
        .list_providers(&other.id, &page(10, None, false))
        .await
        .unwrap()
        .items
        .is_empty());
    let foreign = store
        .list_providers(&other.id, &page(10, Some(&a.id), false))
        .await
        .unwrap_err();
    assert!(matches!(foreign, StoreError::UnknownCursor), "{foreign:?}");

    let mut changed = b.clone();
    changed.name = "kubernetes".into();
    changed.enabled = false;
    changed.description = None;
    changed.audience = "other".into();
    changed.attribute_transformations.clear();
    changed.verification = Verification::Discovery {
        discovery_url: Some("https://k8s.example/.well-known/openid-configuration".into()),
    };
    changed.updated_at = T0 + 1;
    store.update_provider(&changed, &[]).await.unwrap();
    assert_eq!(
        store.provider(&org.id, &b.id).await.unwrap(),
        Some(changed.clone())
    );
    let mut stranger = changed.clone();
    stranger.organization_id = other.id.clone();
    assert_eq!(
        conflict(store.update_provider(&stranger, &[]).await.unwrap_err()),
        "provider is gone"
    );

    store
        .delete_provider(&org.id, &b.id, T0 + 2, &[])
        .await
        .unwrap();
    assert_eq!(store.provider(&org.id, &b.id).await.unwrap(), None);
    let err = store
        .delete_provider(&org.id, &b.id, T0 + 3, &[])
        .await
        .unwrap_err();
    assert_eq!(conflict(err), "provider is gone");
    assert_eq!(
        conflict(store.update_provider(&changed, &[]).await.unwrap_err()),
        "provider is gone"
    );
    // Gone from lists; its id still works as a cursor.
    let after_deleted = store
        .list_providers(&org.id, &page(10, Some(&b.id), false))
        .await
        .unwrap();
    assert_eq!(after_deleted.items, vec![c.clone()]);
    let all = store
        .list_providers(&org.id, &page(10, None, false))
        .await
        .unwrap();
    assert_eq!(all.items, vec![a, c]);
}

pub async fn providers_are_limited_and_keep_their_rules(store: S) {
    let (org, default) = new_org(&store, "a").await;
    let account = account_in(&store, &default, "ci").await;
    let mut providers = vec![];
    for i in 0..MAX_PROVIDERS_PER_ORGANIZATION {
        let p = provider_of(&org, &format!("p{i}"));
        store.insert_provider(&p, &[]).await.unwrap();
        providers.push(p);
    }
    let extra = provider_of(&org, "one too many");
    assert_eq!(
        conflict(store.insert_provider(&extra, &[]).await.unwrap_err()),
        "provider limit"
    );
    assert_eq!(store.provider(&org.id, &extra.id).await.unwrap(), None);

    // A provider with a live rule cannot go; once the rule is gone it can, freeing a slot.
    let p = &providers[0];
    let rule = rule_of(p, &account);
    store.insert_rule(&rule, &[]).await.unwrap();
    let err = store
        .delete_provider(&org.id, &p.id, T0 + 1, &[])
        .await
        .unwrap_err();
    assert_eq!(conflict(err), "provider has rules");
    assert!(store.provider(&org.id, &p.id).await.unwrap().is_some());
    store
        .delete_rule(&org.id, &p.id, &rule.id, T0 + 2, &[])
        .await
        .unwrap();
    // A Keycard credential naming the provider holds it too, and round-trips its federation.
    let keycard = super::org_account(&org, "keycard");
    store
        .insert_service_account(&keycard, None, &[])
        .await
        .unwrap();
    let mut credential = super::credential_for(&keycard, "federated");
    credential.federation = Some(keyplane::domain::model::CredentialFederation {
        provider_id: p.id.clone(),
        subject: "repo:acme/api:ref:refs/heads/main".into(),
    });
    store.insert_credential(&credential, &[]).await.unwrap();
    assert_eq!(
        store.credential_by_client_id("federated").await.unwrap(),
        Some(credential.clone())
    );
    let err = store
        .delete_provider(&org.id, &p.id, T0 + 3, &[])
        .await
        .unwrap_err();
    assert_eq!(conflict(err), "provider has rules");
    store
        .delete_credential(&org.id, &keycard.id, &credential.id, T0 + 3, &[])
        .await
        .unwrap();
    store
        .delete_provider(&org.id, &p.id, T0 + 3, &[])
        .await
        .unwrap();
    // A deleted provider takes no new credentials.
    let mut late = super::credential_for(&keycard, "late");
    late.federation = credential.federation.clone();
    let err = store.insert_credential(&late, &[]).await.unwrap_err();
    assert_eq!(conflict(err), "provider is gone");
    store.insert_provider(&extra, &[]).await.unwrap();
}

pub async fn rules_round_trip_filter_and_need_a_live_provider_and_account(store: S) {
    let (org, default) = new_org(&store, "a").await;
    let (other, _) = new_org(&store, "b").await;
    let provider = provider_of(&org, "github");
    store.insert_provider(&provider, &[]).await.unwrap();
    let ci = account_in(&store, &default, "ci").await;
    let deploy = account_in(&store, &default, "deploy").await;

    let r1 = rule_of(&provider, &ci);
    let mut r2 = rule_of(&provider, &deploy);
    r2.name = None;
    r2.permissions = Permissions::Restricted {
        scopes: vec!["api.model.read".into()],
    };
    let r3 = rule_of(&provider, &ci);
    for r in [&r1, &r2, &r3] {
        store.insert_rule(r, &[]).await.unwrap();
    }
    assert_eq!(
        store.rule(&org.id, &provider.id, &r2.id).await.unwrap(),
        Some(r2.clone())
    );
    assert_eq!(
        store.rule(&other.id, &provider.id, &r2.id).await.unwrap(),
        None
    );
    let wrong_provider = id();
    assert_eq!(
        store.rule(&org.id, &wrong_provider, &r2.id).await.unwrap(),
        None
    );

    let all = store
        .list_rules(&org.id, &provider.id, None, &page(10, None, false))
        .await
        .unwrap();
    assert_eq!(all.items, vec![r1.clone(), r2.clone(), r3.clone()]);
    let of_ci = store
        .list_rules(&org.id, &provider.id, Some(&ci.id), &page(1, None, false))
        .await
        .unwrap();
    assert_eq!(of_ci.items, vec![r1.clone()]);
    assert!(of_ci.has_more);
    let of_ci_next = store
        .list_rules(
            &org.id,
            &provider.id,
            Some(&ci.id),
            &page(1, Some(&r1.id), false),
        )
        .await
        .unwrap();
    assert_eq!(of_ci_next.items, vec![r3.clone()]);
    assert!(!of_ci_next.has_more);
    let newest = store
        .list_rules(&org.id, &provider.id, None, &page(1, None, true))
        .await
        .unwrap();
    assert_eq!(newest.items, vec![r3.clone()]);

    let mut changed = r1.clone();
    changed.name = None;
    changed.description = Some("only main".into());
    changed.enabled = false;
    changed.attribute_matchers = BTreeMap::from([("sub".to_owned(), MatcherValue::Bool(true))]);
    changed.permissions = Permissions::Restricted { scopes: vec![] };
    changed.updated_at = T0 + 1;
    store.update_rule(&changed, &[]).await.unwrap();
    assert_eq!(
        store.rule(&org.id, &provider.id, &r1.id).await.unwrap(),
        Some(changed.clone())
    );
    store
        .delete_rule(&org.id, &provider.id, &r1.id, T0 + 2, &[])
        .await
        .unwrap();
    assert_eq!(
        store.rule(&org.id, &provider.id, &r1.id).await.unwrap(),
        None
    );
    assert_eq!(
        conflict(store.update_rule(&changed, &[]).await.unwrap_err()),
        "rule is gone"
    );
    let err = store
        .delete_rule(&org.id, &provider.id, &r1.id, T0 + 3, &[])
        .await
        .unwrap_err();
    assert_eq!(conflict(err), "rule is gone");

    // The account must be live, in the rule's project, whose project is active.
    let elsewhere = new_project(&store, &org, "elsewhere").await;
    let stranger = account_in(&store, &elsewhere, "stranger").await;
    let mut mismatched = rule_of(&provider, &stranger);
    mismatched.project_id = default.id.clone();
    assert_eq!(
        conflict(store.insert_rule(&mismatched, &[]).await.unwrap_err()),
        "service account is gone"
    );
    store
        .delete_service_account(&org.id, &deploy.id, T0 + 4, &[])
        .await
        .unwrap();
    assert_eq!(
        conflict(
            store
                .insert_rule(&rule_of(&provider, &deploy), &[])
                .await
                .unwrap_err()
        ),
        "service account is gone"
    );
    store
        .archive_project(&org.id, &elsewhere.id, T0 + 5, &[])
        .await
        .unwrap();
    assert_eq!(
        conflict(
            store
                .insert_rule(&rule_of(&provider, &stranger), &[])
                .await
                .unwrap_err()
        ),
        "service account is gone"
    );
    // Another organization's provider is gone as far as this rule is concerned.
    let mut foreign = rule_of(&provider, &ci);
    foreign.organization_id = other.id.clone();
    assert_eq!(
        conflict(store.insert_rule(&foreign, &[]).await.unwrap_err()),
        "provider is gone"
    );
}

pub async fn rules_are_limited_per_provider(store: S) {
    let (org, default) = new_org(&store, "a").await;
    let provider = provider_of(&org, "github");
    let second = provider_of(&org, "second");
    store.insert_provider(&provider, &[]).await.unwrap();
    store.insert_provider(&second, &[]).await.unwrap();
    let ci = account_in(&store, &default, "ci").await;
    for _ in 0..MAX_RULES_PER_PROVIDER {
        store
            .insert_rule(&rule_of(&provider, &ci), &[])
            .await
            .unwrap();
    }
    let extra = rule_of(&provider, &ci);
    assert_eq!(
        conflict(store.insert_rule(&extra, &[]).await.unwrap_err()),
        "rule limit"
    );
    // The limit is per provider.
    store
        .insert_rule(&rule_of(&second, &ci), &[])
        .await
        .unwrap();
}

pub async fn rules_racing_their_provider_delete_never_outlive_it(store: S) {
    let (org, default) = new_org(&store, "a").await;
    let ci = account_in(&store, &default, "ci").await;
    for round in 0..10 {
        let provider = provider_of(&org, &format!("p{round}"));
        store.insert_provider(&provider, &[]).await.unwrap();
        let rule = rule_of(&provider, &ci);
        let (a, b) = (store.clone(), store.clone());
        let (p1, r1) = (provider.clone(), rule.clone());
        let insert = tokio::spawn(async move { a.insert_rule(&r1, &[]).await });
        let delete = tokio::spawn(async move {
            b.delete_provider(&p1.organization_id, &p1.id, T0 + 1, &[])
                .await
        });
        let (inserted, deleted) = (insert.await.unwrap(), delete.await.unwrap());
        // Exactly one wins: a rule never survives under a deleted provider.
        assert!(
            inserted.is_ok() != deleted.is_ok(),
            "round {round}: {inserted:?} {deleted:?}"
        );
        let live_rule = store.rule(&org.id, &provider.id, &rule.id).await.unwrap();
        let live_provider = store.provider(&org.id, &provider.id).await.unwrap();
        assert_eq!(
            live_rule.is_some(),
            live_provider.is_some(),
            "round {round}"
        );
        if live_rule.is_some() {
            store
                .delete_rule(&org.id, &provider.id, &rule.id, T0 + 2, &[])
                .await
                .unwrap();
            store
                .delete_provider(&org.id, &provider.id, T0 + 3, &[])
                .await
                .unwrap();
        }
    }
}

pub async fn export_and_import_carry_federation(source: S, target: S) {
    let (org, default) = new_org(&source, "a").await;
    let ci = account_in(&source, &default, "ci").await;
    let live = provider_of(&org, "live");
    let gone = provider_of(&org, "gone");
    source.insert_provider(&live, &[]).await.unwrap();
    source.insert_provider(&gone, &[]).await.unwrap();
    source
        .delete_provider(&org.id, &gone.id, T0 + 1, &[])
        .await
        .unwrap();
    let kept = rule_of(&live, &ci);
    let deleted = rule_of(&live, &ci);
    source.insert_rule(&kept, &[]).await.unwrap();
    source.insert_rule(&deleted, &[]).await.unwrap();
    source
        .delete_rule(&org.id, &live.id, &deleted.id, T0 + 2, &[])
        .await
        .unwrap();

    let mut records = vec![];
    source
        .export(&mut |r: Record| {
            records.push(r);
            Ok(())
        })
        .await
        .unwrap();
    let providers: Vec<Provider> = records
        .iter()
        .filter_map(|r| match r {
            Record::Provider(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    let gone_exported = Provider {
        deleted_at: Some(T0 + 1),
        ..gone.clone()
    };
    assert_eq!(providers, vec![live.clone(), gone_exported]);
    let rules: Vec<FederationRule> = records
        .iter()
        .filter_map(|r| match r {
            Record::FederationRule(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let deleted_exported = FederationRule {
        deleted_at: Some(T0 + 2),
        ..deleted.clone()
    };
    assert_eq!(rules, vec![kept.clone(), deleted_exported]);
    // Parents first: providers after their organization, rules after provider and account.
    let position = |pred: &dyn Fn(&Record) -> bool| records.iter().position(pred);
    let at_account =
        position(&|r| matches!(r, Record::ServiceAccount { account, .. } if account.id == ci.id));
    let at_provider = position(&|r| matches!(r, Record::Provider(p) if p.id == live.id));
    let at_rule = position(&|r| matches!(r, Record::FederationRule(x) if x.id == kept.id));
    assert!(at_account < at_rule && at_provider < at_rule);

    let mut source_records = records.into_iter().map(Ok);
    target.import(&mut source_records).await.unwrap();
    assert_eq!(
        target.provider(&org.id, &live.id).await.unwrap(),
        Some(live.clone())
    );
    assert_eq!(target.provider(&org.id, &gone.id).await.unwrap(), None);
    assert_eq!(
        target.rule(&org.id, &live.id, &kept.id).await.unwrap(),
        Some(kept.clone())
    );
    assert_eq!(
        target.rule(&org.id, &live.id, &deleted.id).await.unwrap(),
        None
    );
    // The imported provider still guards its rules.
    let err = target
        .delete_provider(&org.id, &live.id, T0 + 9, &[])
        .await
        .unwrap_err();
    assert_eq!(conflict(err), "provider has rules");
}
