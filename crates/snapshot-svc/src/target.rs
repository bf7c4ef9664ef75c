//! Where backup archives are kept: a directory, or a bucket of any S3-compatible store,
//! through `object_store`. Each backup is two objects: `<server>/<uuid>.tar.zst` and
//! `<server>/<uuid>.manifest.json`. Writes stream in parts and are hashed on the way;
//! reads stream back.

use std::sync::Arc;

use futures_util::StreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};

use crate::config::TargetConfig;
use crate::error::{Result, SnapshotError};

/// Parts of at least 5 MiB: S3 refuses smaller ones but the last.
const PART: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct Target {
    store: Arc<dyn ObjectStore>,
    /// `directory` or `s3`, as backups record it.
    kind: &'static str,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("kind", &self.kind).finish()
    }
}

fn target_error(e: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Target(e.to_string())
}

/// What a written archive came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    pub sha256: String,
}

impl Target {
    pub fn open(config: &TargetConfig) -> anyhow::Result<Self> {
        match config.kind.as_str() {
            "directory" | "" => {
                std::fs::create_dir_all(&config.path).map_err(|e| {
                    anyhow::anyhow!("backup_target.path {}: {e}", config.path.display())
                })?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&config.path)?
                    .with_automatic_cleanup(true);
                Ok(Self {
                    store: Arc::new(store),
                    kind: "directory",
                })
            }
            "s3" => {
                anyhow::ensure!(
                    !config.bucket.is_empty(),
                    "backup_target.bucket is required for s3"
                );
                let secret = config
                    .secret_access_key
                    .as_ref()
                    .map(|s| s.expose_secret().to_owned())
                    .unwrap_or_default();
                // Credentials are always given: without them the client would ask the cloud's
                // instance metadata service.
                anyhow::ensure!(
                    !config.access_key_id.is_empty() && !secret.is_empty(),
                    "backup_target.access_key_id and backup_target.secret_access_key are required for s3"
                );
                let mut builder = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&config.bucket)
                    .with_region(&config.region)
                    .with_access_key_id(&config.access_key_id)
                    .with_secret_access_key(secret)
                    .with_client_options(
                        object_store::ClientOptions::new()
                            .with_timeout(std::time::Duration::from_secs(3600))
                            .with_connect_timeout(std::time::Duration::from_secs(10)),
                    );
                if !config.endpoint.is_empty() {
                    builder = builder
                        .with_endpoint(&config.endpoint)
                        .with_allow_http(config.endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                let store = builder.build()?;
                let store: Arc<dyn ObjectStore> = if config.prefix.trim_matches('/').is_empty() {
                    Arc::new(store)
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(
                        store,
                        config.prefix.trim_matches('/'),
                    ))
                };
                Ok(Self { store, kind: "s3" })
            }
            other => anyhow::bail!("backup_target.kind must be directory or s3, not {other:?}"),
        }
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The archive's key and its manifest's.
    pub fn keys(server_id: i64, uuid: &str) -> (String, String) {
        (
            format!("{server_id}/{uuid}.tar.zst"),
            format!("{server_id}/{uuid}.manifest.json"),
        )
    }

    /// Writes `chunks` to `key` as they come, hashing them; nothing is left at `key` if
    /// the stream or the write fails.
    pub async fn write<S>(&self, key: &str, mut chunks: S) -> Result<Written>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes>> + Unpin,
    {
        let path = Path::parse(key).map_err(target_error)?;
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(target_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let outcome: Result<()> = async {
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                writer.wait_for_capacity(4).await.map_err(target_error)?;
                hash.update(&chunk);
                size += chunk.len() as u64;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                writer.finish().await.map_err(target_error)?;
            }
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e);
            }
        }
        Ok(Written {
            size,
            sha256: hex::encode(hash.finalize()),
        })
    }

    pub async fn put_small(&self, key: &str, body: Vec<u8>) -> Result<()> {
        let path = Path::parse(key).map_err(target_error)?;
        self.store
            .put(&path, body.into())
            .await
            .map_err(target_error)?;
        Ok(())
    }

    /// The object at `key`, streamed.
    pub async fn read(
        &self,
        key: &str,
    ) -> Result<futures_util::stream::BoxStream<'static, Result<bytes::Bytes>>> {
        let path = Path::parse(key).map_err(target_error)?;
        let got = self.store.get(&path).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                SnapshotError::Corrupt(format!("the archive {key} is missing"))
            }
            other => target_error(other),
        })?;
        Ok(got.into_stream().map(|r| r.map_err(target_error)).boxed())
    }

    /// Reads the whole object at `key` and checks its size and SHA-256.
    pub async fn verify(&self, key: &str, size: u64, sha256: &str) -> Result<()> {
        let mut stream = self.read(key).await?;
        let mut hash = Sha256::new();
        let mut seen = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            seen += chunk.len() as u64;
            hash.update(&chunk);
        }
        if seen != size {
            return Err(SnapshotError::Corrupt(format!(
                "{key} is {seen} bytes, the manifest says {size}"
            )));
        }
        let got = hex::encode(hash.finalize());
        if got != sha256 {
            return Err(SnapshotError::Corrupt(format!(
                "{key} has SHA-256 {got}, the manifest says {sha256}"
            )));
        }
        Ok(())
    }

    /// Deletes `key`; a missing object is already deleted.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = Path::parse(key).map_err(target_error)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(target_error(e)),
        }
    }
}
