//! Headless Chromium (Debian's package, installed by `scripts/setup.sh`) for what a person
//! sees on a page: the DOM after the page's scripts have run, and screenshots.

use std::path::Path;
use std::process::{Command, Stdio};

/// The browser's command; fails the test with the set-up instruction when there is none.
pub fn chromium() -> String {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c.into();
        }
    }
    panic!("no Chromium found: run scripts/setup.sh (it installs the Debian package)");
}

fn headless(browser: &str) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        // A page with ?stream_max takes its pushed updates, then its stream ends and virtual
        // time runs out the budget.
        "--virtual-time-budget=5000",
    ])
    .stderr(Stdio::null());
    c
}

/// The DOM of `url` after the page has run for a moment.
pub fn dom(browser: &str, url: &str) -> String {
    let out = headless(browser)
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DOM of `url` as [`dom`], in a window `width` × `height` CSS pixels (a tablet, a phone).
pub fn dom_at(browser: &str, url: &str, width: u32, height: u32) -> String {
    let out = headless(browser)
        .arg(format!("--window-size={width},{height}"))
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A screenshot of `url` (1280 × 1000) in `png`.
pub fn screenshot(browser: &str, url: &str, png: &Path) {
    let ok = headless(browser)
        .args(["--hide-scrollbars", "--window-size=1280,1000"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .status()
        .unwrap();
    assert!(ok.success() && std::fs::metadata(png).unwrap().len() > 10_000);
}
