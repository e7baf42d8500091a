//! ID parsing in both dialects: the bare (Keycard) form and the prefixed (OpenAI) form accept
//! exactly what they would render.
#![no_main]

use keyplane::domain::ids::{Id, Kind};
use libfuzzer_sys::fuzz_target;

const KINDS: [Kind; 5] = [
    Kind::Organization,
    Kind::Project,
    Kind::ServiceAccount,
    Kind::ApiKey,
    Kind::Credential,
];

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(id) = Id::parse(s) {
        assert_eq!(id.as_str(), s);
    }
    for kind in KINDS {
        let prefixed = format!("{}{s}", kind.openai_prefix());
        for candidate in [s, prefixed.as_str()] {
            if let Some(id) = kind.parse_openai(candidate) {
                assert_eq!(kind.render_openai(&id), candidate);
            }
        }
    }
});
