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
    // The token exchange: a provider with the test issuer's keys, a rule, a good token and a
    // refused one.
    let gh = call(
        "POST",
        providers,
        providers,
        Some(json!({"name": "gh", "type": "oidc", "issuer": crate::common::oidc::GITHUB_ISSUER,
                    "audience": crate::common::oidc::AUDIENCE,
                    "verification": {"type": "uploaded_jwks", "jwks": crate::common::oidc::jwks()}})),
    )
    .await;
    let gh = gh.id();
    let r = call(
        "POST",
        &rules,
        &format!("{providers}/{gh}/federation_rules"),
        Some(json!({"project_id": project, "service_account_id": account,
                    "attribute_matchers": {"repository": "acme/api"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let claims = crate::common::oidc::github_claims(
        crate::common::oidc::GITHUB_ISSUER,
        "acme/api",
        "refs/heads/main",
    );
    for repository in ["acme/api", "acme/web"] {
        let mut claims = claims.clone();
        claims["repository"] = json!(repository);
        let body = json!({
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": crate::common::oidc::sign(&claims),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "identity_provider_id": gh, "service_account_id": account,
        });
        let r = call("POST", "/oauth/token", "/oauth/token", Some(body)).await;
        let want = if repository == "acme/api" { 200 } else { 400 };
        assert_eq!(r.status, want, "{}", r.text);
    }

    // A provider with a rule cannot go (400), then the rule and the provider are deleted.
    call("DELETE", &one, &path, None).await;
    call("DELETE", &rule_one, &rule_path, None).await;
    call("DELETE", &one, &path, None).await;
}
