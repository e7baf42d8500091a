//! tests/it/per_backend/docs_page.rs: real responses of every documented operation, success
//! and error, against the document.

use super::*;

#[tokio::test]
async fn real_responses_conform_to_the_document() {
    let models = crate::common::catalogue(&[("gpt-4o", 1000, 100_000)]);
    let app = TestApp::new().await.with_models(models).await;
    let doc = document(&app).await;
    let conformance = Conformance::of(&doc);
    let key = app.admin_key.clone();
    let k = Some(key.as_str());
    let call = async |method: &str, template: &str, path: &str, body: Option<Value>| {
        let r = app
            .send(method, path, k, body.as_ref().map(Value::to_string))
            .await;
        conformance.check(method, template, &r);
        if let (Some(body), true) = (&body, r.status.is_success()) {
            conformance.accepted(method, template, body);
        }
        r
    };

    // OpenAI dialect.
    let p = call(
        "POST",
        "/v1/organization/projects",
        "/v1/organization/projects",
        Some(json!({"name": "Docs"})),
    )
    .await;
    let project = p.id();
    call(
        "GET",
        "/v1/organization/projects",
        "/v1/organization/projects?limit=2",
        None,
    )
    .await;
    call(
        "GET",
        "/v1/organization/projects",
        "/v1/organization/projects?limit=0",
        None,
    )
    .await;
    let one = "/v1/organization/projects/{project_id}";
    call(
        "GET",
        one,
        &format!("/v1/organization/projects/{project}"),
        None,
    )
    .await;
    call("GET", one, "/v1/organization/projects/proj_nope", None).await;
    call(
        "POST",
        one,
        &format!("/v1/organization/projects/{project}"),
        Some(json!({"external_key_id": "ext"})),
    )
    .await;
    call(
        "POST",
        one,
        &format!("/v1/organization/projects/{project}"),
        Some(json!({"name": 5})),
    )
    .await;
    let sas = "/v1/organization/projects/{project_id}/service_accounts";
    let created = call(
        "POST",
        sas,
        &format!("/v1/organization/projects/{project}/service_accounts"),
        Some(json!({"name": "w"})),
    )
    .await;
    let account = created.id();
    call(
        "POST",
        sas,
        &format!("/v1/organization/projects/{project}/service_accounts"),
        Some(json!({"name": "bare", "create_service_account_only": true})),
    )
    .await;
    call(
        "GET",
        sas,
        &format!("/v1/organization/projects/{project}/service_accounts"),
        None,
    )
    .await;
    let sa = "/v1/organization/projects/{project_id}/service_accounts/{service_account_id}";
    let sa_path = format!("/v1/organization/projects/{project}/service_accounts/{account}");
    call("GET", sa, &sa_path, None).await;
    call("POST", sa, &sa_path, Some(json!({"role": "owner"}))).await;
    let new_key = call(
        "POST",
        &format!("{sa}/api_keys"),
        &format!("{sa_path}/api_keys"),
        Some(json!({"name": "rot", "scopes": ["a"], "expires_in_seconds": 600})),
    )
    .await;
    let key_id = new_key.id();
    // Admission control: key state, rate limits, usage.
    let kk = "/v1/organization/projects/{project_id}/api_keys/{api_key_id}";
    let kk_path = format!("/v1/organization/projects/{project}/api_keys/{key_id}");
    for (action, body) in [
        ("disable", Some(json!({"reason": "exposed"}))),
        ("disable", Some(json!({"reason": "lost"}))),
        ("enable", None),
    ] {
        call(
            "POST",
            &format!("{kk}/{action}"),
            &format!("{kk_path}/{action}"),
            body,
        )
        .await;
    }
    let rl = "/v1/organization/projects/{project_id}/rate_limits";
    let rl_path = format!("/v1/organization/projects/{project}/rate_limits");
    call("GET", rl, &rl_path, None).await;
    call("GET", rl, &format!("{rl_path}?after=rl-nope"), None).await;
    let rl_one = format!("{rl}/{{rate_limit_id}}");
    call(
        "POST",
        &rl_one,
        &format!("{rl_path}/rl-gpt-4o"),
        Some(json!({"max_requests_per_1_minute": 5})),
    )
    .await;
    call(
        "POST",
        &rl_one,
        &format!("{rl_path}/rl-gpt-4o"),
        Some(json!({"max_requests_per_1_minute": -5})),
    )
    .await;
    call(
        "POST",
        &rl_one,
        &format!("{rl_path}/rl-nope"),
        Some(json!({})),
    )
    .await;
    let usage = json!({"data": [{"key_id": key_id, "model": "gpt-4o", "input_tokens": 3, "output_tokens": 4}]});
    call("POST", "/v1/usage", "/v1/usage", Some(usage)).await;
    call(
        "POST",
        "/v1/usage",
        "/v1/usage",
        Some(json!({"data": [{"key_id": "nope", "input_tokens": 1, "output_tokens": 1}]})),
    )
    .await;
    let value = new_key.body["value"].as_str().unwrap().to_owned();
    let keys = "/v1/organization/projects/{project_id}/api_keys";
    call(
        "GET",
        keys,
        &format!("/v1/organization/projects/{project}/api_keys?owner_project_access=active"),
        None,
    )
    .await;
    let kp = format!("/v1/organization/projects/{project}/api_keys/{key_id}");
    call("GET", &format!("{keys}/{{api_key_id}}"), &kp, None).await;
    call(
        "POST",
        &format!("{keys}/{{api_key_id}}"),
        &kp,
        Some(json!({"expires_in_seconds": null})),
    )
    .await;
    call(
        "POST",
        "/v1/keys/verify",
        "/v1/keys/verify",
        Some(json!({"key": value})),
    )
    .await;
    call(
        "POST",
        "/v1/keys/verify",
        "/v1/keys/verify",
        Some(json!({"key": "sk-svcacct-nope"})),
    )
    .await;
    call(
        "DELETE",
        &format!("{keys}/{{api_key_id}}"),
        &format!("{kp}?grace_period_seconds=5"),
        None,
    )
    .await;
    let admins = "/v1/organization/admin_api_keys";
    let admin = call("POST", admins, admins, Some(json!({"name": "second"}))).await;
    for action in ["disable", "enable"] {
        call(
            "POST",
            &format!("{admins}/{{key_id}}/{action}"),
            &format!("{admins}/{}/{action}", admin.id()),
            None,
        )
        .await;
    }
    call("GET", admins, &format!("{admins}?order=desc"), None).await;
    call(
        "GET",
        &format!("{admins}/{{key_id}}"),
        &format!("{admins}/{}", admin.id()),
        None,
    )
    .await;
    call(
        "DELETE",
        &format!("{admins}/{{key_id}}"),
        &format!("{admins}/{}", admin.id()),
        None,
    )
    .await;
    super::federation_responses::check_federation(&app, &conformance, &project, &account).await;
    call(
        "POST",
        "/v1/organization/projects/{project_id}/archive",
        &format!("/v1/organization/projects/{project}/archive"),
        None,
    )
    .await;
    call("DELETE", sa, &sa_path, None).await;
    let big = json!({"name": "x".repeat(70 * 1024)});
    call(
        "POST",
        "/v1/organization/projects",
        "/v1/organization/projects",
        Some(big),
    )
    .await;
    let anonymous = app
        .send("GET", "/v1/organization/projects", None, None)
        .await;
    conformance.check("GET", "/v1/organization/projects", &anonymous);

    // Keycard dialect.
    let list = "/organizations/{organization_id}/service-accounts";
    let kc = call(
        "POST",
        list,
        &kc_accounts(KC_ORG),
        Some(json!({"name": "kc", "description": "d"})),
    )
    .await;
    let kc_id = kc.body["id"].as_str().unwrap().to_owned();
    call(
        "GET",
        list,
        &format!("{}?limit=1&expand=permissions", kc_accounts(KC_ORG)),
        None,
    )
    .await;
    call(
        "GET",
        list,
        &format!("{}?after=forged", kc_accounts(KC_ORG)),
        None,
    )
    .await;
    let one = format!("{list}/{{service_account_id}}");
    let one_path = format!("{}/{kc_id}", kc_accounts(KC_ORG));
    call(
        "GET",
        &one,
        &format!("{one_path}?expand[]=permissions"),
        None,
    )
    .await;
    call("PATCH", &one, &one_path, Some(json!({"description": null}))).await;
    let creds = format!("{one}/credentials");
    let cred = call(
        "POST",
        &creds,
        &kc_credentials(KC_ORG, &kc_id),
        Some(json!({"name": "ci"})),
    )
    .await;
    let cred_id = cred.body["id"].as_str().unwrap().to_owned();
    call("GET", &creds, &kc_credentials(KC_ORG, &kc_id), None).await;
    let cred_path = format!("{}/{cred_id}", kc_credentials(KC_ORG, &kc_id));
    call(
        "GET",
        &format!("{creds}/{{credential_id}}"),
        &cred_path,
        None,
    )
    .await;
    call(
        "PATCH",
        &format!("{creds}/{{credential_id}}"),
        &cred_path,
        Some(json!({"name": "ci2"})),
    )
    .await;
    let (id, secret) = (
        cred.body["client_id"].as_str().unwrap(),
        cred.body["client_secret"].as_str().unwrap(),
    );
    let token = app
        .token_request(
            &format!("grant_type=client_credentials&client_id={id}&client_secret={secret}"),
            None,
        )
        .await;
    conformance.check("POST", "/service-account-token", &token);
    let refused = app
        .token_request("grant_type=client_credentials", Some((id, "wrong")))
        .await;
    conformance.check("POST", "/service-account-token", &refused);
    let jwt = token.body["access_token"].as_str().unwrap().to_owned();
    let as_token = app.send("DELETE", &one_path, Some(&jwt), None).await;
    conformance.check("DELETE", &one, &as_token);
    let checked = app.send("GET", "/v1/auth/check", Some(&jwt), None).await;
    conformance.check("GET", "/v1/auth/check", &checked);
    let verified = app
        .send(
            "POST",
            "/v1/keys/verify",
            k,
            Some(json!({"key": jwt}).to_string()),
        )
        .await;
    conformance.check("POST", "/v1/keys/verify", &verified);
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/healthz",
    ] {
        let r = app.send("GET", path, None, None).await;
        conformance.check("GET", path, &r);
    }
    call(
        "DELETE",
        &format!("{creds}/{{credential_id}}"),
        &cred_path,
        None,
    )
    .await;
    call("DELETE", &one, &one_path, None).await;
    call("GET", &one, &one_path, None).await;

    // The gateway check and verification, with a key of a fresh account and a fresh token.
    let fresh = app.create_project("Docs gateway").await;
    let (_, service_key, service_key_id) = app.create_account(&fresh, "gw").await;
    let holder = app.kc_create_account("gw-token").await;
    let issued = app
        .kc_create_credential(holder["id"].as_str().unwrap(), "gw")
        .await;
    let jwt = app
        .kc_token(
            issued["client_id"].as_str().unwrap(),
            issued["client_secret"].as_str().unwrap(),
        )
        .await;
    for (method, template, path) in [
        ("GET", "/v1/auth/check", "/v1/auth/check"),
        ("POST", "/v1/auth/check", "/v1/auth/check"),
        (
            "GET",
            "/v1/auth/check/{path}",
            "/v1/auth/check/upstream/a/b",
        ),
        ("POST", "/v1/auth/check/{path}", "/v1/auth/check/upstream"),
    ] {
        for bearer in [
            Some(service_key.as_str()),
            Some(&jwt),
            Some("sk-svcacct-nope"),
            Some(&key),
            None,
        ] {
            let r = app.send(method, path, bearer, None).await;
            conformance.check(method, template, &r);
        }
    }
    let verify = async |bearer: Option<&str>, body: &[u8]| {
        let json = Some(("application/json", body.to_vec()));
        let r = app
            .request("POST", "/v1/keys/verify", bearer, &[], json)
            .await;
        conformance.check("POST", "/v1/keys/verify", &r);
        r
    };
    let of = |value: &str| json!({ "key": value }).to_string().into_bytes();
    assert_eq!(verify(k, &of(&service_key)).await.body["valid"], true);
    let fresh_key = format!("/v1/organization/projects/{fresh}/api_keys/{service_key_id}");
    call(
        "DELETE",
        &format!("{keys}/{{api_key_id}}"),
        &fresh_key,
        None,
    )
    .await;
    assert_eq!(verify(k, &of(&service_key)).await.body["reason"], "revoked");
    verify(k, b"{").await;
    verify(k, &[b'x'; 70 * 1024]).await;
    verify(None, &of(&service_key)).await;
    verify(Some(&service_key), &of(&service_key)).await;
    let (_, archived_key, _) = app.create_account(&fresh, "gw2").await;
    let (gone, _, _) = app.create_account(&fresh, "gw3").await;
    call(
        "DELETE",
        sa,
        &format!("/v1/organization/projects/{fresh}/service_accounts/{gone}"),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/organization/projects/{project_id}/archive",
        &format!("/v1/organization/projects/{fresh}/archive"),
        None,
    )
    .await;
    let archived = verify(k, &of(&archived_key)).await;
    assert_eq!(
        archived.body["reason"], "project_archived",
        "{}",
        archived.text
    );
    call(
        "GET",
        "/v1/organization/projects",
        "/v1/organization/projects?include_archived=true",
        None,
    )
    .await;
    call(
        "GET",
        keys,
        &format!("/v1/organization/projects/{fresh}/api_keys?owner_project_access=any"),
        None,
    )
    .await;
    call(
        "POST",
        sas,
        &format!("/v1/organization/projects/{fresh}/service_accounts"),
        Some(json!({"name": "late"})),
    )
    .await;

    // The audit log of all the above, filtered and not.
    let audit = "/v1/organization/audit_logs";
    for query in [
        "",
        "?limit=3",
        &format!("?project_ids[]={project}&limit=100"),
        "?event_types[]=project.created&event_types[]=api_key.deleted",
        "?limit=0",
        "?after=forged",
        "?effective_at[gte]=soon",
    ] {
        call("GET", audit, &format!("{audit}{query}"), None).await;
    }

    // Errors the calls above did not meet: a read-only admin key writing, bodies that are not
    // JSON objects, the Keycard dialect's refusals, OAuth's.
    let read_only = call(
        "POST",
        admins,
        admins,
        Some(json!({"name": "ro", "scopes": ["api.management.read"]})),
    )
    .await;
    let ro = read_only.body["value"].as_str().unwrap().to_owned();
    let projects = "/v1/organization/projects";
    let no = json!({"name": "no"}).to_string();
    let r = app.send("POST", projects, Some(&ro), Some(no)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    conformance.check("POST", projects, &r);
    let accounts = kc_accounts(KC_ORG);
    let holder_path = format!("{accounts}/{}", holder["id"].as_str().unwrap());
    let big = "x".repeat(70 * 1024);
    let json = "application/json";
    for (method, template, path, body) in [
        ("POST", projects, projects, Some(("text/plain", "{}"))),
        ("POST", projects, projects, Some((json, "[]"))),
        ("POST", list, accounts.as_str(), Some(("text/plain", "{}"))),
        ("POST", list, &accounts, Some((json, "{"))),
        ("POST", list, &accounts, Some((json, big.as_str()))),
        ("POST", list, &accounts, Some((json, r#"{"name": ""}"#))),
        ("GET", list, &kc_accounts("nope"), None),
        ("GET", list, &format!("{accounts}?limit=-1"), None),
        ("PATCH", &one, &holder_path, Some((json, r#"{"name": 5}"#))),
        (
            "GET",
            &format!("{creds}/{{credential_id}}"),
            &format!("{cred_path}x"),
            None,
        ),
    ] {
        let body = body.map(|(t, b)| (t, b.as_bytes().to_vec()));
        let r = app.request(method, path, k, &[], body).await;
        assert!(r.status.is_client_error(), "{method} {path}: {}", r.text);
        conformance.check(method, template, &r);
    }
    let odd_id = [("x-client-request-id", "not-a-uuid")];
    let r = app.request("GET", &accounts, k, &odd_id, None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    conformance.check("GET", list, &r);
    let r = app
        .send("GET", &accounts, Some("sk-admin-nope"), None)
        .await;
    conformance.check("GET", list, &r);
    let token_path = "/service-account-token";
    for (form, basic) in [
        ("", None),
        ("grant_type=password", None),
        ("grant_type=client_credentials", None),
        (
            "grant_type=client_credentials&client_id=a",
            Some(("a", "b")),
        ),
    ] {
        let r = app.token_request(form, basic).await;
        assert!(r.status.is_client_error(), "{form}: {}", r.text);
        conformance.check("POST", token_path, &r);
    }

    // A source that keeps failing authentication is refused with 429, in each dialect's
    // envelope (in-process requests have no peer address unless given one).
    let from = |method: &str, path: &str, bearer: Option<&str>, body: Option<(&str, &str)>| {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        if let Some((content_type, _)) = body {
            req = req.header("content-type", content_type);
        }
        let body = Body::from(body.map(|(_, b)| b.to_owned()).unwrap_or_default());
        let mut req = req.body(body).unwrap();
        let peer = std::net::SocketAddr::from(([192, 0, 2, 1], 40000));
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        req
    };
    for _ in 0..100 {
        let r = app
            .raw(from("GET", projects, Some("sk-admin-nope"), None))
            .await;
        conformance.check("GET", projects, &r);
        if r.status == 429 {
            break;
        }
    }
    let form = (
        "application/x-www-form-urlencoded",
        "grant_type=client_credentials",
    );
    let unknown = (json, r#"{"key": "sk-svcacct-nope"}"#);
    let (check, verify_path) = ("/v1/auth/check", "/v1/keys/verify");
    for (method, template, path, bearer, body) in [
        ("GET", projects, projects, k, None),
        ("GET", list, accounts.as_str(), k, None),
        ("GET", check, check, Some(archived_key.as_str()), None),
        ("POST", verify_path, verify_path, k, Some(unknown)),
        ("POST", token_path, token_path, None, Some(form)),
    ] {
        let r = app.raw(from(method, path, bearer, body)).await;
        assert_eq!(r.status, 429, "{method} {path}: {}", r.text);
        conformance.check(method, template, &r);
    }

    // Meta: probes, the document and the page.
    for path in [
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/app.js",
        "/docs/app.css",
    ] {
        let r = app.send("GET", path, None, None).await;
        conformance.check("GET", path, &r);
    }

    // The console: its page and files, and a session's whole life.
    for (template, path) in [
        ("/console", "/console"),
        ("/console/assets/{name}", "/console/assets/main.js"),
        ("/console/assets/{name}", "/console/assets/no-such-file.js"),
    ] {
        let r = app.send("GET", path, None, None).await;
        conformance.check("GET", template, &r);
    }
    let session = "/console/api/session";
    let sign_in = |key: &str| json!({ "admin_key": key }).to_string().into_bytes();
    let bad = app
        .request(
            "POST",
            session,
            None,
            &[],
            Some(("application/json", sign_in("sk-admin-x"))),
        )
        .await;
    assert_eq!(bad.status, 401);
    conformance.check("POST", session, &bad);
    let good = app
        .request(
            "POST",
            session,
            None,
            &[],
            Some(("application/json", sign_in(&key))),
        )
        .await;
    conformance.check("POST", session, &good);
    let cookie = good
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = good.body["csrf_token"].as_str().unwrap().to_owned();
    let none = app.request("GET", session, None, &[], None).await;
    conformance.check("GET", session, &none);
    let mine = app
        .request("GET", session, None, &[("cookie", &cookie)], None)
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    conformance.check("GET", session, &mine);
    let forged = app
        .request("DELETE", session, None, &[("cookie", &cookie)], None)
        .await;
    assert_eq!(forged.status, 403);
    conformance.check("DELETE", session, &forged);
    let headers = [
        ("cookie", cookie.as_str()),
        ("x-keyplane-csrf", csrf.as_str()),
    ];
    let out = app.request("DELETE", session, None, &headers, None).await;
    assert_eq!(out.status, 200, "{}", out.text);
    conformance.check("DELETE", session, &out);

    let missing = conformance.never_succeeded();
    assert!(
        missing.is_empty(),
        "no successful response checked for {missing:#?}"
    );
}
