//! The archive's commit protocol: Parquet files become visible together with the Kafka offsets
//! they cover, or not at all — in a local directory or on an object store ([`crate::backend`]).
//!
//! Layout under the root:
//!
//! - `<table>/team=<t>/date=<d>/session=<s>/part-<commit>[-<k>].parquet`: the data (what SQL
//!   reads; `-<k>` when one commit writes several files to a directory);
//! - `_commits/<commit>.json`: one manifest per commit (its files and, per topic partition,
//!   the last offset it covers); `_commits/_checkpoint.json` folds old manifests together;
//! - `_staging/<commit>/…`: files being written.
//!
//! A commit: (1) write every file under `_staging/<commit>/` (durably); (2) write the manifest
//! atomically — this is the commit point; (3) move the files into place; (4) remove the
//! staging directory. On open, a staging directory with a manifest is rolled forward (its
//! remaining files moved), one without is rolled back (deleted). The offsets are the maximum
//! over the manifests, so the archive itself says where to resume, whatever Kafka's committed
//! offsets say. Readers list only the table directories, so they never see a staged file.
//!
//! Limits: a full disk, an unreachable object store or any I/O error fails the commit
//! (retryable): nothing becomes visible, the staging directory is removed and the caller keeps
//! its rows and tries again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Encoding;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, BackendError, Options};
use crate::schema::{LAYOUT_COMPACT, LAYOUT_KEY};
use crate::schema::{PartKey, Table};

/// Why an archive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A storage operation failed (disk full, permissions, the object store unreachable...).
    /// Retryable, but for a bad archive URL.
    #[error("{0}")]
    Storage(#[from] BackendError),
    /// Writing Parquet failed. Retryable if the cause was I/O.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Building rows failed (a bug). Fatal.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The commit thread stopped (it panicked: a bug). Fatal: the rows it held were never
    /// committed, and Kafka redelivers them after a restart.
    #[error("the archive's commit thread stopped; its rows are re-read from Kafka after a restart")]
    CommitThread,
    /// A manifest is unreadable. Fatal: the archive needs a person.
    #[error("manifest {path}: {detail}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

impl ArchiveError {
    /// Can trying again help?
    pub fn retryable(&self) -> bool {
        match self {
            ArchiveError::Storage(e) => !matches!(e, BackendError::Url { .. }),
            ArchiveError::Parquet(_) => true,
            ArchiveError::Arrow(_) | ArchiveError::Manifest { .. } | ArchiveError::CommitThread => {
                false
            }
        }
    }
}

/// The last offset committed for one topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Covered {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Last offset (inclusive).
    pub last: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    id: String,
    files: Vec<String>,
    offsets: Vec<Covered>,
}

/// One file to commit.
#[derive(Debug)]
pub struct Part {
    /// Table.
    pub table: Table,
    /// Partition directory.
    pub key: PartKey,
    /// Rows.
    pub batch: RecordBatch,
}

/// Where a commit stops (fault injection for tests: the process "dies" after this step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Files staged, no manifest.
    Staged,
    /// Manifest written, files not moved.
    Manifested,
    /// Everything.
    Done,
}

/// An archive: a directory or an object-store prefix.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    backend: Backend,
    offsets: BTreeMap<(String, i32), i64>,
    /// The same offsets by topic, for [`Store::committed`] (asked once per record: no key
    /// built for it).
    by_topic: BTreeMap<String, BTreeMap<i32, i64>>,
    counter: u64,
    manifests: usize,
}

/// Manifests beyond this many are folded into the checkpoint.
const FOLD_AFTER: usize = 200;
const CHECKPOINT: &str = "_checkpoint.json";
const COMMITS: &str = "_commits";
const STAGING: &str = "_staging";

impl Store {
    /// Open (creating) the archive at `root` — a directory or an `s3://bucket/prefix` URL —
    /// and recover any interrupted commit.
    pub fn open(root: &Path) -> Result<Store, ArchiveError> {
        Store::open_with(root, &Options::new())
    }

    /// [`Store::open`] with object-store settings.
    pub fn open_with(root: &Path, opts: &Options) -> Result<Store, ArchiveError> {
        let mut s = Store {
            root: root.to_path_buf(),
            backend: Backend::open(root, opts)?,
            offsets: BTreeMap::new(),
            by_topic: BTreeMap::new(),
            counter: 0,
            manifests: 0,
        };
        s.recover()?;
        Ok(s)
    }

    /// The root directory (or URL).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The last committed offset of a topic partition.
    pub fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        self.by_topic.get(topic)?.get(&partition).copied()
    }

    /// Every committed offset, by topic then partition.
    pub fn committed_by_topic(&self) -> &BTreeMap<String, BTreeMap<i32, i64>> {
        &self.by_topic
    }

    /// Every committed offset.
    pub fn offsets(&self) -> &BTreeMap<(String, i32), i64> {
        &self.offsets
    }

    /// Re-read the manifests (another instance may have committed to a shared directory).
    pub fn refresh(&mut self) -> Result<(), ArchiveError> {
        self.recover()
    }

    fn recover(&mut self) -> Result<(), ArchiveError> {
        let b = &self.backend;
        if b.exists(&format!("{COMMITS}/{CHECKPOINT}"))? {
            let m = self.read_manifest(CHECKPOINT)?;
            self.absorb(&m);
        }
        let mut ids = Vec::new();
        for name in self.backend.list(COMMITS)? {
            if let Some(id) = name.strip_suffix(".json")
                && name != CHECKPOINT
            {
                let m = self.read_manifest(&name)?;
                self.roll_forward(&m)?;
                self.absorb(&m);
                ids.push(id.to_string());
            } else if name.ends_with(".tmp") {
                let _ = self.backend.remove(&format!("{COMMITS}/{name}"));
            }
        }
        // Staging directories without a manifest never committed.
        for id in self.backend.list(STAGING)? {
            if !ids.contains(&id) {
                tracing::info!(message = "Rolling back an unfinished archive commit.", commit = %id);
                self.backend.remove_tree(&format!("{STAGING}/{id}"))?;
            }
        }
        self.manifests = ids.len();
        if self.manifests > FOLD_AFTER {
            self.fold(&ids)?;
        }
        Ok(())
    }

    fn absorb(&mut self, m: &Manifest) {
        for c in &m.offsets {
            let e = self
                .offsets
                .entry((c.topic.clone(), c.partition))
                .or_insert(c.last);
            *e = (*e).max(c.last);
            let last = *e;
            self.by_topic
                .entry(c.topic.clone())
                .or_default()
                .insert(c.partition, last);
        }
    }

    fn roll_forward(&self, m: &Manifest) -> Result<(), ArchiveError> {
        let dir = format!("{STAGING}/{}", m.id);
        for rel in &m.files {
            let from = format!("{dir}/{rel}");
            if self.backend.exists(&from)? {
                self.backend.rename(&from, rel)?;
            }
        }
        Ok(self.backend.remove_tree(&dir)?)
    }

    /// Fold every manifest into the checkpoint (which is written first).
    fn fold(&mut self, ids: &[String]) -> Result<(), ArchiveError> {
        let m = Manifest {
            id: "checkpoint".into(),
            files: vec![],
            offsets: self
                .offsets
                .iter()
                .map(|((topic, partition), last)| Covered {
                    topic: topic.clone(),
                    partition: *partition,
                    last: *last,
                })
                .collect(),
        };
        self.write_manifest(CHECKPOINT, &m)?;
        for id in ids {
            self.backend.remove(&format!("{COMMITS}/{id}.json"))?;
        }
        self.manifests = 0;
        Ok(())
    }

    /// Commit `parts` together with the offsets they cover. Returns the bytes written.
    pub fn commit(&mut self, parts: &[Part], offsets: &[Covered]) -> Result<u64, ArchiveError> {
        self.commit_until(parts, offsets, Step::Done)
    }

    /// [`Store::commit`], stopping after `step` (tests).
    pub fn commit_until(
        &mut self,
        parts: &[Part],
        offsets: &[Covered],
        step: Step,
    ) -> Result<u64, ArchiveError> {
        self.counter += 1;
        let id = format!(
            "{:013}-{}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            std::process::id(),
            self.counter
        );
        let stage = format!("{STAGING}/{id}");
        let (files, bytes) = match self.stage(&stage, &id, parts) {
            Ok(x) => x,
            Err(e) => {
                let _ = self.backend.remove_tree(&stage);
                return Err(e);
            }
        };
        if step == Step::Staged {
            return Ok(bytes);
        }
        let m = Manifest {
            id: id.clone(),
            files,
            offsets: offsets.to_vec(),
        };
        if let Err(e) = self.write_manifest(&format!("{id}.json"), &m) {
            let _ = self.backend.remove_tree(&stage);
            return Err(e);
        }
        self.absorb(&m);
        self.manifests += 1;
        if step == Step::Manifested {
            return Ok(bytes);
        }
        // Past the commit point: a failure here is finished by the next open.
        self.roll_forward(&m)?;
        if self.manifests > FOLD_AFTER {
            let ids = self.manifest_ids()?;
            self.fold(&ids)?;
        }
        Ok(bytes)
    }

    fn manifest_ids(&self) -> Result<Vec<String>, ArchiveError> {
        let names = self.backend.list(COMMITS)?;
        Ok(names
            .iter()
            .filter(|n| n.as_str() != CHECKPOINT)
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .collect())
    }

    fn stage(
        &self,
        stage: &str,
        id: &str,
        parts: &[Part],
    ) -> Result<(Vec<String>, u64), ArchiveError> {
        let props = writer_props(None);
        let mut files = Vec::new();
        let mut bytes = 0;
        for p in parts {
            // Two parts of one directory (rows of a failed commit, and rows since) get two
            // files.
            let mut rel = format!("{}/{}/part-{id}.parquet", p.table.name(), p.key.dir());
            let mut k = 1;
            while files.contains(&rel) {
                rel = format!("{}/{}/part-{id}-{k}.parquet", p.table.name(), p.key.dir());
                k += 1;
            }
            let schema = p.batch.schema();
            let compact =
                schema.metadata().get(LAYOUT_KEY).map(String::as_str) == Some(LAYOUT_COMPACT);
            let props = if compact {
                writer_props(Some(&schema))
            } else {
                props.clone()
            };
            let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(props))?;
            w.write(&p.batch)?;
            let buf = w.into_inner()?;
            bytes += buf.len() as u64;
            self.backend.put(&format!("{stage}/{rel}"), buf)?;
            files.push(rel);
        }
        Ok((files, bytes))
    }

    fn read_manifest(&self, name: &str) -> Result<Manifest, ArchiveError> {
        let rel = format!("{COMMITS}/{name}");
        let b = self.backend.get(&rel)?;
        serde_json::from_slice(&b).map_err(|e| ArchiveError::Manifest {
            path: self.root.join(&rel),
            detail: e.to_string(),
        })
    }

    fn write_manifest(&self, name: &str, m: &Manifest) -> Result<(), ArchiveError> {
        let rel = format!("{COMMITS}/{name}");
        let text = serde_json::to_vec(m).map_err(|e| ArchiveError::Manifest {
            path: self.root.join(&rel),
            detail: e.to_string(),
        })?;
        Ok(self.backend.put_atomic(&rel, text)?)
    }
}

/// Parquet settings: zstd, row groups of 256 Ki rows; for a compact metrics file (its
/// `schema`), floats byte-stream-split instead of dictionary-encoded — their rounded low bytes
/// are zero and compress away ([`crate::resolution`]).
fn writer_props(compact: Option<&arrow::datatypes::Schema>) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(256 * 1024));
    for f in compact.map(|s| s.fields().iter()).into_iter().flatten() {
        if f.data_type() == &arrow::datatypes::DataType::Float64 {
            let path = ColumnPath::from(f.name().as_str());
            b = b
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::BYTE_STREAM_SPLIT);
        }
    }
    b.build()
}
#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
