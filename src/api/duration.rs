//! Go-style durations (`15m`, `1h30m`, `0s`) as used by Kubernetes users in manifests.

use std::time::Duration;

/// Schema pattern accepted by every duration field: one or more `<integer><unit>` parts with
/// units `h`, `m`, `s` or `ms`, in decreasing order not enforced (Go accepts any order).
pub const DURATION_PATTERN: &str = r"^([0-9]{1,9}(h|m|s|ms))+$";

/// What a user sees when a duration field does not parse.
pub const DURATION_HINT: &str = "must be a duration such as 15m, 1h30m, 90s or 0s";

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} {hint}", hint = DURATION_HINT)]
pub struct InvalidDuration {
    /// The rejected text.
    pub value: String,
}

/// Parses a Go-style duration made of `h`, `m`, `s` and `ms` parts, e.g. `1h30m`.
pub fn parse(text: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration {
        value: text.to_owned(),
    };
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(invalid());
        }
        let amount: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else {
            return Err(invalid());
        };
        let amount = u32::try_from(amount).map_err(|_| invalid())?;
        total = total
            .checked_add(unit.checked_mul(amount).ok_or_else(invalid)?)
            .ok_or_else(invalid)?;
        rest = &rest[len..];
    }
    Ok(total)
}

/// Formats a duration the way `parse` reads it, choosing the largest exact units.
pub fn format(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    let millis = duration.subsec_millis();
    if secs == 0 && millis == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, suffix) in [(3600, "h"), (60, "m"), (1, "s")] {
        if secs >= unit {
            out.push_str(&format!("{}{suffix}", secs / unit));
            secs %= unit;
        }
    }
    if millis > 0 {
        out.push_str(&format!("{millis}ms"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_combined_units() {
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse("1s500ms").unwrap(), Duration::from_millis(1500));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "15", "m", "1d", "15 m", "-5m", "1.5h", "1234567890s"] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn pattern_and_parser_agree() {
        let re = regex_lite_check;
        for sample in ["15m", "1h30m", "0s", "250ms", "1h", "x", "15", "1d"] {
            assert_eq!(re(sample), parse(sample).is_ok(), "disagree on {sample:?}");
        }
    }

    // The schema pattern is applied by the apiserver; mirror it here with the parser's own grammar
    // to keep the two from drifting apart.
    fn regex_lite_check(sample: &str) -> bool {
        jsonschema::is_valid(
            &serde_json::json!({"type": "string", "pattern": DURATION_PATTERN}),
            &serde_json::json!(sample),
        )
    }

    #[test]
    fn format_round_trips() {
        for text in ["15m", "1h30m", "0s", "1h0m5s", "2s250ms"] {
            let parsed = parse(text).unwrap();
            assert_eq!(parse(&format(parsed)).unwrap(), parsed);
        }
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
    }
}
