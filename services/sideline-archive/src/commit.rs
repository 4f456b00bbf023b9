//! One commit of the archiver's buffer — the rows finished into record batches (a metrics
//! batch is sorted), written as Parquet and committed with the offsets they cover — run either
//! on the caller's thread ([`crate::Archiver::flush`]) or on the archiver's commit thread
//! ([`Writer`], for [`crate::Archiver::flush_behind`]) while the caller decodes the next
//! records: on two cores the commit's Parquet encoding and compression then overlap the decode.
//!
//! At most one commit runs at a time, and a failed one hands its finished batches back, so
//! they are committed with the next: the archive's commit protocol ([`crate::store`]) is
//! unchanged — files and offsets become visible together or not at all.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::archiver::Flushed;
use crate::metric_rows::Spare;
use crate::metrics::ArchiveMetrics;
use crate::schema::{PartKey, Rows, Table};
use crate::store::{ArchiveError, Covered, Part, Store};

/// Committed offsets by topic, then partition.
pub(crate) type Offsets = BTreeMap<String, BTreeMap<i32, i64>>;

/// The store, shared between the archiver and its commit thread.
pub(crate) type SharedStore = Arc<Mutex<Store>>;

/// Lock the store (a commit that panicked left it consistent: its state is only updated after
/// a manifest is written).
pub(crate) fn lock(s: &SharedStore) -> MutexGuard<'_, Store> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything one commit writes.
#[derive(Debug)]
pub(crate) struct Job {
    /// Buffered rows by table and partition directory.
    pub tables: Vec<((Table, PartKey), Rows)>,
    /// Batches of an earlier commit that failed.
    pub ready: Vec<Part>,
    /// The offsets the rows cover.
    pub offsets: Vec<Covered>,
    /// Rows in all.
    pub rows: usize,
}

/// What became of a [`Job`], and the metrics rows' float buffers for reuse.
#[derive(Debug)]
pub(crate) struct Done {
    /// The outcome.
    pub outcome: Outcome,
    /// Emptied buffers of the finished rows.
    pub spare: Spare,
}

/// The outcome of a [`Job`].
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Committed; the store's offsets after it.
    Committed(Flushed, Offsets),
    /// Nothing visible; the batches (to commit with the next job) and the error.
    Failed(ArchiveError, Vec<Part>),
}

impl Job {
    /// Finish the rows and commit them.
    pub fn run(self, store: &SharedStore, metrics: &ArchiveMetrics) -> Done {
        let mut spare = Spare::default();
        let outcome = self.commit(store, metrics, &mut spare);
        Done { outcome, spare }
    }

    fn commit(self, store: &SharedStore, metrics: &ArchiveMetrics, spare: &mut Spare) -> Outcome {
        let mut parts = self.ready;
        for ((table, key), mut rows) in self.tables {
            if rows.is_empty() {
                continue;
            }
            match rows.finish_into(spare) {
                Ok(batch) => parts.push(Part { table, key, batch }),
                // A bug (the builders disagree with the schema); fatal for the caller.
                Err(e) => return Outcome::Failed(e.into(), parts),
            }
        }
        let started = Instant::now();
        let mut s = lock(store);
        match s.commit(&parts, &self.offsets) {
            Ok(bytes) => {
                for p in &parts {
                    metrics.rows(p.table, p.batch.num_rows());
                }
                metrics.commit(started.elapsed(), bytes, parts.len());
                let f = Flushed {
                    rows: self.rows,
                    files: parts.len(),
                    bytes,
                };
                Outcome::Committed(f, s.committed_by_topic().clone())
            }
            Err(e) => {
                metrics.commit_failures.inc();
                Outcome::Failed(e, parts)
            }
        }
    }
}

/// The archiver's commit thread: jobs in, outcomes out, one at a time.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Start the thread.
    pub fn spawn(store: SharedStore, metrics: ArchiveMetrics) -> std::io::Result<Writer> {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let (tx, done) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("archive-commit".into())
            .spawn(move || {
                for job in rx {
                    if tx.send(job.run(&store, &metrics)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Writer {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Hand a job over; if the thread is gone (it panicked), the job comes back.
    pub fn send(&self, job: Job) -> Result<(), Job> {
        match &self.jobs {
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }

    /// The outcome of the job handed over, waiting for it.
    pub fn wait(&self) -> Result<Done, ArchiveError> {
        self.done.recv().map_err(|_| ArchiveError::CommitThread)
    }

    /// The outcome of the job handed over, if it has finished.
    pub fn try_wait(&self) -> Option<Result<Done, ArchiveError>> {
        match self.done.try_recv() {
            Ok(d) => Some(Ok(d)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(ArchiveError::CommitThread)),
        }
    }
}

impl Drop for Writer {
    /// A commit under way is finished before the archiver goes (it is one step: stopping the
    /// thread half-way would only leave a staging directory for the next open to clean).
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
