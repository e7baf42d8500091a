//! Durations as OpenAI writes them in `x-ratelimit-reset-*`: Go's `time.Duration.String()`.

/// `17ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`: what Go's `time.Duration` prints for `ms`
/// milliseconds (clients written against OpenAI parse exactly this).
pub fn openai_duration(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1_000 {
        return format!("{sign}{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    let seconds = ms / 1_000 % 60;
    let fraction = ms % 1_000;
    // Go prints the fraction with trailing zeros dropped: 1.5s, 1.25s, 1.001s.
    let seconds = if fraction == 0 {
        format!("{seconds}")
    } else {
        let digits = format!("{fraction:03}");
        format!("{seconds}.{}", digits.trim_end_matches('0'))
    };
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds}s")
    } else {
        format!("{sign}{seconds}s")
    }
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
