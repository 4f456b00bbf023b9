//! Where the archive lives: a local directory or an object-store URL (`s3://bucket/prefix`).
//!
//! [`crate::store`] writes its commit protocol once, against the few operations here; each
//! backend gives them the strongest guarantee it has:
//!
//! | operation | directory | object store |
//! |---|---|---|
//! | write a data file | write, fsync | one PUT (all or nothing) |
//! | write a manifest | temporary file, fsync, rename, fsync the directory | one PUT |
//! | move a file into place | rename, fsync the directory | server-side copy, then delete |
//!
//! An object store has no rename: moving a committed file is a copy and a delete, so a crash
//! between them leaves the staged copy, which the next open finishes or removes like any other.
//!
//! Object-store settings (endpoint, region, credentials, `allow_http` for a plain-HTTP
//! endpoint) come from the standard `AWS_*` environment variables, overridden by
//! [`Options`] (the service's `[archive.object_store]` table: `endpoint = "http://…"`, …).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// Why a backend operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A file operation failed (disk full, permissions...).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An object-store request failed (network, credentials, a missing bucket...).
    #[error("{0}")]
    Remote(#[from] object_store::Error),
    /// The URL is not an object store this build knows.
    #[error("archive URL {url}: {detail}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        detail: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackendError + '_ {
    move |source| BackendError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An object store with a private runtime, so the synchronous commit protocol can drive it
/// from any thread (including a Tokio worker, as the local backend's file I/O does).
pub struct Remote {
    url: String,
    prefix: Key,
    store: Arc<dyn ObjectStore>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.url)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Object-store settings by name (`endpoint`, `region`, `access_key_id`, `allow_http`, … as
/// `object_store`'s `AmazonS3ConfigKey` spells them), over the `AWS_*` environment.
pub type Options = BTreeMap<String, String>;

/// Settings in `opts` that the S3 client does not know.
pub fn unknown_options(opts: &Options) -> Vec<String> {
    use std::str::FromStr;
    let known = |k: &str| object_store::aws::AmazonS3ConfigKey::from_str(k).is_ok();
    opts.keys().filter(|k| !known(k)).cloned().collect()
}

/// The object store behind an `s3://bucket/prefix` URL (settings from `AWS_*` variables and
/// `opts`), the key prefix inside it, and the bucket's URL (what DataFusion registers).
pub fn object_store(
    url: &str,
    opts: &Options,
) -> Result<(Arc<dyn ObjectStore>, Key, String), BackendError> {
    let bad = |detail: String| BackendError::Url {
        url: url.to_string(),
        detail,
    };
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(bad("only s3:// URLs are supported".into()));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("no bucket".into()));
    }
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    for (k, v) in opts {
        let key = k
            .parse()
            .map_err(|e: object_store::Error| bad(e.to_string()))?;
        builder = builder.with_config(key, v);
    }
    // A few quick retries, then the error goes to the caller, which keeps its rows and tries
    // again at its next flush (object_store's default keeps trying for three minutes).
    let retry = object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(20),
        ..Default::default()
    };
    let store = builder.with_retry(retry).build()?;
    let prefix = Key::parse(prefix.trim_end_matches('/')).map_err(|e| bad(e.to_string()))?;
    Ok((Arc::new(store), prefix, format!("s3://{bucket}")))
}

/// Is `root` an object-store URL rather than a directory?
pub fn remote_url(root: &Path) -> Option<&str> {
    root.to_str().filter(|s| s.contains("://"))
}

/// The archive's storage.
#[derive(Debug)]
pub enum Backend {
    /// A local directory.
    Dir(PathBuf),
    /// An object store.
    Remote(Remote),
}

impl Backend {
    /// The backend for `root`: an `s3://` URL or a directory (created if missing).
    pub fn open(root: &Path, opts: &Options) -> Result<Backend, BackendError> {
        if let Some(url) = remote_url(root) {
            let (store, prefix, _) = object_store(url, opts)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("archive-object-store")
                .enable_all()
                .build()
                .map_err(io(root))?;
            return Ok(Backend::Remote(Remote {
                url: url.to_string(),
                prefix,
                store,
                rt: Some(rt),
            }));
        }
        std::fs::create_dir_all(root).map_err(io(root))?;
        Ok(Backend::Dir(root.to_path_buf()))
    }

    /// Write a data file (durable when this returns; not visible to readers by itself).
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), BackendError> {
        match self {
            Backend::Dir(root) => {
                let path = root.join(rel);
                let parent = path.parent().unwrap_or(root);
                std::fs::create_dir_all(parent).map_err(io(parent))?;
                write_synced(&path, &bytes)
            }
            Backend::Remote(r) => {
                let (store, key) = (r.store.clone(), r.key(rel));
                r.run(async move { store.put(&key, PutPayload::from(bytes)).await })?;
                Ok(())
            }
        }
    }

    /// Write a small file so that it appears whole or not at all (the commit point).
    pub fn put_atomic(&self, rel: &str, bytes: Vec<u8>) -> Result<(), BackendError> {
        match self {
            Backend::Dir(root) => {
                let path = root.join(rel);
                let parent = path.parent().unwrap_or(root);
                std::fs::create_dir_all(parent).map_err(io(parent))?;
                let tmp = path.with_extension("tmp");
                write_synced(&tmp, &bytes)?;
                std::fs::rename(&tmp, &path).map_err(io(&path))?;
                sync_dir(path.parent().unwrap_or(root))
            }
            // One PUT is atomic: readers see the old object (none) or the whole new one.
            Backend::Remote(_) => self.put(rel, bytes),
        }
    }

    /// Read a file.
    pub fn get(&self, rel: &str) -> Result<Vec<u8>, BackendError> {
        match self {
            Backend::Dir(root) => {
                let path = root.join(rel);
                std::fs::read(&path).map_err(io(&path))
            }
            Backend::Remote(r) => {
                let (store, key) = (r.store.clone(), r.key(rel));
                let b = r.run(async move { store.get(&key).await?.bytes().await })?;
                Ok(b.to_vec())
            }
        }
    }

    /// Does a file exist?
    pub fn exists(&self, rel: &str) -> Result<bool, BackendError> {
        match self {
            Backend::Dir(root) => Ok(root.join(rel).exists()),
            Backend::Remote(r) => {
                let (store, key) = (r.store.clone(), r.key(rel));
                match r.run(async move { store.head(&key).await }) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// The names directly under `dir` (files and sub-directories), unordered.
    pub fn list(&self, dir: &str) -> Result<Vec<String>, BackendError> {
        match self {
            Backend::Dir(root) => {
                let path = root.join(dir);
                if !path.exists() {
                    return Ok(vec![]);
                }
                let mut out = Vec::new();
                for e in std::fs::read_dir(&path).map_err(io(&path))? {
                    let e = e.map_err(io(&path))?;
                    out.push(e.file_name().to_string_lossy().into_owned());
                }
                Ok(out)
            }
            Backend::Remote(r) => {
                let (store, key) = (r.store.clone(), r.key(dir));
                let l = r.run(async move { store.list_with_delimiter(Some(&key)).await })?;
                let names = l.objects.iter().map(|o| &o.location);
                Ok(names
                    .chain(l.common_prefixes.iter())
                    .filter_map(|p| p.filename().map(str::to_string))
                    .collect())
            }
        }
    }

    /// Move a file (creating the target's directory).
    pub fn rename(&self, from: &str, to: &str) -> Result<(), BackendError> {
        match self {
            Backend::Dir(root) => {
                let (from, to) = (root.join(from), root.join(to));
                let parent = to.parent().unwrap_or(root);
                std::fs::create_dir_all(parent).map_err(io(parent))?;
                std::fs::rename(&from, &to).map_err(io(&to))?;
                sync_dir(parent)
            }
            Backend::Remote(r) => {
                let (store, from, to) = (r.store.clone(), r.key(from), r.key(to));
                r.run(async move { store.rename(&from, &to).await })?;
                Ok(())
            }
        }
    }

    /// Remove a file; a missing one is not an error.
    pub fn remove(&self, rel: &str) -> Result<(), BackendError> {
        match self {
            Backend::Dir(root) => match std::fs::remove_file(root.join(rel)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&root.join(rel))(e)),
                _ => Ok(()),
            },
            Backend::Remote(r) => {
                let (store, key) = (r.store.clone(), r.key(rel));
                match r.run(async move { store.delete(&key).await }) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Remove everything under `dir`.
    pub fn remove_tree(&self, dir: &str) -> Result<(), BackendError> {
        match self {
            Backend::Dir(root) => {
                let path = root.join(dir);
                match std::fs::remove_dir_all(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
                    _ => Ok(()),
                }
            }
            Backend::Remote(r) => {
                let (store, key) = (r.store.clone(), r.key(dir));
                r.run(async move {
                    use futures::TryStreamExt;
                    let keys: Vec<_> = store.list(Some(&key)).try_collect().await?;
                    for o in keys {
                        store.delete(&o.location).await?;
                    }
                    Ok::<_, object_store::Error>(())
                })?;
                Ok(())
            }
        }
    }
}

impl Remote {
    fn key(&self, rel: &str) -> Key {
        let mut k = self.prefix.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            k = k.join(part);
        }
        k
    }

    /// Run `f` on the private runtime and wait for it.
    fn run<T, F>(&self, f: F) -> Result<T, object_store::Error>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, object_store::Error>> + Send + 'static,
    {
        let lost = || object_store::Error::Generic {
            store: "archive",
            source: "the object-store runtime stopped".into(),
        };
        let rt = self.rt.as_ref().ok_or_else(lost)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().map_err(|_| lost())?
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackendError> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<(), BackendError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}
