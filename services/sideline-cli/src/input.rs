//! Opening input files: gzip-transparent, with a progress bar on stderr sized by the bytes on
//! disk (drawn only when stderr is a terminal).

use std::fs::File;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar over the total size of `paths`.
pub fn progress(paths: &[PathBuf], what: &str) -> ProgressBar {
    let total: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let pb = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_string());
    pb
}

/// Open `path` for reading through `pb`, inflating gzip.
pub fn open(path: &Path, pb: &ProgressBar) -> Result<Box<dyn BufRead>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    sideline_import::open::maybe_gzip(pb.wrap_read(f))
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Read a whole (possibly gzipped) text file.
pub fn read_text(path: &Path) -> Result<String> {
    let mut s = String::new();
    open(path, &ProgressBar::hidden())?
        .read_to_string(&mut s)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    Ok(s)
}

/// The parameter set in a TOML file (any subset of keys; the rest default), or the default
/// set without one.
pub fn params_file(path: Option<&Path>) -> Result<sideline_engine::Params> {
    match path {
        Some(p) => sideline_engine::Params::from_toml(&read_text(p)?)
            .with_context(|| format!("parameter set {}", p.display())),
        None => Ok(sideline_engine::Params::default()),
    }
}

/// True for an archive given as an object-store URL (`s3://bucket/prefix`) rather than a
/// directory.
pub fn is_object_store(archive: &Path) -> bool {
    archive.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// Columns that are names, never numbers (a player id may be "7").
const TEXT_COLUMNS: [&str; 6] = ["team", "player", "session", "date", "week", "name"];

/// One table row as a JSON object: each cell by [`json_cell`], except the name columns
/// (team, player, session, date, week), which stay text.
pub fn json_row(columns: &[impl AsRef<str>], cells: &[impl AsRef<str>]) -> serde_json::Value {
    serde_json::Value::Object(
        columns
            .iter()
            .zip(cells)
            .map(|(c, v)| {
                let (c, v) = (c.as_ref(), v.as_ref());
                let value = if TEXT_COLUMNS.contains(&c) {
                    serde_json::Value::String(v.to_string())
                } else {
                    json_cell(v)
                };
                (c.to_string(), value)
            })
            .collect(),
    )
}

/// A formatted table cell as JSON: a number when it reads as one, null when empty, else text.
pub fn json_cell(cell: &str) -> serde_json::Value {
    let t = cell.trim();
    if t.is_empty() {
        return serde_json::Value::Null;
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => serde_json::json!(v),
        _ => serde_json::Value::String(cell.to_string()),
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn cells_become_numbers_nulls_or_text_and_urls_are_object_stores() {
        assert_eq!(json_cell("12.5"), serde_json::json!(12.5));
        assert_eq!(json_cell(""), serde_json::Value::Null);
        assert_eq!(json_cell("home-07"), serde_json::json!("home-07"));
        assert_eq!(json_cell("NaN"), serde_json::json!("NaN"));
        assert_eq!(
            json_row(&["player", "hsr_m", "note"], &["7", "812.5", ""]),
            serde_json::json!({"player": "7", "hsr_m": 812.5, "note": null})
        );
        assert!(is_object_store(Path::new("s3://club/archive")));
        assert!(!is_object_store(Path::new("/var/lib/sideline/archive")));
    }
}
