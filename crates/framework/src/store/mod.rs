//! The framework's state store: an embedded redb file by default, Redis when
//! configured. Both hold plain keys and values under one namespace; the engine
//! decides what they mean (`engine::KEY_FRAMEWORK_ID`, `project/<name>`, `task/<id>`).

mod redb_store;
mod redis_store;
mod writer;

use std::path::PathBuf;

pub use writer::StoreWriter;

/// One write of a batch: `value: None` deletes the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// Where the state lives.
#[derive(Clone)]
pub enum StoreConfig {
    Redb {
        path: PathBuf,
    },
    /// `host:port` or `redis://host:port[/db]`; `password` and `db` win over the URL's.
    Redis {
        url: String,
        password: Option<mesos::secret::Secret>,
        db: i64,
        prefix: String,
    },
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Redb { path } => f.debug_struct("Redb").field("path", path).finish(),
            StoreConfig::Redis { url, password, db, prefix } => f
                .debug_struct("Redis")
                .field("url", &redis_store::without_password(url))
                .field("password", password)
                .field("db", db)
                .field("prefix", prefix)
                .finish(),
        }
    }
}

/// A failed store operation, naming the store and the operation. Never
/// holds a password: Redis addresses are shown without their credentials.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("state file {path} is in use by another m3s (one m3s per state file)")]
    InUse { path: String },
    #[error("state file {path}: {operation}: {message}")]
    Redb { path: String, operation: &'static str, message: String },
    #[error("redis {addr}: {operation}: {message}")]
    Redis { addr: String, operation: &'static str, message: String },
}

/// An open store. Cheap to clone: clones share the redb file or the Redis connection.
#[derive(Clone)]
pub struct Store {
    inner: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Store").field(&self.describe()).finish()
    }
}

#[derive(Clone)]
enum Backend {
    Redb(redb_store::RedbStore),
    Redis(redis_store::RedisStore),
}

impl Store {
    pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let inner = match config {
            StoreConfig::Redb { path } => Backend::Redb(redb_store::RedbStore::open(path.clone()).await?),
            StoreConfig::Redis { url, password, db, prefix } => Backend::Redis(
                redis_store::RedisStore::open(url, password.as_ref().map(mesos::secret::Secret::expose), *db, prefix)
                    .await?,
            ),
        };
        Ok(Store { inner })
    }

    /// Every key and value under this store's namespace, sorted by key.
    pub async fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match &self.inner {
            Backend::Redb(s) => s.load().await,
            Backend::Redis(s) => s.load().await,
        }
    }

    /// Applies the batch atomically; durable on return (redb: a committed
    /// transaction; Redis: MULTI/EXEC acknowledged by the server).
    pub async fn write(&self, batch: &[Write]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        match &self.inner {
            Backend::Redb(s) => s.write(batch.to_vec()).await,
            Backend::Redis(s) => s.write(batch).await,
        }
    }

    /// Replaces everything under the namespace by `all`.
    pub async fn replace_all(&self, all: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        match &self.inner {
            Backend::Redb(s) => s.replace_all(all.to_vec()).await,
            Backend::Redis(s) => s.replace_all(all).await,
        }
    }

    /// Where the state lives, for messages (never a password).
    pub fn describe(&self) -> String {
        match &self.inner {
            Backend::Redb(s) => format!("redb {}", s.path().display()),
            Backend::Redis(s) => s.describe(),
        }
    }
}
