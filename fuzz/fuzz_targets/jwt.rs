//! Access token parsing: junk never verifies and never panics, even when it is shaped like a
//! compact JWS with a decodable EdDSA header.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use keyplane::domain::jwt;
use libfuzzer_sys::fuzz_target;

/// A fixed Ed25519 public key (of the all-zero seed); no token here was signed by it.
const PUBLIC: [u8; 32] = [
    0x3b, 0x6a, 0x27, 0xbc, 0xce, 0xb6, 0xa4, 0x2d, 0x62, 0xa3, 0xa8, 0xd0, 0x2a, 0x6f, 0x0d, 0x73,
    0x65, 0x32, 0x15, 0x77, 0x1d, 0xe2, 0x43, 0xa6, 0x3a, 0xc0, 0x48, 0xa1, 0x8b, 0x59, 0xda, 0x29,
];

fuzz_target!(|data: &[u8]| {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"JWT","kid":"k1"}"#);
    let mut candidates = vec![format!("{header}.{}.", URL_SAFE_NO_PAD.encode(data))];
    if let Ok(s) = std::str::from_utf8(data) {
        candidates.push(s.to_owned());
        candidates.push(format!("{header}.{s}"));
    }
    for token in &candidates {
        let _ = jwt::looks_like_jwt(token);
        let _ = jwt::key_id(token);
        assert!(jwt::verify(token, &PUBLIC).is_err());
        assert!(jwt::verify(token, data).is_err());
    }
});
