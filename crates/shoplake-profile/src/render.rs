//! Rendering a [`Profile`] for people (aligned text, Markdown, one HTML page) and machines (JSON).
//!
//! The three human formats are drawn from one intermediate document (sections of key figures
//! and tables), so they always show the same figures in the same order; the HTML page adds inline
//! SVG charts (events per day and per hour, the funnel, the price histogram) and inline CSS, and
//! refers to nothing outside itself, so it opens offline. The notes (sample, sketches) come first
//! in every format.

use std::fmt::Write;

use crate::model::*;
use crate::svg::{Bar, Labels, Step, bar_chart, esc, funnel_chart};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text tables for a terminal.
    Table,
    /// Markdown.
    Md,
    /// One JSON document (the [`Profile`] structure).
    Json,
    /// One self-contained HTML page with charts.
    Html,
}

impl Profile {
    /// The profile in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => self.to_json(),
            Format::Table => text(&document(self)),
            Format::Md => markdown(&document(self)),
            Format::Html => html(self, &document(self)),
        }
    }

    /// The JSON document (pretty-printed, ends with a newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"{}\"}}", e.to_string().replace('"', "'")));
        s.push('\n');
        s
    }
}

/// A table: header, rows, and which columns are numbers (right-aligned).
struct Table {
    headers: Vec<String>,
    numeric: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: &[(&str, bool)]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.0.to_string()).collect(),
            numeric: headers.iter().map(|h| h.1).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

/// Which chart a section carries (HTML only).
enum Chart {
    Days,
    Hours,
    Funnel,
    Prices,
}

/// A line of text or a (titled) table, in reading order.
enum Block {
    Line(String),
    Table(Option<String>, Table),
}

struct Section {
    title: String,
    blocks: Vec<Block>,
    chart: Vec<Chart>,
}

impl Section {
    fn new(title: &str) -> Self {
        Section {
            title: title.to_string(),
            blocks: Vec::new(),
            chart: Vec::new(),
        }
    }

    fn line(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Line(text.into()));
    }

    fn table(&mut self, title: Option<&str>, table: Table) {
        self.blocks
            .push(Block::Table(title.map(str::to_string), table));
    }
}

struct Document {
    title: String,
    notes: Vec<String>,
    sections: Vec<Section>,
}

/// `1234567` -> `1,234,567`.
fn group_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn n(v: u64) -> String {
    group_digits(&v.to_string())
}

fn fixed(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let sign = if v < 0.0 && s.chars().any(|c| c != '0' && c != '.') {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{}", group_digits(int))
    } else {
        format!("{sign}{}.{frac}", group_digits(int))
    }
}

fn money(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| fixed(v, 2))
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| fixed(v, decimals))
}

fn pct(share: f64) -> String {
    let p = share * 100.0;
    if p > 0.0 && p < 0.01 {
        format!("{p:.4} %")
    } else {
        format!("{p:.2} %")
    }
}

fn value_name(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(missing)".to_string())
}

fn document(p: &Profile) -> Document {
    let share_of = |k: u64| {
        if p.rows.total == 0 {
            0.0
        } else {
            k as f64 / p.rows.total as f64
        }
    };
    let mut sections = Vec::new();

    // Seed table B.
    let mut s = Section::new("Rows");
    let mut t = Table::new(&[("", false), ("rows", true), ("share", true)]);
    t.row(vec![
        "total".into(),
        n(p.rows.total),
        pct(share_of(p.rows.total)),
    ]);
    t.row(vec![
        "distinct (nine source columns)".into(),
        n(p.rows.distinct),
        pct(share_of(p.rows.distinct)),
    ]);
    t.row(vec![
        "exact duplicates".into(),
        n(p.rows.duplicates),
        pct(share_of(p.rows.duplicates)),
    ]);
    if p.rows.malformed > 0
        || p.cleaning_rules
            .iter()
            .any(|r| r.id == "quarantine_malformed_lines")
    {
        t.row(vec![
            "malformed lines".into(),
            n(p.rows.malformed),
            pct(share_of(p.rows.malformed)),
        ]);
    }
    s.table(None, t);
    sections.push(s);

    // Seed tables A and C.
    let mut s = Section::new("Columns");
    let distinct_header = match p.distinct_counts {
        DistinctMethod::Exact => "distinct",
        DistinctMethod::Approximate => "distinct (approx.)",
    };
    let mut t = Table::new(&[
        ("column", false),
        ("missing", true),
        ("missing %", true),
        (distinct_header, true),
    ]);
    for c in &p.columns {
        t.row(vec![
            c.name.clone(),
            n(c.missing),
            pct(share_of(c.missing)),
            n(c.distinct),
        ]);
    }
    s.table(None, t);
    sections.push(s);

    // Seed table D.
    let mut s = Section::new("Event types");
    let mut t = Table::new(&[("event_type", false), ("rows", true), ("share", true)]);
    for e in &p.event_types {
        t.row(vec![value_name(&e.value), n(e.rows), pct(share_of(e.rows))]);
    }
    s.table(None, t);
    sections.push(s);

    // Seed table E and more.
    let mut s = Section::new("Price");
    let mut t = Table::new(&[("metric", false), ("value", true)]);
    t.row(vec!["count".into(), n(p.price.count)]);
    t.row(vec!["mean".into(), money(p.price.mean)]);
    t.row(vec!["standard deviation".into(), money(p.price.stddev)]);
    t.row(vec!["minimum".into(), money(p.price.min)]);
    for q in &p.price.quantiles {
        t.row(vec![
            format!("p{:02}", (q.p * 100.0).round() as u32),
            money(Some(q.value)),
        ]);
    }
    t.row(vec!["maximum".into(), money(p.price.max)]);
    t.row(vec![
        "rows at the maximum (price cap)".into(),
        format!("{} ({})", n(p.price.rows_at_max), pct(p.price.share_at_max)),
    ]);
    t.row(vec![
        "missing or unreadable prices".into(),
        n(p.price.unreadable),
    ]);
    s.table(None, t);
    let mut t = Table::new(&[("event_type", false), ("rows with price 0.00", true)]);
    for z in &p.price.zero_by_event_type {
        t.row(vec![value_name(&z.value), n(z.rows)]);
    }
    if p.price.zero_by_event_type.is_empty() {
        s.line("No zero prices.");
    } else {
        s.table(Some("Zero prices by event type"), t);
    }
    s.chart.push(Chart::Prices);
    sections.push(s);

    let mut s = Section::new("Time");
    s.line(format!(
        "From {} to {} ({} days).",
        p.time.first.as_deref().unwrap_or("-"),
        p.time.last.as_deref().unwrap_or("-"),
        p.time.days.len()
    ));
    if p.time.without_valid_time > 0 {
        s.line(format!(
            "{} rows have no valid event time.",
            n(p.time.without_valid_time)
        ));
    }
    s.line(format!(
        "Median day: {} rows; a day below {} rows (10 % of it) is near-empty.",
        fixed(p.time.median_day_rows, 1),
        fixed(p.time.near_empty_threshold, 1)
    ));
    s.line(if p.time.near_empty_days.is_empty() {
        "Near-empty days: none.".to_string()
    } else {
        format!("Near-empty days: {}.", p.time.near_empty_days.join(", "))
    });
    let mut t = Table::new(&[("day", false), ("rows", true), ("", false)]);
    for d in &p.time.days {
        t.row(vec![
            d.date.clone(),
            n(d.rows),
            if d.near_empty { "near-empty" } else { "" }.into(),
        ]);
    }
    s.table(Some("Rows per day"), t);
    let mut t = Table::new(&[("hour (UTC)", true), ("rows", true)]);
    for h in &p.time.hours {
        t.row(vec![format!("{:02}", h.hour), n(h.rows)]);
    }
    s.table(Some("Rows per hour of day"), t);
    s.chart.push(Chart::Days);
    s.chart.push(Chart::Hours);
    sections.push(s);

    let mut s = Section::new("Top categories and brands");
    for (title, column, list) in [
        ("Top 10 categories", "category_code", &p.top_categories),
        ("Top 10 brands", "brand", &p.top_brands),
    ] {
        let mut t = Table::new(&[(column, false), ("rows", true), ("share", true)]);
        for v in list {
            t.row(vec![value_name(&v.value), n(v.rows), pct(share_of(v.rows))]);
        }
        s.table(Some(title), t);
    }
    sections.push(s);

    let mut s = Section::new("Sessions");
    let ss = &p.sessions;
    s.line(format!("{} sessions.", n(ss.sessions)));
    let mut t = Table::new(&[
        ("", false),
        ("mean", true),
        ("p50", true),
        ("p90", true),
        ("max", true),
    ]);
    let l = &ss.length_events;
    t.row(vec![
        "events per session".into(),
        num(l.mean, 2),
        num(l.p50, 1),
        num(l.p90, 1),
        num(l.max, 0),
    ]);
    let d = &ss.duration_seconds;
    t.row(vec![
        "duration (seconds)".into(),
        num(d.mean, 1),
        num(d.p50, 1),
        num(d.p90, 1),
        num(d.max, 0),
    ]);
    s.table(None, t);
    s.line(format!(
        "Purchases: {}; with a session and a product: {}; of those without a cart of the same product in the same session: {} ({}).",
        n(ss.purchases),
        n(ss.purchases_in_sessions),
        n(ss.purchases_without_cart),
        pct(ss.share_without_cart)
    ));
    sections.push(s);

    let mut s = Section::new("Funnel");
    s.line(
        "Sessions that reached each step through all earlier ones (a view; a view and a cart; a view, a cart and a purchase), and events of each type.",
    );
    let first = p.funnel.steps.first().map_or(0, |f| f.sessions);
    let mut t = Table::new(&[
        ("step", false),
        ("sessions", true),
        ("% of view sessions", true),
        ("events", true),
    ]);
    for f in &p.funnel.steps {
        let share = if first == 0 {
            0.0
        } else {
            f.sessions as f64 / first as f64
        };
        t.row(vec![f.step.clone(), n(f.sessions), pct(share), n(f.events)]);
    }
    s.table(None, t);
    s.chart.push(Chart::Funnel);
    sections.push(s);

    let mut s = Section::new("Suggested cleaning rules");
    let mut t = Table::new(&[
        ("rule", false),
        ("action", false),
        ("rows", true),
        ("share", true),
    ]);
    for r in &p.cleaning_rules {
        t.row(vec![
            r.id.clone(),
            r.action.clone(),
            n(r.rows),
            pct(r.share),
        ]);
    }
    s.table(None, t);
    sections.push(s);

    let kind = match p.input_kind {
        InputKind::Text => "text columns",
        InputKind::Typed => "typed columns",
    };
    Document {
        title: format!("Profile of {} ({kind})", p.source),
        notes: p.notes.clone(),
        sections,
    }
}

fn text(doc: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", doc.title);
    let _ = writeln!(out, "{}", "=".repeat(doc.title.chars().count()));
    for note in &doc.notes {
        let _ = writeln!(out, "NOTE: {note}");
    }
    for s in &doc.sections {
        let _ = writeln!(
            out,
            "\n{}\n{}",
            s.title,
            "-".repeat(s.title.chars().count())
        );
        let mut after_table = false;
        for block in &s.blocks {
            match block {
                Block::Line(line) => {
                    if after_table {
                        out.push('\n');
                    }
                    let _ = writeln!(out, "{line}");
                    after_table = false;
                }
                Block::Table(title, t) => {
                    if let Some(title) = title {
                        let _ = writeln!(out, "\n{title}:");
                    }
                    text_table(&mut out, t);
                    after_table = true;
                }
            }
        }
    }
    out
}

fn text_table(out: &mut String, t: &Table) {
    let cols = t.headers.len();
    let mut width: Vec<usize> = t.headers.iter().map(|h| h.chars().count()).collect();
    for row in &t.rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate().take(cols) {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = width[i].saturating_sub(cell.chars().count());
            if t.numeric[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            }
        }
        s.trim_end().to_string()
    };
    if t.headers.iter().any(|h| !h.is_empty()) {
        let _ = writeln!(out, "{}", line(&t.headers));
        let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "{}", rule.join("  "));
    }
    for row in &t.rows {
        let _ = writeln!(out, "{}", line(row));
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn markdown(doc: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", md_cell(&doc.title));
    for note in &doc.notes {
        let _ = writeln!(out, "> **Note:** {}\n", md_cell(note));
    }
    for s in &doc.sections {
        let _ = writeln!(out, "## {}\n", s.title);
        for block in &s.blocks {
            let (title, t) = match block {
                Block::Line(line) => {
                    let _ = writeln!(out, "{}\n", md_cell(line));
                    continue;
                }
                Block::Table(title, t) => (title, t),
            };
            if let Some(title) = title {
                let _ = writeln!(out, "**{title}**\n");
            }
            let header: Vec<String> = t
                .headers
                .iter()
                .map(|h| if h.is_empty() { " ".into() } else { md_cell(h) })
                .collect();
            let _ = writeln!(out, "| {} |", header.join(" | "));
            let align: Vec<&str> = t
                .numeric
                .iter()
                .map(|&r| if r { "---:" } else { "---" })
                .collect();
            let _ = writeln!(out, "| {} |", align.join(" | "));
            for row in &t.rows {
                let cells: Vec<String> = row.iter().map(|c| md_cell(c)).collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
            out.push('\n');
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;max-width:980px;padding:0 1rem;color:#1d2330;background:#fff}\
h1{font-size:1.5rem;margin-bottom:.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d8dde6;padding-bottom:.25rem}\
h3{font-size:1rem;margin:1rem 0 .4rem}\
.note{background:#fff6df;border-left:4px solid #e0a100;padding:.5rem .75rem;margin:.5rem 0}\
.exact{background:#e9f6ec;border-left-color:#2e8b57}\
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}\
th,td{padding:.25rem .6rem;border-bottom:1px solid #e6e9ef;text-align:left;vertical-align:top}\
th{background:#f4f6f9}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#5a6372}\
svg.chart{width:100%;height:auto;background:#fbfcfd;border:1px solid #e6e9ef}\
.bar{fill:#3b6fd8}.warn{fill:#d9534f}.grid{stroke:#e6e9ef}.axisline{stroke:#8a93a3}\
.tick{font-size:11px;fill:#5a6372}.axis{font-size:12px;fill:#5a6372}.label{font-size:13px;fill:#1d2330}\
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:1rem}";

fn html_table(out: &mut String, t: &Table) {
    out.push_str("<table>");
    if t.headers.iter().any(|h| !h.is_empty()) {
        out.push_str("<thead><tr>");
        for (h, &r) in t.headers.iter().zip(&t.numeric) {
            let _ = write!(
                out,
                "<th{}>{}</th>",
                if r { " class=\"num\"" } else { "" },
                esc(h)
            );
        }
        out.push_str("</tr></thead>");
    }
    out.push_str("<tbody>");
    for row in &t.rows {
        out.push_str("<tr>");
        for (c, &r) in row.iter().zip(&t.numeric) {
            let _ = write!(
                out,
                "<td{}>{}</td>",
                if r { " class=\"num\"" } else { "" },
                esc(c)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn chart(p: &Profile, which: &Chart) -> String {
    match which {
        Chart::Days => {
            let bars: Vec<Bar> = p
                .time
                .days
                .iter()
                .map(|d| Bar {
                    label: d.date.get(5..).unwrap_or(&d.date).to_string(),
                    value: d.rows as f64,
                    highlight: d.near_empty,
                    tip: format!(
                        "{}: {} rows{}",
                        d.date,
                        n(d.rows),
                        if d.near_empty { " (near-empty)" } else { "" }
                    ),
                })
                .collect();
            bar_chart(
                "Events per day (UTC); near-empty days in red",
                &bars,
                "events",
                Labels::Centred,
            )
        }
        Chart::Hours => {
            let bars: Vec<Bar> = p
                .time
                .hours
                .iter()
                .map(|h| Bar {
                    label: format!("{:02}", h.hour),
                    value: h.rows as f64,
                    highlight: false,
                    tip: format!("{:02}:00-{:02}:59: {} rows", h.hour, h.hour, n(h.rows)),
                })
                .collect();
            bar_chart(
                "Events per hour of day (UTC)",
                &bars,
                "events",
                Labels::Centred,
            )
        }
        Chart::Funnel => {
            let steps: Vec<Step> = p
                .funnel
                .steps
                .iter()
                .map(|s| Step {
                    label: s.step.clone(),
                    value: s.sessions,
                    shown: n(s.sessions),
                })
                .collect();
            funnel_chart(
                "Funnel in sessions: with a view; with a view and a cart; with a view, a cart and a purchase",
                &steps,
            )
        }
        Chart::Prices => {
            let bars: Vec<Bar> = p
                .price
                .histogram
                .iter()
                .map(|b| Bar {
                    label: fixed(b.from, 0),
                    value: b.rows as f64,
                    highlight: false,
                    tip: format!(
                        "{} to {}: {} rows",
                        fixed(b.from, 2),
                        fixed(b.to, 2),
                        n(b.rows)
                    ),
                })
                .collect();
            bar_chart(
                "Price histogram (equal-width bins; each label is a bin's lower bound)",
                &bars,
                "rows",
                Labels::LeftEdge,
            )
        }
    }
}

fn html(p: &Profile, doc: &Document) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>\n<h1>{}</h1>\n",
        esc(&doc.title),
        esc(&doc.title)
    );
    for note in &doc.notes {
        let class = if p.exact && !note.starts_with("ESTIMATES") {
            "note exact"
        } else {
            "note"
        };
        let _ = writeln!(out, "<p class=\"{class}\">{}</p>", esc(note));
    }
    for s in &doc.sections {
        let _ = writeln!(out, "<section><h2>{}</h2>", esc(&s.title));
        for c in &s.chart {
            out.push_str(&chart(p, c));
            out.push('\n');
        }
        // Consecutive tables sit side by side when the page is wide enough.
        let mut i = 0;
        while i < s.blocks.len() {
            if let Block::Line(line) = &s.blocks[i] {
                let _ = writeln!(out, "<p>{}</p>", esc(line));
                i += 1;
                continue;
            }
            let run = s.blocks[i..]
                .iter()
                .take_while(|b| matches!(b, Block::Table(..)))
                .count();
            if run > 1 {
                out.push_str("<div class=\"grid2\">");
            }
            for block in &s.blocks[i..i + run] {
                if let Block::Table(title, t) = block {
                    out.push_str("<div>");
                    if let Some(title) = title {
                        let _ = write!(out, "<h3>{}</h3>", esc(title));
                    }
                    html_table(&mut out, t);
                    out.push_str("</div>");
                }
            }
            if run > 1 {
                out.push_str("</div>");
            }
            out.push('\n');
            i += run;
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(n(1_531_767), "1,531,767");
        assert_eq!(n(148), "148");
        assert_eq!(fixed(2574.07, 2), "2,574.07");
        assert_eq!(fixed(-1234.5, 1), "-1,234.5");
        assert_eq!(fixed(-0.001, 2), "0.00");
        assert_eq!(pct(0.5), "50.00 %");
        assert_eq!(pct(0.000_01), "0.0010 %");
    }
}
