//! Output helpers shared by the commands: formats, time parsing, progress bars, the progress
//! line of long runs.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::civil::Date;

use crate::engine::simulation::Progress;

/// How a command prints its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text for people.
    Table,
    /// One JSON document for programs.
    Json,
}

pub use crate::engine::plural;

/// Parses an instant: RFC 3339 (`2026-11-30T18:00:00+01:00`, `2026-11-30T17:00:00Z`) or a
/// date (`2026-11-30`, midnight UTC).
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(instant);
    }
    // jiff reads a date out of a longer text too; only a date alone means midnight UTC.
    let date = text.parse::<Date>().ok().filter(|d| d.to_string() == text);
    if date.is_none() && text.parse::<jiff::civil::DateTime>().is_ok() {
        return Err(format!(
            "\"{text}\" has no UTC offset, so the instant is unknown: add Z or an offset (2026-11-30T18:00:00+01:00)"
        ));
    }
    date.and_then(|date| date.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|zoned| zoned.timestamp())
        .ok_or_else(|| format!("\"{text}\" is neither an RFC 3339 time (2026-11-30T18:00:00+01:00) nor a date (2026-11-30)"))
}

/// A bar of `width` cells: `#` succeeded, `x` failed, `-` otherwise done (skipped, rolled
/// back), `.` not done. Each part gets its share of the cells (largest remainders first), a
/// part with a count of 0 gets none, and a part with a nonzero count gets at least one while
/// the width allows: the bar never shows what did not happen, nor hides what did.
pub fn progress_bar(succeeded: i32, failed: i32, done: i32, total: i32, width: usize) -> String {
    if total <= 0 {
        return format!("[{}]", " ".repeat(width));
    }
    let count = |n: i32| u64::try_from(n).unwrap_or(0);
    let (succeeded, failed, done) = (count(succeeded), count(failed), count(done));
    let counts = [
        succeeded,
        failed,
        done.saturating_sub(succeeded + failed),
        count(total).saturating_sub(done),
    ];
    let cells = bar_cells(counts, width);
    let mut bar = String::with_capacity(width + 2);
    bar.push('[');
    for (symbol, n) in ['#', 'x', '-', '.'].into_iter().zip(cells) {
        bar.extend(std::iter::repeat_n(symbol, n));
    }
    bar.push(']');
    bar
}

/// The cells of `width` each of `counts` gets in a bar (see [`progress_bar`]).
fn bar_cells<const N: usize>(counts: [u64; N], width: usize) -> [usize; N] {
    let sum: u64 = counts.iter().sum();
    let mut cells = [0usize; N];
    if sum == 0 {
        return cells;
    }
    let wide = u64::try_from(width).unwrap_or(u64::MAX);
    let share = |n: u64| {
        let scaled = u128::from(n) * u128::from(wide);
        let sum = u128::from(sum);
        (usize::try_from(scaled / sum).unwrap_or(width), scaled % sum)
    };
    let mut remainders = [0u128; N];
    for (part, n) in counts.iter().enumerate() {
        (cells[part], remainders[part]) = share(*n);
    }
    // The cells rounding down left over: first to a nonzero part that has none yet, then to
    // the largest remainders (the earlier part on a tie).
    let mut left = width.saturating_sub(cells.iter().sum());
    while left > 0 {
        let Some(part) = (0..N)
            .filter(|p| remainders[*p] > 0)
            .max_by_key(|p| (cells[*p] == 0, remainders[*p], std::cmp::Reverse(*p)))
        else {
            break;
        };
        cells[part] += 1;
        remainders[part] = 0;
        left -= 1;
    }
    // A nonzero part that still has no cell takes one from the widest part that can spare it.
    for part in 0..N {
        if counts[part] > 0 && cells[part] == 0 {
            let widest = (0..N)
                .filter(|p| cells[*p] > 1)
                .max_by_key(|p| (cells[*p], std::cmp::Reverse(*p)));
            if let Some(widest) = widest {
                cells[widest] -= 1;
                cells[part] = 1;
            }
        }
    }
    cells
}

/// A one-line progress display on stderr for `plan` and `simulate`, which take about a second
/// on ten thousand assets and ten or more on a hundred thousand. Shown only when stderr is a
/// terminal, so pipes and `-o json` stay clean; redrawn at most every 200 ms; erased when the
/// run ends.
pub struct ProgressLine<W: Write> {
    out: Option<W>,
    label: String,
    every: Duration,
    last: Option<Instant>,
    drawn: bool,
}

impl ProgressLine<std::io::Stderr> {
    /// A progress line for `label` ("forecasting namespace acme"), if stderr is a terminal.
    pub fn on_stderr(label: String) -> Self {
        let stderr = std::io::stderr();
        let out = stderr.is_terminal().then_some(stderr);
        ProgressLine::new(out, label, Duration::from_millis(200))
    }
}

impl<W: Write> ProgressLine<W> {
    /// A progress line written to `out` (none: nothing is shown), redrawn at most `every`.
    pub fn new(out: Option<W>, label: String, every: Duration) -> Self {
        ProgressLine {
            out,
            label,
            every,
            last: None,
            drawn: false,
        }
    }

    /// Redraws the line, unless it was drawn less than the interval ago.
    pub fn update(&mut self, progress: Progress) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        if self.last.is_some_and(|last| last.elapsed() < self.every) {
            return;
        }
        self.last = Some(Instant::now());
        let at = progress.now.strftime("%Y-%m-%d %H:%MZ");
        // A display only: a failed write to the terminal must not fail the command.
        let _ = write!(
            out,
            "\r\x1b[2K{}: virtual time {at}, {} instants, {} operations started",
            self.label, progress.instants, progress.operations
        );
        let _ = out.flush();
        self.drawn = true;
    }

    /// Erases the line, so the result prints on a clean terminal.
    pub fn finish(mut self) {
        if let Some(out) = self.out.as_mut()
            && self.drawn
        {
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(now: &str, instants: usize, operations: usize) -> Progress {
        Progress {
            now: now.parse().unwrap(),
            instants,
            operations,
        }
    }

    #[test]
    fn the_progress_line_redraws_in_place_and_is_erased_at_the_end() {
        let mut out = Vec::new();
        let mut line = ProgressLine::new(Some(&mut out), "simulating acme".into(), Duration::ZERO);
        line.update(progress("2026-11-30T18:00:00Z", 1, 2));
        line.update(progress("2026-11-30T18:10:00Z", 2, 4));
        line.finish();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\r\x1b[2Ksimulating acme: virtual time 2026-11-30 18:00Z, 1 instants, 2 operations started\
             \r\x1b[2Ksimulating acme: virtual time 2026-11-30 18:10Z, 2 instants, 4 operations started\
             \r\x1b[2K"
        );
    }

    #[test]
    fn the_progress_line_is_redrawn_at_most_once_per_interval() {
        let mut out = Vec::new();
        let mut line = ProgressLine::new(Some(&mut out), "plan".into(), Duration::from_secs(3600));
        line.update(progress("2026-11-30T18:00:00Z", 1, 2));
        line.update(progress("2026-11-30T18:10:00Z", 2, 4));
        drop(line);
        assert_eq!(
            String::from_utf8(out)
                .unwrap()
                .matches("virtual time")
                .count(),
            1
        );
    }

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
        // Without an offset the time of day would be lost (read as the date's midnight).
        for local in [
            "2026-11-30T18:00:00",
            "2026-11-30T18:00",
            "2026-11-30 18:00:00",
        ] {
            let error = parse_time(local).unwrap_err();
            assert!(error.contains("has no UTC offset"), "{local}: {error}");
        }
        assert!(parse_time("2026-02-30").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn bars_show_success_failure_and_the_rest() {
        assert_eq!(progress_bar(5, 0, 5, 10, 10), "[#####.....]");
        assert_eq!(progress_bar(8, 1, 10, 10, 10), "[########x-]");
        assert_eq!(progress_bar(0, 0, 0, 0, 4), "[    ]");
        assert_eq!(progress_bar(19, 1, 20, 20, 10), "[#########x]");
    }

    /// 10 of 11 succeeded and 1 failed: 18.2 and 1.8 cells. Rounded down each, the cell left
    /// over went to "otherwise done", a skip that did not happen.
    #[test]
    fn bars_show_a_part_only_if_it_happened() {
        assert_eq!(progress_bar(10, 1, 11, 11, 20), "[##################xx]");
        assert_eq!(progress_bar(2, 0, 3, 7, 20), "[######---...........]");
        // A part with a count gets a cell even when its share rounds to none.
        assert_eq!(progress_bar(99, 0, 99, 100, 10), "[#########.]");
        assert_eq!(progress_bar(1, 0, 1, 100, 10), "[#.........]");
        assert_eq!(progress_bar(97, 1, 99, 100, 10), "[#######x-.]");
        // Narrower than the parts that happened: the earlier parts come first.
        assert_eq!(progress_bar(1, 1, 3, 4, 2), "[#x]");
        for total in 1..=30 {
            for succeeded in 0..=total {
                for failed in 0..=total - succeeded {
                    for done in succeeded + failed..=total {
                        let bar = progress_bar(succeeded, failed, done, total, 20);
                        let skipped = done - succeeded - failed;
                        let label = format!("{succeeded} {failed} {done} {total}: {bar}");
                        assert_eq!(bar.chars().count(), 22, "{label}");
                        assert_eq!(bar.contains('#'), succeeded > 0, "{label}");
                        assert_eq!(bar.contains('x'), failed > 0, "{label}");
                        assert_eq!(bar.contains('-'), skipped > 0, "{label}");
                        assert_eq!(bar.contains('.'), done < total, "{label}");
                    }
                }
            }
        }
    }
}
