//! `keyplane serve` over HTTPS: certificates from the test's own CA, reload on SIGHUP without
//! dropping open connections, a failed reload keeps the old certificate, bad paths fail fast.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::server::{empty_db, keyplane_cmd, Server};
use keyplane::domain::keys::{KeyKind, PlainKey};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A CA and a `localhost` certificate it signed, written as PEM files.
struct Issued {
    ca_der: Vec<u8>,
    leaf_der: Vec<u8>,
}

fn issue(dir: &Path, name: &str) -> (Issued, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("keyplane test CA {name}"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    std::fs::write(dir.join(format!("{name}-ca.pem")), ca.pem()).unwrap();
    let issued = Issued {
        ca_der: ca.der().to_vec(),
        leaf_der: leaf.der().to_vec(),
    };
    (issued, cert, key)
}

fn trusting(cas: &[&Issued]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca.ca_der.clone().into()).unwrap();
    }
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn connect(server: &Server, config: &Arc<ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(server.addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = ClientConnection::new(config.clone(), "localhost".try_into().unwrap())
        .map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// One keep-alive `GET`; returns (status line, body).
fn get(tls: &mut Tls, path: &str) -> std::io::Result<(String, String)> {
    write!(tls, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    tls.flush()?;
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if tls.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    tls.read_exact(&mut body)?;
    let status = head.lines().next().unwrap_or("").to_owned();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn served_certificate(tls: &Tls) -> Vec<u8> {
    tls.conn.peer_certificates().unwrap()[0].to_vec()
}

fn wait_for(what: &str, server: &Server, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: {}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn https_with_reload_on_sighup_keeping_open_connections() {
    let db = empty_db().await;
    let dir = tempfile::tempdir().unwrap();
    let (first, cert, key) = issue(dir.path(), "first");
    let (second, cert2, key2) = issue(dir.path(), "second");
    let admin = PlainKey::generate(KeyKind::Admin).unwrap();
    let server = Server::spawn(
        &db,
        &[
            ("KEYPLANE_TLS_CERT", cert.display().to_string()),
            ("KEYPLANE_TLS_KEY", key.display().to_string()),
            ("KEYPLANE_BOOTSTRAP_ADMIN_KEY", admin.expose().to_owned()),
        ],
    );
    let both = trusting(&[&first, &second]);
    server
        .wait_until(|| connect(&server, &both).is_ok_and(|mut t| get(&mut t, "/healthz").is_ok()));

    // Only the first CA's certificate is served so far.
    assert!(connect(&server, &trusting(&[&second])).is_err());
    let mut old = connect(&server, &trusting(&[&first])).unwrap();
    assert_eq!(served_certificate(&old), first.leaf_der);
    let (status, body) = get(&mut old, "/healthz").unwrap();
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "ok");

    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    server.signal("HUP");
    wait_for("new connections get the new certificate", &server, || {
        connect(&server, &both).is_ok_and(|t| served_certificate(&t) == second.leaf_der)
    });
    assert!(server.stderr().contains("reloaded the TLS certificate"));
    // The connection opened before the reload still works, on its old session.
    let (status, _) = get(&mut old, "/healthz").unwrap();
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(served_certificate(&old), first.leaf_der);
    let mut fresh = connect(&server, &trusting(&[&second])).unwrap();
    let (status, body) = get(&mut fresh, "/v1/organization/projects").unwrap();
    assert!(status.contains(" 401 "), "{status} {body}");

    // The operator CLI over HTTPS, trusting the private CA; an untrusted one cannot connect.
    let cli = |ca: &str| {
        std::process::Command::new(common::server::BIN)
            .args(["projects", "list", "--url"])
            .arg(format!("https://localhost:{}", server.addr.port()))
            .arg("--ca-cert")
            .arg(dir.path().join(ca))
            .env("KEYPLANE_ADMIN_KEY", admin.expose())
            .env_remove("KEYPLANE_CONFIG")
            .output()
            .unwrap()
    };
    let out = cli("second-ca.pem");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Default project"));
    assert_eq!(cli("first-ca.pem").status.code(), Some(3));

    // A broken file: the reload fails loudly and the current certificate stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    server.signal("HUP");
    wait_for("the failed reload is logged", &server, || {
        server.stderr().contains("TLS reload failed")
    });
    let t = connect(&server, &both).unwrap();
    assert_eq!(served_certificate(&t), second.leaf_der);
    drop((t, fresh, old));

    let (clean, stderr) = server.stop();
    assert!(clean, "SIGTERM is a clean exit over TLS too: {stderr}");
}

#[tokio::test]
async fn a_bad_certificate_path_fails_the_start_and_config_check() {
    let db = empty_db().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, _, key) = issue(dir.path(), "only");
    let missing = dir.path().join("missing.pem");
    for command in [&["serve"][..], &["config", "check"][..]] {
        let out = keyplane_cmd(&db)
            .args(command)
            .env(
                "KEYPLANE_LISTEN",
                format!("127.0.0.1:{}", common::free_port()),
            )
            .env("KEYPLANE_TLS_CERT", &missing)
            .env("KEYPLANE_TLS_KEY", &key)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(
            stderr.contains("cannot read TLS certificate") && stderr.contains("missing.pem"),
            "{command:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn config_check_reads_the_tls_files_from_a_config_file() {
    let db = empty_db().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = issue(dir.path(), "ok");
    let file = dir.path().join("keyplane.toml");
    std::fs::write(
        &file,
        format!(
            "tls_cert = {:?}\ntls_key = {:?}\naudit_webhook_url = \"https://hooks.example/a\"\naudit_webhook_secret = \"0123456789abcdef-secret\"\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .unwrap();
    let out = keyplane_cmd(&db)
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("configuration OK"), "{stdout}");
    let secret_row = stdout
        .lines()
        .find(|l| l.starts_with("audit_webhook_secret"))
        .unwrap();
    assert!(
        secret_row.contains("<set>") && secret_row.ends_with("file"),
        "{secret_row}"
    );
    assert!(!stdout.contains("0123456789abcdef-secret"));
    // Swapping the key for another one is caught before the server would start.
    let (_, _, other_key) = issue(dir.path(), "other");
    let out = keyplane_cmd(&db)
        .args(["config", "check"])
        .env("KEYPLANE_CONFIG", &file)
        .env("KEYPLANE_TLS_KEY", &other_key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match"));
}

/// A TLS ClientHello whose SNI extension carries an IP address as the host name, as wrk and
/// many internal clients send it (RFC 6066 forbids it; rustls ignores the name).
fn client_hello_with_ip_sni(ip: &str) -> Vec<u8> {
    let name = ip.as_bytes();
    let mut sni = vec![0x00]; // host_name
    sni.extend((name.len() as u16).to_be_bytes());
    sni.extend(name);
    let mut ext = vec![0x00, 0x00]; // server_name
    ext.extend(((sni.len() + 2) as u16).to_be_bytes());
    ext.extend((sni.len() as u16).to_be_bytes());
    ext.extend(sni);
    let mut hello = vec![0x03, 0x03]; // TLS 1.2
    hello.extend([7u8; 32]); // random
    hello.push(0); // no session id
    hello.extend([0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f]); // ECDHE-ECDSA/RSA-AES128-GCM-SHA256
    hello.extend([0x01, 0x00]); // null compression
    hello.extend((ext.len() as u16).to_be_bytes());
    hello.extend(ext);
    let mut handshake = vec![0x01]; // client_hello
    handshake.extend(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

#[tokio::test]
async fn a_client_sending_an_ip_address_as_sni_is_not_a_warning() {
    let db = empty_db().await;
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = issue(dir.path(), "sni");
    let config = trusting(&[&ca]);
    let run = |log: &str| {
        let server = Server::spawn(
            &db,
            &[
                ("KEYPLANE_TLS_CERT", cert.display().to_string()),
                ("KEYPLANE_TLS_KEY", key.display().to_string()),
                ("KEYPLANE_LOG", log.to_owned()),
            ],
        );
        server.wait_until(|| connect(&server, &config).is_ok());
        for _ in 0..3 {
            let mut tcp = TcpStream::connect(server.addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            tcp.write_all(&client_hello_with_ip_sni("127.0.0.1"))
                .unwrap();
            // The server answers (its hello or an alert) once it has parsed ours.
            let mut answer = [0u8; 5];
            tcp.read_exact(&mut answer).unwrap();
            assert!(matches!(answer[0], 0x15 | 0x16), "a TLS record: {answer:?}");
        }
        let (clean, stderr) = server.stop();
        assert!(clean);
        stderr
    };
    let quiet = run("info,sqlx=warn");
    assert!(
        !quiet.contains("Illegal SNI") && !quiet.contains("WARN"),
        "{quiet}"
    );
    // The hellos do provoke rustls's note: an operator who names rustls still sees it.
    let asked = run("info,rustls=debug");
    assert!(
        asked.contains("Illegal SNI extension: ignoring IP address presented as hostname"),
        "{asked}"
    );
}

/// Under TLS the console's session cookie is also `Secure` (browsers then never send it over
/// plain HTTP).
#[tokio::test]
async fn console_session_cookie_is_secure_under_tls() {
    let db = empty_db().await;
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = issue(dir.path(), "console");
    let admin = PlainKey::generate(KeyKind::Admin).unwrap();
    let server = Server::spawn(
        &db,
        &[
            ("KEYPLANE_TLS_CERT", cert.display().to_string()),
            ("KEYPLANE_TLS_KEY", key.display().to_string()),
            ("KEYPLANE_BOOTSTRAP_ADMIN_KEY", admin.expose().to_owned()),
        ],
    );
    let trust = trusting(&[&ca]);
    server
        .wait_until(|| connect(&server, &trust).is_ok_and(|mut t| get(&mut t, "/healthz").is_ok()));
    let mut tls = connect(&server, &trust).unwrap();
    let body = format!("{{\"admin_key\":\"{}\"}}", admin.expose());
    write!(
        tls,
        "POST /console/api/session HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    tls.flush().unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let response = String::from_utf8_lossy(&raw);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let cookie = response
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no Set-Cookie: {response}"));
    for flag in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
}
