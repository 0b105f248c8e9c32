//! The benchmark's output: a Markdown table (printed, and written for the README), the JSON
//! of every figure, and an SVG chart of each scenario's throughput ratio to S0 against its
//! target (plotters).

use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::load::Stats;

/// One measured scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub key: &'static str,
    pub label: &'static str,
    /// The baseline it is compared with (S0 of the same server process).
    pub baseline: &'static str,
    pub stats: Stats,
    /// Throughput ÷ the baseline's throughput.
    pub ratio: f64,
    /// The ratio it must reach, if it has a target.
    pub target: Option<f64>,
}

impl Row {
    pub fn met(&self) -> Option<bool> {
        self.target.map(|t| self.ratio >= t)
    }
}

/// Memory figures (S7).
#[derive(Clone, Debug, Serialize)]
pub struct Memory {
    /// Largest resident memory during the 64-connection scenarios, bytes.
    pub max_rss_under_load: u64,
    pub idle_subscriptions: usize,
    pub idle_connections: usize,
    pub rss_before_idle: u64,
    pub rss_with_idle: u64,
    /// (after − before) ÷ subscriptions, bytes.
    pub per_idle_subscription: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub machine: String,
    pub store: String,
    pub clients: usize,
    pub seconds: u64,
    pub pinned: bool,
    /// Services of this machine moved onto the load generator's core for the run.
    pub services_pinned: Vec<&'static str>,
    pub generation: Vec<(String, f64)>,
    pub rows: Vec<Row>,
    pub memory: Option<Memory>,
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Scenarios whose target is a share of another scenario's rate in the same run:
/// (scenario, the other, the least share).
const RELATIVE_TARGETS: [(&str, &str, f64); 3] =
    [("S9", "S6", 0.8), ("S10", "S6", 0.8), ("S11", "S6", 0.8)];

pub fn markdown(r: &Report) -> String {
    let mut out = format!(
        "Machine: {} · store: {} · {} connections · {} s per scenario{}{}\n\n\
         | scenario | what | req/s (orders/s for S6) | p50 ms | p99 ms | server CPU ms | ratio to S0 | target | met |\n\
         |---|---|---:|---:|---:|---:|---:|---:|:-:|\n",
        r.machine,
        r.store,
        r.clients,
        r.seconds,
        if r.pinned {
            " · server and load generator pinned to separate cores"
        } else {
            ""
        },
        match r.services_pinned.as_slice() {
            [] => String::new(),
            what => format!(" ({} with the load generator)", what.join(" and ")),
        }
    );
    for row in &r.rows {
        let s = &row.stats;
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} |\n",
            row.key,
            row.label,
            s.per_second,
            s.p50_ms,
            s.p99_ms,
            s.server_cpu_ms
                .map(|ms| format!("{ms:.3}"))
                .unwrap_or_default(),
            if row.key == "S0" {
                "1".to_owned()
            } else if row.ratio >= 1.0 {
                format!("{:.2}", row.ratio)
            } else {
                format!("1/{:.1}", 1.0 / row.ratio.max(1e-9))
            },
            row.target
                .map(|t| format!("≥ 1/{:.0}", 1.0 / t))
                .unwrap_or_default(),
            match row.met() {
                Some(true) => "✅",
                Some(false) => "❌",
                None => "",
            }
        ));
    }
    // Targets given against another scenario of the same run rather than S0.
    for (key, of, target) in RELATIVE_TARGETS {
        let stats = |k: &str| r.rows.iter().find(|row| row.key == k).map(|row| &row.stats);
        if let (Some(a), Some(b)) = (stats(key), stats(of)) {
            let ratio = a.per_second / b.per_second.max(1e-9);
            // The same share in the server's work: its CPU per order of `of` over `key`'s.
            let work = match (a.server_cpu_ms, b.server_cpu_ms) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.2}", b / a),
                _ => String::new(),
            };
            out.push_str(&format!(
                "| {key} ÷ {of} | {key}'s rate over {of}'s (server CPU: {of}'s per order over {key}'s) | | | | {work} | {ratio:.2} | ≥ {target} × {of} | {} |\n",
                if ratio >= target { "✅" } else { "❌" }
            ));
        }
    }
    if let Some(m) = &r.memory {
        out.push_str(&format!(
            "| S7 | resident memory at {} connections under load | | | | | | ≤ 200 MiB: {:.0} MiB | {} |\n",
            r.clients,
            mib(m.max_rss_under_load),
            if mib(m.max_rss_under_load) <= 200.0 { "✅" } else { "❌" }
        ));
        out.push_str(&format!(
            "| S7 | {} idle subscriptions on {} connections: {:.0} → {:.0} MiB | | | | | | ≤ 10 KiB each: {:.1} KiB | {} |\n",
            m.idle_subscriptions,
            m.idle_connections,
            mib(m.rss_before_idle),
            mib(m.rss_with_idle),
            m.per_idle_subscription / 1024.0,
            if m.per_idle_subscription <= 10.0 * 1024.0 { "✅" } else { "❌" }
        ));
    }
    if !r.generation.is_empty() {
        out.push_str("\nData generation: ");
        let parts: Vec<String> = r
            .generation
            .iter()
            .map(|(what, s)| format!("{what} {s:.1} s"))
            .collect();
        out.push_str(&parts.join(", "));
        out.push('\n');
    }
    out
}

/// Horizontal bars: each scenario's throughput ratio to S0 on a log scale, its target as a
/// red tick.
pub fn chart(r: &Report, path: &Path) -> anyhow::Result<()> {
    let rows: Vec<&Row> = r
        .rows
        .iter()
        .filter(|row| !row.key.starts_with("S0"))
        .collect();
    let n = rows.len().max(1) as f64;
    let height = 60 + 34 * rows.len() as u32;
    let root = SVGBackend::new(path, (860, height.max(200))).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let title = format!(
        "Throughput relative to {{ __typename }} (S0) — {}, {} connections",
        r.store, r.clients
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(230)
        .build_cartesian_2d((0.005f64..1.5).log_scale(), 0f64..n)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let labels: Vec<String> = rows
        .iter()
        .map(|row| format!("{} {}", row.key, row.label))
        .collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows.len() * 2 + 1)
        .y_label_formatter(&|y| {
            let i = y.floor() as usize;
            if (y - y.floor() - 0.5).abs() < 0.01 && i < labels.len() {
                labels[labels.len() - 1 - i].chars().take(34).collect()
            } else {
                String::new()
            }
        })
        .x_desc("ratio to S0 (log scale; red: target)")
        .x_label_formatter(&|x| {
            if *x >= 1.0 {
                format!("{x:.0}")
            } else {
                format!("1/{:.0}", 1.0 / x)
            }
        })
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (i, row) in rows.iter().enumerate() {
        let y = n - 1.0 - i as f64;
        let color = match row.met() {
            Some(false) => RGBColor(0xd9, 0x6c, 0x3f),
            _ => RGBColor(0x3f, 0x7f, 0xbf),
        };
        chart
            .draw_series([Rectangle::new(
                [(0.005, y + 0.2), (row.ratio.clamp(0.005, 1.5), y + 0.8)],
                color.filled(),
            )])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(t) = row.target {
            chart
                .draw_series([PathElement::new(
                    vec![(t, y + 0.1), (t, y + 0.9)],
                    RED.stroke_width(3),
                )])
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
