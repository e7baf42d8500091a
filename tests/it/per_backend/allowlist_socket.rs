//! IP allowlists over real sockets against the binary, configured the way an operator does
//! (`KEYPLANE_TRUSTED_PROXIES`): the client address is the TCP peer, and only a trusted peer's
//! `X-Forwarded-For` / `X-Real-IP` can name another one.

use std::net::{IpAddr, Ipv4Addr};

use crate::common::http;
use crate::common::loopback::send_from;
use crate::common::server::{empty_db, Server};
use keyplane::domain::keys::{KeyKind, PlainKey};
use serde_json::Value;

fn field(body: &str, name: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: {body}"))
        .to_owned()
}

fn loopback(last: u8) -> IpAddr {
    Ipv4Addr::new(127, 0, 0, last).into()
}

#[tokio::test]
async fn allowlists_see_the_peer_or_what_a_trusted_proxy_states() {
    let db = empty_db().await;
    let admin = PlainKey::generate(KeyKind::Admin).unwrap();
    let admin = admin.expose().to_owned();
    let env = [
        ("KEYPLANE_BOOTSTRAP_ADMIN_KEY", admin.clone()),
        ("KEYPLANE_TRUSTED_PROXIES", "127.0.0.2/32".to_owned()),
    ];
    let s = Server::spawn(&db, &env);
    s.wait_ready();
    let post = |path: &str, body: &str| http(s.addr, "POST", path, Some(&admin), Some(body));

    let (status, _, body) = post("/v1/organization/projects", r#"{"name":"fenced"}"#);
    assert_eq!(status, 200, "{body}");
    let project = field(&body, "id");
    let (status, _, body) = post(
        &format!("/v1/organization/projects/{project}/service_accounts"),
        r#"{"name":"bot"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let key = v["api_key"]["value"].as_str().unwrap().to_owned();
    let key_id = v["api_key"]["id"].as_str().unwrap().to_owned();
    let key_path = format!("/v1/organization/projects/{project}/api_keys/{key_id}");
    let (status, _, body) = post(
        &key_path,
        r#"{"allowed_ips": ["127.0.0.3", "203.0.113.0/24"]}"#,
    );
    assert_eq!(status, 200, "{body}");

    let check = |from: u8, headers: Vec<(&'static str, &'static str)>| {
        let key = key.clone();
        async move {
            send_from(
                loopback(from),
                s.addr,
                "GET",
                "/v1/auth/check",
                Some(&key),
                &headers,
                None,
            )
            .await
        }
    };
    // A direct client is its TCP peer.
    assert_eq!(check(3, vec![]).await.status, 204);
    let r = check(4, vec![]).await;
    assert_eq!(r.status, 403, "{}\n{}", r.head, r.body);
    assert!(r.body.contains("ip_not_allowed"), "{}", r.body);
    assert!(r.body.contains("API key's allowlist"), "{}", r.body);
    // An untrusted peer cannot name another address.
    for forged in [
        ("X-Forwarded-For", "127.0.0.3"),
        ("X-Real-IP", "203.0.113.7"),
    ] {
        assert_eq!(check(4, vec![forged]).await.status, 403, "{forged:?}");
    }
    // The trusted proxy's word is taken, and the proxy itself is not on the list.
    assert_eq!(check(2, vec![]).await.status, 403);
    for stated in [
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-For", "198.51.100.1, 203.0.113.7"),
        ("X-Real-IP", "203.0.113.8"),
    ] {
        assert_eq!(check(2, vec![stated]).await.status, 204, "{stated:?}");
    }
    assert_eq!(
        check(2, vec![("X-Forwarded-For", "198.51.100.1")])
            .await
            .status,
        403
    );

    // The project's list applies too: both must pass.
    let (status, _, body) = post(
        &format!("/v1/organization/projects/{project}"),
        r#"{"allowed_ips": ["203.0.113.0/25"]}"#,
    );
    assert_eq!(status, 200, "{body}");
    // The change reaches the check at once on this node (the key's cached context is dropped).
    let r = check(3, vec![]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("project's allowlist"), "{}", r.body);
    assert_eq!(
        check(2, vec![("X-Forwarded-For", "203.0.113.7")])
            .await
            .status,
        204
    );
    assert_eq!(
        check(2, vec![("X-Forwarded-For", "203.0.113.200")])
            .await
            .status,
        403,
        "on the key's list but not the project's"
    );
    let (ok, stderr) = s.stop();
    assert!(ok, "{stderr}");
    assert!(!stderr.contains(&key), "a key reached the log");
}
