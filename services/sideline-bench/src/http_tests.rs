use super::*;
use crate::model::AlertItem;
use sideline_engine::forecast::Forecast;
use sideline_engine::risk::Band;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn alert(id: &str) -> AlertItem {
    AlertItem {
        id: id.into(),
        kind: "strain_risk".into(),
        severity: "critical".into(),
        state: "firing".into(),
        player: "home-07".into(),
        team: "home".into(),
        session: "s".into(),
        t: 0,
        since: 0,
        value: 7.0,
        threshold: 6.0,
        band: Band::Red,
        forecast: Forecast::default(),
        summary: String::new(),
    }
}

async fn serve(
    auth: Auth,
) -> (
    std::net::SocketAddr,
    Arc<RwLock<SquadView>>,
    mpsc::Receiver<AckMade>,
    prometheus::IntCounter,
) {
    let refused = prometheus::IntCounter::new("refused", "refused").unwrap();
    let view = Arc::new(RwLock::new(SquadView::default()));
    view.write().unwrap().alert(alert("a1"));
    let (alerts, _) = broadcast::channel(4);
    let (tx, rx) = mpsc::channel(4);
    let app = router(ApiState {
        view: view.clone(),
        alerts,
        auth: Arc::new(auth),
        page: PageSettings {
            time_zone: "Europe/London".into(),
            theme: "light".into(),
            title: "t".into(),
        },
        acks: Some(tx),
        lineup: None,
        refused: Some(refused.clone()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, view, rx, refused)
}

const JSON: &str = "Content-Type: application/json\r\n";
const PATH: &str = "/api/alerts/a1/ack";
const BY: &str = r#"{"by":"Dr Lee"}"#;

#[tokio::test]
async fn acknowledging_with_a_typed_name_needs_json_and_the_same_origin() {
    let (addr, view, mut rx, _) = serve(Auth::Open { named_acks: true }).await;
    // Another site's page (a form, or a fetch) is refused before anything changes.
    for evil in [
        "Origin: http://evil.example\r\n",
        "Sec-Fetch-Site: cross-site\r\n",
    ] {
        let r = request(addr, "POST", PATH, &format!("{JSON}{evil}"), BY).await;
        assert!(r.starts_with("HTTP/1.1 403"), "{evil}: {r}");
    }
    // A simple form post (no preflight) is not JSON.
    let r = request(addr, "POST", PATH, "Content-Type: text/plain\r\n", BY).await;
    assert!(r.starts_with("HTTP/1.1 415"), "{r}");
    let r = request(addr, "POST", PATH, JSON, r#"{"by":"<b>x</b>"}"#).await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(view.read().unwrap().ack("a1").is_none());
    // The page itself (same origin), with a name.
    let same = format!("{JSON}Origin: http://{addr}\r\nSec-Fetch-Site: same-origin\r\n");
    let r = request(addr, "POST", PATH, &same, BY).await;
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    let feed = view.read().unwrap().alerts(None);
    assert_eq!(feed[0].acknowledged_by.as_deref(), Some("Dr Lee"));
    let made = rx.try_recv().unwrap();
    assert_eq!((made.alert.id.as_str(), made.by.as_str()), ("a1", "Dr Lee"));
    let r = request(addr, "POST", "/api/alerts/nope/ack", JSON, BY).await;
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}

#[tokio::test]
async fn without_sign_in_the_service_bench_is_read_only() {
    let (addr, view, _rx, _) = serve(Auth::Open { named_acks: false }).await;
    let r = request(addr, "GET", "/api/alerts", "", "").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let r = request(addr, "POST", PATH, JSON, BY).await;
    assert!(
        r.starts_with("HTTP/1.1 403") && r.contains("sign-in"),
        "{r}"
    );
    assert!(view.read().unwrap().ack("a1").is_none());
}

#[tokio::test]
async fn the_evidence_page_lists_every_term_and_marks_the_judgements() {
    let (addr, _view, _rx, _) = serve(Auth::Open { named_acks: false }).await;
    let r = request(addr, "GET", "/evidence", "", "").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    for t in sideline_engine::risk::TermId::ALL {
        assert!(r.contains(&format!("<code>{}</code>", t.as_str())), "{t}");
    }
    assert_eq!(r.matches("<td class=\"judged\">").count(), 7, "{r}");
    assert!(
        r.contains("Timmins et al. 2016") && r.contains("RR 4.4"),
        "{r}"
    );
    // The live page links to it.
    let page = request(addr, "GET", "/", "", "").await;
    assert!(page.contains("<a href=\"evidence\""), "no link on the page");
}

#[tokio::test]
async fn signed_in_staff_acknowledge_under_their_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staff.toml");
    let hash = crate::auth::hash_password("correct horse battery").unwrap();
    std::fs::write(
        &path,
        format!("[[staff]]\nuser = \"lee\"\nname = \"Dr Lee\"\npassword = \"{hash}\"\n"),
    )
    .unwrap();
    let (addr, view, mut rx, refused) = serve(Auth::staff_file(&path).unwrap()).await;
    // Nothing without signing in: the page, the data, the stream.
    for p in [
        "/",
        "/api/squad",
        "/api/alerts",
        "/events?max=1",
        "/api/config",
    ] {
        let r = request(addr, "GET", p, "", "").await;
        assert!(r.starts_with("HTTP/1.1 401"), "{p}: {r}");
        assert!(
            r.to_lowercase().contains("www-authenticate: basic"),
            "{p}: {r}"
        );
    }
    assert_eq!(refused.get(), 0, "no credentials is not a refusal");
    use base64::Engine as _;
    let wrong = base64::engine::general_purpose::STANDARD.encode("lee:guess");
    let r = request(
        addr,
        "GET",
        "/api/squad",
        &format!("Authorization: Basic {wrong}\r\n"),
        "",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    assert_eq!(refused.get(), 1, "a wrong password is counted");
    let creds = base64::engine::general_purpose::STANDARD.encode("lee:correct horse battery");
    let auth = format!("Authorization: Basic {creds}\r\n");
    let r = request(addr, "GET", "/api/config", &auth, "").await;
    assert!(
        r.starts_with("HTTP/1.1 200") && r.contains("\"signed_in\":\"Dr Lee\""),
        "{r}"
    );
    // This bench writes no lineup changes: the page offers no substitution buttons.
    assert!(r.contains("\"can_post_lineup\":false"), "{r}");
    // The typed name is ignored: the acknowledgement is the signed-in person's.
    let r = request(
        addr,
        "POST",
        PATH,
        &format!("{auth}{JSON}"),
        r#"{"by":"Someone Else"}"#,
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    assert_eq!(view.read().unwrap().ack("a1").unwrap().by, "Dr Lee");
    assert_eq!(rx.try_recv().unwrap().by, "Dr Lee");
}

#[test]
fn cross_site_is_judged_on_origin_and_fetch_metadata() {
    let h = |pairs: &[(&'static str, &'static str)]| {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    };
    assert!(!cross_site(&h(&[])));
    assert!(!cross_site(&h(&[
        ("host", "127.0.0.1:8080"),
        ("origin", "http://127.0.0.1:8080")
    ])));
    assert!(cross_site(&h(&[
        ("host", "127.0.0.1:8080"),
        ("origin", "http://127.0.0.1:9999")
    ])));
    assert!(cross_site(&h(&[("origin", "null"), ("host", "x")])));
    assert!(cross_site(&h(&[("sec-fetch-site", "same-site")])));
}
