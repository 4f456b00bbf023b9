//! The durable outbox: one FIFO directory per destination, so a message decided is a message
//! sent, across crashes and restarts, in the order it was decided.
//!
//! Layout under the root: `<destination>/pending/<seq>.json` (a rendered message waiting to be
//! delivered; written to a temporary file, fsync'd, renamed, directory fsync'd),
//! `<destination>/ledger` (every idempotency key ever enqueued, appended and fsync'd after the
//! message file; at open, the keys of pending files are added back, so a crash between the two
//! cannot let a key through twice), `<destination>/failed/` (messages given up, with the reason
//! beside them). Delivered messages are deleted. The ledger keeps the newest
//! [`LEDGER_KEEP`] keys when it is compacted at open.
//!
//! Limits: a full disk makes `enqueue` fail (the caller keeps the message in memory and tries
//! again, and reports not ready); nothing already in the outbox is lost.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Keys kept when the ledger is compacted.
pub const LEDGER_KEEP: usize = 200_000;

/// What went wrong with the outbox's files (always retryable: disk full, permissions).
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A file operation failed.
    #[error("outbox {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A pending file is not a message (hand-edited, or a torn write of an old version).
    #[error("outbox {0}: not a pending message")]
    Corrupt(PathBuf),
    /// No such destination.
    #[error("outbox has no destination {0}")]
    Unknown(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A message waiting for delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Idempotency keys it carries.
    pub keys: Vec<String>,
    /// The exact body to POST.
    pub body: String,
    /// When the router formed it (µs since the epoch, wall clock).
    pub formed_us: i64,
    /// Players it mentions (for logs).
    pub players: Vec<String>,
}

/// What waits for a destination.
#[derive(Debug)]
pub struct Waiting {
    /// The oldest message and its file.
    pub next: Option<(PathBuf, Pending)>,
    /// Messages waiting (a corrupt one set aside meanwhile still counted).
    pub count: usize,
}

#[derive(Debug)]
struct DestBox {
    dir: PathBuf,
    next_seq: u64,
    ledger: HashSet<String>,
    ledger_file: File,
}

/// The outbox.
#[derive(Debug)]
pub struct Outbox {
    dests: Mutex<BTreeMap<String, DestBox>>,
}

fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io(dir))
}

fn pending_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, OutboxError> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let p = e.map_err(io(dir))?.path();
        let seq = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(s) = seq {
            v.push((s, p));
        }
    }
    v.sort();
    Ok(v)
}

impl Outbox {
    /// Open (creating) the outbox at `root` for `destinations`.
    pub fn open(root: &Path, destinations: &[String]) -> Result<Outbox, OutboxError> {
        let mut dests = BTreeMap::new();
        for d in destinations {
            let dir = root.join(d);
            for sub in ["pending", "failed"] {
                let p = dir.join(sub);
                std::fs::create_dir_all(&p).map_err(io(&p))?;
            }
            let lp = dir.join("ledger");
            let text = match std::fs::read_to_string(&lp) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(io(&lp)(e)),
            };
            let mut keys: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
            if keys.len() > LEDGER_KEEP {
                keys.drain(..keys.len() - LEDGER_KEEP);
                let tmp = dir.join("ledger.tmp");
                std::fs::write(&tmp, keys.join("\n") + "\n").map_err(io(&tmp))?;
                File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(io(&tmp))?;
                std::fs::rename(&tmp, &lp).map_err(io(&lp))?;
            }
            let mut ledger: HashSet<String> = keys.into_iter().map(String::from).collect();
            let pending = pending_files(&dir.join("pending"))?;
            for (_, p) in &pending {
                if let Ok(m) = read(p) {
                    ledger.extend(m.keys);
                }
            }
            let next_seq = pending.last().map_or(0, |(s, _)| s + 1).max(now_seq());
            let ledger_file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&lp)
                .map_err(io(&lp))?;
            dests.insert(
                d.clone(),
                DestBox {
                    dir,
                    next_seq,
                    ledger,
                    ledger_file,
                },
            );
        }
        Ok(Outbox {
            dests: Mutex::new(dests),
        })
    }

    fn with<T>(
        &self,
        dest: &str,
        f: impl FnOnce(&mut DestBox) -> Result<T, OutboxError>,
    ) -> Result<T, OutboxError> {
        let mut g = self.dests.lock().unwrap_or_else(|p| p.into_inner());
        let d = g
            .get_mut(dest)
            .ok_or_else(|| OutboxError::Unknown(dest.to_string()))?;
        f(d)
    }

    /// Has `key` been enqueued for `dest` before?
    pub fn seen(&self, dest: &str, key: &str) -> bool {
        self.with(dest, |d| Ok(d.ledger.contains(key)))
            .unwrap_or(false)
    }

    /// Store `m` durably at the end of `dest`'s queue.
    pub fn enqueue(&self, dest: &str, m: &Pending) -> Result<(), OutboxError> {
        self.with(dest, |d| {
            let pending = d.dir.join("pending");
            let path = pending.join(format!("{:020}.json", d.next_seq));
            let tmp = pending.join(format!("{:020}.tmp", d.next_seq));
            let text = serde_json::to_vec(m).map_err(|_| OutboxError::Corrupt(path.clone()))?;
            let mut f = File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&text).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            sync_dir(&pending)?;
            d.next_seq += 1;
            let mut lines = String::new();
            for k in &m.keys {
                lines.push_str(k);
                lines.push('\n');
            }
            let lp = d.dir.join("ledger");
            d.ledger_file.write_all(lines.as_bytes()).map_err(io(&lp))?;
            d.ledger_file.sync_data().map_err(io(&lp))?;
            d.ledger.extend(m.keys.iter().cloned());
            Ok(())
        })
    }

    /// The oldest waiting message of `dest`, and how many wait (one directory listing).
    pub fn peek(&self, dest: &str) -> Result<Waiting, OutboxError> {
        let dir = self.with(dest, |d| Ok(d.dir.join("pending")))?;
        let files = pending_files(&dir)?;
        let count = files.len();
        for (_, p) in files {
            match read(&p) {
                Ok(m) => {
                    return Ok(Waiting {
                        next: Some((p, m)),
                        count,
                    });
                }
                Err(e) => {
                    // Not deliverable as it is: set aside, never retried in a loop.
                    self.give_up(&p, "corrupt")?;
                    tracing::error!(message = "Outbox file set aside.", error = %e);
                }
            }
        }
        Ok(Waiting { next: None, count })
    }

    /// `path` was delivered.
    pub fn done(&self, path: &Path) -> Result<(), OutboxError> {
        std::fs::remove_file(path).map_err(io(path))
    }

    /// `path` will never be delivered: moved to `failed/` with `reason` beside it.
    pub fn give_up(&self, path: &Path, reason: &str) -> Result<(), OutboxError> {
        let (Some(dir), Some(name)) = (path.parent().and_then(Path::parent), path.file_name())
        else {
            return Err(OutboxError::Corrupt(path.to_path_buf()));
        };
        let to = dir.join("failed").join(name);
        std::fs::rename(path, &to).map_err(io(&to))?;
        let why = to.with_extension("reason");
        std::fs::write(&why, format!("{reason}\n")).map_err(io(&why))
    }

    /// Messages waiting for `dest`.
    pub fn pending(&self, dest: &str) -> usize {
        self.with(dest, |d| Ok(pending_files(&d.dir.join("pending"))?.len()))
            .unwrap_or(0)
    }
}

fn read(p: &Path) -> Result<Pending, OutboxError> {
    let text = std::fs::read(p).map_err(io(p))?;
    serde_json::from_slice(&text).map_err(|_| OutboxError::Corrupt(p.to_path_buf()))
}

/// Sequence numbers start from the wall clock in µs, so that a wiped and recreated queue
/// never reuses a number that sorts before files a backup might restore.
fn now_seq() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(keys: &[&str]) -> Pending {
        Pending {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            body: format!("{{\"k\":{keys:?}}}"),
            formed_us: 1,
            players: vec!["p1".into()],
        }
    }

    #[test]
    fn messages_come_out_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let dests = vec!["slack".to_string()];
        let o = Outbox::open(dir.path(), &dests).unwrap();
        for k in ["a", "b", "c"] {
            o.enqueue("slack", &msg(&[k])).unwrap();
        }
        let (p, m) = o.peek("slack").unwrap().next.unwrap();
        assert_eq!(m.keys, ["a"]);
        o.done(&p).unwrap();
        drop(o);
        let o = Outbox::open(dir.path(), &dests).unwrap();
        assert!(o.seen("slack", "a") && o.seen("slack", "c") && !o.seen("slack", "d"));
        assert_eq!(o.pending("slack"), 2);
        o.enqueue("slack", &msg(&["d"])).unwrap();
        let order: Vec<String> = std::iter::from_fn(|| {
            let (p, m) = o.peek("slack").unwrap().next?;
            o.done(&p).unwrap();
            Some(m.keys[0].clone())
        })
        .collect();
        assert_eq!(order, ["b", "c", "d"]);
    }

    #[test]
    fn a_crash_before_the_ledger_write_still_knows_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let dests = vec!["teams".to_string()];
        let o = Outbox::open(dir.path(), &dests).unwrap();
        o.enqueue("teams", &msg(&["x"])).unwrap();
        drop(o);
        std::fs::write(dir.path().join("teams/ledger"), "").unwrap();
        let o = Outbox::open(dir.path(), &dests).unwrap();
        assert!(o.seen("teams", "x"));
    }

    #[test]
    fn a_corrupt_or_refused_message_is_set_aside_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let dests = vec!["d".to_string()];
        let o = Outbox::open(dir.path(), &dests).unwrap();
        std::fs::write(dir.path().join("d/pending/00000000000000000001.json"), "{").unwrap();
        o.enqueue("d", &msg(&["ok"])).unwrap();
        let (p, m) = o.peek("d").unwrap().next.unwrap();
        assert_eq!(m.keys, ["ok"]);
        o.give_up(&p, "rejected_4xx: 400 invalid_blocks").unwrap();
        assert!(o.peek("d").unwrap().next.is_none());
        let failed: Vec<_> = std::fs::read_dir(dir.path().join("d/failed"))
            .unwrap()
            .collect();
        assert_eq!(failed.len(), 4, "two messages and two reasons");
        assert!(matches!(
            o.enqueue("nope", &msg(&["z"])),
            Err(OutboxError::Unknown(_))
        ));
    }
}
