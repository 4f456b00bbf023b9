//! Where received messages wait while the hand-off channel is full: in memory up to a cap,
//! then in the disk [`Spool`], and always handed on in the order they arrived.
//!
//! - `overflow`: in memory, handed on from the front; at most `memory` of them and
//!   `memory_bytes` of topics and payloads (a single larger message is let in alone) while
//!   the spool is in use (it is refilled from the spool one for one as it drains).
//! - the spool: messages beyond the memory cap, oldest first.
//! - `after_spool`: messages that arrived while older ones were in the spool but could not
//!   join them there (a write failed, e.g. a full disk). They follow the spooled messages, so
//!   a failed write never lets a newer message overtake older ones (MQTT requires QoS 1
//!   acknowledgements in the order of arrival, and the engine's reorder window is finite).
//!
//! The polling task reads from the socket only while [`Queue::can_take`]; see
//! [`crate::event_loop`].

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::client::Message;
use crate::event_loop::ConnectionStatus;
use crate::spool::Spool;

/// Where messages wait while the hand-off channel is full: up to `memory` messages and
/// `memory_bytes` bytes in memory, then in `spool` (if any). A plain number means that many
/// messages in memory, any size, and no spool.
#[derive(Debug)]
pub struct Backlog {
    /// Messages held in memory.
    pub memory: usize,
    /// Bytes (topics and payloads) held in memory.
    pub memory_bytes: usize,
    /// The disk spool for the rest.
    pub spool: Option<Spool>,
}

impl From<usize> for Backlog {
    fn from(memory: usize) -> Self {
        Backlog {
            memory,
            memory_bytes: usize::MAX,
            spool: None,
        }
    }
}

/// Bytes a message holds in memory (topic and payload).
pub fn message_bytes(m: &Message) -> usize {
    m.topic.len() + m.payload.len()
}

/// The backlog in use: see the module's documentation.
#[derive(Debug)]
pub(crate) struct Queue {
    cap: usize,
    cap_bytes: usize,
    /// Bytes of `overflow` and `after_spool`.
    bytes: usize,
    overflow: VecDeque<Message>,
    after_spool: VecDeque<Message>,
    spool: Option<Spool>,
    /// A spill episode has been logged (and its end not yet); at most one a minute.
    spilling: bool,
    last_spill_log: Option<Instant>,
}

impl Queue {
    pub(crate) fn new(b: Backlog) -> Self {
        Queue {
            cap: b.memory.max(1),
            cap_bytes: b.memory_bytes.max(1),
            bytes: 0,
            overflow: VecDeque::new(),
            after_spool: VecDeque::new(),
            spool: b.spool,
            spilling: false,
            last_spill_log: None,
        }
    }

    /// Nothing waits: a new message may go straight to the channel.
    pub(crate) fn is_empty(&self) -> bool {
        self.overflow.is_empty()
            && self.after_spool.is_empty()
            && self.spool.as_ref().is_none_or(Spool::is_empty)
    }

    /// Something is ready to hand on.
    pub(crate) fn has_next(&self) -> bool {
        !self.overflow.is_empty()
    }

    /// Messages held in memory.
    pub(crate) fn held(&self) -> usize {
        self.overflow.len() + self.after_spool.len()
    }

    /// Messages in the spool.
    pub(crate) fn spooled(&self) -> usize {
        self.spool.as_ref().map_or(0, Spool::len)
    }

    /// Bytes held in memory.
    pub(crate) fn held_bytes(&self) -> usize {
        self.bytes
    }

    fn memory_has_room(&self) -> bool {
        self.held() == 0 || (self.held() < self.cap && self.bytes < self.cap_bytes)
    }

    /// Another message may be read from the socket: memory has room, or the spool has.
    pub(crate) fn can_take(&self) -> bool {
        self.memory_has_room() || self.spool.as_ref().is_some_and(Spool::has_room)
    }

    fn keep(&mut self, m: Message, after: bool) {
        self.bytes += message_bytes(&m);
        if after {
            self.after_spool.push_back(m);
        } else {
            self.overflow.push_back(m);
        }
    }

    /// Keep `m` (it arrived while the channel was full or others were waiting).
    pub(crate) fn push(&mut self, m: Message, status: &ConnectionStatus) {
        if !self.after_spool.is_empty() {
            self.keep(m, true);
            return;
        }
        let spooled = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        let fits = self.overflow.is_empty()
            || (self.overflow.len() < self.cap && self.bytes + message_bytes(&m) <= self.cap_bytes);
        if fits && !spooled {
            self.keep(m, false);
            return;
        }
        let held = self.overflow.len();
        let Some(s) = self.spool.as_mut() else {
            // No spool: polling pauses at the cap (see `can_take`).
            self.keep(m, false);
            return;
        };
        match s.push(&m) {
            Ok(()) => {
                status.spilled.fetch_add(1, Ordering::Relaxed);
                status.spool_bytes.store(s.file_bytes(), Ordering::Relaxed);
                let log = !self.spilling
                    && self
                        .last_spill_log
                        .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
                if log {
                    self.spilling = true;
                    self.last_spill_log = Some(Instant::now());
                    tracing::warn!(
                        message = "Backlog beyond memory: further messages wait in the disk spool (still unacknowledged).",
                        held
                    );
                }
            }
            Err(error) => {
                status.spool_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(message = "Writing to the disk spool failed; the message is held in memory.", %error);
                let after = !s.is_empty();
                self.keep(m, after);
            }
        }
    }

    /// Take the oldest message, and refill memory from the spool.
    pub(crate) fn pop(&mut self, status: &ConnectionStatus) -> Option<Message> {
        let m = self.overflow.pop_front()?;
        self.bytes -= message_bytes(&m);
        if let Some(s) = self.spool.as_mut() {
            if !s.is_empty() {
                match s.pop() {
                    Ok(Some(next)) => {
                        self.bytes += message_bytes(&next);
                        self.overflow.push_back(next);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        status.spool_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(message = "Reading the disk spool failed; its messages stay unacknowledged, and the broker re-sends them after the next reconnect.", %error);
                    }
                }
                status.spool_bytes.store(s.file_bytes(), Ordering::Relaxed);
                if s.is_empty() && self.spilling {
                    self.spilling = false;
                    tracing::info!(message = "Disk spool drained.");
                }
            }
            if s.is_empty() {
                self.overflow.append(&mut self.after_spool);
            }
            if self.overflow.is_empty() {
                s.retry(); // a failed write (a full disk?) may be tried again
            }
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::AckHandle;
    use bytes::Bytes;

    fn msg(i: u16) -> Message {
        let topic = format!("sideline/v1/home/pod-{i}/position");
        let mut p = rumqttc::Publish::new(topic.clone(), rumqttc::QoS::AtLeastOnce, Vec::new());
        p.pkid = i;
        Message {
            topic,
            payload: Bytes::from(vec![i as u8; 10]),
            needs_ack: true,
            duplicate: false,
            ack: AckHandle::V4(p),
            connection: 1,
        }
    }

    fn pkid(m: &Message) -> u16 {
        match &m.ack {
            AckHandle::V4(p) => p.pkid,
            AckHandle::V5(p) => p.pkid,
        }
    }

    fn drain(q: &mut Queue, st: &ConnectionStatus) -> Vec<u16> {
        std::iter::from_fn(|| q.pop(st)).map(|m| pkid(&m)).collect()
    }

    /// A queue of `memory` messages with a 1-MiB spool in a new directory (kept alive by the
    /// returned guard) whose writes fail after `fail_after` messages when given.
    fn spooled(memory: usize, fail_after: Option<usize>) -> (tempfile::TempDir, Queue) {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(dir.path(), 1 << 20);
        if let Some(n) = fail_after {
            spool.fail_writes_after(n);
        }
        let q = Queue::new(Backlog {
            memory,
            memory_bytes: usize::MAX,
            spool: Some(spool),
        });
        (dir, q)
    }

    #[test]
    fn beyond_the_memory_bytes_messages_spill_and_the_bytes_are_counted_back() {
        let dir = tempfile::tempdir().unwrap();
        let st = ConnectionStatus::default();
        let each = message_bytes(&msg(1));
        // Room for 100 messages by count, 3 by bytes.
        let mut q = Queue::new(Backlog {
            memory: 100,
            memory_bytes: 3 * each,
            spool: Some(Spool::new(dir.path(), 1 << 20)),
        });
        for i in 1..=10 {
            q.push(msg(i), &st);
        }
        assert_eq!(q.held(), 3);
        assert_eq!(q.held_bytes(), 3 * each);
        assert_eq!(q.spooled(), 7);
        assert_eq!(drain(&mut q, &st), (1..=10).collect::<Vec<_>>());
        assert_eq!(q.held_bytes(), 0);
        // Without a spool, reading pauses at the byte cap.
        let mut q = Queue::new(Backlog {
            memory: 100,
            memory_bytes: 2 * each,
            spool: None,
        });
        q.push(msg(1), &st);
        assert!(q.can_take());
        q.push(msg(2), &st);
        assert!(!q.can_take(), "paused at the byte cap");
        // One message larger than the cap is still let in alone.
        let mut q = Queue::new(Backlog {
            memory: 100,
            memory_bytes: 1,
            spool: None,
        });
        assert!(q.can_take());
        q.push(msg(1), &st);
        assert!(!q.can_take());
    }

    #[test]
    fn memory_only_pauses_at_the_cap_and_keeps_the_order() {
        let st = ConnectionStatus::default();
        let mut q = Queue::new(Backlog::from(3));
        for i in 1..=3 {
            assert!(q.can_take());
            q.push(msg(i), &st);
        }
        assert!(!q.can_take(), "paused at the cap");
        assert_eq!(drain(&mut q, &st), vec![1, 2, 3]);
        assert!(q.is_empty() && q.can_take());
    }

    #[test]
    fn beyond_memory_messages_spill_and_come_back_in_order() {
        let st = ConnectionStatus::default();
        let (_dir, mut q) = spooled(2, None);
        for i in 1..=6 {
            assert!(q.can_take());
            q.push(msg(i), &st);
        }
        assert_eq!((q.held(), q.spooled()), (2, 4));
        assert_eq!(st.spilled.load(Ordering::Relaxed), 4);
        // Interleave: take two, more arrive, take the rest.
        assert_eq!(pkid(&q.pop(&st).unwrap()), 1);
        q.push(msg(7), &st);
        assert_eq!(drain(&mut q, &st), vec![2, 3, 4, 5, 6, 7]);
        assert!(q.is_empty());
        assert_eq!(st.spool_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_failed_spool_write_never_lets_a_newer_message_overtake_spooled_ones() {
        let st = ConnectionStatus::default();
        let (_dir, mut q) = spooled(2, Some(2));
        for i in 1..=4 {
            q.push(msg(i), &st);
        }
        assert_eq!(q.spooled(), 2, "3 and 4 in the spool");
        // The disk is full: 5 cannot join 3 and 4 there, nor can 6 (even were the disk freed).
        q.push(msg(5), &st);
        assert_eq!(st.spool_errors.load(Ordering::Relaxed), 1);
        assert!(!q.can_take(), "memory full and the spool failing: paused");
        q.push(msg(6), &st);
        assert_eq!(
            st.spool_errors.load(Ordering::Relaxed),
            1,
            "no write tried for 6"
        );
        assert_eq!(drain(&mut q, &st), vec![1, 2, 3, 4, 5, 6]);
        assert!(q.is_empty() && q.can_take());
    }

    #[test]
    fn a_failed_first_spill_keeps_the_message_in_memory_in_order() {
        let st = ConnectionStatus::default();
        let (_dir, mut q) = spooled(1, Some(0));
        q.push(msg(1), &st);
        q.push(msg(2), &st);
        assert!(!q.can_take());
        assert_eq!(drain(&mut q, &st), vec![1, 2]);
        assert!(
            q.can_take(),
            "the spool may be tried again once memory has emptied"
        );
    }
}
