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
