//! Unquoted YAML values that kubectl reads differently from the offline commands.
//!
//! kubectl reads manifests with YAML 1.1 rules (sigs.k8s.io/yaml), the offline commands with
//! YAML 1.2 rules (serde_yaml). Most plain scalars mean the same under both, but not all:
//! `yes`, `no`, `on`, `off`, `y` and `n` (in any of their spellings) are booleans to kubectl
//! and text to YAML 1.2; `0755` and `010` are octal numbers, `1_000` is a thousand. A label
//! `backup: yes` therefore passes `validate` and then fails `kubectl apply` (a label value must
//! be text), and a key `on:` silently becomes `"true"`. [`retyped_scalars`] finds such scalars
//! with their field paths, so that `validate` can ask for quotes before kubectl refuses.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use granit_parser::{Event, Parser, ScalarStyle};

/// A plain scalar that kubectl reads as something other than the text written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retyped {
    /// 1-based index of the YAML document it is in.
    pub document: usize,
    /// Its field path, as parse errors name fields (`metadata.labels.backup`,
    /// `spec.rings[0]`); for a key, the path it would have had.
    pub path: String,
    /// Whether it is a mapping key rather than a value.
    pub key: bool,
    /// The text written.
    pub text: String,
    /// What kubectl reads instead: `the boolean true`, `the number 493`.
    pub kubectl_reads: String,
    /// 1-based line.
    pub line: usize,
}

impl Retyped {
    /// The problem, for `validate`.
    pub fn message(&self) -> String {
        let text = &self.text;
        let reads = &self.kubectl_reads;
        if self.key {
            format!(
                "kubectl reads the unquoted key {text} as {reads} (YAML 1.1), so the field it \
                 names is not the one written; quote it: \"{text}\""
            )
        } else {
            format!(
                "kubectl reads the unquoted {text} as {reads} (YAML 1.1), and the API server \
                 refuses that where text belongs; quote it: \"{text}\""
            )
        }
    }
}

/// What YAML 1.1 makes of a plain scalar that YAML 1.2 reads as text, if anything else.
pub fn kubectl_reading(text: &str) -> Option<String> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Some("the boolean true".to_owned());
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Some("the boolean false".to_owned());
        }
        _ => {}
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // A leading zero makes an octal number (a decimal one with an 8 or a 9 in it).
    if text.len() > 1 && text.starts_with('0') && digits(text) {
        let number = u64::from_str_radix(&text[1..], 8)
            .map(|n| n.to_string())
            .unwrap_or_else(|_| text.trim_start_matches('0').to_owned());
        return Some(format!(
            "the number {}",
            if number.is_empty() { "0" } else { &number }
        ));
    }
    // Underscores group digits.
    let without = text.replace('_', "");
    if text.contains('_') && text.starts_with(|c: char| c.is_ascii_digit()) && digits(&without) {
        return kubectl_reading(&without).or_else(|| {
            let number = without.trim_start_matches('0');
            Some(format!(
                "the number {}",
                if number.is_empty() { "0" } else { number }
            ))
        });
    }
    None
}

/// The line of each wanted `(document, field path)` of `text`: for a mapping's value, the line
/// of its key; for a sequence item, the line of the item. A path that the text does not have
/// (a required field that is missing) gets the line of its nearest parent that it has.
/// Documents with no wanted path are walked without building any path.
pub fn lines_of(text: &str, wanted: &HashSet<(usize, String)>) -> HashMap<(usize, String), usize> {
    let documents: HashSet<usize> = wanted.iter().map(|(document, _)| *document).collect();
    let mut found: HashMap<(usize, String), usize> = HashMap::new();
    walk(text, |node| {
        if !node.key && documents.contains(&node.document) {
            found.insert((node.document, node.path()), node.line);
        }
    });
    wanted
        .iter()
        .filter_map(|(document, field)| {
            let mut path = field.as_str();
            loop {
                if let Some(line) = found.get(&(*document, path.to_owned())) {
                    return Some(((*document, field.clone()), *line));
                }
                let parent = path.rfind(['.', '['])?;
                path = &path[..parent];
            }
        })
        .collect()
}

/// A node's place in its parent.
#[derive(Clone)]
enum Segment<'a> {
    Root,
    Key(Cow<'a, str>),
    Index(usize),
}

/// A collection the walk is inside, and its place in its parent.
struct Frame<'a> {
    segment: Segment<'a>,
    /// For a mapping: the key whose value comes next (`None` while a key is expected); for a
    /// sequence: unused.
    key: Option<Cow<'a, str>>,
    /// For a sequence: the index of the next item; for a mapping: `None`.
    next: Option<usize>,
}

/// Every plain scalar of `text` (all its documents) that kubectl reads as something other
/// than text, in document order. Stops quietly at a syntax error: the YAML reader of the
/// offline commands reports it.
pub fn retyped_scalars(text: &str) -> Vec<Retyped> {
    let mut found = Vec::new();
    walk(text, |node| {
        let Some((value, true)) = node.scalar else {
            return;
        };
        if let Some(kubectl_reads) = kubectl_reading(value) {
            found.push(Retyped {
                document: node.document,
                path: node.path(),
                key: node.key,
                text: value.to_owned(),
                kubectl_reads,
                line: node.own_line,
            });
        }
    });
    found
}

/// One node of a YAML stream (a scalar, an alias, or the start of a collection) as
/// [`walk`] meets it.
struct Node<'w, 'a> {
    /// 1-based index of its document.
    document: usize,
    /// Whether it is a mapping key.
    key: bool,
    /// Its line; for a mapping's value, the line of its key (where a person looks).
    line: usize,
    /// Its own line.
    own_line: usize,
    /// For a scalar: its text, and whether it is plain and untagged (what YAML 1.1 and 1.2
    /// may read differently).
    scalar: Option<(&'w str, bool)>,
    stack: &'w [Frame<'a>],
    segment: &'w Segment<'a>,
}

impl Node<'_, '_> {
    /// Its field path (built on demand: most nodes are never asked).
    fn path(&self) -> String {
        path(self.stack, self.segment)
    }
}

/// Calls `visit` for every node of every document of `text`, in order. Stops quietly at a
/// syntax error.
fn walk<'a>(text: &'a str, mut visit: impl FnMut(&Node<'_, 'a>)) {
    let mut stack: Vec<Frame> = Vec::new();
    // Per collection on the stack: the line of the key whose value comes next.
    let mut key_lines: Vec<usize> = Vec::new();
    let mut document = 0;
    for next in Parser::new_from_str(text) {
        let Ok((event, span)) = next else { break };
        let own_line = span.start.line();
        let scalar = match &event {
            Event::DocumentStart(..) => {
                document += 1;
                stack.clear();
                key_lines.clear();
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                key_lines.pop();
                continue;
            }
            Event::Scalar(value, style, _, tag) => {
                Some((value.clone(), *style == ScalarStyle::Plain && tag.is_none()))
            }
            Event::Alias(_) | Event::MappingStart(..) | Event::SequenceStart(..) => None,
            _ => continue,
        };
        let in_mapping = stack.last().is_some_and(|frame| frame.next.is_none());
        let key = in_mapping && stack.last().is_some_and(|frame| frame.key.is_none());
        let segment = place(&mut stack, scalar.as_ref().map(|(value, _)| value.clone()));
        if key && let Some(last) = key_lines.last_mut() {
            *last = own_line;
        }
        let line = match key_lines.last() {
            Some(key_line) if in_mapping && !key => *key_line,
            _ => own_line,
        };
        visit(&Node {
            document,
            key,
            line,
            own_line,
            scalar: scalar
                .as_ref()
                .map(|(value, plain)| (value.as_ref(), *plain)),
            stack: &stack,
            segment: &segment,
        });
        if matches!(event, Event::MappingStart(..) | Event::SequenceStart(..)) {
            let next = matches!(event, Event::SequenceStart(..)).then_some(0);
            stack.push(Frame {
                segment,
                key: None,
                next,
            });
            key_lines.push(own_line);
        }
    }
}

/// The place of the node that comes next in the innermost collection, which the walk moves
/// past. `scalar`: the node's text if it is a scalar (a key's name, when a key is expected).
fn place<'a>(stack: &mut [Frame<'a>], scalar: Option<Cow<'a, str>>) -> Segment<'a> {
    let Some(frame) = stack.last_mut() else {
        return Segment::Root;
    };
    if let Some(next) = &mut frame.next {
        *next += 1;
        return Segment::Index(*next - 1);
    }
    match frame.key.take() {
        Some(key) => Segment::Key(key),
        None => {
            // A key; a key that is itself a collection has no name to give its value.
            let key = scalar.unwrap_or(Cow::Borrowed("?"));
            frame.key = Some(key.clone());
            Segment::Key(key)
        }
    }
}

/// The field path of a node at `segment` inside the collections of `stack`.
fn path(stack: &[Frame], segment: &Segment) -> String {
    let mut path = String::new();
    for segment in stack.iter().map(|frame| &frame.segment).chain([segment]) {
        match segment {
            Segment::Root => {}
            // The keys of a merge (`<<: {...}`) land in the mapping that holds it.
            Segment::Key(key) if key == "<<" => {}
            Segment::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Index(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_yaml_1_1_reads_as_booleans_and_numbers() {
        let text = "\
apiVersion: patchwave.dev/v1alpha1
kind: Asset
metadata:
  name: web01
  labels:
    backup: yes
    quoted: \"yes\"
    single: 'no'
    tagged: !!str on
    <<: {merged: no}
    zip: 01234
    big: 1_000
    on: x
    plain: true-ish
spec:
  rings: [pilot, off]
  notes: |
    yes, a block scalar is text
---
kind: Ring
metadata: {name: n}
";
        let found = retyped_scalars(text);
        let summary: Vec<(usize, &str, bool, &str, &str, usize)> = found
            .iter()
            .map(|r| {
                (
                    r.document,
                    r.path.as_str(),
                    r.key,
                    r.text.as_str(),
                    r.kubectl_reads.as_str(),
                    r.line,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    1,
                    "metadata.labels.backup",
                    false,
                    "yes",
                    "the boolean true",
                    6
                ),
                (
                    1,
                    "metadata.labels.merged",
                    false,
                    "no",
                    "the boolean false",
                    10
                ),
                (
                    1,
                    "metadata.labels.zip",
                    false,
                    "01234",
                    "the number 668",
                    11
                ),
                (
                    1,
                    "metadata.labels.big",
                    false,
                    "1_000",
                    "the number 1000",
                    12
                ),
                (1, "metadata.labels.on", true, "on", "the boolean true", 13),
                (1, "spec.rings[1]", false, "off", "the boolean false", 16),
                (2, "metadata.name", false, "n", "the boolean false", 21),
            ]
        );
        assert!(found[0].message().contains("quote it: \"yes\""));
        assert!(found[4].message().contains("the unquoted key on"));
    }

    #[test]
    fn lines_of_fields_and_their_nearest_parents() {
        let text = "\
kind: Ring
metadata: {name: a}
---
kind: PatchPolicy
metadata:
  name: p
spec:
  rings:
  - pilot
  - rest
  windows: [nights]
";
        let wanted: HashSet<(usize, String)> = [
            (2, "spec.rings[1]"),
            (2, "spec.windows[0]"),
            (2, "spec"),
            (2, "spec.selector"),
            (2, "metadata.name"),
            (1, "metadata.name"),
        ]
        .into_iter()
        .map(|(d, p)| (d, p.to_owned()))
        .collect();
        let lines = lines_of(text, &wanted);
        let line = |d: usize, p: &str| lines.get(&(d, p.to_owned())).copied();
        assert_eq!(line(2, "spec.rings[1]"), Some(10));
        assert_eq!(line(2, "spec.windows[0]"), Some(11));
        assert_eq!(line(2, "spec"), Some(7));
        // Missing: the line of its parent.
        assert_eq!(line(2, "spec.selector"), Some(7));
        assert_eq!(line(2, "metadata.name"), Some(6));
        assert_eq!(line(1, "metadata.name"), Some(2));
    }

    #[test]
    fn what_both_read_alike_is_left_alone() {
        for text in [
            "true", "false", "10", "0", "0x1F", "1.5", "null", "web01", "08:30",
        ] {
            assert_eq!(kubectl_reading(text), None, "{text}");
        }
        assert_eq!(kubectl_reading("09").as_deref(), Some("the number 9"));
        assert_eq!(kubectl_reading("00").as_deref(), Some("the number 0"));
    }
}
