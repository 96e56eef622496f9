//! Bar charts as SVG drawn on the server: no script, no external files. Each chart is an image
//! with a title and a description for screen readers (`role="img"`); the page's table holds
//! the same figures.

use std::fmt::Write;

/// One kind of bar: its name in the legend, its colour and a value per group.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub values: Vec<f64>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 48.0;
/// Most axis labels under the bars; with more groups every n-th is written.
const MOST_LABELS: usize = 16;

/// Text for SVG content and attribute values.
fn escape(text: &str) -> String {
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

/// A round step for the value axis: 1, 2 or 5 times a power of ten, about a quarter of `max`.
fn step(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let rough = max / 4.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    if step < 1.0 && max >= 1.0 { 1.0 } else { step }
}

/// Numbers on the axis and in the bars' tooltips.
fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// A grouped bar chart: one group of bars per label, one bar per series. `id` must be unique
/// on the page (it names the title and description).
pub fn bars(
    id: &str,
    title: &str,
    description: &str,
    labels: &[String],
    series: &[Series],
) -> String {
    let mut svg = String::new();
    let id = escape(id);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{title}</title><desc id="{id}-desc">{description}</desc>"#,
        title = escape(title),
        description = escape(description),
    );
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0f64, f64::max);
    let step = step(max);
    let top_value = (max / step).ceil().max(1.0) * step;
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let y = |value: f64| TOP + plot_height - value / top_value * plot_height;

    // The value axis: grid lines with their values.
    let mut value = 0.0;
    while value <= top_value + step / 2.0 {
        let at = y(value);
        let _ = write!(
            svg,
            r##"<line class="grid" x1="{LEFT}" x2="{x2}" y1="{at:.1}" y2="{at:.1}" stroke="#d0d4da"/><text class="axis" x="{tx}" y="{ty:.1}" text-anchor="end">{v}</text>"##,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 6.0,
            ty = at + 4.0,
            v = number(value),
        );
        value += step;
    }

    // The legend, along the top.
    let mut legend_x = LEFT;
    for s in series {
        let _ = write!(
            svg,
            r#"<rect x="{legend_x}" y="6" width="12" height="12" fill="{colour}"/><text class="legend" x="{tx}" y="16">{name}</text>"#,
            colour = escape(s.colour),
            tx = legend_x + 16.0,
            name = escape(s.name),
        );
        legend_x += 24.0 + 7.0 * s.name.chars().count() as f64;
    }

    let groups = labels.len().max(1);
    let group_width = plot_width / groups as f64;
    let bar_width = (group_width * 0.8 / series.len().max(1) as f64).max(1.0);
    let label_every = labels.len().div_ceil(MOST_LABELS).max(1);
    for (g, label) in labels.iter().enumerate() {
        let group_x = LEFT + g as f64 * group_width + group_width * 0.1;
        for (k, s) in series.iter().enumerate() {
            let value = s.values.get(g).copied().unwrap_or(0.0);
            let top = y(value);
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{top:.1}" width="{bar_width:.1}" height="{h:.1}" fill="{colour}"><title>{label}: {name} {v}</title></rect>"#,
                x = group_x + k as f64 * bar_width,
                h = (TOP + plot_height - top).max(0.0),
                colour = escape(s.colour),
                label = escape(label),
                name = escape(s.name),
                v = number(value),
            );
        }
        if g % label_every == 0 {
            let shown: String = label.chars().take(14).collect();
            let _ = write!(
                svg,
                r#"<text class="axis" x="{x:.1}" y="{ty}" text-anchor="middle">{text}</text>"#,
                x = LEFT + (g as f64 + 0.5) * group_width,
                ty = HEIGHT - BOTTOM + 16.0,
                text = escape(&shown),
            );
        }
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" x2="{x2}" y1="{b}" y2="{b}" stroke="#6b7280"/></svg>"##,
        x2 = WIDTH - RIGHT,
        b = TOP + plot_height,
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_names_itself_and_escapes_its_labels() {
        let svg = bars(
            "new",
            "New & resolved",
            "Per department",
            &["<Billing>".to_owned(), "General".to_owned()],
            &[Series {
                name: "New",
                colour: "#2563eb",
                values: vec![3.0, 7.0],
            }],
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains("<title id=\"new-title\">New &amp; resolved</title>"));
        assert!(svg.contains("&lt;Billing&gt;: New 3"));
        assert!(!svg.contains("<Billing>"));
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(step(0.0), 1.0);
        assert_eq!(step(7.0), 2.0);
        assert_eq!(step(90.0), 50.0);
        assert_eq!(step(1000.0), 500.0);
        assert_eq!(step(1.0), 1.0);
    }
}
