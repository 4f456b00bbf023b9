//! The roster as the service sees it: the file at start-up, then every record of the
//! compacted roster topic, followed for as long as the service runs (pods are swapped during
//! a session). The service subscribes to MQTT only once the topic has been read up to its end,
//! so that the first messages are not dead-lettered as unknown devices.

use std::sync::{Arc, RwLock};

use sideline_kafka::KafkaConfig;
use sideline_kafka::follow::follow_compacted;
use sideline_wire::roster::Roster;
use tokio_util::sync::CancellationToken;

use crate::metrics::IngestMetrics;

/// Follow `topic` into `roster`. `caught_up` is called once the topic has been read to its end.
pub async fn follow(
    cfg: KafkaConfig,
    topic: String,
    roster: Arc<RwLock<Roster>>,
    metrics: IngestMetrics,
    caught_up: impl FnOnce() + Send + 'static,
    stop: CancellationToken,
) -> Result<(), rdkafka::error::KafkaError> {
    let on_record = |key: &[u8], value: Option<&[u8]>| {
        let mut r = match roster.write() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(error) = r.apply(key, value) {
            metrics.roster_bad_records.inc();
            tracing::warn!(message = "Roster record ignored.", %error);
        }
        metrics.roster_devices.set(r.devices().count() as i64);
        metrics.roster_records.inc();
    };
    let client_id = format!("sideline-ingest-roster-{}", std::process::id());
    follow_compacted(&cfg, &topic, &client_id, on_record, caught_up, stop).await
}
