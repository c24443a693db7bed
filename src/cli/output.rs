//! Output helpers shared by the commands: formats, time parsing, progress bars.

use jiff::Timestamp;
use jiff::civil::Date;

/// How a command prints its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text for people.
    Table,
    /// One JSON document for programs.
    Json,
}

/// Parses an instant: RFC 3339 (`2026-11-30T18:00:00+01:00`, `2026-11-30T17:00:00Z`) or a
/// date (`2026-11-30`, midnight UTC).
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(instant);
    }
    text.parse::<Date>()
        .ok()
        .and_then(|date| date.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|zoned| zoned.timestamp())
        .ok_or_else(|| format!("\"{text}\" is neither an RFC 3339 time (2026-11-30T18:00:00+01:00) nor a date (2026-11-30)"))
}

/// A bar of `width` cells: `#` succeeded, `x` failed, `-` otherwise done, `.` not done.
pub fn progress_bar(succeeded: i32, failed: i32, done: i32, total: i32, width: usize) -> String {
    if total <= 0 {
        return format!("[{}]", " ".repeat(width));
    }
    let cells = |n: i32| {
        usize::try_from(n.max(0)).unwrap_or(0) * width / usize::try_from(total).unwrap_or(1)
    };
    let ok = cells(succeeded);
    let bad = cells(failed).max(usize::from(failed > 0)).min(width - ok);
    let other = cells(done).saturating_sub(ok + bad).min(width - ok - bad);
    format!(
        "[{}{}{}{}]",
        "#".repeat(ok),
        "x".repeat(bad),
        "-".repeat(other),
        ".".repeat(width - ok - bad - other)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_both_forms() {
        assert_eq!(
            parse_time("2026-11-30").unwrap(),
            "2026-11-30T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_time("2026-11-30T18:00:00+01:00").unwrap(),
            "2026-11-30T17:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(parse_time("next monday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn bars_show_success_failure_and_the_rest() {
        assert_eq!(progress_bar(5, 0, 5, 10, 10), "[#####.....]");
        assert_eq!(progress_bar(8, 1, 10, 10, 10), "[########x-]");
        assert_eq!(progress_bar(0, 0, 0, 0, 4), "[    ]");
        assert_eq!(progress_bar(19, 1, 20, 20, 10), "[#########x]");
    }
}
