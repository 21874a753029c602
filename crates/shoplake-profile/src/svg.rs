//! Inline SVG charts for the HTML page, written as plain strings.
//!
//! Why by hand: the page must open offline with no script or font to fetch, and the charts are
//! simple (vertical bars, a horizontal funnel); a charting dependency would add weight for no
//! gain. Every text is escaped; no element refers to anything outside the page (inline SVG in
//! HTML needs no namespace declaration).

use std::fmt::Write;

/// One bar.
pub struct Bar {
    /// Axis label (may be thinned out when bars are many).
    pub label: String,
    /// Height.
    pub value: f64,
    /// Drawn in the warning colour.
    pub highlight: bool,
    /// Tooltip.
    pub tip: String,
}

/// Escapes text for HTML and SVG.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A round step (1, 2 or 5 times a power of ten) for about `ticks` steps up to `max`.
pub fn nice_step(max: f64, ticks: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let raw = max / ticks;
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Short axis number: 1200 -> 1.2k, 3000000 -> 3M.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", trim(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Where the x labels sit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// Under the middle of each bar (categories: days, hours).
    Centred,
    /// At the left edge of each bar (bins: the label is the bin's lower bound).
    LeftEdge,
}

/// A vertical bar chart. Highlighted bars are drawn in the warning colour with a marker above
/// them, so that even an (almost) empty one stands out.
pub fn bar_chart(caption: &str, bars: &[Bar], y_title: &str, labels: Labels) -> String {
    let (w, h) = (760.0, 260.0);
    let (left, right, top, bottom) = (64.0, 12.0, 14.0, 46.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let step = nice_step(max, 4.0);
    let top_value = if max > 0.0 {
        (max / step).ceil() * step
    } else {
        1.0
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure><svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}">"#,
        esc(caption)
    );
    // Grid and y axis.
    let mut tick = 0.0;
    while tick <= top_value + step / 2.0 {
        let y = top + plot_h - tick / top_value * plot_h;
        let _ = write!(
            s,
            r#"<line class="grid" x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            w - right,
            left - 6.0,
            y + 4.0,
            short(tick)
        );
        tick += step;
    }
    let _ = write!(
        s,
        r#"<text class="axis" x="12" y="{:.1}" transform="rotate(-90 12 {:.1})" text-anchor="middle">{}</text>"#,
        top + plot_h / 2.0,
        top + plot_h / 2.0,
        esc(y_title)
    );
    let n = bars.len().max(1) as f64;
    let slot = plot_w / n;
    let gap = (slot * 0.15).min(4.0);
    let every = (bars.len() as f64 / 16.0).ceil().max(1.0) as usize;
    for (i, bar) in bars.iter().enumerate() {
        let bh = if top_value > 0.0 {
            bar.value.max(0.0) / top_value * plot_h
        } else {
            0.0
        };
        let bh = if bar.highlight { bh.max(2.0) } else { bh };
        let x = left + slot * i as f64 + gap / 2.0;
        let y = top + plot_h - bh;
        let class = if bar.highlight { "bar warn" } else { "bar" };
        if bar.highlight {
            let cx = x + (slot - gap) / 2.0;
            let _ = write!(
                s,
                r#"<path class="warn" d="M{:.1} {:.1} l-5 -8 h10 z"><title>{}</title></path>"#,
                cx,
                y - 3.0,
                esc(&bar.tip)
            );
        }
        let _ = write!(
            s,
            r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}"><title>{}</title></rect>"#,
            (slot - gap).max(0.5),
            esc(&bar.tip)
        );
        if i % every == 0 {
            let label_x = match labels {
                Labels::Centred => x + (slot - gap) / 2.0,
                Labels::LeftEdge => x - gap / 2.0,
            };
            let _ = write!(
                s,
                r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                label_x,
                top + plot_h + 16.0,
                esc(&bar.label)
            );
        }
    }
    let _ = write!(
        s,
        r#"<line class="axisline" x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
        top + plot_h,
        w - right,
        top + plot_h
    );
    let _ = write!(
        s,
        "</svg><figcaption>{}</figcaption></figure>",
        esc(caption)
    );
    s
}

/// One step of a funnel: its name, its count and how to print the count.
pub struct Step {
    /// Step name.
    pub label: String,
    /// Count.
    pub value: u64,
    /// The count as printed (e.g. with thousands separators).
    pub shown: String,
}

/// A horizontal funnel: one bar per step, widths relative to the first step.
pub fn funnel_chart(caption: &str, steps: &[Step]) -> String {
    let (w, row) = (760.0, 44.0);
    let h = row * steps.len().max(1) as f64 + 16.0;
    let (left, right) = (110.0, 190.0);
    let plot_w = w - left - right;
    let first = steps.first().map_or(0, |s| s.value);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure><svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}">"#,
        esc(caption)
    );
    for (i, step) in steps.iter().enumerate() {
        let (label, value) = (&step.label, step.value);
        let y = 8.0 + row * i as f64;
        let frac = if first > 0 {
            value as f64 / first as f64
        } else {
            0.0
        };
        let bw = (frac * plot_w).max(1.0);
        let pct = if first > 0 {
            format!("{:.2} % of the first step", 100.0 * frac)
        } else {
            "-".into()
        };
        let _ = write!(
            s,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect class="bar" x="{left}" y="{y:.1}" width="{bw:.1}" height="{:.1}"><title>{}: {}</title></rect><text class="tick" x="{:.1}" y="{:.1}">{} ({})</text>"#,
            left - 8.0,
            y + row / 2.0 + 4.0,
            esc(label),
            row - 12.0,
            esc(label),
            esc(&step.shown),
            left + bw + 6.0,
            y + row / 2.0 + 4.0,
            esc(&step.shown),
            esc(&pct)
        );
    }
    let _ = write!(
        s,
        "</svg><figcaption>{}</figcaption></figure>",
        esc(caption)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_rounds() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(nice_step(1000.0, 4.0), 500.0);
        assert_eq!(nice_step(7.0, 4.0), 2.0);
        assert_eq!(short(1500.0), "1.5k");
        assert_eq!(short(2_000_000.0), "2M");
        assert_eq!(short(3.0), "3");
    }

    #[test]
    fn charts_are_self_contained() {
        let bars = vec![
            Bar {
                label: "a".into(),
                value: 3.0,
                highlight: false,
                tip: "a: 3".into(),
            },
            Bar {
                label: "<b>".into(),
                value: 0.0,
                highlight: true,
                tip: "b".into(),
            },
        ];
        let svg = bar_chart("rows", &bars, "rows", Labels::Centred);
        assert!(svg.starts_with("<figure><svg"));
        assert!(svg.contains("&lt;b&gt;"));
        assert!(!svg.contains("http"));
        let step = |label: &str, value: u64| Step {
            label: label.into(),
            value,
            shown: value.to_string(),
        };
        let f = funnel_chart("funnel", &[step("view", 10), step("cart", 4)]);
        assert!(f.contains("40.00 %"));
    }
}
