//! The pages behind a chat message's acknowledge link.
//!
//! Chat apps' link previewers and mail or URL scanners open every link they see, so opening
//! the link (`GET /ack/<token>`) changes nothing: it shows the alert and a form. Acknowledging
//! is the form's `POST /ack/<token>` (`application/x-www-form-urlencoded`, field `by`: the
//! person's name), or, when `alerter.identity_header` is set and an authenticating proxy in
//! front of the alerter sends it, that identity. Who acknowledged and when is kept with the
//! alert (router state), told in chat and shown on this page.
//!
//! Every value put into a page is HTML-escaped ([`escape`]); names are limited to letters,
//! digits, spaces and `. ' ’ - _ @ + ( )` ([`person`]) so they carry no markup into chat
//! either. The pages forbid framing, referrers (the token is in the URL), caching and
//! scripts.

use axum::Router as HttpRouter;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::ack::AckError;
use crate::alerter::{AckRefused, AckView, Alerter};
use crate::item::clock;

/// Longest name accepted, characters.
pub const MAX_NAME_CHARS: usize = 60;

/// A request from the pages to whoever owns the [`Alerter`].
#[derive(Debug)]
pub enum AckRequest {
    /// What does this token name? (GET: nothing changes.)
    Peek {
        /// The link's token.
        token: String,
        /// Where to answer.
        reply: oneshot::Sender<Result<AckView, AckRefused>>,
    },
    /// Acknowledge it, by this person. (POST.)
    Ack {
        /// The link's token.
        token: String,
        /// Who.
        by: String,
        /// Where to answer.
        reply: oneshot::Sender<Result<AckView, AckRefused>>,
    },
}

impl AckRequest {
    /// Answer it with `alerter` (the owner's loop calls this).
    pub fn answer(self, alerter: &mut Alerter) {
        match self {
            AckRequest::Peek { token, reply } => {
                let _ = reply.send(alerter.peek(&token));
            }
            AckRequest::Ack { token, by, reply } => {
                let _ = reply.send(alerter.ack(&token, &by));
            }
        }
    }
}

#[derive(Clone)]
struct PageState {
    tx: mpsc::Sender<AckRequest>,
    identity_header: Option<String>,
}

/// `GET /ack/{token}` (the confirmation page) and `POST /ack/{token}` (acknowledge), answered
/// through `tx`. Acknowledgements are answered
/// through `tx`. With `identity_header`, a request carrying that header acknowledges as the
/// identity it names.
pub fn ack_router(tx: mpsc::Sender<AckRequest>, identity_header: Option<String>) -> HttpRouter {
    HttpRouter::new()
        .route("/ack/{token}", get(show).post(confirm))
        .with_state(PageState {
            tx,
            identity_header,
        })
}

/// `GET /evidence`: what each term of the score rests on (chat messages link here). The
/// alerter serves it; the demo does not add it (its bench view serves the same page).
pub fn evidence_router() -> HttpRouter {
    HttpRouter::new().route("/evidence", get(evidence))
}

async fn evidence() -> axum::response::Html<String> {
    axum::response::Html(sideline_engine::evidence::html(None))
}

/// `s` with `& < > " '` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// A person's name as given, trimmed, if it is one: 2 to [`MAX_NAME_CHARS`] characters of
/// letters, digits, spaces and `. ' ’ - _ @ + ( )`.
pub fn person(name: &str) -> Result<String, &'static str> {
    let name = name.trim();
    let n = name.chars().count();
    if n < 2 {
        return Err("Please type your name (at least 2 characters).");
    }
    if n > MAX_NAME_CHARS {
        return Err("That name is too long (at most 60 characters).");
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || ".'’-_@+()".contains(c))
    {
        return Err("Letters, digits, spaces and . ' - _ @ + ( ) only, please.");
    }
    Ok(name.to_string())
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=en><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title>\
         <body style=\"font:20px/1.4 system-ui,sans-serif;margin:1.5em;max-width:34em\">\
         <h1 style=\"font-size:1.4em\">{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    let mut r = (status, Html(html)).into_response();
    let h = r.headers_mut();
    for (k, v) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn identity(state: &PageState, headers: &HeaderMap) -> Option<String> {
    let name = state.identity_header.as_deref()?;
    let v = headers.get(name)?.to_str().ok()?;
    person(v).ok()
}

fn refused(e: &AckRefused) -> Response {
    match e {
        AckRefused::NotOpen(_) => page(
            StatusCode::NOT_FOUND,
            "Already over",
            "<p>This alert is no longer open: nothing to acknowledge.</p>",
        ),
        AckRefused::Token(AckError::Expired) => page(
            StatusCode::GONE,
            "Link expired",
            "<p>This acknowledge link has expired.</p>",
        ),
        AckRefused::Token(_) => page(
            StatusCode::FORBIDDEN,
            "Invalid link",
            "<p>This acknowledge link is not valid.</p>",
        ),
    }
}

fn stopping() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Not now",
        "<p>The alerter is stopping; try again in a minute.</p>",
    )
}

fn done(v: &AckView) -> String {
    v.acked.as_ref().map_or_else(String::new, |k| {
        format!(
            "<p><strong>Acknowledged by {} at {} UTC.</strong> Reminders and escalation for \
             this red have stopped.</p>",
            escape(&k.by),
            clock(k.at)
        )
    })
}

fn form(v: &AckView, who: Option<&str>, problem: Option<&str>) -> String {
    let alert = format!(
        "<p>{} ({}): {}</p>",
        escape(&v.player),
        escape(&v.team),
        escape(&v.headline)
    );
    if v.acked.is_some() {
        return alert + &done(v);
    }
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p role=alert style=\"color:#a00\">{}</p>", escape(p))
    });
    let field = match who {
        Some(w) => format!(
            "<p>You are signed in as <strong>{}</strong>.</p>",
            escape(w)
        ),
        None => format!(
            "<p><label>Your name<br><input name=by required minlength=2 \
             maxlength={MAX_NAME_CHARS} autocomplete=name \
             style=\"font:inherit;padding:.4em;width:100%;box-sizing:border-box\"></label></p>"
        ),
    };
    format!(
        "{alert}{problem}<form method=post>{field}\
         <p><button style=\"font:inherit;padding:.5em 1.2em\">Acknowledge</button></p></form>\
         <p style=\"color:#555\">Acknowledging stops the reminders and the escalation for this \
         red; your name is shown in chat and kept with the alert.</p>"
    )
}

async fn ask(
    state: &PageState,
    make: impl FnOnce(oneshot::Sender<Result<AckView, AckRefused>>) -> AckRequest,
) -> Option<Result<AckView, AckRefused>> {
    let (reply, rx) = oneshot::channel();
    state.tx.send(make(reply)).await.ok()?;
    rx.await.ok()
}

async fn show(
    State(state): State<PageState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let who = identity(&state, &headers);
    match ask(&state, |reply| AckRequest::Peek { token, reply }).await {
        None => stopping(),
        Some(Err(e)) => refused(&e),
        Some(Ok(v)) => page(
            StatusCode::OK,
            &format!("Acknowledge {}'s red?", v.player),
            &form(&v, who.as_deref(), None),
        ),
    }
}

/// The confirmation form's body.
#[derive(Debug, Deserialize)]
pub struct AckForm {
    /// The person's name (ignored when the proxy's identity header is present).
    #[serde(default)]
    by: String,
}

async fn confirm(
    State(state): State<PageState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(f): Form<AckForm>,
) -> Response {
    let by = match identity(&state, &headers).map_or_else(|| person(&f.by), Ok) {
        Ok(by) => by,
        Err(problem) => {
            // Show the form again, with what was wrong.
            return match ask(&state, |reply| AckRequest::Peek { token, reply }).await {
                None => stopping(),
                Some(Err(e)) => refused(&e),
                Some(Ok(v)) => page(
                    StatusCode::BAD_REQUEST,
                    &format!("Acknowledge {}'s red?", v.player),
                    &form(&v, None, Some(problem)),
                ),
            };
        }
    };
    match ask(&state, |reply| AckRequest::Ack { token, by, reply }).await {
        None => stopping(),
        Some(Err(e)) => refused(&e),
        Some(Ok(v)) => page(
            StatusCode::OK,
            "Acknowledged",
            &format!(
                "<p>{} ({}): {}</p>{}",
                escape(&v.player),
                escape(&v.team),
                escape(&v.headline),
                done(&v)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_names() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(person("  Dr Lee ").unwrap(), "Dr Lee");
        assert_eq!(
            person("Zoë O’Brien-Smith (physio)").unwrap(),
            "Zoë O’Brien-Smith (physio)"
        );
        assert_eq!(person("a.lee@club.org").unwrap(), "a.lee@club.org");
        for bad in [
            "",
            " x ",
            "<b>me</b>",
            "[x](http://e)",
            "a\nb",
            &"x".repeat(61),
        ] {
            assert!(person(bad).is_err(), "{bad:?}");
        }
    }
}
