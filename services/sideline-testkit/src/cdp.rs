//! A page driven the way a person uses it: headless Chromium controlled over the DevTools
//! protocol (<https://chromedevtools.github.io/devtools-protocol/>), to click a button and read
//! what the page then shows. The protocol runs over `--remote-debugging-pipe`: Chromium reads
//! commands from its file descriptor 3 and writes answers and events to 4, each a JSON text
//! ended by a NUL byte. A shell gives it our stdin and stdout pipes as 3 and 4, so no unsafe
//! code is needed to arrange them.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One browser with one page open, killed when dropped.
pub struct Page {
    child: Child,
    to: ChildStdin,
    from: Receiver<Value>,
    next_id: u64,
    session: String,
}

impl Page {
    /// Open `url` in a `width` × `height` window, every request carrying `headers` (e.g. the
    /// `Authorization` a browser sends once its user has signed in).
    pub fn open(
        browser: &str,
        url: &str,
        headers: &[(&str, &str)],
        width: u32,
        height: u32,
    ) -> Page {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--no-first-run",
                &format!("--window-size={width},{height}"),
                "about:blank",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium did not start");
        let to = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, from) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut buf = Vec::new();
            while r.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                buf.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    break;
                }
                buf.clear();
            }
        });
        let mut page = Page {
            child,
            to,
            from,
            next_id: 0,
            session: String::new(),
        };
        let target = page.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = page.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        page.session = attached["sessionId"].as_str().unwrap().to_string();
        let headers: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        page.call("Network.enable", json!({}));
        page.call("Network.setExtraHTTPHeaders", json!({"headers": headers}));
        let nav = page.call("Page.navigate", json!({"url": url}));
        assert!(nav["errorText"].is_null(), "{url}: {nav}");
        page
    }

    /// Send one command (to the page once attached) and wait for its answer.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = Value::from(self.session.clone());
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        self.to.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from.recv_timeout(left) {
                Ok(v) if v["id"].as_u64() == Some(id) => {
                    assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                    return v["result"].clone();
                }
                Ok(_) => {} // an event, or another session's answer
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer in 30 s"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: the browser went away"),
            }
        }
    }

    /// The value of a JavaScript expression on the page (awaited if it is a promise).
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        assert!(
            r["exceptionDetails"].is_null(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Wait until `expression` is true on the page (polled every 100 ms), at most `limit`.
    pub fn until(&mut self, what: &str, expression: &str, limit: Duration) {
        let t0 = Instant::now();
        while self.eval(expression) != Value::Bool(true) {
            assert!(
                t0.elapsed() < limit,
                "{what}: not within {limit:?}; the page: {}",
                self.html()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Click the element `selector` names, as a person would (a trusted mouse press and
    /// release at its centre), after scrolling it into view.
    pub fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
        ));
        let [x, y] = [&at[0], &at[1]].map(|v| {
            v.as_f64()
                .unwrap_or_else(|| panic!("nothing on the page matches {selector}"))
        });
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// The page's DOM as HTML now.
    pub fn html(&mut self) -> String {
        self.eval("document.documentElement.outerHTML")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
