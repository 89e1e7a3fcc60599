//! Spans as people write them: `45s`, `30m`, `24h`, `7d`, or a number of seconds. One reading
//! for the API's `expiring_within` and for the settings' timeouts and intervals.

/// The seconds `raw` stands for; `None` when it is not a span (a negative, an unknown unit, an
/// overflow).
pub fn span_seconds(raw: &str) -> Option<u64> {
    let (digits, unit) = match raw.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&raw[..i], c),
        _ => (raw, 's'),
    };
    let n: u64 = digits.parse().ok()?;
    match unit {
        's' => Some(n),
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3600),
        'd' => n.checked_mul(86_400),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::span_seconds;

    #[test]
    fn spans_read_their_unit() {
        assert_eq!(span_seconds("7d"), Some(7 * 86_400));
        assert_eq!(span_seconds("12h"), Some(12 * 3600));
        assert_eq!(span_seconds("30m"), Some(1800));
        assert_eq!(span_seconds("45s"), Some(45));
        assert_eq!(span_seconds("90"), Some(90));
        assert_eq!(span_seconds("0"), Some(0));
        for bad in ["x", "-1d", "3w", "", "d", "99999999999999999999d"] {
            assert_eq!(span_seconds(bad), None, "{bad}");
        }
    }
}
