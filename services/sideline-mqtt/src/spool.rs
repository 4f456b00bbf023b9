//! The disk spool: messages received beyond the polling task's in-memory overflow, kept in
//! arrival order in an unlinked temporary file so that the task can go on polling (and so keep
//! the connection alive) while its consumer is slow.
//!
//! Nothing here is acknowledged: a spooled message is still unacknowledged at the broker, so
//! if the process dies the broker re-sends it, and the file (already unlinked) simply
//! disappears. Hence no fsync: the spool is a place to keep memory bounded, not a log.
//!
//! Record layout (little-endian): `u32` length of the rest; `u8` protocol (4 or 5); `u8`
//! flags (bit 0 needs an acknowledgement, bit 1 DUP); `u8` QoS; `u16` packet id; `u64`
//! connection; `u16` topic length; topic; payload. An MQTT 5 message's publish properties are
//! not kept (nothing downstream reads them; the acknowledgement needs only id and QoS).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use bytes::Bytes;
use rumqttc::QoS;

use crate::client::{AckHandle, Message};

/// Bytes of a record before its topic.
const HEAD: usize = 4 + 1 + 1 + 1 + 2 + 8 + 2;

/// A first-in, first-out queue of messages in a file of at most `max_bytes`.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    file: Option<File>,
    read: u64,
    write: u64,
    count: usize,
    failed: bool,
    /// Test hook: writes fail once this many more have succeeded (a full disk).
    #[cfg(test)]
    writes_left: Option<usize>,
}

fn qos_byte(q: QoS) -> u8 {
    match q {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("spool record: {what}"))
}

impl Spool {
    /// A spool whose file (created on first use) lives in `dir` and grows to `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Spool {
            dir: dir.into(),
            max_bytes,
            file: None,
            read: 0,
            write: 0,
            count: 0,
            failed: false,
            #[cfg(test)]
            writes_left: None,
        }
    }

    /// Test hook: let `n` more writes succeed, then fail every one (a full disk).
    #[cfg(test)]
    pub(crate) fn fail_writes_after(&mut self, n: usize) {
        self.writes_left = Some(n);
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the file now (it shrinks to nothing whenever the spool empties).
    pub fn file_bytes(&self) -> u64 {
        self.write
    }

    /// Whether another message may be written: the file is under `max_bytes`, and no write
    /// has failed since the last [`Spool::retry`] (e.g. a full disk).
    pub fn has_room(&self) -> bool {
        !self.failed && self.write < self.max_bytes
    }

    /// Allow writing again after a failed write.
    pub fn retry(&mut self) {
        self.failed = false;
    }

    /// Append `m`. On error nothing was added, and [`Spool::has_room`] is false until
    /// [`Spool::retry`].
    pub fn push(&mut self, m: &Message) -> io::Result<()> {
        let r = self.append(m);
        self.failed |= r.is_err();
        r
    }

    fn append(&mut self, m: &Message) -> io::Result<()> {
        #[cfg(test)]
        if let Some(n) = self.writes_left.as_mut() {
            if *n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "test: disk full",
                ));
            }
            *n -= 1;
        }
        let (protocol, qos, pkid) = match &m.ack {
            AckHandle::V4(p) => (4u8, qos_byte(p.qos), p.pkid),
            AckHandle::V5(p) => (5u8, p.qos as u8, p.pkid),
        };
        let topic = m.topic.as_bytes();
        let topic_len = u16::try_from(topic.len()).map_err(|_| invalid("topic too long"))?;
        let rest = HEAD - 4 + topic.len() + m.payload.len();
        let rest = u32::try_from(rest).map_err(|_| invalid("payload too large"))?;
        let mut buf = Vec::with_capacity(HEAD + topic.len() + m.payload.len());
        buf.extend_from_slice(&rest.to_le_bytes());
        buf.push(protocol);
        buf.push(u8::from(m.needs_ack) | (u8::from(m.duplicate) << 1));
        buf.push(qos);
        buf.extend_from_slice(&pkid.to_le_bytes());
        buf.extend_from_slice(&m.connection.to_le_bytes());
        buf.extend_from_slice(&topic_len.to_le_bytes());
        buf.extend_from_slice(topic);
        buf.extend_from_slice(&m.payload);
        if self.file.is_none() {
            self.file = Some(tempfile::tempfile_in(&self.dir)?);
        }
        let Some(file) = &self.file else {
            return Err(invalid("no file"));
        };
        file.write_all_at(&buf, self.write)?;
        self.write += buf.len() as u64;
        self.count += 1;
        Ok(())
    }

    /// Take the oldest message. On error the spool is emptied (its messages stay
    /// unacknowledged at the broker, which re-sends them on the next connection).
    pub fn pop(&mut self) -> io::Result<Option<Message>> {
        if self.count == 0 {
            return Ok(None);
        }
        let r = self.read_one();
        if r.is_err() || self.count == 0 {
            self.clear();
        }
        r.map(Some)
    }

    fn read_one(&mut self) -> io::Result<Message> {
        let file = self.file.as_ref().ok_or_else(|| invalid("no file"))?;
        let mut len = [0u8; 4];
        file.read_exact_at(&mut len, self.read)?;
        let rest = u32::from_le_bytes(len) as usize;
        if rest < HEAD - 4 {
            return Err(invalid("too short"));
        }
        let mut buf = vec![0u8; rest];
        file.read_exact_at(&mut buf, self.read + 4)?;
        let (protocol, flags, qos) = (buf[0], buf[1], buf[2]);
        let pkid = u16::from_le_bytes([buf[3], buf[4]]);
        let mut conn = [0u8; 8];
        conn.copy_from_slice(&buf[5..13]);
        let topic_len = u16::from_le_bytes([buf[13], buf[14]]) as usize;
        let topic = buf
            .get(15..15 + topic_len)
            .ok_or_else(|| invalid("topic past the end"))?;
        let topic = String::from_utf8(topic.to_vec()).map_err(|_| invalid("topic not UTF-8"))?;
        let payload = Bytes::copy_from_slice(&buf[15 + topic_len..]);
        let ack = match (protocol, qos) {
            (4, q) => {
                let q = match q {
                    0 => QoS::AtMostOnce,
                    1 => QoS::AtLeastOnce,
                    2 => QoS::ExactlyOnce,
                    _ => return Err(invalid("QoS")),
                };
                let mut p = rumqttc::Publish::new(topic.clone(), q, Vec::new());
                p.pkid = pkid;
                p.dup = flags & 2 != 0;
                AckHandle::V4(p)
            }
            (5, q) => {
                use rumqttc::v5::mqttbytes::QoS as Q5;
                let q = match q {
                    0 => Q5::AtMostOnce,
                    1 => Q5::AtLeastOnce,
                    2 => Q5::ExactlyOnce,
                    _ => return Err(invalid("QoS")),
                };
                let mut p =
                    rumqttc::v5::mqttbytes::v5::Publish::new(topic.clone(), q, Bytes::new(), None);
                p.pkid = pkid;
                p.dup = flags & 2 != 0;
                AckHandle::V5(p)
            }
            _ => return Err(invalid("protocol")),
        };
        self.read += 4 + rest as u64;
        self.count -= 1;
        Ok(Message {
            topic,
            payload,
            needs_ack: flags & 1 != 0,
            duplicate: flags & 2 != 0,
            ack,
            connection: u64::from_le_bytes(conn),
        })
    }

    /// Forget every message and give the disk space back.
    pub fn clear(&mut self) {
        self.read = 0;
        self.write = 0;
        self.count = 0;
        if self.file.as_ref().is_some_and(|f| f.set_len(0).is_err()) {
            // Not truncated: drop the (unlinked) file; the next write starts a new one.
            self.file = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: u16, v5: bool) -> Message {
        let topic = format!("sideline/v1/home/pod-{i}/position");
        let payload = Bytes::from(vec![i as u8; usize::from(i) * 3]);
        let ack = if v5 {
            let mut p = rumqttc::v5::mqttbytes::v5::Publish::new(
                topic.clone(),
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                payload.clone(),
                None,
            );
            p.pkid = i;
            AckHandle::V5(p)
        } else {
            let mut p = rumqttc::Publish::new(topic.clone(), QoS::AtLeastOnce, payload.to_vec());
            p.pkid = i;
            p.dup = i.is_multiple_of(2);
            AckHandle::V4(p)
        };
        Message {
            topic,
            payload,
            needs_ack: !i.is_multiple_of(3),
            duplicate: i.is_multiple_of(2),
            ack,
            connection: u64::from(i) * 1_000_000_007,
        }
    }

    fn same(a: &Message, b: &Message) {
        assert_eq!(a.topic, b.topic);
        assert_eq!(a.payload, b.payload);
        assert_eq!((a.needs_ack, a.duplicate), (b.needs_ack, b.duplicate));
        assert_eq!(a.connection, b.connection);
        match (&a.ack, &b.ack) {
            (AckHandle::V4(x), AckHandle::V4(y)) => {
                assert_eq!((x.pkid, x.qos, x.dup), (y.pkid, y.qos, y.dup));
            }
            (AckHandle::V5(x), AckHandle::V5(y)) => {
                assert_eq!((x.pkid, x.qos), (y.pkid, y.qos));
            }
            _ => panic!("protocol changed"),
        }
    }

    #[test]
    fn messages_come_back_in_order_and_the_file_empties() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path(), 1 << 20);
        assert!(s.pop().unwrap().is_none());
        let all: Vec<Message> = (0..300).map(|i| msg(i, i % 4 == 1)).collect();
        // Interleave writes and reads, as the polling task does.
        let mut out = Vec::new();
        for (k, m) in all.iter().enumerate() {
            s.push(m).unwrap();
            if k % 3 == 2 {
                out.push(s.pop().unwrap().unwrap());
            }
        }
        assert!(s.file_bytes() > 0);
        while let Some(m) = s.pop().unwrap() {
            out.push(m);
        }
        assert_eq!(out.len(), all.len());
        for (a, b) in all.iter().zip(&out) {
            same(a, b);
        }
        assert!(s.is_empty());
        assert_eq!(s.file_bytes(), 0, "the file is truncated once empty");
        // The file is unlinked: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_size_limit_is_reported_and_an_unwritable_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path(), 200);
        let mut pushed = 0;
        while s.has_room() {
            s.push(&msg(20, false)).unwrap();
            pushed += 1;
        }
        assert!(pushed >= 2 && s.file_bytes() >= 200, "{pushed}");
        let mut bad = Spool::new(dir.path().join("missing"), 1 << 20);
        assert!(bad.has_room());
        assert!(bad.push(&msg(1, false)).is_err());
        assert!(bad.is_empty());
        assert!(!bad.has_room(), "no more tries until retry()");
        bad.retry();
        assert!(bad.has_room());
    }
}
