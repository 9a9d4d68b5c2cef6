//! The embedded store: one redb file, one table.

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
    pub async fn open(path: PathBuf) -> Result<RedbStore, StoreError> {
        tokio::task::spawn_blocking(move || RedbStore::open_blocking(path)).await.expect("redb open task")
    }

    fn open_blocking(path: PathBuf) -> Result<RedbStore, StoreError> {
        let err = |message: String| StoreError::Redb { path: path.display().to_string(), message };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| err(format!("cannot create {}: {e}", parent.display())))?;
        }
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                err("in use by another m3s (one process per work directory)".into())
            }
            other => err(other.to_string()),
        })?;
        // Create the table once, so reads never meet a missing table.
        let tx = db.begin_write().map_err(|e| err(e.to_string()))?;
        tx.open_table(KV).map_err(|e| err(e.to_string()))?;
        tx.commit().map_err(|e| err(e.to_string()))?;
        Ok(RedbStore { db: Arc::new(db), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Redb { path: self.path.display().to_string(), message: e.to_string() }
    }

    pub async fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let tx = this.db.begin_read().map_err(|e| this.error(e))?;
            let table = tx.open_table(KV).map_err(|e| this.error(e))?;
            let mut out = Vec::new();
            for item in table.iter().map_err(|e| this.error(e))? {
                let (k, v) = item.map_err(|e| this.error(e))?;
                out.push((k.value().to_owned(), v.value().to_vec()));
            }
            Ok(out)
        })
        .await
        .expect("redb read task")
    }

    pub async fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        self.transaction(move |table| {
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
        self.transaction(move |table| {
            table.retain(|_, _| false)?;
            for (k, v) in &all {
                table.insert(k.as_str(), v.as_slice())?;
            }
            Ok(())
        })
        .await
    }

    async fn transaction(
        &self,
        f: impl FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<(), redb::StorageError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let tx = this.db.begin_write().map_err(|e| this.error(e))?;
            {
                let mut table = tx.open_table(KV).map_err(|e| this.error(e))?;
                f(&mut table).map_err(|e| this.error(e))?;
            }
            tx.commit().map_err(|e| this.error(e))
        })
        .await
        .expect("redb write task")
    }
}
