//! Is Kafka answering? One probe for every service's `/readyz`: every [`PERIOD`] it asks the
//! broker for a topic's metadata (a blocking librdkafka call, run off the async threads) and
//! reports the answer, until stopped.

use std::time::Duration;

use rdkafka::client::{Client, ClientContext};
use tokio_util::sync::CancellationToken;

/// Time between two probes (and the longest a probe waits for the broker).
pub const PERIOD: Duration = Duration::from_secs(2);

/// Does the broker answer for `topic` within [`PERIOD`]?
pub fn answers<C: ClientContext>(client: &Client<C>, topic: &str) -> bool {
    client.fetch_metadata(Some(topic), PERIOD).is_ok()
}

/// Run `check` every [`PERIOD`] and hand each answer to `report`, until `stop`.
pub fn spawn(
    check: impl Fn() -> bool + Clone + Send + Sync + 'static,
    report: impl Fn(bool) + Send + 'static,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let c = check.clone();
            let ok = tokio::task::spawn_blocking(c).await.unwrap_or(false);
            report(ok);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PERIOD) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn answers_are_reported_every_period_until_stopped() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let (s, c) = (seen.clone(), calls.clone());
        let task = spawn(
            move || c.fetch_add(1, Ordering::SeqCst) % 2 == 0,
            move |ok| s.lock().unwrap().push(ok),
            stop.clone(),
        );
        while seen.lock().unwrap().len() < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.cancel();
        task.await.unwrap();
        let got = seen.lock().unwrap().clone();
        assert_eq!(&got[..3], &[true, false, true]);
    }
}
