//! Go-style durations ("30m", "1h30m", "0s") as the CRDs write them.
//!
//! The grammar accepted is exactly [`DURATION_PATTERN`](crate::api::common::DURATION_PATTERN),
//! the one the CRD schema enforces: one or more `<digits>[.<digits>]<unit>` terms with the units
//! `ns`, `us`, `µs`, `ms`, `s`, `m` and `h`, no sign, no spaces. It is the non-negative subset of
//! Go's `time.ParseDuration`, so offline validation accepts what the API server accepts and no
//! more. Arithmetic is exact integer nanoseconds (no floating point), and values that do not fit
//! Go's `int64` nanoseconds (about 292 years) are rejected rather than wrapped or panicking.

use jiff::SignedDuration;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Units in matching order: two-character units first so that `ms` is not read as `m`.
const UNITS: [(&str, i128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("h", 3_600 * NANOS_PER_SECOND),
    ("m", 60 * NANOS_PER_SECOND),
    ("s", NANOS_PER_SECOND),
];

/// Parses a non-negative Go-style duration such as `"90s"`, `"30m"`, `"1h30m"` or `"1.5h"`.
///
/// Errors name the text and say what was expected, because they end up in `kubectl patchwave
/// validate` output and in `Ready=False` conditions that people read.
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let expected = "expected a duration such as 90s, 30m, 1h30m or 0s \
                    (units ns, us, µs, ms, s, m, h)";
    if text.is_empty() {
        return Err(format!("empty duration: {expected}"));
    }
    if text.starts_with('-') {
        return Err(format!("duration {text:?} is negative: {expected}"));
    }
    if text == "0" {
        return Err(format!(
            "duration {text:?} needs a unit, for example \"0s\""
        ));
    }

    let mut rest = text;
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if int_len == 0 {
            return Err(format!(
                "duration {text:?}: expected a number at {rest:?}; {expected}"
            ));
        }
        let (int_digits, after_int) = rest.split_at(int_len);
        let (frac_digits, after_number) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                if frac_len == 0 {
                    return Err(format!(
                        "duration {text:?}: expected digits after the decimal point; {expected}"
                    ));
                }
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        let Some((unit_name, unit)) = UNITS
            .iter()
            .find(|(name, _)| after_number.starts_with(name))
        else {
            let number = &rest[..rest.len() - after_number.len()];
            return Err(format!(
                "duration {text:?}: missing or unknown unit after {number:?}; {expected}"
            ));
        };

        let too_large = || format!("duration {text:?} is too large (the maximum is 2562047h)");
        let int_value = int_digits
            .bytes()
            .try_fold(0i128, |acc, digit| {
                let value = acc * 10 + i128::from(digit - b'0');
                (value <= i128::from(i64::MAX)).then_some(value)
            })
            .ok_or_else(too_large)?;
        // Digits beyond nanosecond precision cannot change the result; like Go, truncate.
        let frac_digits = &frac_digits[..frac_digits.len().min(18)];
        let (frac_value, frac_scale) = frac_digits.bytes().fold((0i128, 1i128), |(v, s), d| {
            (v * 10 + i128::from(d - b'0'), s * 10)
        });
        let term = int_value * unit + frac_value * unit / frac_scale;
        total += term;
        if total > i128::from(i64::MAX) {
            return Err(too_large());
        }
        rest = &after_number[unit_name.len()..];
    }
    let nanos = i64::try_from(total)
        .map_err(|_| format!("duration {text:?} is too large (the maximum is 2562047h)"))?;
    Ok(SignedDuration::from_nanos(nanos))
}

/// Formats a duration as short Go-style text: `"1h30m"`, `"45s"`, `"2h0.5s"`, `"250ms"`, `"0s"`.
///
/// Zero components are left out (Go would print `1h30m0s`), because the text appears in
/// status messages and plans where the short form reads better. The result always parses back
/// with [`parse_duration`] (for non-negative values) to the same duration.
pub fn format_duration(d: SignedDuration) -> String {
    let nanos = d.as_nanos();
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n == 0 {
        return "0s".to_string();
    }
    let second = NANOS_PER_SECOND.unsigned_abs();
    if n < second {
        return if n % 1_000_000 == 0 {
            format!("{sign}{}ms", n / 1_000_000)
        } else if n % 1_000 == 0 {
            format!("{sign}{}µs", n / 1_000)
        } else {
            format!("{sign}{n}ns")
        };
    }
    let hours = n / (3_600 * second);
    let minutes = n / (60 * second) % 60;
    let seconds = n / second % 60;
    let sub = n % second;
    let mut out = String::from(sign);
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if sub > 0 {
        let frac = format!("{sub:09}");
        out.push_str(&format!("{seconds}.{}s", frac.trim_end_matches('0')));
    } else if seconds > 0 {
        out.push_str(&format!("{seconds}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> SignedDuration {
        SignedDuration::from_secs(s)
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("0s").unwrap(), SignedDuration::ZERO);
        assert_eq!(parse_duration("30m").unwrap(), secs(1800));
        assert_eq!(parse_duration("1h30m").unwrap(), secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), secs(5400));
        assert_eq!(parse_duration("90s").unwrap(), secs(90));
        assert_eq!(parse_duration("1m30s").unwrap(), secs(90));
        assert_eq!(
            parse_duration("1ms2us3ns").unwrap(),
            SignedDuration::from_nanos(1_002_003)
        );
        assert_eq!(
            parse_duration("2µs").unwrap(),
            SignedDuration::from_nanos(2_000)
        );
        assert_eq!(
            parse_duration("0.000000001s").unwrap(),
            SignedDuration::from_nanos(1)
        );
        // Beyond nanosecond precision Go truncates.
        assert_eq!(
            parse_duration("1.0000000019s").unwrap(),
            SignedDuration::from_nanos(1_000_000_001)
        );
        assert_eq!(parse_duration("2562047h").unwrap(), secs(2_562_047 * 3600));
    }

    #[test]
    fn rejects_what_the_crd_pattern_rejects() {
        for bad in [
            "", "0", "-1h", "+1h", "1", "h", "1x", "1.h", ".5h", "1h 30m", " 1h", "1H", "1d",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("duration"), "{bad:?}: {err}");
        }
        assert!(parse_duration("-1h").unwrap_err().contains("negative"));
        assert!(parse_duration("1d").unwrap_err().contains("unit"));
        assert!(parse_duration("0").unwrap_err().contains("0s"));
    }

    #[test]
    fn rejects_overflow_without_panicking() {
        for huge in [
            "2562048h",
            "99999999999999999999999h",
            "9223372036854775808ns",
            "2562047h2562047h",
        ] {
            let err = parse_duration(huge).unwrap_err();
            assert!(err.contains("too large"), "{huge:?}: {err}");
        }
        assert_eq!(
            parse_duration("9223372036854775807ns").unwrap(),
            SignedDuration::from_nanos(i64::MAX)
        );
    }

    #[test]
    fn formats_short_and_round_trips() {
        let cases = [
            (SignedDuration::ZERO, "0s"),
            (secs(45), "45s"),
            (secs(5400), "1h30m"),
            (secs(3600), "1h"),
            (secs(3601), "1h1s"),
            (SignedDuration::from_millis(250), "250ms"),
            (SignedDuration::from_micros(3), "3µs"),
            (SignedDuration::from_nanos(7), "7ns"),
            (SignedDuration::from_millis(7_200_500), "2h0.5s"),
            (secs(-90), "-1m30s"),
        ];
        for (d, text) in cases {
            assert_eq!(format_duration(d), text);
            if !d.is_negative() {
                assert_eq!(parse_duration(text).unwrap(), d, "{text}");
            }
        }
        let max = SignedDuration::from_nanos(i64::MAX);
        assert_eq!(parse_duration(&format_duration(max)).unwrap(), max);
        // Must not panic on the most negative value.
        assert!(format_duration(SignedDuration::MIN).starts_with('-'));
    }
}
