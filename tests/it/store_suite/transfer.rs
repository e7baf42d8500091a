//! Store-suite cases for export and import of credentials (audit events: `audit.rs`) (run on every
//! backend by `store_suite!` in `mod.rs`).

use keyplane::domain::ids::Id;
use keyplane::domain::model::Credential;
use keyplane::store::Record;

use super::{account_of, credential_for, key_for, new_org, org_account, signing_key, S, T0};

pub async fn export_and_import_carry_credentials(source: S, target: S) {
    let (org, default) = new_org(&source, "a").await;
    let acct = account_of(&default, "svc");
    let (key, _) = key_for(&acct);
    source
        .insert_service_account(&acct, Some(&key), &[])
        .await
        .unwrap();
    let live = credential_for(&acct, "live");
    let gone = credential_for(&acct, "gone");
    source.insert_credential(&live, &[]).await.unwrap();
    source.insert_credential(&gone, &[]).await.unwrap();
    source
        .record_credential_usage(&[(live.id.clone(), T0 + 3)])
        .await
        .unwrap();
    source
        .delete_credential(&org.id, &acct.id, &gone.id, T0 + 4, &[])
        .await
        .unwrap();
    let doomed = org_account(&org, "doomed");
    source
        .insert_service_account(&doomed, None, &[])
        .await
        .unwrap();
    let orphan = credential_for(&doomed, "orphan");
    source.insert_credential(&orphan, &[]).await.unwrap();
    source
        .delete_service_account(&org.id, &doomed.id, T0 + 5, &[])
        .await
        .unwrap();
    source
        .insert_signing_key(&signing_key("never exported", T0), None, &[])
        .await
        .unwrap();
    source.server_secret("never exported", b"x").await.unwrap();

    let mut records = vec![];
    let n = source
        .export(&mut |r: Record| {
            records.push(r);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(n as usize, records.len());
    let credentials: Vec<Credential> = records
        .iter()
        .filter_map(|r| match r {
            Record::Credential(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        credentials,
        vec![
            Credential {
                last_used_at: Some(T0 + 3),
                ..live.clone()
            },
            Credential {
                deleted_at: Some(T0 + 4),
                ..gone.clone()
            },
            Credential {
                deleted_at: Some(T0 + 5),
                ..orphan.clone()
            },
        ]
    );
    // Parents first: every credential after its account.
    let position = |want: &Id| {
        records.iter().position(|r| match r {
            Record::ServiceAccount { account, .. } => account.id == *want,
            Record::Credential(c) => c.id == *want,
            _ => false,
        })
    };
    assert!(position(&acct.id) < position(&live.id));
    assert!(position(&doomed.id) < position(&orphan.id));

    let mut source_iter = records.clone().into_iter().map(Ok);
    assert_eq!(target.import(&mut source_iter).await.unwrap(), n);
    let mut again = vec![];
    target
        .export(&mut |r: Record| {
            again.push(r);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(again, records, "import then export changes nothing");
    assert_eq!(
        target.credential_by_client_id("live").await.unwrap(),
        Some(Credential {
            last_used_at: Some(T0 + 3),
            ..live
        })
    );
    assert_eq!(
        target.credential_by_client_id("orphan").await.unwrap(),
        None
    );
    assert!(target.signing_keys().await.unwrap().is_empty());
    assert_eq!(
        target
            .server_secret("never exported", b"new")
            .await
            .unwrap(),
        b"new"
    );
}
