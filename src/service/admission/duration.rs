//! Durations as OpenAI writes them in `x-ratelimit-reset-*`: Go's `time.Duration.String()`.

/// `17ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`: what Go's `time.Duration` prints for `ms`
/// milliseconds (clients written against OpenAI parse exactly this). Written into one buffer
/// with `itoa` rather than nested `format!`s: every admitted check renders one or two of these.
pub fn openai_duration(ms: i64) -> String {
    let mut out = String::with_capacity(16);
    write_openai_duration(ms, &mut out);
    out
}

/// [`openai_duration`] appended to `out`.
pub fn write_openai_duration(ms: i64, out: &mut String) {
    if ms < 0 {
        out.push('-');
    }
    let ms = ms.unsigned_abs();
    let mut digits = itoa::Buffer::new();
    if ms < 1_000 {
        if ms == 0 {
            out.push_str("0s");
            return;
        }
        out.push_str(digits.format(ms));
        out.push_str("ms");
        return;
    }
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    if hours > 0 {
        out.push_str(digits.format(hours));
        out.push('h');
    }
    if hours > 0 || minutes > 0 {
        out.push_str(digits.format(minutes));
        out.push('m');
    }
    out.push_str(digits.format(ms / 1_000 % 60));
    let fraction = ms % 1_000;
    if fraction != 0 {
        // Go prints the fraction with trailing zeros dropped: 1.5s, 1.25s, 1.001s.
        out.push('.');
        let places = [fraction / 100, fraction / 10 % 10, fraction % 10];
        let keep = if fraction % 100 == 0 {
            1
        } else if fraction % 10 == 0 {
            2
        } else {
            3
        };
        for d in &places[..keep] {
            out.push(char::from(b'0' + *d as u8));
        }
    }
    out.push('s');
}

#[cfg(test)]
mod tests {
    use super::openai_duration;

    #[test]
    fn matches_go_duration_strings() {
        let cases = [
            (0, "0s"),
            (1, "1ms"),
            (17, "17ms"),
            (999, "999ms"),
            (1_000, "1s"),
            (1_500, "1.5s"),
            (1_250, "1.25s"),
            (1_001, "1.001s"),
            (59_999, "59.999s"),
            (60_000, "1m0s"),
            (360_000, "6m0s"),
            (361_500, "6m1.5s"),
            (3_600_000, "1h0m0s"),
            (3_661_001, "1h1m1.001s"),
            (86_400_000, "24h0m0s"),
            (-1_500, "-1.5s"),
            (-17, "-17ms"),
        ];
        for (ms, text) in cases {
            assert_eq!(openai_duration(ms), text, "{ms} ms");
        }
        assert!(openai_duration(i64::MIN).starts_with('-'));
    }
}
