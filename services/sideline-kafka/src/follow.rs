//! Following a compacted topic (roster, baselines): read every partition from the beginning,
//! call back for each record (`None` value = deleted), report once when everything that existed
//! at start-up has been read, then keep following until stopped.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::config::KafkaConfig;

/// Follow `topic` until `stop`. `on_record(key, value)` sees every record; `caught_up` runs
/// once, when each partition has been read up to where it ended at start-up.
pub async fn follow_compacted(
    cfg: &KafkaConfig,
    topic: &str,
    client_id: &str,
    mut on_record: impl FnMut(&[u8], Option<&[u8]>) + Send,
    caught_up: impl FnOnce() + Send,
    stop: CancellationToken,
) -> Result<(), KafkaError> {
    let consumer: StreamConsumer = cfg
        .client_config(
            client_id,
            &[
                ("group.id", client_id),
                ("enable.auto.commit", "false"),
                ("fetch.wait.max.ms", "50"),
            ],
        )
        .map_err(|e| KafkaError::ClientCreation(e.to_string()))?
        .create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        let (_, high) = consumer.fetch_watermarks(topic, *p, Duration::from_secs(10))?;
        ends.push((*p, high));
        tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut caught_up = Some(caught_up);
    let mut positions: HashMap<i32, i64> = parts.iter().map(|p| (*p, 0)).collect();
    let done = |positions: &HashMap<i32, i64>| {
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
                on_record(m.key().unwrap_or_default(), m.payload());
                positions.insert(m.partition(), m.offset() + 1);
                if caught_up.is_some()
                    && done(&positions)
                    && let Some(f) = caught_up.take()
                {
                    f();
                }
            }
            Err(error) => {
                tracing::warn!(message = "Compacted topic read failed; retrying.", %topic, %error);
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
