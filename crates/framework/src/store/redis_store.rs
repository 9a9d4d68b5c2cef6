//! The Redis store: keys `<prefix>:<key>`, found with SCAN, batches in MULTI/EXEC.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use super::{StoreError, Write};

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    addr: String,
    db: i64,
}

/// A URL for messages: any `user:password@` part is dropped.
pub fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}{}", &url[..scheme + 3], &url[at + 1..]),
        (None, Some(at)) => url[at + 1..].to_owned(),
        _ => url.to_owned(),
    }
}

impl RedisStore {
    pub async fn open(url: &str, password: Option<&str>, db: i64, prefix: &str) -> Result<RedisStore, StoreError> {
        let addr = without_password(url);
        let err = |operation, e: &dyn std::fmt::Display| StoreError::Redis {
            addr: addr.clone(),
            operation,
            message: e.to_string(),
        };
        let info = if url.contains("://") {
            url.into_connection_info().map_err(|e| err("parse address", &e))?
        } else {
            let (host, port) = match url.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse::<u16>().map_err(|e| err("parse port", &e))?),
                None => (url.to_owned(), 6379),
            };
            ConnectionAddr::Tcp(host, port).into_connection_info().map_err(|e| err("parse address", &e))?
        };
        let mut settings = RedisConnectionInfo::default().set_db(db);
        if let Some(p) = password.or(info.redis_settings().password()) {
            settings = settings.set_password(p);
        }
        if let Some(u) = info.redis_settings().username() {
            settings = settings.set_username(u);
        }
        let info = info.set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| err("configure", &e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let mut conn = ConnectionManager::new_with_config(client, config).await.map_err(|e| err("connect", &e))?;
        // Without a password (or with db 0) connecting sends no command: ask
        // one, so a server that wants a password is refused here, by name.
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(|e| err("connect", &e))?;
        Ok(RedisStore { conn, prefix: prefix.to_owned(), addr, db })
    }

    pub fn describe(&self) -> String {
        format!("redis {} db {} prefix {}", self.addr, self.db, self.prefix)
    }

    fn error(&self, operation: &'static str, e: redis::RedisError) -> StoreError {
        StoreError::Redis { addr: self.addr.clone(), operation, message: e.to_string() }
    }

    fn key(&self, k: &str) -> String {
        format!("{}:{k}", self.prefix)
    }

    async fn keys(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}:*", escape_glob(&self.prefix));
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error("SCAN", e))?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    pub async fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let keys = self.keys().await?;
        let mut out = Vec::with_capacity(keys.len());
        let mut conn = self.conn.clone();
        for chunk in keys.chunks(500) {
            let values: Vec<Option<Vec<u8>>> =
                redis::cmd("MGET").arg(chunk).query_async(&mut conn).await.map_err(|e| self.error("MGET", e))?;
            for (k, v) in chunk.iter().zip(values) {
                if let Some(v) = v {
                    out.push((k[self.prefix.len() + 1..].to_owned(), v));
                }
            }
        }
        Ok(out)
    }

    pub async fn write(&self, batch: &[Write]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for w in batch {
            match &w.value {
                Some(v) => pipe.set(self.key(&w.key), v.as_slice()).ignore(),
                None => pipe.del(self.key(&w.key)).ignore(),
            };
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(|e| self.error("MULTI/EXEC", e))
    }

    pub async fn replace_all(&self, all: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let existing = self.keys().await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for k in &existing {
            pipe.del(k).ignore();
        }
        for (k, v) in all {
            pipe.set(self.key(k), v.as_slice()).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(|e| self.error("MULTI/EXEC", e))
    }
}

/// A prefix taken literally in a SCAN MATCH pattern.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_dropped_from_addresses() {
        assert_eq!(without_password("redis://:s3cret@host:6379/1"), "redis://host:6379/1");
        assert_eq!(without_password("redis://user:s3cret@host"), "redis://host");
        assert_eq!(without_password("host:6379"), "host:6379");
    }

    #[test]
    fn glob_characters_in_the_prefix_are_literal() {
        assert_eq!(escape_glob("a*b[c]"), "a\\*b\\[c\\]");
    }
}
