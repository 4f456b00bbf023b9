//! Helpers shared by the end-to-end tests: where the real data lives, reading the reference
//! figures, and golden-file comparison (`UPDATE_GOLDEN=1` rewrites the files).

use std::collections::HashMap;
use std::path::PathBuf;

/// The `sideline` binary: `SIDELINE_BIN`, else the one cargo built beside this test (the
/// workspace's test build builds it for `sideline-cli`'s own tests).
pub fn sideline_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SIDELINE_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("this test's path: {e}"));
    let dir = exe
        .parent()
        .unwrap_or_else(|| panic!("{} has no directory", exe.display()));
    let dir = match dir.parent() {
        Some(up) if dir.ends_with("deps") => up,
        _ => dir,
    };
    let p = dir.join("sideline");
    assert!(
        p.exists(),
        "{} not built: run `cargo build -p sideline-cli` (or `make test`) first, or set SIDELINE_BIN",
        p.display()
    );
    p
}

/// The repository's `tests/data` directory (real tracking data and reference figures).
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// The repository's `tests/golden` directory.
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// Rows of a reference CSV, keyed by `key(row)`.
pub fn reference(
    file: &str,
    key: impl Fn(&HashMap<String, String>) -> String,
) -> HashMap<String, HashMap<String, String>> {
    let path = data_dir().join("reference").join(file);
    let mut rdr =
        csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    rdr.deserialize::<HashMap<String, String>>()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (key(&r), r)
        })
        .collect()
}

/// A number from a reference row.
pub fn num(row: &HashMap<String, String>, col: &str) -> f64 {
    row.get(col)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("reference has no numeric `{col}`: {row:?}"))
}

/// Compare `actual` with the golden file `name`, or rewrite it when `UPDATE_GOLDEN=1`.
pub fn golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(golden_dir()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .filter(|(a, b)| a != b)
            .take(5)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!(
            "{} differs from the engine's output (UPDATE_GOLDEN=1 to accept):\n{}",
            path.display(),
            diff.join("\n")
        );
    }
}
