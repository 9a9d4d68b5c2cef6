//! The embedded store: one redb file, one table `kv` (key -> bytes). redb is
//! synchronous, so every call runs on tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{StoreError, Write};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl RedbStore {
    /// Creates the file (and its parent directories) when missing. redb locks
    /// the file, so a second opener, in this process or another, fails at once.
    pub async fn open(path: PathBuf) -> Result<RedbStore, StoreError> {
        let shown = path.clone();
        tokio::task::spawn_blocking(move || RedbStore::open_blocking(path))
            .await
            .unwrap_or_else(|e| Err(error(&shown, "open", e)))
    }

    fn open_blocking(path: PathBuf) -> Result<RedbStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| error(&path, "create directory", format!("{}: {e}", parent.display())))?;
        }
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path: path.display().to_string() },
            other => error(&path, "open", other),
        })?;
        // Create the table once, so reads never meet a missing table.
        let tx = db.begin_write().map_err(|e| error(&path, "open", e))?;
        tx.open_table(KV).map_err(|e| error(&path, "open", e))?;
        tx.commit().map_err(|e| error(&path, "open", e))?;
        Ok(RedbStore { db: Arc::new(db), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One read transaction: a snapshot that never shows half a batch.
    pub async fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let tx = this.db.begin_read().map_err(at(&this.path, "load"))?;
            let table = tx.open_table(KV).map_err(at(&this.path, "load"))?;
            let mut out = Vec::new();
            for item in table.iter().map_err(at(&this.path, "load"))? {
                let (k, v) = item.map_err(at(&this.path, "load"))?;
                out.push((k.value().to_owned(), v.value().to_vec()));
            }
            Ok(out)
        })
        .await
        .unwrap_or_else(|e| Err(error(&self.path, "load", e)))
    }

    pub async fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        self.transaction("write", move |table| {
            for w in &batch {
                match &w.value {
                    Some(v) => table.insert(w.key.as_str(), v.as_slice()).map(|_| ())?,
                    None => table.remove(w.key.as_str()).map(|_| ())?,
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn replace_all(&self, all: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        self.transaction("replace all", move |table| {
            table.retain(|_, _| false)?;
            for (k, v) in &all {
                table.insert(k.as_str(), v.as_slice())?;
            }
            Ok(())
        })
        .await
    }

    /// One write transaction, committed (durable: redb's default
    /// `Durability::Immediate` syncs the file) before this returns.
    async fn transaction(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<(), redb::StorageError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let tx = this.db.begin_write().map_err(at(&this.path, operation))?;
            {
                let mut table = tx.open_table(KV).map_err(at(&this.path, operation))?;
                f(&mut table).map_err(at(&this.path, operation))?;
            }
            tx.commit().map_err(at(&this.path, operation))
        })
        .await
        .unwrap_or_else(|e| Err(error(&self.path, operation, e)))
    }
}

fn error(path: &Path, operation: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Redb { path: path.display().to_string(), operation, message: e.to_string() }
}

/// `error` for `map_err`, one call site at a time.
fn at<'a, E: std::fmt::Display>(path: &'a Path, operation: &'static str) -> impl Fn(E) -> StoreError + 'a {
    move |e| error(path, operation, e)
}
