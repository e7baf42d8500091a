//! The Keycard form of workload identity federation: a credential that names a provider and a
//! subject instead of holding a secret, used at `/service-account-token` with an RFC 7523
//! `client_assertion` (both stores).

use serde_json::{json, Value};

use crate::common::oidc::{self, AUDIENCE, GITHUB_ISSUER};
use crate::common::{kc_credentials, TestApp, KC_ORG};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SUBJECT: &str = "repo:acme/api:ref:refs/heads/main";

struct Fixture {
    provider: String,
    account: String,
    credential: Value,
}

async fn fixture(app: &TestApp) -> Fixture {
    let r = app
        .post(
            "/v1/organization/workload_identity_providers",
            json!({"name": "gh", "type": "oidc", "issuer": GITHUB_ISSUER, "audience": AUDIENCE,
                   "verification": {"type": "uploaded_jwks", "jwks": oidc::jwks()}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let provider = r.id();
    let account = app.kc_create_account("deployer").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &kc_credentials(KC_ORG, &account),
            json!({"name": "github", "identity_provider_id": provider, "subject": SUBJECT}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    Fixture {
        provider,
        account,
        credential: r.body,
    }
}

fn subject_token(repository: &str) -> String {
    oidc::sign(&oidc::github_claims(
        GITHUB_ISSUER,
        repository,
        "refs/heads/main",
    ))
}

fn assertion_form(client_id: &str, assertion: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", client_id)
        .append_pair("client_assertion_type", ASSERTION_TYPE)
        .append_pair("client_assertion", assertion)
        .finish()
}

#[tokio::test]
async fn a_federated_credential_has_no_secret_and_authenticates_with_a_token() {
    let app = TestApp::new().await;
    let f = fixture(&app).await;
    let c = &f.credential;
    assert!(c.get("client_secret").is_none(), "{c}");
    let bare_provider = f.provider.trim_start_matches("idp_");
    assert_eq!(c["identity_provider_id"], bare_provider);
    assert_eq!(c["subject"], SUBJECT);
    let client_id = c["client_id"].as_str().unwrap();
    let listed = app
        .get(&format!(
            "{}/{}",
            kc_credentials(KC_ORG, &f.account),
            c["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(listed.body["subject"], SUBJECT, "{}", listed.text);

    let r = app
        .token_request(&assertion_form(client_id, &subject_token("acme/api")), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let expires_in = r.body["expires_in"].as_i64().unwrap();
    assert!(
        expires_in <= 300,
        "never outlives the assertion: {expires_in}"
    );
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let check = app.send("GET", "/v1/auth/check", Some(&access), None).await;
    assert_eq!(check.status, 204, "{}", check.text);
    assert_eq!(check.header("x-keyplane-credential-id"), c["id"].as_str());

    // Another repository's token is another subject; the provider disabled stops everything.
    let r = app
        .token_request(&assertion_form(client_id, &subject_token("acme/web")), None)
        .await;
    assert_eq!(r.oauth_error(401), "invalid_client");
    let r = app
        .post(
            &format!(
                "/v1/organization/workload_identity_providers/{}",
                f.provider
            ),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let check = app.send("GET", "/v1/auth/check", Some(&access), None).await;
    assert_eq!(check.status, 401, "{}", check.text);
    let r = app
        .token_request(&assertion_form(client_id, &subject_token("acme/api")), None)
        .await;
    assert_eq!(r.oauth_error(401), "invalid_client");
    // The provider cannot be deleted while the credential names it.
    let r = app
        .delete(&format!(
            "/v1/organization/workload_identity_providers/{}",
            f.provider
        ))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn secrets_and_assertions_do_not_mix() {
    let app = TestApp::new().await;
    let f = fixture(&app).await;
    let federated = f.credential["client_id"].as_str().unwrap().to_owned();
    let plain = app.kc_create_credential(&f.account, "secret").await;
    let plain_id = plain["client_id"].as_str().unwrap();
    let token = subject_token("acme/api");
    // An assertion for a credential with a secret; a secret for a federated one.
    let r = app
        .token_request(&assertion_form(plain_id, &token), None)
        .await;
    assert_eq!(r.oauth_error(401), "invalid_client");
    let r = app
        .token_request(
            &format!("grant_type=client_credentials&client_id={federated}&client_secret=x"),
            None,
        )
        .await;
    assert_eq!(r.oauth_error(401), "invalid_client");
    // Both at once, a wrong assertion type, no client_id.
    let r = app
        .token_request(
            &format!("{}&client_secret=x", assertion_form(&federated, &token)),
            None,
        )
        .await;
    assert_eq!(r.oauth_error(400), "invalid_request");
    let wrong_type = assertion_form(&federated, &token).replace("jwt-bearer", "saml2-bearer");
    let r = app.token_request(&wrong_type, None).await;
    assert_eq!(r.oauth_error(400), "invalid_request");
    let no_client = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={token}",
        form_urlencoded::byte_serialize(ASSERTION_TYPE.as_bytes()).collect::<String>()
    );
    let r = app.token_request(&no_client, None).await;
    assert_eq!(r.oauth_error(401), "invalid_client");
}

#[tokio::test]
async fn federated_credentials_are_validated_when_created() {
    let app = TestApp::new().await;
    let f = fixture(&app).await;
    let url = kc_credentials(KC_ORG, &f.account);
    for body in [
        json!({"name": "x", "identity_provider_id": f.provider}),
        json!({"name": "x", "subject": SUBJECT}),
        json!({"name": "x", "identity_provider_id": "github", "subject": SUBJECT}),
        json!({"name": "x", "identity_provider_id": f.provider, "subject": ""}),
    ] {
        let r = app.post(&url, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
    // Another organization's provider does not exist here.
    let other = app.other_org("bravo").await;
    let r = app
        .send(
            "POST",
            "/v1/organization/workload_identity_providers",
            Some(&other),
            Some(
                json!({"name": "theirs", "type": "oidc", "issuer": GITHUB_ISSUER, "audience": AUDIENCE})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post(
            &url,
            json!({"name": "x", "identity_provider_id": r.id(), "subject": SUBJECT}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
}
