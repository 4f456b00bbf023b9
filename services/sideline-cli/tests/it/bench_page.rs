//! The bench page in a real browser (headless Chromium from Debian, installed by
//! `scripts/setup.sh`): `sideline demo` (the real binary) runs a match at 60×; the page shows
//! the home team's 11 players by name (the away team in the team picker), its values change from one look to the next within 2 s, the poor-fix alert of
//! the scripted home #2 appears in the feed, and an expanded row lists the score's terms. A
//! screenshot is kept in `target/test-artefacts/bench-page.png`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sideline_testkit::brokers::free_port;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) use sideline_testkit::browser::{chromium, dom};

fn squad_rows(dom: &str) -> Vec<String> {
    // Rendered rows only (the page's script contains the template too).
    dom.split("<tr class=\"player\" data-player=\"")
        .skip(1)
        .filter(|r| !r.starts_with("${"))
        .map(|r| r.split("</tr>").next().unwrap_or_default().to_string())
        .collect()
}

async fn get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let _ = s
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
    let mut b = String::new();
    let _ = s.read_to_string(&mut b).await;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_page_shows_the_squad_live_with_alerts_and_reasons() {
    let browser = chromium();
    let (http, mqtt, mqtt5) = (free_port(), free_port(), free_port());
    let _demo = Kill(
        Command::new(env!("CARGO_BIN_EXE_sideline"))
            .args(["demo", "--speed", "60", "--break-min", "1"])
            .args(["--http", &format!("127.0.0.1:{http}")])
            .args(["--mqtt", &format!("127.0.0.1:{mqtt}")])
            .args(["--mqtt5", &format!("127.0.0.1:{mqtt5}")])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait for the whole squad, then for the scripted poor fix of home #2 (minutes 20–22).
    let t0 = Instant::now();
    loop {
        let alerts = get(http, "/api/alerts?team=home").await;
        if alerts.contains("\"player\":\"home-02\"") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "no alert for home-02 yet"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let url = format!("http://127.0.0.1:{http}/?team=home&stream_max=3#open=home-07");
    let first = dom(&browser, &url);
    let rows = squad_rows(&first);
    assert_eq!(rows.len(), 11, "rows on the page: the picked team's");
    let teams = first.split("id=\"team\"").nth(1).unwrap_or_default();
    let teams = teams.split("</select>").next().unwrap_or_default();
    assert!(
        teams.contains(">away<") && teams.contains("selected=\"\">home<"),
        "team picker: {teams}"
    );
    // A player already red gets no "red in ~1 min" (the forecast's wording is the server's).
    for r in &rows {
        assert!(
            !(r.contains("band red") && r.contains("red in ")),
            "a red player with a red forecast: {r}"
        );
    }
    assert!(
        first.contains("live · 11 players"),
        "no live update reached the page"
    );
    // Staff see names, squad numbers and positions, not ids.
    let home7 = rows
        .iter()
        .find(|r| r.starts_with("home-07\""))
        .expect("home-07's row");
    assert!(
        home7.contains("<b>Home #7</b>") && home7.contains(">7</td>"),
        "{home7}"
    );
    // The alert feed shows home #2's device alert, by name.
    let feed = first.split("id=\"feed\"").nth(1).unwrap_or_default();
    assert!(
        feed.contains("data-player=\"home-02\"") && feed.contains("<b>Home #2</b> device"),
        "feed: {feed}"
    );
    // Without a team in the address the page shows the freshest data, and the team picker
    // names the team shown (it named the first team in the list).
    let default = dom(&browser, &format!("http://127.0.0.1:{http}/?stream_max=3"));
    let picker = default.split("id=\"team\"").nth(1).unwrap_or_default();
    let picker = picker.split("</select>").next().unwrap_or_default();
    let shown_team = picker
        .split("selected=\"\">")
        .nth(1)
        .and_then(|x| x.split('<').next())
        .unwrap_or_default()
        .to_string();
    let default_rows = squad_rows(&default);
    assert!(
        !default_rows.is_empty()
            && default_rows
                .iter()
                .all(|r| r.starts_with(&format!("{shown_team}-"))),
        "picker says {shown_team:?}, rows: {:?}",
        default_rows
            .iter()
            .map(|r| r.split('"').next())
            .collect::<Vec<_>>()
    );
    // A tablet held upright (800 px): every column on screen; a phone (400 px): the page
    // says the table scrolls sideways.
    let tablet = sideline_testkit::browser::dom_at(&browser, &url, 800, 1280);
    assert!(
        tablet.contains("id=\"more-cols\" class=\"dim hidden\""),
        "the table does not fit 800 px"
    );
    let phone = sideline_testkit::browser::dom_at(&browser, &url, 400, 800);
    assert!(
        phone.contains("id=\"more-cols\" class=\"dim\""),
        "no hint on a phone"
    );
    // home #7's row is expanded: the score's terms are listed in words, with the id kept
    // for those who look it up.
    assert!(first.contains("class=\"detail\""), "no expanded row");
    assert!(
        first.contains("title=\"a_hamstring_history\""),
        "terms not shown"
    );
    // The figures move on (60× real time: a minute of play a second): a page loaded again
    // shows other figures.
    let t1 = Instant::now();
    while squad_rows(&dom(&browser, &url)) == rows {
        assert!(
            t1.elapsed() < Duration::from_secs(30),
            "the squad did not change"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../test-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("bench-page.png");
    sideline_testkit::browser::screenshot(&browser, &url, &shot);
}
