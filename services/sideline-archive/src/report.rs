//! Reports from the archive: a post-session report (one row per player) and a player's trend
//! over weeks (one row per session, weekly sums), each as CSV and as one self-contained HTML
//! page with inline SVG charts (no scripts, no CDN: it opens offline and prints).

use std::fmt::Write as _;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type};

use crate::query::{self, QueryError};

/// A report: a title, named columns and rows of numbers or text, and a chart per report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Title.
    pub title: String,
    /// Column names (units in the names).
    pub columns: Vec<String>,
    /// Rows (text cells; numbers already formatted).
    pub rows: Vec<Vec<String>>,
    /// Charts: (title, labels, series of (name, values)).
    pub charts: Vec<Chart>,
}

/// A bar chart of one or more series over labels.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// One label per bar group.
    pub labels: Vec<String>,
    /// (series name, one value per label).
    pub series: Vec<(String, Vec<f64>)>,
}

fn esc(s: &str) -> String {
    s.replace('\'', "''")
}

fn cell(b: &RecordBatch, c: usize, r: usize) -> String {
    let col = b.column(c);
    if col.is_null(r) {
        return String::new();
    }
    match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(r).to_string(),
        _ => match arrow::compute::cast(col, &DataType::Float64) {
            Ok(f) => {
                let v = f.as_primitive::<Float64Type>().value(r);
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            }
            Err(_) => arrow::util::display::array_value_to_string(col, r).unwrap_or_default(),
        },
    }
}

async fn table(root: &Path, sql: &str) -> Result<(Vec<String>, Vec<Vec<String>>), QueryError> {
    let ctx = query::context(root).await?;
    let df = ctx.sql(sql).await?;
    let columns = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut rows = Vec::new();
    for b in df.collect().await? {
        for r in 0..b.num_rows() {
            rows.push((0..b.num_columns()).map(|c| cell(&b, c, r)).collect());
        }
    }
    Ok((columns, rows))
}

fn column(rows: &[Vec<String>], columns: &[String], name: &str) -> Vec<f64> {
    let i = columns.iter().position(|c| c == name);
    rows.iter()
        .map(|r| i.and_then(|i| r[i].parse().ok()).unwrap_or(0.0))
        .collect()
}

/// The post-session report: every player's session figures (final live totals), peaks,
/// fatigue markers and risk (highest score, seconds amber and red).
pub async fn session(root: &Path, session: &str) -> Result<Report, QueryError> {
    let s = esc(session);
    let sql = format!(
        "SELECT m.team, m.player, m.minutes AS minutes, m.distance_m, m.hsr_m, m.sprint_m, \
         m.sprints, m.hs_efforts, m.vmax85, m.vmax90, m.vmax95, m.max_speed_mps, \
         m.accelerations, m.decelerations, m.load, m.load_per_min, \
         m.w1_peak_hsr_m AS peak_1min_hsr_m, m.w1_peak_sprint_m AS peak_1min_sprint_m, \
         m.post_peak_decrement, m.last_block_hsr_change, r.max_risk, r.amber_s, r.red_s \
         FROM metrics m \
         JOIN (SELECT player, max(t) AS t, max(risk_score) AS max_risk, \
                      sum(CASE WHEN risk_band = 'amber' THEN 1 ELSE 0 END) AS amber_s, \
                      sum(CASE WHEN risk_band = 'red' THEN 1 ELSE 0 END) AS red_s \
               FROM metrics WHERE source = 'live' AND session = '{s}' GROUP BY player) r \
           ON m.player = r.player AND m.t = r.t \
         WHERE m.source = 'live' AND m.session = '{s}' ORDER BY m.team, m.player"
    );
    let (columns, rows) = table(root, &sql).await?;
    let labels: Vec<String> = rows.iter().map(|r| r[1].clone()).collect();
    let charts = vec![
        Chart {
            title: "High-speed running and sprint distance, m".into(),
            labels: labels.clone(),
            series: vec![
                ("HSR ≥ 5.5 m/s".into(), column(&rows, &columns, "hsr_m")),
                ("sprint ≥ 7 m/s".into(), column(&rows, &columns, "sprint_m")),
            ],
        },
        Chart {
            title: "Highest strain-risk attention score".into(),
            labels,
            series: vec![("score".into(), column(&rows, &columns, "max_risk"))],
        },
    ];
    Ok(Report {
        title: format!("Session {session}"),
        columns,
        rows,
        charts,
    })
}

/// A player's trend: one row per session over the last `weeks` weeks of his archive, and
/// weekly HSR and distance.
pub async fn player(root: &Path, player: &str, weeks: u32) -> Result<Report, QueryError> {
    let p = esc(player);
    let base = format!(
        "SELECT date, session, max(t) AS t, max(minutes) AS minutes, max(distance_m) AS distance_m, \
         max(hsr_m) AS hsr_m, max(sprint_m) AS sprint_m, max(sprints) AS sprints, \
         max(vmax95) AS vmax95, max(accelerations) AS accelerations, \
         max(decelerations) AS decelerations, max(load) AS load, max(risk_score) AS max_risk \
         FROM metrics WHERE source = 'live' AND player = '{p}' GROUP BY date, session"
    );
    let sql = format!(
        "SELECT date, session, minutes, distance_m, hsr_m, sprint_m, sprints, vmax95, \
         accelerations, decelerations, load, max_risk FROM ({base}) \
         WHERE t >= (SELECT max(t) FROM ({base})) - INTERVAL '{} days' ORDER BY t",
        i64::from(weeks) * 7
    );
    let (columns, rows) = table(root, &sql).await?;
    let weekly = format!(
        "SELECT CAST(date_trunc('week', t) AS DATE) AS week, sum(hsr_m) AS hsr_m, \
         sum(distance_m) AS distance_m FROM ({base}) \
         WHERE t >= (SELECT max(t) FROM ({base})) - INTERVAL '{} days' GROUP BY 1 ORDER BY 1",
        i64::from(weeks) * 7
    );
    let (wc, wr) = table(root, &weekly).await?;
    let charts = vec![
        Chart {
            title: "Weekly high-speed running, m".into(),
            labels: wr.iter().map(|r| r[0].clone()).collect(),
            series: vec![("HSR".into(), column(&wr, &wc, "hsr_m"))],
        },
        Chart {
            title: "Distance per session, m".into(),
            labels: rows.iter().map(|r| r[0].clone()).collect(),
            series: vec![("distance".into(), column(&rows, &columns, "distance_m"))],
        },
    ];
    Ok(Report {
        title: format!("{player}: the last {weeks} weeks"),
        columns,
        rows,
        charts,
    })
}

/// CSV (RFC 4180 quoting).
pub fn csv(r: &Report) -> String {
    let q = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    let line = |cells: &[String]| cells.iter().map(|c| q(c)).collect::<Vec<_>>().join(",");
    out.push_str(&line(&r.columns));
    out.push('\n');
    for row in &r.rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

fn html_esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLOURS: [&str; 3] = ["#1f6feb", "#d29922", "#8957e5"];

fn svg(c: &Chart) -> String {
    let (w, h, left, bottom) = (900.0, 260.0, 50.0, 70.0);
    let max = c
        .series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let n = c.labels.len().max(1) as f64;
    let group = (w - left - 40.0) / n;
    let bar = (group * 0.8) / c.series.len().max(1) as f64;
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        html_esc(&c.title)
    );
    let plot = h - bottom - 10.0;
    for k in 0..=4 {
        let y = 10.0 + plot * (1.0 - f64::from(k) / 4.0);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{:.*}</text>",
            left - 4.0,
            y + 4.0,
            if max < 10.0 { 1 } else { 0 },
            max * f64::from(k) / 4.0
        );
    }
    for (i, label) in c.labels.iter().enumerate() {
        let x0 = left + group * i as f64 + group * 0.1;
        for (j, (name, v)) in c.series.iter().enumerate() {
            let val = v.get(i).copied().unwrap_or(0.0).max(0.0);
            let bh = plot * val / max;
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {}: {val:.1}</title></rect>",
                x0 + bar * j as f64,
                10.0 + plot - bh,
                COLOURS[j % COLOURS.len()],
                html_esc(label),
                html_esc(name)
            );
        }
        let lx = x0 + group * 0.4;
        let ly = h - bottom + 14.0;
        let _ = write!(
            s,
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" font-size=\"11\" transform=\"rotate(45 {lx:.1} {ly:.1})\">{}</text>",
            html_esc(label)
        );
    }
    s.push_str("</svg>");
    let legend: Vec<String> = c
        .series
        .iter()
        .enumerate()
        .map(|(j, (name, _))| {
            format!(
                "<span style=\"color:{}\">■</span> {}",
                COLOURS[j % COLOURS.len()],
                html_esc(name)
            )
        })
        .collect();
    format!(
        "<figure><figcaption>{} — {}</figcaption>{s}</figure>",
        html_esc(&c.title),
        legend.join(" &nbsp; ")
    )
}

/// One self-contained HTML page.
pub fn html(r: &Report) -> String {
    let mut s = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:1.5em;color:#222}}\
         table{{border-collapse:collapse;font-variant-numeric:tabular-nums}}\
         th,td{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}}\
         .wide{{overflow-x:auto}}\
         th:nth-child(-n+2),td:nth-child(-n+2){{text-align:left}}\
         figure{{margin:1.5em 0}}figcaption{{font-weight:600;margin-bottom:.3em}}</style>\
         <h1>{t}</h1>",
        t = html_esc(&r.title)
    );
    for c in &r.charts {
        s.push_str(&svg(c));
    }
    s.push_str("<div class=\"wide\"><table><thead><tr>");
    for c in &r.columns {
        let _ = write!(s, "<th>{}</th>", html_esc(c));
    }
    s.push_str("</tr></thead><tbody>");
    for row in &r.rows {
        s.push_str("<tr>");
        for c in row {
            let _ = write!(s, "<td>{}</td>", html_esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str(
        "</tbody></table></div><p><small>Sideline report. Units are in the column names; \
                totals are each session's final live figures.</small></p></html>\n",
    );
    s
}
