//! Kubernetes label selectors over asset labels.
//!
//! Rings, windows, policies and disruption budgets all pick assets with a
//! [`LabelSelector`]. The semantics are those of `metav1.LabelSelector`: every `matchLabels`
//! pair AND every `matchExpressions` requirement must hold; `In` needs the label with one of the
//! values, `NotIn` holds when the label is absent or has none of the values, `Exists` and
//! `DoesNotExist` look at the key only. An absent or empty selector selects everything (the
//! CRDs document "empty selects all assets in the namespace").
//!
//! CRDs carry selectors as plain schema, so the API server does not check operators or value
//! lists; [`validate`] does, and a selector that fails it matches nothing (a mistyped operator
//! must not widen a selection).
//!
//! For many assets, compile once with [`CompiledSelector::compile`]; matching then does no
//! allocation and no string comparison beyond the label lookups.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// Whether `labels` satisfy `selector` (`None` or empty: always).
///
/// Evaluates the selector as written, without allocating. An unknown operator makes the
/// requirement, and so the selector, match nothing; call [`validate`] to report it.
pub fn matches(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    labels_match
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|requirement| requirement_matches(requirement, labels))
}

fn requirement_matches(
    requirement: &LabelSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let label = labels.get(&requirement.key);
    match Operator::parse(&requirement.operator) {
        Some(Operator::In) => label.is_some_and(|v| values.contains(v)),
        Some(Operator::NotIn) => label.is_none_or(|v| !values.contains(v)),
        Some(Operator::Exists) => label.is_some(),
        Some(Operator::DoesNotExist) => label.is_none(),
        None => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Operator {
    fn parse(text: &str) -> Option<Operator> {
        match text {
            "In" => Some(Operator::In),
            "NotIn" => Some(Operator::NotIn),
            "Exists" => Some(Operator::Exists),
            "DoesNotExist" => Some(Operator::DoesNotExist),
            _ => None,
        }
    }
}

/// Checks a selector the way the Kubernetes API server checks one in a built-in object:
/// operators must be `In`, `NotIn`, `Exists` or `DoesNotExist`; `In`/`NotIn` need at least one
/// value and `Exists`/`DoesNotExist` must have none; keys must be qualified names
/// (`[prefix/]name`) and values valid label values.
///
/// `field_path` is the selector's path, such as `spec.selector`; every message starts with
/// the path of the offending part. All problems are reported, joined with `"; "`.
pub fn validate(selector: Option<&LabelSelector>, field_path: &str) -> Result<(), String> {
    let Some(selector) = selector else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        let path = format!("{field_path}.matchLabels[{key}]");
        if let Err(why) = check_key(key) {
            problems.push(format!("{path}: invalid label key {key:?}: {why}"));
        }
        if let Err(why) = check_value(value) {
            problems.push(format!("{path}: invalid label value {value:?}: {why}"));
        }
    }
    for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
        let path = format!("{field_path}.matchExpressions[{i}]");
        let key = &requirement.key;
        if let Err(why) = check_key(key) {
            problems.push(format!("{path}.key: invalid label key {key:?}: {why}"));
        }
        let values = requirement.values.as_deref().unwrap_or_default();
        match Operator::parse(&requirement.operator) {
            None => problems.push(format!(
                "{path}.operator: unknown operator {:?}; expected In, NotIn, Exists or DoesNotExist",
                requirement.operator
            )),
            Some(op @ (Operator::In | Operator::NotIn)) if values.is_empty() => problems.push(
                format!("{path}.values: operator {op:?} needs at least one value"),
            ),
            Some(op @ (Operator::Exists | Operator::DoesNotExist)) if !values.is_empty() => {
                problems.push(format!(
                    "{path}.values: operator {op:?} takes no values, found {}",
                    values.len()
                ))
            }
            Some(_) => {
                for (j, value) in values.iter().enumerate() {
                    if let Err(why) = check_value(value) {
                        problems.push(format!(
                            "{path}.values[{j}]: invalid label value {value:?}: {why}"
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of at most 63
/// characters.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() || prefix.len() > 253 {
            return Err("the prefix before '/' must be a DNS subdomain of 1-253 characters".into());
        }
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !prefix.split('.').all(label_ok) {
            return Err(
                "the prefix before '/' must be a lowercase DNS subdomain such as example.com"
                    .into(),
            );
        }
    }
    if name.is_empty() {
        return Err("the name part must not be empty".into());
    }
    check_name(name)
}

/// A label value: empty, or a name of at most 63 characters.
fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Ok(())
    } else {
        check_name(value)
    }
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn check_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    if name.len() > 63 {
        return Err(format!(
            "must be at most 63 characters, found {}",
            name.len()
        ));
    }
    let ok = bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes
            .iter()
            .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err("must consist of alphanumerics, '-', '_' or '.', \
             and start and end with an alphanumeric"
            .into())
    }
}

/// A validated selector prepared for matching many label sets quickly.
///
/// Compiling checks the selector once ([`validate`]) and sorts `In`/`NotIn` value lists, so
/// matching 100,000 assets costs one map lookup per requirement and a binary search per value
/// list, with no allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompiledSelector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    test: Test,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Test {
    Equals(String),
    /// Sorted and deduplicated.
    In(Vec<String>),
    /// Sorted and deduplicated.
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

impl CompiledSelector {
    /// The selector that matches every label set (what an absent or empty selector means).
    pub fn everything() -> Self {
        CompiledSelector::default()
    }

    /// Validates and compiles `selector`; `field_path` prefixes error messages as in
    /// [`validate`].
    pub fn compile(selector: Option<&LabelSelector>, field_path: &str) -> Result<Self, String> {
        validate(selector, field_path)?;
        let Some(selector) = selector else {
            return Ok(CompiledSelector::everything());
        };
        let mut requirements: Vec<Requirement> = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(key, value)| Requirement {
                key: key.clone(),
                test: Test::Equals(value.clone()),
            })
            .collect();
        for requirement in selector.match_expressions.iter().flatten() {
            let sorted = || {
                let mut values = requirement.values.clone().unwrap_or_default();
                values.sort();
                values.dedup();
                values
            };
            let test = match Operator::parse(&requirement.operator) {
                Some(Operator::In) => Test::In(sorted()),
                Some(Operator::NotIn) => Test::NotIn(sorted()),
                Some(Operator::Exists) => Test::Exists,
                Some(Operator::DoesNotExist) => Test::DoesNotExist,
                // `validate` rejected unknown operators above.
                None => return Err(format!("{field_path}: unknown operator")),
            };
            requirements.push(Requirement {
                key: requirement.key.clone(),
                test,
            });
        }
        Ok(CompiledSelector { requirements })
    }

    /// Whether the selector matches every label set.
    pub fn matches_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement. Allocation-free.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|requirement| {
            let label = labels.get(&requirement.key);
            let contains = |values: &[String], v: &String| {
                values
                    .binary_search_by(|probe| probe.as_str().cmp(v.as_str()))
                    .is_ok()
            };
            match &requirement.test {
                Test::Equals(value) => label == Some(value),
                Test::In(values) => label.is_some_and(|v| contains(values, v)),
                Test::NotIn(values) => label.is_none_or(|v| !contains(values, v)),
                Test::Exists => label.is_some(),
                Test::DoesNotExist => label.is_none(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, operator: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn selector(
        match_labels: &[(&str, &str)],
        exprs: Vec<LabelSelectorRequirement>,
    ) -> LabelSelector {
        LabelSelector {
            match_labels: (!match_labels.is_empty()).then(|| labels(match_labels)),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        }
    }

    /// Both evaluators must agree on every case.
    fn check(sel: Option<&LabelSelector>, set: &BTreeMap<String, String>, expected: bool) {
        assert_eq!(matches(sel, set), expected, "matches({sel:?}, {set:?})");
        let compiled = CompiledSelector::compile(sel, "spec.selector").unwrap();
        assert_eq!(
            compiled.matches(set),
            expected,
            "compiled({sel:?}, {set:?})"
        );
    }

    #[test]
    fn absent_or_empty_selector_matches_everything() {
        let any = labels(&[("role", "erp")]);
        check(None, &any, true);
        check(Some(&LabelSelector::default()), &any, true);
        check(Some(&selector(&[], vec![])), &BTreeMap::new(), true);
        assert!(
            CompiledSelector::compile(None, "s")
                .unwrap()
                .matches_everything()
        );
    }

    #[test]
    fn match_labels_and_expressions_all_must_hold() {
        let sel = selector(
            &[("site", "zurich")],
            vec![
                expr("role", "In", Some(&["erp", "domain-controller"])),
                expr("ring", "NotIn", Some(&["pilot"])),
                expr("owner", "Exists", None),
                expr("hold", "DoesNotExist", None),
            ],
        );
        let base = [("site", "zurich"), ("role", "erp"), ("owner", "it")];
        check(Some(&sel), &labels(&base), true);
        // NotIn holds when the key is absent, fails on a listed value.
        check(
            Some(&sel),
            &labels(&[base[0], base[1], base[2], ("ring", "b")]),
            true,
        );
        check(
            Some(&sel),
            &labels(&[base[0], base[1], base[2], ("ring", "pilot")]),
            false,
        );
        // Each requirement can fail on its own.
        check(
            Some(&sel),
            &labels(&[("site", "bern"), base[1], base[2]]),
            false,
        );
        check(
            Some(&sel),
            &labels(&[base[0], ("role", "laptop"), base[2]]),
            false,
        );
        check(Some(&sel), &labels(&[base[0], base[2]]), false);
        check(Some(&sel), &labels(&[base[0], base[1]]), false);
        check(
            Some(&sel),
            &labels(&[base[0], base[1], base[2], ("hold", "")]),
            false,
        );
    }

    #[test]
    fn invalid_selectors_are_reported_and_match_nothing() {
        let bad_op = selector(&[], vec![expr("role", "Equals", Some(&["erp"]))]);
        let err = validate(Some(&bad_op), "spec.selector").unwrap_err();
        assert!(
            err.contains("spec.selector.matchExpressions[0].operator") && err.contains("Equals"),
            "{err}"
        );
        assert!(!matches(Some(&bad_op), &labels(&[("role", "erp")])));
        assert!(CompiledSelector::compile(Some(&bad_op), "spec.selector").is_err());

        let in_without_values = selector(&[], vec![expr("role", "In", Some(&[]))]);
        let err = validate(Some(&in_without_values), "spec.selector").unwrap_err();
        assert!(err.contains("matchExpressions[0].values") && err.contains("at least one"));
        let not_in_none = selector(&[], vec![expr("role", "NotIn", None)]);
        assert!(validate(Some(&not_in_none), "s").is_err());

        let exists_with_values = selector(&[], vec![expr("role", "Exists", Some(&["x"]))]);
        let err = validate(Some(&exists_with_values), "spec.selector").unwrap_err();
        assert!(err.contains("takes no values"), "{err}");

        let bad_key = selector(&[("-bad", "x")], vec![expr("a/b/c", "Exists", None)]);
        let err = validate(Some(&bad_key), "spec.selector").unwrap_err();
        assert!(err.contains("matchLabels[-bad]") && err.contains("matchExpressions[0].key"));

        let bad_value = selector(&[("role", "has space")], vec![]);
        assert!(validate(Some(&bad_value), "s").is_err());

        let good = selector(
            &[("patchwave.dev/ring", "pilot"), ("empty", "")],
            vec![expr("kubernetes.io/os", "In", Some(&["linux", "windows"]))],
        );
        assert_eq!(validate(Some(&good), "spec.selector"), Ok(()));
    }

    #[test]
    fn compiled_selector_scales_to_many_assets() {
        let values: Vec<String> = (0..50).map(|i| format!("site-{i}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let sel = selector(&[("tier", "server")], vec![expr("site", "In", Some(&refs))]);
        let compiled = CompiledSelector::compile(Some(&sel), "spec.selector").unwrap();
        let assets: Vec<BTreeMap<String, String>> = (0..100_000)
            .map(|i| {
                labels(&[
                    ("tier", if i % 2 == 0 { "server" } else { "laptop" }),
                    ("site", &format!("site-{}", i % 100)),
                ])
            })
            .collect();
        let matched = assets.iter().filter(|l| compiled.matches(l)).count();
        // Even i with i % 100 < 50: half of the servers.
        assert_eq!(matched, 25_000);
        assert_eq!(
            assets
                .iter()
                .take(1000)
                .filter(|l| matches(Some(&sel), l))
                .count(),
            250
        );
    }
}
