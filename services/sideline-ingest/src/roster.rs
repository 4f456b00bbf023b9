//! The roster as the service sees it: the file at start-up, then every record of the
//! compacted roster topic, followed for as long as the service runs (pods are swapped during
//! a session). The service subscribes to MQTT only once the topic has been read up to its end,
//! so that the first messages are not dead-lettered as unknown devices.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sideline_kafka::KafkaConfig;
use sideline_wire::roster::Roster;
use tokio_util::sync::CancellationToken;

use crate::metrics::IngestMetrics;

/// Follow `topic` into `roster`. `caught_up` is called once, when every partition has been
/// read up to where it ended at start-up.
pub async fn follow(
    cfg: KafkaConfig,
    topic: String,
    roster: Arc<RwLock<Roster>>,
    metrics: IngestMetrics,
    caught_up: impl FnOnce() + Send + 'static,
    stop: CancellationToken,
) -> Result<(), rdkafka::error::KafkaError> {
    let consumer: StreamConsumer = cfg
        .client_config(
            &format!("sideline-ingest-roster-{}", std::process::id()),
            &[
                ("group.id", "sideline-ingest-roster"),
                ("enable.auto.commit", "false"),
                ("fetch.wait.max.ms", "50"),
            ],
        )
        .map_err(|e| rdkafka::error::KafkaError::ClientCreation(e.to_string()))?
        .create()?;
    let md = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        let (_, high) = consumer.fetch_watermarks(&topic, *p, Duration::from_secs(10))?;
        ends.push((*p, high));
        tpl.add_partition_offset(&topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut caught_up = Some(caught_up);
    let mut positions: std::collections::HashMap<i32, i64> =
        parts.iter().map(|p| (*p, 0)).collect();
    let done = |positions: &std::collections::HashMap<i32, i64>| {
        ends.iter()
            .all(|(p, high)| positions.get(p).copied().unwrap_or(0) >= *high)
    };
    if done(&positions)
        && let Some(f) = caught_up.take()
    {
        f();
    }
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            m = consumer.recv() => m,
        };
        match msg {
            Ok(m) => {
                let result = {
                    let mut r = match roster.write() {
                        Ok(r) => r,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    let res = r.apply(m.key().unwrap_or_default(), m.payload());
                    metrics.roster_devices.set(r.devices().count() as i64);
                    res
                };
                if let Err(error) = result {
                    metrics.roster_bad_records.inc();
                    tracing::warn!(message = "Roster record ignored.", %error, offset = m.offset());
                }
                positions.insert(m.partition(), m.offset() + 1);
                if caught_up.is_some()
                    && done(&positions)
                    && let Some(f) = caught_up.take()
                {
                    f();
                }
            }
            Err(error) => {
                tracing::warn!(message = "Roster topic read failed; retrying.", %error);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
