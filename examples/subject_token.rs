//! Prints a GitHub-Actions-shaped OIDC token signed with the throwaway RSA test key
//! (`src/domain/federation/testdata/rsa.pem`, kid `rsa-1`), valid for an hour, and, with
//! `--jwks`, the public key set that verifies it. For bench/token_exchange.sh.
//!
//!   cargo run --release --example subject_token -- ISSUER AUDIENCE REPOSITORY
//!   cargo run --release --example subject_token -- --jwks

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const RSA_PEM: &str = include_str!("../src/domain/federation/testdata/rsa.pem");
const RSA_N: &str = "kDM7uxiUtSUDJpN59klCBfO7u_lWElVQeTDpk2T0DvleyIMT0YtpuP0O0VkNom_qelBxSzRfwfhIw92Rc5xSAFR9RL0N7ZI-y1kuOzm2CUc2KO1grriUyORc_87CAHhyxoUj8SyOZqMwa5qGIUJqKm7eTXEe8nNPfKKB2DbrszzKxIwXoRaYBgQ7FzIyiOIUDPkfVUcilwCCssVGnB0PRmcpuCPB323P_Wk_8A44L1BlK8yFhtpFSrxm2lRw1sFBLlK2N8fYi8SvtYV_e54OSi29NfkoD7W7GDVs_JCrimeHMP7oQXI5Me_GSl3kg0J0TFxCZtejQJgw3oMVh3ioEQ";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--jwks") {
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": RSA_N, "e": "AQAB"}]});
        println!("{jwks}");
        return Ok(());
    }
    let [issuer, audience, repository] = args.as_slice() else {
        anyhow::bail!("usage: subject_token ISSUER AUDIENCE REPOSITORY | --jwks");
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = json!({
        "iss": issuer, "aud": audience,
        "sub": format!("repo:{repository}:ref:refs/heads/main"),
        "repository": repository, "ref": "refs/heads/main",
        "iat": now, "nbf": now, "exp": now + 3600,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes())?,
    )?;
    println!("{token}");
    Ok(())
}
