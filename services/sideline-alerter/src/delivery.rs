//! Delivery: one task per destination takes the oldest message from the outbox and POSTs it,
//! so messages reach a destination in the order they were decided (in order per player).
//!
//! - A token bucket per destination spaces requests (Slack about 1/s, Teams at most 4/s).
//! - `429`: wait for `Retry-After` (seconds or an HTTP date), or the body's `retry_after`
//!   (Slack: seconds; Discord: seconds, but values over 100 are taken as milliseconds,
//!   discord-api-docs#4722), capped at `max_retry_after`; then the same message again.
//!   Discord's `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset-After` pauses before the
//!   next request instead of provoking a 429.
//! - `5xx`, `408`, timeouts and network errors: jittered exponential backoff (full jitter
//!   between half and all of `base × 2^attempt`, capped), then the same message again.
//! - Any other `4xx` (bad URL, revoked webhook, payload refused): the message is given up to
//!   `failed/` with the status and the service's answer, and counted; retrying cannot help.
//! - A message older than `max_age` when its turn comes is given up as `expired`.
//!
//! A message is never dropped because its alert resolved meanwhile: the outbox holds the
//! rendered message, not a reference to live state. Webhook URLs are secrets: they are never
//! logged (errors are logged without the URL).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::AlerterMetrics;
use crate::outbox::{Outbox, Pending};
use crate::render::Format;

/// A token bucket: `rate` tokens per second, at most `burst` saved.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        let burst = burst.max(1.0);
        Bucket {
            rate: rate.max(1e-3),
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Take a token at `now`: how long to wait before using it.
    pub fn take(&mut self, now: Instant) -> Duration {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst) - 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// How long a `429` asks us to wait: the `Retry-After` header (seconds or an HTTP date), else
/// the body's `retry_after` (values over 100 are milliseconds), else one second.
pub fn retry_after(header: Option<&str>, body: &str, now_us: i64) -> Duration {
    if let Some(h) = header.map(str::trim) {
        if let Ok(s) = h.parse::<f64>()
            && s.is_finite()
            && s >= 0.0
        {
            return Duration::from_secs_f64(s);
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc2822(h) {
            let ms = (t.timestamp_micros() - now_us).max(0) / 1000;
            return Duration::from_millis(ms as u64);
        }
    }
    let v = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64));
    match v {
        Some(x) if x.is_finite() && x > 100.0 => Duration::from_secs_f64(x / 1000.0),
        Some(x) if x.is_finite() && x >= 0.0 => Duration::from_secs_f64(x),
        _ => Duration::from_secs(1),
    }
}

/// Backoff before attempt `n + 1` after `n` failures: between half and all of
/// `base × 2^n`, at most `max`.
pub fn backoff(n: u32, base: Duration, max: Duration) -> Duration {
    let full = base.saturating_mul(1u32 << n.min(16)).min(max);
    let half = full / 2;
    half + full
        .saturating_sub(half)
        .mul_f64(rand::rng().random::<f64>())
}

/// The wall clock, µs since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// One destination's delivery settings.
#[derive(Clone)]
pub struct Target {
    /// Name (the metric label).
    pub name: String,
    /// Body format (for Discord's rate-limit headers).
    pub format: Format,
    /// The webhook URL (a secret).
    pub url: String,
    /// Requests per second.
    pub rate_per_s: f64,
    /// Burst.
    pub burst: f64,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("url", &"<secret>")
            .finish()
    }
}

/// Delivery timing.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Request timeout.
    pub timeout: Duration,
    /// Longest wait a 429 may impose.
    pub max_retry_after: Duration,
    /// Backoff base.
    pub backoff_base: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
    /// Older messages are given up.
    pub max_age: Duration,
}

enum Outcome {
    Delivered,
    Wait(Duration),
    GiveUp(String),
}

/// The `Idempotency-Key` header of a message: FNV-1a over its entries' keys, the same on every
/// attempt and after a restart (the message is re-read from the outbox), so a receiver that
/// honours it can drop the one duplicate a crash between its 2xx and our outbox delete causes.
pub fn idempotency_key(keys: &[String]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for k in keys {
        for b in k.bytes().chain(std::iter::once(b'\n')) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("sideline-{h:016x}")
}

async fn attempt(
    client: &reqwest::Client,
    t: &Target,
    msg: &Pending,
    m: &AlerterMetrics,
    failures: u32,
    timing: &Timing,
    pause: &mut Option<Instant>,
) -> Outcome {
    let res = client
        .post(&t.url)
        .header("content-type", "application/json")
        .header("idempotency-key", idempotency_key(&msg.keys))
        .body(msg.body.clone())
        .timeout(timing.timeout)
        .send()
        .await;
    let name = t.name.as_str();
    let r = match res {
        Ok(r) => r,
        Err(e) => {
            m.failed.with_label_values(&[name, "network"]).inc();
            m.retried.with_label_values(&[name, "network"]).inc();
            // reqwest puts the URL in its errors: log without it.
            tracing::warn!(message = "Delivery failed; will retry.", destination = name,
                error = %e.without_url(), failures);
            return Outcome::Wait(backoff(failures, timing.backoff_base, timing.backoff_max));
        }
    };
    let status = r.status();
    let header = |h: &str| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    if t.format == Format::Discord
        && header("x-ratelimit-remaining").as_deref() == Some("0")
        && let Some(s) = header("x-ratelimit-reset-after").and_then(|s| s.parse::<f64>().ok())
        && s.is_finite()
        && s >= 0.0
    {
        *pause = Some(
            Instant::now() + Duration::from_secs_f64(s.min(timing.max_retry_after.as_secs_f64())),
        );
    }
    let retry_header = header("retry-after");
    let text = r.text().await.unwrap_or_default();
    if status.is_success() {
        return Outcome::Delivered;
    }
    let code = status.as_u16();
    if code == 429 {
        m.rate_limited.with_label_values(&[name]).inc();
        m.failed.with_label_values(&[name, "429"]).inc();
        let wait =
            retry_after(retry_header.as_deref(), &text, now_us()).min(timing.max_retry_after);
        tracing::info!(
            message = "Rate limited; waiting as asked.",
            destination = name,
            wait_ms = wait.as_millis() as u64
        );
        return Outcome::Wait(wait);
    }
    if status.is_server_error() || code == 408 {
        m.failed.with_label_values(&[name, "5xx"]).inc();
        m.retried.with_label_values(&[name, "5xx"]).inc();
        tracing::warn!(
            message = "Destination failed; will retry.",
            destination = name,
            status = code
        );
        return Outcome::Wait(backoff(failures, timing.backoff_base, timing.backoff_max));
    }
    m.failed.with_label_values(&[name, "4xx"]).inc();
    let answer: String = text.chars().take(300).collect();
    Outcome::GiveUp(format!("rejected_4xx: HTTP {code}: {answer}"))
}

/// Deliver `t`'s outbox until `stop`; `wake` is notified when a message is enqueued.
pub async fn run(
    t: Target,
    timing: Timing,
    outbox: Arc<Outbox>,
    metrics: AlerterMetrics,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let client = reqwest::Client::new();
    let name = t.name.clone();
    let mut bucket = Bucket::new(t.rate_per_s, t.burst, Instant::now());
    let mut failures = 0u32;
    let mut pause: Option<Instant> = None;
    let sleep = |d: Duration| {
        let stop = stop.clone();
        async move {
            tokio::select! {
                _ = tokio::time::sleep(d) => true,
                _ = stop.cancelled() => false,
            }
        }
    };
    while !stop.is_cancelled() {
        let next = match outbox.peek(&name) {
            Ok(w) => {
                metrics
                    .pending
                    .with_label_values(&[&name])
                    .set(w.count as i64);
                w.next
            }
            Err(e) => {
                tracing::error!(message = "Outbox unreadable; retrying.", destination = %name, error = %e);
                if !sleep(Duration::from_secs(1)).await {
                    break;
                }
                continue;
            }
        };
        let Some((path, msg)) = next else {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.cancelled() => break,
            }
            continue;
        };
        let age_ms = (now_us() - msg.formed_us).max(0) / 1000;
        if Duration::from_millis(age_ms as u64) > timing.max_age {
            metrics.dropped.with_label_values(&[&name, "expired"]).inc();
            tracing::error!(message = "Message expired undelivered; set aside.", destination = %name,
                players = ?msg.players, age_s = age_ms / 1000);
            if let Err(e) = outbox.give_up(&path, "expired") {
                tracing::error!(message = "Outbox write failed.", error = %e);
            }
            continue;
        }
        if let Some(until) = pause.take() {
            let now = Instant::now();
            if until > now && !sleep(until - now).await {
                break;
            }
        }
        let wait = bucket.take(Instant::now());
        if !wait.is_zero() && !sleep(wait).await {
            break;
        }
        match attempt(&client, &t, &msg, &metrics, failures, &timing, &mut pause).await {
            Outcome::Delivered => {
                failures = 0;
                metrics.delivered.with_label_values(&[&name]).inc();
                let s = (now_us() - msg.formed_us).max(0) as f64 / 1e6;
                metrics.latency.with_label_values(&[&name]).observe(s);
                if let Err(e) = outbox.done(&path) {
                    tracing::error!(message = "Delivered but not removed from the outbox.", error = %e);
                }
            }
            Outcome::Wait(d) => {
                failures = failures.saturating_add(1);
                if !sleep(d).await {
                    break;
                }
            }
            Outcome::GiveUp(reason) => {
                failures = 0;
                metrics
                    .dropped
                    .with_label_values(&[&name, "rejected_4xx"])
                    .inc();
                tracing::error!(message = "Destination refused a message; set aside.",
                    destination = %name, players = ?msg.players, %reason);
                if let Err(e) = outbox.give_up(&path, &reason) {
                    tracing::error!(message = "Outbox write failed.", error = %e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_spaces_requests_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2.0, 3.0, t0);
        let waits: Vec<Duration> = (0..5).map(|_| b.take(t0)).collect();
        assert_eq!(&waits[..3], [Duration::ZERO; 3]);
        assert_eq!(waits[3], Duration::from_millis(500));
        assert_eq!(waits[4], Duration::from_millis(1000));
        // Two seconds later the debt is paid and one more token saved.
        assert!(b.take(t0 + Duration::from_secs(2)) <= Duration::from_millis(1));
    }

    #[test]
    fn retry_after_reads_headers_dates_and_both_discord_units() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .timestamp_micros();
        assert_eq!(retry_after(Some("3"), "", now), Duration::from_secs(3));
        assert_eq!(
            retry_after(Some("0.5"), "", now),
            Duration::from_millis(500)
        );
        assert_eq!(
            retry_after(Some("Sun, 22 Nov 2026 10:00:07 GMT"), "", now),
            Duration::from_secs(7)
        );
        let slack = r#"{"retry_after":1,"ok":false,"error":"rate_limited"}"#;
        assert_eq!(retry_after(None, slack, now), Duration::from_secs(1));
        let discord_s =
            r#"{"message":"You are being rate limited.","retry_after":2.5,"global":false}"#;
        assert_eq!(
            retry_after(None, discord_s, now),
            Duration::from_millis(2500)
        );
        let discord_ms = r#"{"retry_after":1500,"global":false}"#;
        assert_eq!(
            retry_after(None, discord_ms, now),
            Duration::from_millis(1500)
        );
        assert_eq!(retry_after(None, "busy", now), Duration::from_secs(1));
        assert_eq!(retry_after(Some("soon"), "", now), Duration::from_secs(1));
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for n in 0..10 {
            let full = (base * 2u32.pow(n)).min(max);
            for _ in 0..50 {
                let d = backoff(n, base, max);
                assert!(d >= full / 2 && d <= full, "{n}: {d:?}");
            }
        }
    }
}
