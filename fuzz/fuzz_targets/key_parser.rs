//! API key parsing: any input is parsed or refused without panicking, and whatever parses
//! carries a known prefix and survives being wrapped as a supplied key.
#![no_main]

use keyplane::domain::keys::{self, KeyKind, PlainKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // Raw input rarely gets past the prefix check, so also try it behind each prefix.
    for candidate in [
        s.to_owned(),
        format!("{}{s}", KeyKind::Admin.prefix()),
        format!("{}{s}", KeyKind::ServiceAccount.prefix()),
    ] {
        let _ = keys::redact(&candidate);
        if let Ok(kind) = keys::parse(&candidate) {
            assert!(candidate.starts_with(kind.prefix()));
            let supplied = PlainKey::from_supplied(&candidate).expect("parsed keys are accepted");
            assert_eq!(supplied.kind(), kind);
        }
    }
});
