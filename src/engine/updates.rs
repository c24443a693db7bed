//! Which updates a policy approves, which policy owns an update on an asset, deadlines, and the
//! content hash of a frozen set.

use jiff::{SignedDuration, Timestamp};

use super::fast_hash::hash_str;
use crate::api::asset::AvailableUpdate;
use crate::api::policy::{Deadlines, UpdateFilter};
use crate::api::{Classification, Severity};

/// How an agent's `availableUpdates` are read, entry by entry. The first entry of an update id
/// counts; the same entry again (one package for two architectures) adds nothing. An id
/// reported with two versions leaves open which one to install (asked for both, a package
/// manager refuses), so none of its entries is installed and validation reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportedEntries {
    /// Per entry: whether a policy may install it.
    pub installable: Vec<bool>,
    /// Per update id reported with two versions: the entry where it first appears and the
    /// first entry with another version.
    pub ambiguous: Vec<(usize, usize)>,
}

impl ReportedEntries {
    /// Reads `available`.
    pub fn of(available: &[AvailableUpdate]) -> Self {
        let mut entries = ReportedEntries {
            installable: vec![true; available.len()],
            ambiguous: Vec::new(),
        };
        if !repeats_an_id(available) {
            return entries;
        }
        // A few entries per asset: comparing each pair costs less than a map.
        for (i, update) in available.iter().enumerate() {
            let Some(first) = available[..i].iter().position(|e| e.id == update.id) else {
                continue;
            };
            entries.installable[i] = false;
            if available[first].version != update.version {
                entries.installable[first] = false;
                if !entries.ambiguous.iter().any(|(f, _)| *f == first) {
                    entries.ambiguous.push((first, i));
                }
            }
        }
        entries
    }
}

/// Whether some update id appears twice in `available`. Reports almost never repeat one, and
/// the engine reads every report on every evaluation: hashing and sorting the ids decides that
/// for the usual report without comparing every pair of ids.
pub fn repeats_an_id(available: &[AvailableUpdate]) -> bool {
    const ON_STACK: usize = 64;
    let mut stack = [0_u64; ON_STACK];
    let mut heap = Vec::new();
    let hashes: &mut [u64] = if available.len() <= ON_STACK {
        &mut stack[..available.len()]
    } else {
        heap.resize(available.len(), 0);
        &mut heap
    };
    for (hash, update) in hashes.iter_mut().zip(available) {
        *hash = hash_str(&update.id);
    }
    hashes.sort_unstable();
    // Equal hashes are only a hint (two ids may share one); the caller compares the ids.
    hashes.windows(2).any(|pair| pair[0] == pair[1])
}

/// A policy's update filter, ready to be asked about many updates.
#[derive(Clone, Debug)]
pub struct CompiledFilter {
    classifications: Vec<Classification>,
    minimum_severity: Option<Severity>,
    include: Vec<String>,
    exclude: Vec<String>,
    defer: SignedDuration,
}

impl CompiledFilter {
    /// Compiles `filter`; negative deferrals count as none (the CRD forbids them).
    pub fn new(filter: &UpdateFilter) -> Self {
        CompiledFilter {
            classifications: filter.classifications.clone(),
            minimum_severity: filter.minimum_severity,
            include: filter.include.clone(),
            exclude: filter.exclude.clone(),
            defer: SignedDuration::from_hours(24 * i64::from(filter.defer_days.max(0))),
        }
    }

    /// Whether the policy's filters select `update` (classification, severity, include and
    /// exclude globs on the id and package name; exclude wins). Deferral is not part of this:
    /// an update belongs to a policy from the day it is reported, and is approved once its
    /// deferral has passed (see [`CompiledFilter::approved_from`]).
    pub fn selects(&self, update: &AvailableUpdate) -> bool {
        if !self.classifications.is_empty()
            && !self.classifications.contains(&update.classification)
        {
            return false;
        }
        // Severity is ordered Critical < Important < ... < Unspecified (most severe first).
        if let Some(minimum) = self.minimum_severity
            && update.severity > minimum
        {
            return false;
        }
        let names = || std::iter::once(update.id.as_str()).chain(update.package.as_deref());
        if self
            .exclude
            .iter()
            .any(|pattern| names().any(|name| glob_matches(pattern, name)))
        {
            return false;
        }
        self.include.is_empty()
            || self
                .include
                .iter()
                .any(|pattern| names().any(|name| glob_matches(pattern, name)))
    }

    /// The instant from which the policy approves `update`: its release plus the deferral.
    /// `None` when the release date is unknown (approved at once).
    pub fn approved_from(&self, update: &AvailableUpdate) -> Option<Timestamp> {
        let released = update.released_at.as_ref()?.0;
        released.checked_add(self.defer).ok()
    }
}

/// Shell-style glob: `*` any run of characters, `?` one character, everything else literal.
/// Case-sensitive, like package names and KB ids are.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point for the last `*`: linear in practice.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some('?') => {
                p += 1;
                t += 1;
            }
            Some(c) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// The order in which policies claim updates: highest priority first, then by name. The
/// engine and the KPIs both decide ownership in this order.
pub fn claim_order(a: (i32, &str), b: (i32, &str)) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then(a.1.cmp(b.1))
}

/// Which policy owns each of an asset's `available` updates: of the `claimants` (the valid
/// policies that select the asset, suspended ones included, in [`claim_order`]), the first
/// whose filter selects it. An update reported with two versions has none (see
/// [`ReportedEntries`]). The engine's decisions and the KPIs decide ownership with this
/// function alone.
pub fn owners<T: Copy>(
    claimants: &[(T, &CompiledFilter)],
    available: &[AvailableUpdate],
) -> Vec<Option<T>> {
    let installable = ReportedEntries::of(available).installable;
    available
        .iter()
        .zip(installable)
        .map(|(update, installable)| {
            if !installable {
                return None;
            }
            claimants
                .iter()
                .find(|(_, filter)| filter.selects(update))
                .map(|(claimant, _)| *claimant)
        })
        .collect()
}

/// Days allowed after release for `update` under `deadlines`: the severity's deadline, or the
/// security deadline for Security updates if that is sooner.
pub fn deadline_days(
    deadlines: &Deadlines,
    severity: Severity,
    classification: Classification,
) -> i32 {
    let by_severity = match severity {
        Severity::Critical => deadlines.critical,
        Severity::Important => deadlines.important,
        Severity::Moderate => deadlines.moderate,
        Severity::Low | Severity::Unspecified => deadlines.low,
    };
    if classification == Classification::Security {
        by_severity.min(deadlines.security)
    } else {
        by_severity
    }
}

/// When `update` must be installed: release + deadline days. `None` without a release date.
pub fn deadline(deadlines: &Deadlines, update: &AvailableUpdate) -> Option<Timestamp> {
    let days = deadline_days(deadlines, update.severity, update.classification);
    let released = update.released_at.as_ref()?.0;
    released
        .checked_add(SignedDuration::from_hours(24 * i64::from(days.max(0))))
        .ok()
}

/// A stable content hash (FNV-1a, 64 bit, hex) of a sorted list of `(id, version)` pairs.
/// Identifies a frozen set in rollout names and operations; not a security boundary.
pub fn content_hash<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (id, version) in pairs {
        feed(id.as_bytes());
        feed(&[0]);
        feed(version.unwrap_or("").as_bytes());
        feed(&[0xff]);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str, classification: Classification, severity: Severity) -> AvailableUpdate {
        AvailableUpdate {
            id: id.to_owned(),
            classification,
            severity,
            ..AvailableUpdate::default()
        }
    }

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_matches("postgresql*", "postgresql-16"));
        assert!(glob_matches("KB50?6617", "KB5046617"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("*ssl*", "openssl"));
        assert!(!glob_matches("postgresql*", "libpostgresql"));
        assert!(!glob_matches("KB5046617", "kb5046617"), "case-sensitive");
        assert!(glob_matches("a*b*c", "aXXbYYbZc"));
        assert!(!glob_matches("a*b*c", "aXXbYYbZ"));
    }

    #[test]
    fn filters_combine_classification_severity_include_and_exclude() {
        let filter = CompiledFilter::new(&UpdateFilter {
            classifications: vec![Classification::Security],
            minimum_severity: Some(Severity::Important),
            include: vec!["open*".into(), "KB*".into()],
            exclude: vec!["openvpn".into()],
            defer_days: 0,
        });
        assert!(filter.selects(&update(
            "openssl",
            Classification::Security,
            Severity::Critical
        )));
        assert!(filter.selects(&update(
            "KB1",
            Classification::Security,
            Severity::Important
        )));
        assert!(
            !filter.selects(&update(
                "openssl",
                Classification::Bugfix,
                Severity::Critical
            )),
            "classification"
        );
        assert!(
            !filter.selects(&update(
                "openssl",
                Classification::Security,
                Severity::Moderate
            )),
            "severity"
        );
        assert!(
            !filter.selects(&update(
                "curl",
                Classification::Security,
                Severity::Critical
            )),
            "include"
        );
        assert!(
            !filter.selects(&update(
                "openvpn",
                Classification::Security,
                Severity::Critical
            )),
            "exclude wins"
        );
        let mut by_package = update("RHSA-2026:1", Classification::Security, Severity::Critical);
        by_package.package = Some("openvpn".into());
        assert!(
            !filter.selects(&by_package),
            "globs also match the package name"
        );
    }

    #[test]
    fn deadlines_take_the_sooner_of_severity_and_security() {
        let d = Deadlines::default();
        assert_eq!(
            deadline_days(&d, Severity::Critical, Classification::Bugfix),
            7
        );
        assert_eq!(
            deadline_days(&d, Severity::Low, Classification::Security),
            7
        );
        assert_eq!(
            deadline_days(&d, Severity::Moderate, Classification::Enhancement),
            30
        );
    }

    #[test]
    fn deferral_counts_days_from_release() {
        let filter = CompiledFilter::new(&UpdateFilter {
            defer_days: 7,
            ..UpdateFilter::default()
        });
        let mut u = update("x", Classification::Bugfix, Severity::Low);
        assert_eq!(filter.approved_from(&u), None);
        u.released_at = Some(crate::api::Time("2026-11-01T00:00:00Z".parse().unwrap()));
        assert_eq!(
            filter.approved_from(&u),
            Some("2026-11-08T00:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn content_hash_is_stable_and_order_sensitive() {
        let a = content_hash([("openssl", Some("3.0.15")), ("curl", None)]);
        assert_eq!(
            a,
            content_hash([("openssl", Some("3.0.15")), ("curl", None)])
        );
        assert_ne!(
            a,
            content_hash([("curl", None), ("openssl", Some("3.0.15"))])
        );
        assert_ne!(
            a,
            content_hash([("openssl", Some("3.0.16")), ("curl", None)])
        );
        assert_eq!(a.len(), 16);
    }
}

#[cfg(test)]
mod reported_entries_tests {
    use super::*;

    fn entry(id: &str, version: &str) -> AvailableUpdate {
        AvailableUpdate {
            id: id.to_owned(),
            version: Some(version.to_owned()),
            ..AvailableUpdate::default()
        }
    }

    #[test]
    fn repeated_entries_count_once_and_two_versions_count_never() {
        let available = [
            entry("openssl", "3.0.15"),
            entry("glibc", "2.36"),
            entry("glibc", "2.36"),
            entry("openssl", "3.0.16"),
            entry("openssl", "3.0.17"),
            entry("curl", "8.11.1"),
        ];
        let entries = ReportedEntries::of(&available);
        assert_eq!(
            entries.installable,
            [false, true, false, false, false, true]
        );
        // Once per update id, at its first other version.
        assert_eq!(entries.ambiguous, [(0, 3)]);
        assert_eq!(ReportedEntries::of(&[]), ReportedEntries::default());
    }

    #[test]
    fn a_repeated_id_is_found_in_short_and_long_reports() {
        for size in [2, 64, 65, 300] {
            let mut available: Vec<AvailableUpdate> = (0..size)
                .map(|i| entry(&format!("pkg-{i}"), "1.0"))
                .collect();
            assert!(!repeats_an_id(&available), "{size} distinct ids");
            assert!(
                ReportedEntries::of(&available)
                    .installable
                    .iter()
                    .all(|i| *i)
            );
            available.push(entry(&format!("pkg-{}", size / 2), "1.0"));
            assert!(repeats_an_id(&available), "{size} ids and one again");
            assert!(!ReportedEntries::of(&available).installable[size]);
        }
        assert!(!repeats_an_id(&[]));
        assert!(!repeats_an_id(&[entry("only", "1")]));
    }
}
