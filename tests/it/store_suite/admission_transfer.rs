//! Store-suite case for export and import of admission state: allowlists, key limits,
//! disabled keys and project rate limits move; the shared counts do not (run on every backend
//! by `two_store_suite!` in the parent file).

use keyplane::domain::limits::{DisabledReason, KeyLimits, ProjectRateLimit, RateLimitFields};
use keyplane::domain::model::{ApiKey, Project};
use keyplane::store::{Count, Record};

use super::admission::{disabled, nets};
use super::{account_of, key_for, new_org, new_project, S, T0};

pub async fn export_and_import_carry_admission_state(source: S, target: S) {
    let (org, _) = new_org(&source, "a").await;
    let p = new_project(&source, &org, "fenced").await;
    let fenced = Project {
        allowed_ips: nets(&["10.0.0.0/8", "2001:db8::/32"]),
        ..p.clone()
    };
    source.update_project(&fenced, &[]).await.unwrap();
    let acct = account_of(&fenced, "svc");
    let (plain, _) = key_for(&acct);
    let key = ApiKey {
        allowed_ips: nets(&["192.0.2.0/24"]),
        limits: KeyLimits {
            max_requests_per_1_minute: Some(1),
            max_requests_per_1_day: Some(2),
            max_tokens_per_1_minute: Some(3),
        },
        ..plain
    };
    source
        .insert_service_account(&acct, Some(&key), &[])
        .await
        .unwrap();
    let off = disabled(DisabledReason::Exposed, T0 + 7);
    source
        .set_api_key_disabled(&org.id, &key.id, Some(&off), T0 + 7, &[])
        .await
        .unwrap();
    let limits: Vec<ProjectRateLimit> = ["gpt-4o", "o3"]
        .iter()
        .enumerate()
        .map(|(i, m)| ProjectRateLimit {
            organization_id: org.id.clone(),
            project_id: fenced.id.clone(),
            model: (*m).into(),
            overrides: RateLimitFields {
                max_requests_per_1_minute: Some(i as i64),
                batch_1_day_max_input_tokens: Some(100),
                ..RateLimitFields::default()
            },
            updated_at: T0 + i as i64,
        })
        .collect();
    for l in &limits {
        source.put_project_rate_limit(l, &[]).await.unwrap();
    }
    source
        .push_counts(&[Count {
            node: "n".into(),
            subject: format!("k:{}", key.id),
            bucket: T0,
            span: 60_000,
            requests: 1,
            tokens: 1,
        }])
        .await
        .unwrap();

    // Through the JSON-lines stream, as `keyplane export` / `import` move it.
    let mut file: Vec<u8> = vec![];
    keyplane::transfer::export(source.as_ref(), &mut file)
        .await
        .unwrap();
    let text = String::from_utf8(file.clone()).unwrap();
    assert!(!text.contains("\"n\""), "counts are not exported: {text}");
    let rate_line = text
        .lines()
        .position(|l| l.contains(r#""type":"project_rate_limit""#))
        .unwrap();
    let project_line = text
        .lines()
        .position(|l| l.contains(&format!(r#""id":"{}""#, fenced.id)))
        .unwrap();
    assert!(project_line < rate_line, "rate limits follow their project");
    keyplane::transfer::import(target.as_ref(), Box::new(std::io::Cursor::new(file)))
        .await
        .unwrap();

    assert_eq!(
        target.project(&org.id, &fenced.id).await.unwrap(),
        Some(fenced.clone())
    );
    assert_eq!(
        target.api_key(&org.id, &key.id).await.unwrap(),
        Some(ApiKey {
            disabled: Some(off),
            ..key.clone()
        })
    );
    assert_eq!(
        target
            .project_rate_limits(&org.id, &fenced.id)
            .await
            .unwrap(),
        limits
    );
    let (counts, _) = target.pull_counts("other", None, 0).await.unwrap();
    assert!(counts.is_empty());

    // And the store-level records agree both ways.
    let collect = |store: S| async move {
        let mut records = vec![];
        store
            .export(&mut |r: Record| {
                records.push(r);
                Ok(())
            })
            .await
            .unwrap();
        records
    };
    let (a, b) = (collect(source).await, collect(target).await);
    assert_eq!(a, b, "import then export changes nothing");
    assert_eq!(
        a.iter()
            .filter(|r| matches!(r, Record::ProjectRateLimit(_)))
            .count(),
        2
    );
}
