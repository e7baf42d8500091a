//! An OIDC issuer for the workload identity federation tests: the throwaway keys of
//! `src/domain/federation/testdata/` (RSA and P-256), their public key set, tokens shaped as
//! GitHub Actions and Kubernetes issue them, and (`serve`) the discovery document and key set
//! on loopback, counting requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const RSA_PEM: &str = include_str!("../../../src/domain/federation/testdata/rsa.pem");
const P256_PEM: &str = include_str!("../../../src/domain/federation/testdata/p256.pem");
const RSA_N: &str = "kDM7uxiUtSUDJpN59klCBfO7u_lWElVQeTDpk2T0DvleyIMT0YtpuP0O0VkNom_qelBxSzRfwfhIw92Rc5xSAFR9RL0N7ZI-y1kuOzm2CUc2KO1grriUyORc_87CAHhyxoUj8SyOZqMwa5qGIUJqKm7eTXEe8nNPfKKB2DbrszzKxIwXoRaYBgQ7FzIyiOIUDPkfVUcilwCCssVGnB0PRmcpuCPB323P_Wk_8A44L1BlK8yFhtpFSrxm2lRw1sFBLlK2N8fYi8SvtYV_e54OSi29NfkoD7W7GDVs_JCrimeHMP7oQXI5Me_GSl3kg0J0TFxCZtejQJgw3oMVh3ioEQ";

pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const AUDIENCE: &str = "keyplane";

/// The public keys: `rsa-1` (RS256) and `ec-1` (ES256).
pub fn jwks() -> Value {
    json!({"keys": [
        {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": RSA_N, "e": "AQAB"},
        {"kty": "EC", "kid": "ec-1", "crv": "P-256", "alg": "ES256", "use": "sig",
         "x": "OdO34pElsRvAgBI1uYMEL4g-Gy53h0-x5qxjdowHGKk",
         "y": "ChjpUGw_CtDg8tPGqjPmFJpXo3nFi-gawROcgBPd6Y0"},
    ]})
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims as GitHub Actions puts them in a job's OIDC token.
pub fn github_claims(issuer: &str, repository: &str, git_ref: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": format!("repo:{repository}:ref:{git_ref}"),
        "repository": repository,
        "repository_owner": repository.split('/').next().unwrap_or_default(),
        "ref": git_ref,
        // GitHub writes these as strings.
        "ref_protected": "true",
        "run_attempt": "1",
        "workflow": "deploy",
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 300,
        "jti": format!("gh-{now}"),
    })
}

/// Claims as a Kubernetes projected service-account token carries them.
pub fn kubernetes_claims(issuer: &str, namespace: &str, account: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "aud": [AUDIENCE, "https://kubernetes.default.svc"],
        "sub": format!("system:serviceaccount:{namespace}:{account}"),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": account, "uid": "8c0e7a4e-0000-4000-8000-000000000001"},
            "pod": {"name": "deploy-7d4b9", "uid": "8c0e7a4e-0000-4000-8000-000000000002"},
        },
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 600,
    })
}

/// `claims` signed with the RSA key (`rsa-1`, RS256), or with `kid` and `alg` as given.
pub fn sign(claims: &Value) -> String {
    sign_with(claims, Algorithm::RS256, Some("rsa-1"))
}

pub fn sign_with(claims: &Value, alg: Algorithm, kid: Option<&str>) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(P256_PEM.as_bytes()).unwrap(),
        Algorithm::HS256 => EncodingKey::from_secret(b"not a key of the issuer"),
        _ => EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// The RSA public key's modulus, the "secret" of the HMAC confusion attack.
pub fn rsa_modulus() -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(RSA_N)
        .unwrap()
}

/// A token with its header replaced (the signature kept): what an attacker writes freely.
pub fn with_header(token: &str, header: Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[0] = b64.encode(header.to_string());
    parts.join(".")
}

/// An issuer served on loopback: `/.well-known/openid-configuration` naming `/jwks` on the
/// same server, and how many times the key set was fetched.
pub struct ServedIssuer {
    pub issuer: String,
    pub jwks_fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ServedIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ServedIssuer {
    pub fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }
}

pub async fn serve() -> ServedIssuer {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
    let counted = fetches.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/jwks",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { axum::Json(jwks()) }
            }),
        );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    ServedIssuer {
        issuer,
        jwks_fetches: fetches,
        task,
    }
}
