use super::*;

#[test]
fn hex_round_trips_and_rejects_junk() {
    let b = [0u8, 1, 0xab, 0xff];
    assert_eq!(hex::encode(b), "0001abff");
    assert_eq!(unhex("0001abff").unwrap(), b);
    assert!(unhex("abc").is_none());
    assert!(unhex("zz").is_none());
}

#[test]
fn credential_lines_round_trip() {
    let gen = Id::generate;
    let c = Credential {
        id: gen().unwrap(),
        organization_id: gen().unwrap(),
        service_account_id: gen().unwrap(),
        client_id: "client-1".into(),
        secret_hash: KeyHash::of("not a real secret"),
        name: "ci".into(),
        description: Some("deploys".into()),
        created_at: 1,
        updated_at: 2,
        last_used_at: Some(3),
        deleted_at: Some(4),
        federation: None,
    };
    let text = serde_json::to_string(&Line::from(Record::Credential(c.clone()))).unwrap();
    assert!(text.starts_with(r#"{"type":"credential","#), "{text}");
    assert!(
        !text.contains("provider_id"),
        "older importers must read it: {text}"
    );
    let back = record(serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(back, Some(Record::Credential(c.clone())));
    // A credential of workload identity federation carries its provider and subject.
    let federated = Credential {
        federation: Some(crate::domain::model::CredentialFederation {
            provider_id: gen().unwrap(),
            subject: "repo:acme/api:ref:refs/heads/main".into(),
        }),
        ..c
    };
    let text = serde_json::to_string(&Line::from(Record::Credential(federated.clone()))).unwrap();
    let back = record(serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(back, Some(Record::Credential(federated)));
    let half = text.replace(r#","subject":"repo:acme/api:ref:refs/heads/main""#, "");
    assert!(
        record(serde_json::from_str(&half).unwrap()).is_err(),
        "{half}"
    );
}

#[test]
fn older_key_and_project_lines_import_without_admission_fields() {
    let (org, key) = (Id::generate().unwrap(), Id::generate().unwrap());
    let project = format!(
        r#"{{"type":"project","id":"{org}","organization_id":"{org}","name":"p","external_key_id":null,"is_default":true,"created_at":1,"archived_at":null}}"#
    );
    let Some(Record::Project(p)) = record(serde_json::from_str(&project).unwrap()).unwrap() else {
        panic!("not a project")
    };
    assert_eq!(p.allowed_ips, None);
    let hash = hex::encode(KeyHash::of("x").as_bytes());
    let line = format!(
        r#"{{"type":"api_key","id":"{key}","organization_id":"{org}","kind":"admin","project_id":null,"service_account_id":null,"name":"k","scopes":[],"key_hash":"{hash}","redacted_value":"sk-…","created_at":1,"expires_at":null,"last_used_at":null,"revoked_at":null}}"#
    );
    let Some(Record::ApiKey(k)) = record(serde_json::from_str(&line).unwrap()).unwrap() else {
        panic!("not a key")
    };
    assert_eq!(
        (k.allowed_ips, k.limits, k.disabled),
        (None, KeyLimits::default(), None)
    );
    // Half a disabled state, or an allowlist entry that is no CIDR, is refused.
    let half = line.replace(
        r#""revoked_at":null"#,
        r#""revoked_at":null,"disabled_at":5"#,
    );
    assert!(record(serde_json::from_str(&half).unwrap()).is_err());
    let junk = line.replace(
        r#""revoked_at":null"#,
        r#""revoked_at":null,"allowed_ips":["x"]"#,
    );
    assert!(record(serde_json::from_str(&junk).unwrap()).is_err());
}

#[test]
fn rate_limit_lines_round_trip() {
    let l = ProjectRateLimit {
        organization_id: Id::generate().unwrap(),
        project_id: Id::generate().unwrap(),
        model: "gpt-4o".into(),
        overrides: RateLimitFields {
            max_images_per_1_minute: Some(3),
            ..RateLimitFields::default()
        },
        updated_at: 9,
    };
    let text = serde_json::to_string(&Line::from(Record::ProjectRateLimit(l.clone()))).unwrap();
    assert!(
        text.starts_with(r#"{"type":"project_rate_limit","#),
        "{text}"
    );
    let back = record(serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(back, Some(Record::ProjectRateLimit(l)));
}

#[test]
fn audit_event_lines_round_trip_and_refuse_unknown_types() {
    let gen = Id::generate;
    let e = AuditEvent {
        id: gen().unwrap(),
        organization_id: Some(gen().unwrap()),
        event_type: EventType::CredentialDeleted,
        effective_at: 5,
        project_id: None,
        resource_id: "abc".into(),
        actor: Actor::AdminKey(gen().unwrap()),
        origin: Origin {
            request_id: Some("req_1".into()),
            client_request_id: None,
            ip_address: Some("::1".parse().unwrap()),
        },
        details: serde_json::json!({"service_account_id": "x"}),
        notify_webhook: true,
    };
    let text = serde_json::to_string(&Line::from(Record::AuditEvent(e.clone()))).unwrap();
    let back = record(serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(back, Some(Record::AuditEvent(e)));
    let bad = text.replace("credential.deleted", "credential.exploded");
    assert!(record(serde_json::from_str(&bad).unwrap()).is_err());
}

#[test]
fn federation_lines_round_trip_and_refuse_bad_json_forms() {
    use crate::domain::federation::{
        AttributeTransformation, FederationRule, MatcherValue, Permissions, Provider, Verification,
    };
    let gen = || Id::generate().unwrap();
    let p = Provider {
        id: gen(),
        organization_id: gen(),
        name: "github".into(),
        description: Some("CI".into()),
        issuer: "https://token.actions.githubusercontent.com".into(),
        audience: "keyplane".into(),
        enabled: false,
        attribute_transformations: vec![AttributeTransformation {
            attribute: "repo".into(),
            expression: "assertion.repository".into(),
        }],
        verification: Verification::UploadedJwks {
            jwks: serde_json::json!({"keys": []}),
        },
        created_at: 1,
        updated_at: 2,
        deleted_at: Some(3),
    };
    let r = FederationRule {
        id: gen(),
        organization_id: p.organization_id.clone(),
        provider_id: p.id.clone(),
        project_id: gen(),
        service_account_id: gen(),
        name: None,
        description: None,
        enabled: true,
        attribute_matchers: [("sub".to_owned(), MatcherValue::String("x".into()))].into(),
        permissions: Permissions::Restricted {
            scopes: vec!["a".into()],
        },
        created_at: 1,
        updated_at: 1,
        deleted_at: None,
    };
    for rec in [Record::Provider(p), Record::FederationRule(r)] {
        let text = serde_json::to_string(&Line::from(rec.clone())).unwrap();
        let back = record(serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, Some(rec));
        // A structured field that is not its JSON form is refused, not imported half-read.
        let mut broken: serde_json::Value = serde_json::from_str(&text).unwrap();
        let field = match broken["type"].as_str() {
            Some("workload_identity_provider") => "verification",
            _ => "permissions",
        };
        broken[field] = serde_json::json!({"type": "nope"});
        let broken = broken.to_string();
        assert!(
            record(serde_json::from_str(&broken).unwrap()).is_err(),
            "{broken}"
        );
    }
}
