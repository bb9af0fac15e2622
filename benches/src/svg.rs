//! Grouped horizontal bar charts as standalone SVG, for `summarize --svg-dir`.
//!
//! Why not `plotters`: its text layout needs its `ttf` feature, which links
//! fontconfig and freetype through font-kit, a system dependency every fresh
//! CI machine would have to install just so `cargo clippy --workspace`
//! compiles this package. An SVG viewer lays out text itself, so a chart here
//! is a few rectangles and `<text>` elements.

use std::fmt::Write as _;

/// One chart: for each group (a configuration), one bar per series (a server).
pub struct BarChart<'a> {
    /// Chart title, shown at the top.
    pub title: &'a str,
    /// Unit of the values, shown after each value label.
    pub unit: &'a str,
    /// Note under the title, e.g. "higher is better".
    pub note: &'a str,
    /// Series names (servers), one colour each.
    pub series: &'a [String],
    /// (group name, value per series; `None` when not measured).
    pub groups: Vec<(String, Vec<Option<f64>>)>,
}

const PALETTE: [&str; 8] =
    ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
const BAR_H: f64 = 16.0;
const GAP: f64 = 14.0;
const LEFT: f64 = 190.0;
const WIDTH: f64 = 760.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn label(v: f64, unit: &str) -> String {
    let number = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{number} {unit}")
}

impl BarChart<'_> {
    /// The chart as an SVG document. Each group's bars share one scale (the
    /// largest value of that group), so configurations of very different
    /// magnitude stay readable; values are printed on the bars.
    pub fn render(&self) -> String {
        let per_group = self.series.len() as f64 * BAR_H + GAP + 18.0;
        let legend_h = 24.0;
        let height = 64.0 + legend_h + per_group * self.groups.len() as f64;
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            out,
            r#"<text x="10" y="22" font-size="16" font-weight="bold">{}</text>"#,
            escape(self.title)
        );
        let _ = writeln!(out, r##"<text x="10" y="40" fill="#555">{}</text>"##, escape(self.note));
        let mut x = 10.0;
        for (i, name) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let _ = writeln!(out, r#"<rect x="{x}" y="50" width="12" height="12" fill="{colour}"/>"#);
            let _ = writeln!(out, r#"<text x="{}" y="60">{}</text>"#, x + 16.0, escape(name));
            x += 30.0 + 7.0 * name.len() as f64;
        }
        let mut y = 64.0 + legend_h;
        for (group, values) in &self.groups {
            let _ =
                writeln!(out, r#"<text x="10" y="{}" font-weight="bold">{}</text>"#, y + 12.0, escape(group));
            y += 18.0;
            let max = values.iter().flatten().cloned().fold(0.0_f64, f64::max);
            for (i, value) in values.iter().enumerate() {
                let colour = PALETTE[i % PALETTE.len()];
                let _ = writeln!(
                    out,
                    r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                    LEFT - 6.0,
                    y + 12.0,
                    escape(&self.series[i])
                );
                match value {
                    Some(v) if max > 0.0 => {
                        let w = (v / max * (WIDTH - LEFT - 110.0)).max(1.0);
                        let _ = writeln!(
                            out,
                            r#"<rect x="{LEFT}" y="{y}" width="{w:.1}" height="{}" fill="{colour}"/>"#,
                            BAR_H - 3.0
                        );
                        let _ = writeln!(
                            out,
                            r#"<text x="{:.1}" y="{}">{}</text>"#,
                            LEFT + w + 4.0,
                            y + 11.0,
                            escape(&label(*v, self.unit))
                        );
                    }
                    _ => {
                        let _ = writeln!(
                            out,
                            r##"<text x="{LEFT}" y="{}" fill="#999">not measured</text>"##,
                            y + 11.0
                        );
                    }
                }
                y += BAR_H;
            }
            y += GAP;
        }
        out.push_str("</svg>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_bar_per_server_and_group_with_escaped_text() {
        let series = vec!["corio".to_string(), "a<b".to_string()];
        let chart = BarChart {
            title: "round trips/s",
            unit: "rt/s",
            note: "higher is better",
            series: &series,
            groups: vec![
                ("100 conns".into(), vec![Some(100.0), Some(50.0)]),
                ("10 conns".into(), vec![None, Some(1.0)]),
            ],
        };
        let svg = chart.render();
        assert_eq!(svg.matches("<rect x=\"190\"").count(), 3, "three measured bars");
        assert!(svg.contains("a&lt;b"));
        assert!(svg.contains("not measured"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
