//! Figures and how they are shown: latency percentiles from an HDR histogram,
//! human units, aligned text tables, Markdown and JSON.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;

/// A latency histogram in nanoseconds, 1 ns to 60 s at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds are valid")
}

/// Records one latency; anything beyond the histogram's range counts as its maximum.
pub fn record_latency(histogram: &mut Histogram<u64>, latency: Duration) {
    histogram.saturating_record(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1));
}

/// The percentiles a latency run is reported by.
#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    pub samples: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

impl Latency {
    /// The percentiles of `histogram` (nanoseconds); None when it recorded nothing.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Option<Latency> {
        if histogram.is_empty() {
            return None;
        }
        let at = |quantile: f64| Duration::from_nanos(histogram.value_at_quantile(quantile));
        Some(Latency {
            samples: histogram.len(),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: Duration::from_nanos(histogram.max()),
        })
    }
}

/// What a figure counts, and so which direction is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Events per second, e.g. "calls/s": higher is better.
    Rate(&'static str),
    /// A latency: lower is better.
    Latency,
    /// A size on the wire: lower is better.
    Bytes,
    /// Resident memory, in bytes: lower is better.
    Memory,
    /// A number of events, e.g. "failed calls": lower is better.
    Count(&'static str),
}

impl Unit {
    fn higher_is_better(self) -> bool {
        matches!(self, Unit::Rate(_))
    }

    /// The unit's name in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Rate(name) | Unit::Count(name) => name,
            Unit::Latency => "seconds",
            Unit::Bytes | Unit::Memory => "bytes",
        }
    }

    /// `value` in this unit, for people.
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Rate(name) => format!("{} {name}", format_count(value)),
            Unit::Latency => format_duration(Duration::from_secs_f64(value.max(0.0))),
            Unit::Bytes => format!("{value:.0} B"),
            Unit::Memory => format!("{:.1} MiB", value / (1024.0 * 1024.0)),
            Unit::Count(name) => format!("{value:.0} {name}"),
        }
    }
}

/// One measured figure of one workload against one server.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub workload: &'static str,
    pub metric: &'static str,
    pub unit: Unit,
    /// In the unit's base: per second, seconds, or bytes.
    pub value: f64,
}

impl Figure {
    pub fn new(workload: &'static str, metric: &'static str, unit: Unit, value: f64) -> Figure {
        Figure {
            workload,
            metric,
            unit,
            value,
        }
    }

    /// The latency percentiles of `latency` as figures.
    pub fn latencies(workload: &'static str, latency: &Latency) -> Vec<Figure> {
        [
            ("p50", latency.p50),
            ("p99", latency.p99),
            ("p99.9", latency.p999),
        ]
        .into_iter()
        .map(|(metric, value)| Figure::new(workload, metric, Unit::Latency, value.as_secs_f64()))
        .collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({ "workload": self.workload, "metric": self.metric, "unit": self.unit.name(), "value": self.value })
    }
}

/// How many times better `ours` is than `theirs` (above 1: ours is better),
/// whichever direction the unit counts as better.
pub fn advantage(unit: Unit, ours: f64, theirs: f64) -> Option<f64> {
    let (num, den) = if unit.higher_is_better() {
        (ours, theirs)
    } else {
        (theirs, ours)
    };
    (num.is_finite() && den.is_finite() && den > 0.0).then(|| num / den)
}

/// A count with a metric suffix: 950, 12.3k, 1.25M.
fn format_count(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        format!("{:.2}G", value / 1e9)
    } else if magnitude >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if magnitude >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else if magnitude >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// A duration in the unit that suits it: 850 ns, 85.2 µs, 1.23 ms, 2.50 s.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos < 1_000 {
        format!("{nanos} ns")
    } else if nanos < 1_000_000 {
        format!("{:.1} µs", nanos as f64 / 1e3)
    } else if nanos < 1_000_000_000 {
        format!("{:.2} ms", nanos as f64 / 1e6)
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

/// A ratio for a table: "12.3x".
pub fn format_ratio(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) if r >= 100.0 => format!("{r:.0}x"),
        Some(r) if r >= 10.0 => format!("{r:.1}x"),
        Some(r) => format!("{r:.2}x"),
        None => "n/a".to_owned(),
    }
}

/// A table with a header row, rendered as aligned text or as Markdown.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push<S: Into<String>>(&mut self, row: impl IntoIterator<Item = S>) {
        self.rows.push(row.into_iter().map(Into::into).collect());
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
        }
        widths
    }

    /// Columns padded to line up; the first column left-aligned, the others right-aligned.
    pub fn to_text(&self) -> String {
        let widths = self.widths();
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                if i > 0 {
                    out.push_str("  ");
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    out.push_str(&" ".repeat(pad));
                }
            }
            out.trim_end().to_owned() + "\n"
        };
        let mut out = line(&self.header);
        out.push_str(&line(
            &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
        ));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    /// A GitHub-flavoured Markdown table (numbers right-aligned).
    pub fn to_markdown(&self) -> String {
        let escape = |cell: &String| cell.replace('|', "\\|");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| {} |",
            self.header
                .iter()
                .map(escape)
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let align: Vec<&str> = (0..self.header.len())
            .map(|i| if i == 0 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(out, "|{}|", align.join("|"));
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} |",
                row.iter().map(escape).collect::<Vec<_>>().join(" | ")
            );
        }
        out
    }
}

/// The figures of one server as a two-column table.
pub fn figures_table(figures: &[Figure]) -> Table {
    let mut table = Table::new(["workload", "metric", "value"]);
    for figure in figures {
        table.push([
            figure.workload.to_owned(),
            figure.metric.to_owned(),
            figure.unit.format(figure.value),
        ]);
    }
    table
}

/// `count` events over `elapsed`, per second.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Parses a duration flag: `500ms`, `10s`, `2m`, or bare seconds (`10`, `0.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 10s or 2m"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s or m)"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("ten")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("5h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut histogram = latency_histogram();
        for micros in 1..=1000u64 {
            record_latency(&mut histogram, Duration::from_micros(micros));
        }
        let latency = Latency::from_histogram(&histogram).unwrap();
        assert_eq!(latency.samples, 1000);
        // Three significant digits: within 0.1%.
        let near = |d: Duration, micros: f64| {
            (d.as_secs_f64() * 1e6 - micros).abs() <= micros * 0.001 + 0.001
        };
        assert!(near(latency.p50, 500.0), "{:?}", latency.p50);
        assert!(near(latency.p99, 990.0), "{:?}", latency.p99);
        assert!(near(latency.p999, 999.0), "{:?}", latency.p999);
        assert!(near(latency.max, 1000.0), "{:?}", latency.max);
    }

    #[test]
    fn an_empty_histogram_has_no_percentiles() {
        assert_eq!(Latency::from_histogram(&latency_histogram()), None);
    }

    #[test]
    fn out_of_range_latencies_are_kept_not_dropped() {
        let mut histogram = latency_histogram();
        record_latency(&mut histogram, Duration::ZERO);
        record_latency(&mut histogram, Duration::from_secs(3600));
        assert_eq!(histogram.len(), 2);
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(format_duration(Duration::from_nanos(850)), "850 ns");
        assert_eq!(format_duration(Duration::from_nanos(85_240)), "85.2 µs");
        assert_eq!(format_duration(Duration::from_micros(1_234)), "1.23 ms");
        assert_eq!(format_duration(Duration::from_millis(2_500)), "2.50 s");
    }

    #[test]
    fn counts_get_metric_suffixes() {
        assert_eq!(format_count(950.0), "950");
        assert_eq!(format_count(12_345.0), "12.3k");
        assert_eq!(format_count(1_250_000.0), "1.25M");
        assert_eq!(format_count(2.5), "2.5");
        assert_eq!(Unit::Rate("calls/s").format(94_000.0), "94.0k calls/s");
        assert_eq!(Unit::Memory.format(10.0 * 1024.0 * 1024.0), "10.0 MiB");
        assert_eq!(Unit::Count("failed calls").format(12.0), "12 failed calls");
    }

    #[test]
    fn advantage_follows_the_better_direction() {
        assert_eq!(advantage(Unit::Rate("calls/s"), 1000.0, 100.0), Some(10.0));
        assert_eq!(advantage(Unit::Latency, 0.0001, 0.002), Some(20.0));
        assert_eq!(advantage(Unit::Rate("calls/s"), 1000.0, 0.0), None);
        assert_eq!(format_ratio(Some(123.4)), "123x");
        assert_eq!(format_ratio(Some(12.34)), "12.3x");
        assert_eq!(format_ratio(Some(0.5)), "0.50x");
        assert_eq!(format_ratio(None), "n/a");
    }

    #[test]
    fn tables_render_as_text_and_markdown() {
        let mut table = Table::new(["workload", "rate"]);
        table.push(["unary", "9.5k calls/s"]);
        table.push(["bidi|x", "1.00M echoes/s"]);
        assert_eq!(
            table.to_text(),
            "workload            rate\n--------  --------------\nunary       9.5k calls/s\nbidi|x    1.00M echoes/s\n"
        );
        assert_eq!(
            table.to_markdown(),
            "| workload | rate |\n|---|---:|\n| unary | 9.5k calls/s |\n| bidi\\|x | 1.00M echoes/s |\n"
        );
    }

    #[test]
    fn figures_serialize_with_their_unit() {
        let figure = Figure::new("unary", "throughput", Unit::Rate("calls/s"), 5.0);
        assert_eq!(
            figure.to_json(),
            json!({"workload": "unary", "metric": "throughput", "unit": "calls/s", "value": 5.0})
        );
    }
}
