//! The report's charts as inline SVG, drawn by our own code: no JavaScript, no fonts or images
//! fetched, nothing outside the document.
//!
//! Every chart is an `<svg role="img">` with a `<title>` (and `aria-labelledby` pointing at
//! it), scales to the width of its container (`viewBox`, `width="100%"`), keeps its colours
//! when printed (`print-color-adjust: exact` in the page's CSS) and writes its numbers as text
//! next to the marks, so it still reads on a grey-scale printout. Lines differ by dash pattern
//! as well as by colour.

use std::fmt::Write as _;

use super::html::escape;

/// Blue: patch rate within 7 days.
pub const BLUE: &str = "#1f77b4";
/// Orange: patch rate within 30 days.
pub const ORANGE: &str = "#ff7f0e";
/// Green: compliance.
pub const GREEN: &str = "#2ca02c";
/// Colours of the age buckets of open updates, young to old, then "no release date".
pub const AGE_COLOURS: [&str; 5] = ["#fdd49e", "#fdae6b", "#e6550d", "#a63603", "#bdbdbd"];

const WIDTH: f64 = 640.0;
const TEXT: &str = "#222";
const GRID: &str = "#d0d0d0";
const FONT: &str = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\"";

/// One line of a line chart: shares between 0 and 1, `None` where there is no data.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// Stroke colour.
    pub colour: &'a str,
    /// SVG `stroke-dasharray` (empty: solid).
    pub dash: &'a str,
    /// One value per label.
    pub values: Vec<Option<f64>>,
}

fn open(out: &mut String, id: &str, title: &str, height: f64) {
    let _ = write!(
        out,
        "<svg role=\"img\" aria-labelledby=\"{id}-title\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"100%\" preserveAspectRatio=\"xMidYMid meet\" {FONT} font-size=\"12\" \
         fill=\"{TEXT}\"><title id=\"{id}-title\">{}</title>",
        escape(title)
    );
}

fn text(out: &mut String, x: f64, y: f64, anchor: &str, extra: &str, content: &str) {
    let _ = write!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\"{extra}>{}</text>",
        escape(content)
    );
}

fn percent_label(value: f64) -> String {
    format!("{:.0}%", value * 100.0)
}

/// A line chart of shares (0–100%) over the periods `labels`, one line per series; gaps where
/// a series has no data, every point labelled with its value.
pub fn line_chart(id: &str, title: &str, labels: &[String], series: &[Series<'_>]) -> String {
    let height = 300.0;
    let (left, right, top, bottom) = (48.0, 16.0, 24.0, 62.0);
    let plot_w = WIDTH - left - right;
    let plot_h = height - top - bottom;
    let n = labels.len().max(1) as f64;
    // Value labels already placed, per period: (y of the text's baseline), to avoid overlaps.
    let mut placed: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
    let x = |i: usize| left + plot_w * (i as f64 + 0.5) / n;
    let y = |v: f64| top + plot_h * (1.0 - v.clamp(0.0, 1.0));
    let mut out = String::new();
    open(&mut out, id, title, height);
    for step in 0..=4 {
        let v = f64::from(step) / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{GRID}\" stroke-width=\"1\"/>",
            WIDTH - right,
            y(v),
            y(v)
        );
        text(
            &mut out,
            left - 6.0,
            y(v) + 4.0,
            "end",
            "",
            &percent_label(v),
        );
    }
    for (i, label) in labels.iter().enumerate() {
        text(&mut out, x(i), top + plot_h + 18.0, "middle", "", label);
    }
    for (s, line) in series.iter().enumerate() {
        // Consecutive points with data are joined; a period without data breaks the line.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, value) in line.values.iter().enumerate() {
            match value {
                Some(v) => runs.last_mut().map_or((), |run| run.push((x(i), y(*v)))),
                None => runs.push(Vec::new()),
            }
        }
        for run in runs.iter().filter(|r| r.len() > 1) {
            let points: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let dash = if line.dash.is_empty() {
                String::new()
            } else {
                format!(" stroke-dasharray=\"{}\"", line.dash)
            };
            let _ = write!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"3\" \
                 stroke-linejoin=\"round\"{dash}/>",
                points.join(" "),
                line.colour
            );
        }
        for (i, value) in line.values.iter().enumerate() {
            let Some(v) = value else { continue };
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4.5\" fill=\"{}\"/>",
                x(i),
                y(*v),
                line.colour
            );
            // A value label goes above the point, else below it, else (both taken by another
            // series' label) is left out: the table under the chart has every value.
            let above = y(*v) - 9.0;
            let below = y(*v) + 17.0;
            let candidates = if s % 2 == 0 {
                [above, below]
            } else {
                [below, above]
            };
            let Some(spot) = placed.get_mut(i) else {
                continue;
            };
            if let Some(label_y) = candidates
                .into_iter()
                .filter(|c| *c >= 10.0 && *c <= top + plot_h + 6.0)
                .find(|c| spot.iter().all(|p| (p - c).abs() >= 12.0))
            {
                spot.push(label_y);
                text(
                    &mut out,
                    x(i),
                    label_y,
                    "middle",
                    " font-size=\"10\"",
                    &percent_label(*v),
                );
            }
        }
    }
    legend(
        &mut out,
        height - 22.0,
        series
            .iter()
            .map(|s| (s.name, s.colour, s.dash))
            .collect::<Vec<_>>()
            .as_slice(),
        true,
    );
    out.push_str("</svg>");
    out
}

/// A legend row centred at `y`: a line (or a square) in each colour and its name.
fn legend(out: &mut String, y: f64, items: &[(&str, &str, &str)], lines: bool) {
    // The name starts after the mark; roughly 6.3 units per character at font size 12, and a
    // gap before the next mark, so each mark sits clearly with its own name.
    let offset = if lines { 28.0 } else { 19.0 };
    let widths: Vec<f64> = items
        .iter()
        .map(|(name, _, _)| offset + 6.3 * name.chars().count() as f64 + 26.0)
        .collect();
    let total: f64 = widths.iter().sum();
    let mut x = ((WIDTH - total) / 2.0).max(4.0);
    for ((name, colour, dash), width) in items.iter().zip(widths) {
        if lines {
            let dash = if dash.is_empty() {
                String::new()
            } else {
                format!(" stroke-dasharray=\"{dash}\"")
            };
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"3\"{dash}/>",
                x + 22.0,
                y - 4.0,
                y - 4.0
            );
        } else {
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"14\" fill=\"{colour}\" stroke=\"#888\" stroke-width=\"0.5\"/>",
                y - 12.0
            );
        }
        text(out, x + offset, y, "start", "", name);
        x += width;
    }
}

/// A step for about five ticks up to `max`: 1, 2, 5, 10, 20, 50, ...
fn tick_step(max: u32) -> u32 {
    let mut step = 1;
    loop {
        for factor in [1, 2, 5] {
            if max <= step * factor * 5 {
                return step * factor;
            }
        }
        step = step.saturating_mul(10);
        if step >= u32::MAX / 10 {
            return step;
        }
    }
}

/// Vertical bars, one per category, stacked from the parts (`(name, colour)`), with the total
/// above each bar.
pub fn stacked_bars(
    id: &str,
    title: &str,
    categories: &[(String, Vec<u32>)],
    parts: &[(&str, &str)],
    empty: &str,
) -> String {
    let height = 300.0;
    let (left, right, top, bottom) = (48.0, 16.0, 20.0, 70.0);
    let plot_w = WIDTH - left - right;
    let plot_h = height - top - bottom;
    let mut out = String::new();
    open(&mut out, id, title, height);
    let totals: Vec<u32> = categories.iter().map(|(_, v)| v.iter().sum()).collect();
    let max_total = totals.iter().copied().max().unwrap_or(0);
    if max_total == 0 {
        text(
            &mut out,
            WIDTH / 2.0,
            height / 2.0,
            "middle",
            " font-size=\"16\"",
            empty,
        );
        out.push_str("</svg>");
        return out;
    }
    let step = tick_step(max_total);
    let ticks = max_total.div_ceil(step);
    let scale_max = f64::from(step * ticks);
    let y = |v: f64| top + plot_h * (1.0 - v / scale_max);
    for tick in 0..=ticks {
        let v = f64::from(tick * step);
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{GRID}\" stroke-width=\"1\"/>",
            WIDTH - right,
            y(v),
            y(v)
        );
        text(
            &mut out,
            left - 6.0,
            y(v) + 4.0,
            "end",
            "",
            &format!("{v:.0}"),
        );
    }
    let slot = plot_w / categories.len().max(1) as f64;
    let bar_w = (slot * 0.55).min(90.0);
    for (i, ((label, values), total)) in categories.iter().zip(&totals).enumerate() {
        let x = left + slot * (i as f64 + 0.5) - bar_w / 2.0;
        let mut base = 0.0;
        for (value, (part, colour)) in values.iter().zip(parts) {
            if *value == 0 {
                continue;
            }
            let v = f64::from(*value);
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"{colour}\" \
                 stroke=\"#fff\" stroke-width=\"0.5\"><title>{}: {value} {}</title></rect>",
                y(base + v),
                y(base) - y(base + v),
                escape(label),
                escape(part)
            );
            base += v;
        }
        text(
            &mut out,
            x + bar_w / 2.0,
            y(f64::from(*total)) - 5.0,
            "middle",
            " font-weight=\"600\"",
            &total.to_string(),
        );
        text(
            &mut out,
            x + bar_w / 2.0,
            top + plot_h + 18.0,
            "middle",
            "",
            label,
        );
    }
    let items: Vec<(&str, &str, &str)> = parts.iter().map(|(n, c)| (*n, *c, "")).collect();
    legend(&mut out, height - 18.0, &items, false);
    out.push_str("</svg>");
    out
}

/// Horizontal bars of shares (0–100%), one per row, each with its label on the left and its
/// value and annotation on the right; a row without data shows `n/a` and no bar.
pub fn percent_bars(
    id: &str,
    title: &str,
    rows: &[(String, Option<f64>, String)],
    colour: &str,
) -> String {
    let row_h = 34.0;
    let (left, top) = (110.0, 12.0);
    let bar_max = 330.0;
    let height = top * 2.0 + row_h * rows.len().max(1) as f64 + 16.0;
    let mut out = String::new();
    open(&mut out, id, title, height);
    for (i, (label, rate, note)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        text(&mut out, left - 10.0, y + 18.0, "end", "", label);
        let _ = write!(
            out,
            "<rect x=\"{left}\" y=\"{:.1}\" width=\"{bar_max}\" height=\"20\" fill=\"#eeeeee\" stroke=\"#cccccc\" stroke-width=\"0.5\"/>",
            y + 4.0
        );
        let value = match rate {
            Some(rate) => {
                let _ = write!(
                    out,
                    "<rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"20\" fill=\"{colour}\"/>",
                    y + 4.0,
                    bar_max * rate.clamp(0.0, 1.0)
                );
                percent_label(*rate)
            }
            None => "n/a".to_owned(),
        };
        text(
            &mut out,
            left + bar_max + 10.0,
            y + 18.0,
            "start",
            " font-weight=\"600\"",
            &value,
        );
        text(&mut out, left + bar_max + 56.0, y + 18.0, "start", "", note);
    }
    // The 100% mark.
    let bottom = top + row_h * rows.len().max(1) as f64;
    let _ = write!(
        out,
        "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{top}\" y2=\"{bottom:.1}\" stroke=\"#888\" stroke-dasharray=\"2 3\"/>",
        left + bar_max,
        left + bar_max
    );
    text(
        &mut out,
        left,
        bottom + 12.0,
        "middle",
        " font-size=\"10\"",
        "0%",
    );
    text(
        &mut out,
        left + bar_max,
        bottom + 12.0,
        "middle",
        " font-size=\"10\"",
        "100%",
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(1), 1);
        assert_eq!(tick_step(5), 1);
        assert_eq!(tick_step(7), 2);
        assert_eq!(tick_step(23), 5);
        assert_eq!(tick_step(480), 100);
    }

    #[test]
    fn charts_are_accessible_and_escape_their_text() {
        let svg = line_chart(
            "t",
            "Trend <&>",
            &["2026-10".to_owned(), "2026-11".to_owned()],
            &[Series {
                name: "a \"b\"",
                colour: BLUE,
                dash: "",
                values: vec![None, Some(0.5)],
            }],
        );
        assert!(svg.starts_with("<svg role=\"img\" aria-labelledby=\"t-title\""));
        assert!(svg.contains("<title id=\"t-title\">Trend &lt;&amp;&gt;</title>"));
        assert!(svg.contains("a &quot;b&quot;"));
        assert!(svg.contains(">50%</text>"));
        // One point only: no line, a dot.
        assert!(!svg.contains("<polyline"));
        assert!(svg.contains("<circle"));

        let bars = stacked_bars(
            "b",
            "Open",
            &[("Low".to_owned(), vec![0, 0])],
            &[],
            "none <open>",
        );
        assert!(bars.contains("none &lt;open&gt;"));
        let bars = percent_bars("p", "C", &[("Low".to_owned(), None, String::new())], GREEN);
        assert!(bars.contains(">n/a</text>"));
    }
}
