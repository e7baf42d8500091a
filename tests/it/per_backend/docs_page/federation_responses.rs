//! Real responses of the workload identity federation operations against the document:
//! providers and rules created, listed, read, updated, refused and deleted.

use super::*;

pub(super) async fn check_federation(
    app: &TestApp,
    conformance: &Conformance<'_>,
    project: &str,
    account: &str,
) {
    let key = app.admin_key.clone();
    let call = async |method: &str, template: &str, path: &str, body: Option<Value>| {
        let r = app
            .send(
                method,
                path,
                Some(&key),
                body.as_ref().map(Value::to_string),
            )
            .await;
        conformance.check(method, template, &r);
        if let (Some(body), true) = (&body, r.status.is_success()) {
            conformance.accepted(method, template, body);
        }
        r
    };
    let providers = "/v1/organization/workload_identity_providers";
    let one = format!("{providers}/{{workload_identity_provider_id}}");
    let created = call(
        "POST",
        providers,
        providers,
        Some(json!({
            "name": "GitHub Actions", "type": "oidc", "description": "CI",
            "issuer": "https://token.actions.githubusercontent.com", "audience": "keyplane",
            "attribute_transformations": [{"attribute": "repo", "expression": "lower(assertion.repository)"}],
            "verification": {"type": "discovery", "discovery_url": null},
        })),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let provider = created.id();
    let bad = json!({"name": "x", "type": "saml", "issuer": "https://i", "audience": "a"});
    call("POST", providers, providers, Some(bad)).await;
    call(
        "GET",
        providers,
        &format!("{providers}?order=desc&limit=1"),
        None,
    )
    .await;
    call(
        "GET",
        providers,
        &format!("{providers}?order=sideways"),
        None,
    )
    .await;
    let path = format!("{providers}/{provider}");
    call("GET", &one, &path, None).await;
    call("GET", &one, &format!("{providers}/idp_nope"), None).await;
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
        "x": "UeXj21Mdi24wv786kOHEjeyfcTiZSXWxo38Er_1ESmg"}]});
    call(
        "POST",
        &one,
        &path,
        Some(json!({"description": null, "verification": {"type": "uploaded_jwks", "jwks": jwks}})),
    )
    .await;

    let rules = format!("{one}/federation_rules");
    let rules_path = format!("{path}/federation_rules");
    let rule = call(
        "POST",
        &rules,
        &rules_path,
        Some(json!({
            "project_id": project, "service_account_id": account, "name": "main",
            "attribute_matchers": {"repo": "acme/api", "ref_protected": true},
            "permissions": {"type": "restricted", "scopes": ["api.model.read"]},
        })),
    )
    .await;
    assert_eq!(rule.status, 200, "{}", rule.text);
    let rule = rule.id();
    call(
        "POST",
        &rules,
        &rules_path,
        Some(
            json!({"project_id": project, "service_account_id": account, "attribute_matchers": {}}),
        ),
    )
    .await;
    call(
        "GET",
        &rules,
        &format!("{rules_path}?service_account_id={account}&limit=5"),
        None,
    )
    .await;
    let rule_one = format!("{rules}/{{workload_identity_federation_rule_id}}");
    let rule_path = format!("{rules_path}/{rule}");
    call("GET", &rule_one, &rule_path, None).await;
    call(
        "GET",
        &rule_one,
        &format!("{rules_path}/fedrule_nope"),
        None,
    )
    .await;
    call(
        "POST",
        &rule_one,
        &rule_path,
        Some(json!({"name": null, "enabled": false, "permissions": {"type": "service_account_default"}})),
    )
    .await;
    // A provider with a rule cannot go (400), then the rule and the provider are deleted.
    call("DELETE", &one, &path, None).await;
    call("DELETE", &rule_one, &rule_path, None).await;
    call("DELETE", &one, &path, None).await;
}
