//! The archive directory and its commit protocol: Parquet files become visible together with
//! the Kafka offsets they cover, or not at all.
//!
//! Layout under the root:
//!
//! - `<table>/team=<t>/date=<d>/session=<s>/part-<commit>.parquet`: the data (what SQL reads);
//! - `_commits/<commit>.json`: one manifest per commit (its files and, per topic partition,
//!   the last offset it covers); `_commits/_checkpoint.json` folds old manifests together;
//! - `_staging/<commit>/…`: files being written.
//!
//! A commit: (1) write every file under `_staging/<commit>/` and fsync it; (2) write the
//! manifest (temporary file, fsync, rename, fsync the directory) — this is the commit point;
//! (3) move the files into place; (4) remove the staging directory. On open, a staging
//! directory with a manifest is rolled forward (its remaining files moved), one without is
//! rolled back (deleted). The offsets are the maximum over the manifests, so the archive itself
//! says where to resume, whatever Kafka's committed offsets say.
//!
//! Limits: a full disk or any I/O error fails the commit (retryable): nothing becomes visible,
//! the staging directory is removed and the caller keeps its rows and tries again.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::schema::{PartKey, Table};

/// Why an archive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file operation failed (disk full, permissions...). Retryable.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Writing Parquet failed. Retryable if the cause was I/O.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Building rows failed (a bug). Fatal.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
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
        matches!(self, ArchiveError::Io { .. } | ArchiveError::Parquet(_))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
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

/// An archive directory.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    offsets: BTreeMap<(String, i32), i64>,
    counter: u64,
    manifests: usize,
}

/// Manifests beyond this many are folded into the checkpoint.
const FOLD_AFTER: usize = 200;
const CHECKPOINT: &str = "_checkpoint.json";

impl Store {
    /// Open (creating) the archive at `root` and recover any interrupted commit.
    pub fn open(root: &Path) -> Result<Store, ArchiveError> {
        for d in ["_commits", "_staging"] {
            std::fs::create_dir_all(root.join(d)).map_err(io(root))?;
        }
        let mut s = Store {
            root: root.to_path_buf(),
            offsets: BTreeMap::new(),
            counter: 0,
            manifests: 0,
        };
        s.recover()?;
        Ok(s)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The last committed offset of a topic partition.
    pub fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        self.offsets.get(&(topic.to_string(), partition)).copied()
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
        let commits = self.root.join("_commits");
        let staging = self.root.join("_staging");
        let mut ids = Vec::new();
        let cp = commits.join(CHECKPOINT);
        if cp.exists() {
            self.absorb(&read_manifest(&cp)?);
        }
        for e in std::fs::read_dir(&commits).map_err(io(&commits))? {
            let e = e.map_err(io(&commits))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json")
                && name != CHECKPOINT
            {
                let m = read_manifest(&e.path())?;
                self.roll_forward(&m)?;
                self.absorb(&m);
                ids.push(id.to_string());
            } else if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        // Staging directories without a manifest never committed.
        for e in std::fs::read_dir(&staging).map_err(io(&staging))? {
            let e = e.map_err(io(&staging))?;
            let id = e.file_name().to_string_lossy().into_owned();
            if !ids.contains(&id) {
                tracing::info!(message = "Rolling back an unfinished archive commit.", commit = %id);
                std::fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
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
        }
    }

    fn roll_forward(&self, m: &Manifest) -> Result<(), ArchiveError> {
        let dir = self.root.join("_staging").join(&m.id);
        if !dir.exists() {
            return Ok(());
        }
        for rel in &m.files {
            let from = dir.join(rel);
            if from.exists() {
                self.place(&from, rel)?;
            }
        }
        std::fs::remove_dir_all(&dir).map_err(io(&dir))
    }

    fn place(&self, from: &Path, rel: &str) -> Result<(), ArchiveError> {
        let to = self.root.join(rel);
        let parent = to.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        std::fs::rename(from, &to).map_err(io(&to))?;
        sync_dir(&parent)
    }

    /// Fold every manifest into the checkpoint (which is written first).
    fn fold(&mut self, ids: &[String]) -> Result<(), ArchiveError> {
        let commits = self.root.join("_commits");
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
        write_atomic(&commits.join(CHECKPOINT), &m)?;
        for id in ids {
            let p = commits.join(format!("{id}.json"));
            std::fs::remove_file(&p).map_err(io(&p))?;
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
        let stage = self.root.join("_staging").join(&id);
        let staged = self.stage(&stage, &id, parts);
        let (files, bytes) = match staged {
            Ok(x) => x,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&stage);
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
        let path = self.root.join("_commits").join(format!("{id}.json"));
        if let Err(e) = write_atomic(&path, &m) {
            let _ = std::fs::remove_dir_all(&stage);
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
        let commits = self.root.join("_commits");
        let mut ids = Vec::new();
        for e in std::fs::read_dir(&commits).map_err(io(&commits))? {
            let name = e.map_err(io(&commits))?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name.strip_suffix(".json")
                && name != CHECKPOINT
            {
                ids.push(id.to_string());
            }
        }
        Ok(ids)
    }

    fn stage(
        &self,
        stage: &Path,
        id: &str,
        parts: &[Part],
    ) -> Result<(Vec<String>, u64), ArchiveError> {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(256 * 1024))
            .build();
        let mut files = Vec::new();
        let mut bytes = 0;
        for p in parts {
            let rel = format!("{}/{}/part-{id}.parquet", p.table.name(), p.key.dir());
            let path = stage.join(&rel);
            let parent = path.parent().unwrap_or(stage).to_path_buf();
            std::fs::create_dir_all(&parent).map_err(io(&parent))?;
            let f = File::create(&path).map_err(io(&path))?;
            let mut w = ArrowWriter::try_new(f, p.batch.schema(), Some(props.clone()))?;
            w.write(&p.batch)?;
            let f = w.into_inner()?;
            f.sync_all().map_err(io(&path))?;
            bytes += f.metadata().map_err(io(&path))?.len();
            files.push(rel);
        }
        Ok((files, bytes))
    }
}

fn read_manifest(path: &Path) -> Result<Manifest, ArchiveError> {
    let b = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&b).map_err(|e| ArchiveError::Manifest {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

fn write_atomic(path: &Path, m: &Manifest) -> Result<(), ArchiveError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_vec(m).map_err(|e| ArchiveError::Manifest {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&text).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<(), ArchiveError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
