//! Acknowledgements read from the acks topic (`sideline.acks.v1`): those made on the bench
//! page stop the chat escalation like a tapped link does, and are told in chat ("acknowledged
//! by …"). The alerter reads the whole topic from its start at every start (acknowledgements
//! already applied change nothing), with no consumer group: every alerter instance applies
//! every acknowledgement to the alerts it holds.
//!
//! An acknowledgement can arrive before its alert (the bench saw the alert first while this
//! alerter lagged): it waits in [`AckInbox`] and is tried again at every tick for
//! [`WAIT`], at most [`MAX_WAITING`] of them (the oldest go first); one whose alert never
//! opens here (an old one, or already over) is dropped after that.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use sideline_kafka::KafkaConfig;
use sideline_wire::pb;

/// How long an acknowledgement waits for its alert.
pub const WAIT: Duration = Duration::from_secs(600);
/// Acknowledgements waiting, at most.
pub const MAX_WAITING: usize = 1_000;

/// Acknowledgements whose alert is not open here (yet).
#[derive(Debug, Default)]
pub struct AckInbox {
    waiting: VecDeque<(pb::AlertAck, Instant)>,
}

impl AckInbox {
    /// Offer one to `apply` (true: its alert is open and it is applied); keep it if not.
    pub fn offer(
        &mut self,
        a: pb::AlertAck,
        now: Instant,
        mut apply: impl FnMut(&pb::AlertAck) -> bool,
    ) {
        if a.alert_id.is_empty() || apply(&a) {
            return;
        }
        if self.waiting.len() >= MAX_WAITING {
            self.waiting.pop_front();
        }
        self.waiting.push_back((a, now));
    }

    /// Try the waiting ones again; drop those applied and those older than [`WAIT`].
    pub fn retry(&mut self, now: Instant, mut apply: impl FnMut(&pb::AlertAck) -> bool) {
        self.waiting
            .retain(|(a, since)| now.duration_since(*since) < WAIT && !apply(a));
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Does none wait?
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// A consumer of the whole acks topic from its start (no group, no commits).
pub fn consumer(kafka: &KafkaConfig) -> Result<StreamConsumer, rdkafka::error::KafkaError> {
    let id = format!("sideline-alerter-acks-in-{}", std::process::id());
    let c: StreamConsumer = kafka
        .client_config(
            &id,
            &[
                ("group.id", id.as_str()),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
            ],
        )
        .map_err(|e| rdkafka::error::KafkaError::ClientCreation(e.to_string()))?
        .create()?;
    let topic = &kafka.topics.acks;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(id: &str) -> pb::AlertAck {
        pb::AlertAck {
            alert_id: id.into(),
            by: "Dr Lee".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_ack_before_its_alert_waits_and_is_applied_when_the_alert_opens() {
        let t0 = Instant::now();
        let mut open = vec!["a1".to_string()];
        let mut applied = Vec::new();
        let mut inbox = AckInbox::default();
        let apply = |open: &Vec<String>, a: &pb::AlertAck, applied: &mut Vec<String>| {
            let ok = open.contains(&a.alert_id);
            if ok {
                applied.push(a.alert_id.clone());
            }
            ok
        };
        inbox.offer(ack("a1"), t0, |a| apply(&open, a, &mut applied));
        inbox.offer(ack("a2"), t0, |a| apply(&open, a, &mut applied));
        inbox.offer(ack(""), t0, |_| panic!("an empty id is not offered"));
        assert_eq!((applied.clone(), inbox.len()), (vec!["a1".to_string()], 1));
        // a2's alert opens a minute later.
        open.push("a2".into());
        inbox.retry(t0 + Duration::from_secs(60), |a| {
            apply(&open, a, &mut applied)
        });
        assert_eq!(applied, vec!["a1".to_string(), "a2".to_string()]);
        assert!(inbox.is_empty());
        // One whose alert never opens is dropped after WAIT.
        inbox.offer(ack("gone"), t0, |a| apply(&open, a, &mut applied));
        inbox.retry(t0 + WAIT - Duration::from_secs(1), |_| false);
        assert_eq!(inbox.len(), 1);
        inbox.retry(t0 + WAIT, |_| false);
        assert!(inbox.is_empty());
    }

    #[test]
    fn the_waiting_room_is_bounded_oldest_first() {
        let t0 = Instant::now();
        let mut inbox = AckInbox::default();
        for i in 0..(MAX_WAITING + 3) {
            inbox.offer(ack(&format!("a{i}")), t0, |_| false);
        }
        assert_eq!(inbox.len(), MAX_WAITING);
        let mut first = None;
        inbox.retry(t0, |a| {
            first.get_or_insert(a.alert_id.clone());
            false
        });
        assert_eq!(first.as_deref(), Some("a3"));
    }
}
