//! The embedded time-series store, in `<dir>`:
//!
//! - `series.log`: the series index (label set → id), append-only;
//! - `wal/`: the write-ahead log of samples not yet in a block;
//! - `blocks/`: immutable block files of compressed chunks (see `chunk`).
//!
//! Writes go to the series log and the WAL (one `write` each) and then to the
//! in-memory head; they are acknowledged after that, so an acknowledged write
//! survives the process being killed (`kill -9`: the data is in the kernel).
//! With `fsync` on, both files are synced before the acknowledgement, so it
//! also survives a power loss. A flush seals the head into a block and drops
//! the WAL segments it covered. Memory is bounded by `head_max_samples`: a
//! write that takes the head past it wakes the flusher.

mod bits;
mod block;
pub mod chunk;
mod frame;
mod series;
mod wal;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::model::{Labels, Matcher, Point, Sample, SelectError, Series, Source};
use block::{Block, ChunkRef, EncodedChunk};
use series::{SeriesId, SeriesIndex, SeriesLog};
use wal::Wal;

#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub dir: PathBuf,
    /// Samples older than this (relative to now) are deleted; `None` keeps everything.
    pub retention: Option<Duration>,
    /// The head holds at most about this many samples before a flush (16 bytes each).
    pub head_max_samples: usize,
    /// Samples per chunk at most.
    pub chunk_max_samples: usize,
    /// The head is flushed at least this often.
    pub flush_interval: Duration,
    /// Sync the series log and WAL before acknowledging a write.
    pub fsync: bool,
    /// Above this many block files a flush merges some (each is an open file).
    pub max_blocks: usize,
    /// What a write or a query may ask of the store.
    pub limits: Limits,
}

/// Caps on what one client can make the store hold or read, each refused
/// with an error naming it and the flag that raises it. The defaults keep a
/// small machine safe: 100,000 series cost about 90 MB of index and
/// head, 5 million samples about 80 MB while a query runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Series in the store (`--metrics-max-series`).
    pub max_series: usize,
    /// Labels of one series, its name included (`--metrics-max-labels`).
    pub max_labels: usize,
    /// Bytes of a label name (`--metrics-max-label-name`).
    pub max_label_name: usize,
    /// Bytes of a label value (`--metrics-max-label-value`).
    pub max_label_value: usize,
    /// Samples one query may read (`--metrics-max-query-samples`).
    pub max_query_samples: usize,
    /// How far past this machine's clock a sample may be, in milliseconds
    /// (`--metrics-max-future`): a clock a day wrong, or a unit mistake (seconds
    /// written as nanoseconds), should not create data years ahead.
    pub max_future_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series: 100_000,
            max_labels: 30,
            max_label_name: 256,
            max_label_value: 4096,
            max_query_samples: 5_000_000,
            max_future_ms: 24 * 3600 * 1000,
        }
    }
}

impl StoreConfig {
    pub fn new(dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            dir: dir.into(),
            retention: Some(Duration::from_secs(30 * 24 * 3600)),
            head_max_samples: 4 << 20,
            chunk_max_samples: 480,
            flush_interval: Duration::from_secs(15 * 60),
            fsync: false,
            max_blocks: 8,
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metrics store {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("metrics store: a chunk of block {block} is corrupt")]
    Corrupt { block: u64 },
    /// A write or query over one of the [`Limits`]; nothing of it was written.
    #[error("{0}")]
    Limit(String),
}

/// Counters for `/metrics` and the flush report.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct StoreStats {
    pub series: usize,
    pub head_samples: usize,
    pub blocks: usize,
    pub block_bytes: u64,
    pub block_samples: u64,
    pub wal_bytes: u64,
    pub samples_written: u64,
    pub flushes: u64,
}

pub struct Store {
    config: StoreConfig,
    inner: Mutex<Inner>,
    /// One flush at a time.
    flushing: Mutex<()>,
    wake: Condvar,
}

struct Inner {
    index: SeriesIndex,
    /// Series ids whose definitions are in the series log: `0..series_logged`.
    series_logged: usize,
    /// Raw line-protocol keys (measurement, tags as written, field) of known series.
    raw_ids: HashMap<String, SeriesId>,
    series_log: SeriesLog,
    wal: Wal,
    /// Samples not yet in a block, by series id, time-ordered.
    head: Vec<Vec<Sample>>,
    head_samples: usize,
    /// The head being written to a block by a flush, still visible to queries.
    frozen: Option<Arc<Vec<Vec<Sample>>>>,
    blocks: BTreeMap<u64, Arc<Block>>,
    /// Chunks by series id, in block order.
    chunks: Vec<Vec<ChunkRef>>,
    samples_written: u64,
    flushes: u64,
    closed: bool,
}

impl Inner {
    /// The id of a series, created when new and within the limits.
    fn series_id(&mut self, labels: Labels, limits: &Limits) -> Result<SeriesId, StoreError> {
        match self.index.get(&labels) {
            Some(id) => Ok(id),
            None => {
                check_new_series(&labels, self.index.len(), limits)?;
                let id = self.index.insert(labels);
                self.head.push(Vec::new());
                self.chunks.push(Vec::new());
                Ok(id)
            }
        }
    }
}

impl Inner {
    /// Undoes the series a refused write created (those after the first `len`).
    fn forget_series_after(&mut self, len: usize) {
        if self.index.len() <= len {
            return;
        }
        self.index.truncate(len);
        self.head.truncate(len);
        self.chunks.truncate(len);
        self.raw_ids.retain(|_, id| (*id as usize) < len);
    }
}

/// Samples far ahead of this machine's clock are refused (see [`Limits::max_future_ms`]).
fn check_time(t: i64, now: i64, limits: &Limits) -> Result<(), StoreError> {
    if t > now.saturating_add(limits.max_future_ms) {
        return Err(StoreError::Limit(format!(
            "a sample at {} ms is more than {} s ahead of this machine's clock (--metrics-max-future)",
            t,
            limits.max_future_ms / 1000
        )));
    }
    Ok(())
}

/// A new series is checked once, when it is first written: what is known is
/// never refused again.
fn check_new_series(labels: &Labels, series: usize, limits: &Limits) -> Result<(), StoreError> {
    let name = || {
        let mut s = labels.to_string();
        if s.len() > 120 {
            let mut end = 117;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push_str("...");
        }
        s
    };
    if series >= limits.max_series {
        return Err(StoreError::Limit(format!(
            "new series {} refused: the store holds {series} series, its limit (--metrics-max-series)",
            name()
        )));
    }
    if labels.len() > limits.max_labels {
        return Err(StoreError::Limit(format!(
            "series {} has {} labels, more than the limit of {} (--metrics-max-labels)",
            name(),
            labels.len(),
            limits.max_labels
        )));
    }
    for (k, v) in labels.iter() {
        if k.len() > limits.max_label_name {
            return Err(StoreError::Limit(format!(
                "series {}: a label name of {} bytes is longer than the limit of {} (--metrics-max-label-name)",
                name(),
                k.len(),
                limits.max_label_name
            )));
        }
        if v.len() > limits.max_label_value {
            return Err(StoreError::Limit(format!(
                "series {}: label {k} has a value of {} bytes, longer than the limit of {} (--metrics-max-label-value)",
                name(),
                v.len(),
                limits.max_label_value
            )));
        }
    }
    Ok(())
}

impl Store {
    pub fn open(config: StoreConfig) -> Result<Arc<Store>, StoreError> {
        let dir = config.dir.clone();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        let blocks_dir = dir.join("blocks");
        std::fs::create_dir_all(&blocks_dir).map_err(io(&blocks_dir))?;
        let series_path = dir.join("series.log");
        let (series_log, index) = SeriesLog::open(&series_path).map_err(io(&series_path))?;
        let mut chunks: Vec<Vec<ChunkRef>> = vec![Vec::new(); index.len()];
        let mut blocks = BTreeMap::new();
        for id in block::list(&blocks_dir).map_err(io(&blocks_dir))? {
            let path = block::path(&blocks_dir, id);
            let (block, refs) = block::open(&path, id).map_err(io(&path))?;
            for (sid, r) in refs {
                if let Some(list) = chunks.get_mut(sid as usize) {
                    list.push(r);
                }
            }
            blocks.insert(id, Arc::new(block));
        }
        let mut head: Vec<Vec<Sample>> = vec![Vec::new(); index.len()];
        let mut head_samples = 0;
        let wal_dir = dir.join("wal");
        let wal = Wal::open(&wal_dir, |id, sample| {
            if let Some(series) = head.get_mut(id as usize) {
                insert_sample(series, sample);
                head_samples += 1;
            }
        })
        .map_err(io(&wal_dir))?;
        let inner = Inner {
            series_logged: index.len(),
            raw_ids: HashMap::new(),
            index,
            series_log,
            wal,
            head,
            head_samples,
            frozen: None,
            blocks,
            chunks,
            samples_written: 0,
            flushes: 0,
            closed: false,
        };
        Ok(Arc::new(Store { config, inner: Mutex::new(inner), flushing: Mutex::new(()), wake: Condvar::new() }))
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn io_error(&self, what: &str, source: std::io::Error) -> StoreError {
        StoreError::Io { path: self.config.dir.join(what), source }
    }

    /// Writes samples durably (see the module comment) and returns how many.
    pub fn write(&self, samples: impl IntoIterator<Item = (Labels, Sample)>) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let limits = self.config.limits;
        let now = now_ms();
        let known = inner.index.len();
        let batch = samples
            .into_iter()
            .map(|(labels, sample)| {
                check_time(sample.t, now, &limits)?;
                Ok((inner.series_id(labels, &limits)?, sample))
            })
            .collect::<Result<Vec<(SeriesId, Sample)>, StoreError>>();
        match batch {
            Ok(batch) => self.commit(&mut inner, &batch),
            Err(e) => {
                // Refused whole: the series it would have created are not kept either.
                inner.forget_series_after(known);
                Err(e)
            }
        }
    }

    /// Writes line-protocol points (named `{measurement}_{field}`, see `Point::samples`).
    /// The fast path of ingestion: a series seen before is found by its raw
    /// measurement, tags and field, without building its label set.
    pub fn write_points(&self, points: &[Point], now_ms: i64) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let known = inner.index.len();
        match self.points_batch(&mut inner, points, now_ms) {
            Ok(batch) => self.commit(&mut inner, &batch),
            Err(e) => {
                // Refused whole: the series it would have created are not kept either.
                inner.forget_series_after(known);
                Err(e)
            }
        }
    }

    /// The samples of line-protocol points by series id, creating the new series.
    fn points_batch(
        &self,
        inner: &mut Inner,
        points: &[Point],
        now_ms: i64,
    ) -> Result<Vec<(SeriesId, Sample)>, StoreError> {
        let limits = self.config.limits;
        let mut batch: Vec<(SeriesId, Sample)> = Vec::with_capacity(points.len() * 4);
        let mut key = String::with_capacity(128);
        for point in points {
            let t = point.timestamp.map(|ns| ns.div_euclid(1_000_000)).unwrap_or(now_ms);
            check_time(t, now_ms, &limits)?;
            key.clear();
            key.push_str(&point.measurement);
            for (k, v) in &point.tags {
                key.push('\0');
                key.push_str(k);
                key.push('\x01');
                key.push_str(v);
            }
            key.push('\x02');
            let prefix = key.len();
            for (field, value) in &point.fields {
                let Some(v) = value.as_f64() else { continue };
                key.truncate(prefix);
                key.push_str(field);
                let id = match inner.raw_ids.get(key.as_str()) {
                    Some(&id) => id,
                    None => {
                        let labels = point.labels_of(field);
                        let id = inner.series_id(labels, &limits)?;
                        inner.raw_ids.insert(key.clone(), id);
                        id
                    }
                };
                batch.push((id, Sample { t, v }));
            }
        }
        Ok(batch)
    }

    /// Makes a batch durable (series definitions first, then the WAL record), then visible.
    fn commit(&self, inner: &mut Inner, batch: &[(SeriesId, Sample)]) -> Result<usize, StoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        if inner.series_logged < inner.index.len() {
            // Every series not yet in the log, including any a failed write left behind.
            let defs: Vec<(SeriesId, &Labels)> = (inner.series_logged..inner.index.len())
                .map(|id| (id as SeriesId, inner.index.labels(id as SeriesId)))
                .collect();
            inner.series_log.append(&defs, self.config.fsync).map_err(|e| self.io_error("series.log", e))?;
            inner.series_logged = inner.index.len();
        }
        inner.wal.append(batch, self.config.fsync).map_err(|e| self.io_error("wal", e))?;
        for &(id, sample) in batch {
            insert_sample(&mut inner.head[id as usize], sample);
        }
        inner.head_samples += batch.len();
        inner.samples_written += batch.len() as u64;
        if inner.head_samples >= self.config.head_max_samples {
            self.wake.notify_all();
        }
        Ok(batch.len())
    }

    /// Seals the head into a new block and drops the WAL it covered.
    pub fn flush(&self) -> Result<(), StoreError> {
        let _one = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        let (frozen, wal_seq, block_id) = {
            let mut inner = self.lock();
            if inner.head_samples == 0 {
                return Ok(());
            }
            let len = inner.head.len();
            let head = std::mem::replace(&mut inner.head, vec![Vec::new(); len]);
            let frozen = Arc::new(head);
            inner.frozen = Some(frozen.clone());
            inner.head_samples = 0;
            let seq = inner.wal.rotate().map_err(|e| self.io_error("wal", e))?;
            let block_id = inner.blocks.keys().next_back().map_or(1, |id| id + 1);
            (frozen, seq, block_id)
        };
        let floor = self.retention_floor();
        let series: Vec<(SeriesId, Vec<EncodedChunk>)> = frozen
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .map(|(id, samples)| {
                let start = samples.partition_point(|s| s.t < floor);
                let chunks = samples[start..]
                    .chunks(self.config.chunk_max_samples)
                    .map(|part| {
                        let (min_t, max_t, n) = chunk::summary(part);
                        EncodedChunk { bytes: chunk::encode(part), min_t, max_t, samples: n as u32 }
                    })
                    .collect();
                (id as SeriesId, chunks)
            })
            .filter(|(_, chunks): &(SeriesId, Vec<EncodedChunk>)| !chunks.is_empty())
            .collect();
        let blocks_dir = self.config.dir.join("blocks");
        let written = if series.is_empty() {
            None
        } else {
            Some(block::write(&blocks_dir, block_id, &series).map_err(|e| self.io_error("blocks", e))?)
        };
        let mut inner = self.lock();
        if let Some((block, refs)) = written {
            for (sid, r) in refs {
                inner.chunks[sid as usize].push(r);
            }
            inner.blocks.insert(block_id, Arc::new(block));
        }
        inner.frozen = None;
        inner.flushes += 1;
        inner.wal.remove_before(wal_seq).map_err(|e| self.io_error("wal", e))?;
        drop(inner);
        self.apply_retention();
        while self.lock().blocks.len() > self.config.max_blocks.max(2) {
            self.merge_blocks()?;
        }
        Ok(())
    }

    /// Merges block files now, down to `max_blocks` (a flush does this itself).
    pub fn compact(&self) -> Result<(), StoreError> {
        let _one = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        while self.lock().blocks.len() > self.config.max_blocks.max(2) {
            self.merge_blocks()?;
        }
        Ok(())
    }

    /// Merges one run of adjacent blocks into one, copying their chunks as they
    /// are: the oldest run whose newest samples fall on the same day (so that
    /// retention can still drop whole days), else the two oldest blocks. The
    /// merged block takes the run's last id, so chunk order (newer wins at equal
    /// timestamps) is unchanged. The caller holds the flush lock.
    ///
    /// A crash between writing the merged block and deleting the others leaves
    /// both: queries see each sample twice and keep one.
    fn merge_blocks(&self) -> Result<(), StoreError> {
        const DAY_MS: i64 = 86_400_000;
        let (ids, parts) = {
            let inner = self.lock();
            let blocks: Vec<&Arc<Block>> = inner.blocks.values().collect();
            if blocks.len() < 2 {
                return Ok(());
            }
            let day = |b: &Block| b.max_t.div_euclid(DAY_MS);
            let mut run: Vec<&Arc<Block>> = Vec::new();
            // The newest block is left alone: it is the one still likely to be small on purpose.
            for b in &blocks[..blocks.len() - 1] {
                match run.last() {
                    Some(last) if day(last) == day(b) => run.push(b),
                    _ if run.len() >= 2 => break,
                    _ => run = vec![b],
                }
            }
            if run.len() < 2 {
                run = blocks[..2].to_vec();
            }
            let ids: Vec<u64> = run.iter().map(|b| b.id).collect();
            let parts: Vec<(SeriesId, BlockChunks)> = inner
                .chunks
                .iter()
                .enumerate()
                .filter_map(|(sid, list)| {
                    let refs: BlockChunks = list
                        .iter()
                        .filter(|c| ids.contains(&c.block))
                        .map(|c| (inner.blocks[&c.block].clone(), *c))
                        .collect();
                    (!refs.is_empty()).then_some((sid as SeriesId, refs))
                })
                .collect();
            (ids, parts)
        };
        let mut series = Vec::with_capacity(parts.len());
        for (sid, refs) in &parts {
            let mut chunks = Vec::with_capacity(refs.len());
            for (block, c) in refs {
                let bytes = block.read_span(c.offset, c.len as u64).map_err(|e| self.io_error("blocks", e))?;
                chunks.push(EncodedChunk { bytes, min_t: c.min_t, max_t: c.max_t, samples: c.samples });
            }
            series.push((*sid, chunks));
        }
        let target = *ids.last().expect("a run has blocks");
        let blocks_dir = self.config.dir.join("blocks");
        let (merged, refs) = block::write(&blocks_dir, target, &series).map_err(|e| self.io_error("blocks", e))?;
        let mut inner = self.lock();
        let mut touched = Vec::new();
        for (sid, list) in inner.chunks.iter_mut().enumerate() {
            let before = list.len();
            list.retain(|c| !ids.contains(&c.block));
            if list.len() != before {
                touched.push(sid);
            }
        }
        for (sid, r) in refs {
            inner.chunks[sid as usize].push(r);
        }
        for sid in touched {
            inner.chunks[sid].sort_by_key(|c| (c.block, c.offset));
        }
        for id in &ids {
            if let Some(old) = inner.blocks.remove(id)
                && *id != target
                && let Err(e) = std::fs::remove_file(&old.path)
            {
                tracing::warn!(path = %old.path.display(), "metrics compaction: cannot delete a merged block: {e}");
            }
        }
        inner.blocks.insert(target, Arc::new(merged));
        Ok(())
    }

    fn retention_floor(&self) -> i64 {
        self.config.retention.map_or(i64::MIN, |r| now_ms() - r.as_millis() as i64)
    }

    /// Deletes blocks entirely older than the retention period.
    pub fn apply_retention(&self) {
        let floor = self.retention_floor();
        let mut inner = self.lock();
        let expired: Vec<u64> = inner.blocks.values().filter(|b| b.max_t < floor).map(|b| b.id).collect();
        if expired.is_empty() {
            return;
        }
        for list in &mut inner.chunks {
            list.retain(|c| !expired.contains(&c.block));
        }
        for id in expired {
            if let Some(block) = inner.blocks.remove(&id) {
                if let Err(e) = std::fs::remove_file(&block.path) {
                    tracing::warn!(path = %block.path.display(), "metrics retention: cannot delete: {e}");
                }
            }
        }
    }

    pub fn stats(&self) -> StoreStats {
        let inner = self.lock();
        StoreStats {
            series: inner.index.len(),
            head_samples: inner.head_samples,
            blocks: inner.blocks.len(),
            block_bytes: inner.blocks.values().map(|b| b.size).sum(),
            block_samples: inner.chunks.iter().flatten().map(|c| c.samples as u64).sum(),
            wal_bytes: inner.wal.bytes_on_disk(),
            samples_written: inner.samples_written,
            flushes: inner.flushes,
        }
    }

    /// Label names of the series matching any of the selectors (all series when none).
    pub fn label_names(&self, selectors: &[Vec<Matcher>]) -> Vec<String> {
        let inner = self.lock();
        let mut names: Vec<String> = if selectors.is_empty() {
            inner.index.label_names().map(str::to_string).collect()
        } else {
            self.matching(&inner, selectors)
                .into_iter()
                .flat_map(|id| inner.index.labels(id).iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>())
                .collect()
        };
        names.sort();
        names.dedup();
        names
    }

    pub fn label_values(&self, name: &str, selectors: &[Vec<Matcher>]) -> Vec<String> {
        let inner = self.lock();
        let mut values: Vec<String> = if selectors.is_empty() {
            inner.index.label_values(name).map(str::to_string).collect()
        } else {
            self.matching(&inner, selectors)
                .into_iter()
                .filter_map(|id| inner.index.labels(id).get(name).map(str::to_string))
                .collect()
        };
        values.sort();
        values.dedup();
        values
    }

    /// Label sets of the series matching any of the selectors.
    pub fn series(&self, selectors: &[Vec<Matcher>]) -> Vec<Labels> {
        let inner = self.lock();
        let mut out: Vec<Labels> =
            self.matching(&inner, selectors).into_iter().map(|id| inner.index.labels(id).clone()).collect();
        out.sort();
        out
    }

    fn matching(&self, inner: &Inner, selectors: &[Vec<Matcher>]) -> Vec<SeriesId> {
        let mut ids: Vec<SeriesId> = selectors.iter().flat_map(|m| inner.index.select(m)).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Runs the flusher on a thread of its own until `close`: it flushes when
    /// the head is full (woken by the write that filled it) and every
    /// `flush_interval`, and applies retention. No polling in between.
    pub fn start_flusher(self: &Arc<Self>) -> std::thread::JoinHandle<()> {
        let store = Arc::clone(self);
        std::thread::Builder::new()
            .name("m3trics-flush".into())
            .spawn(move || {
                loop {
                    {
                        let inner = store.lock();
                        let (inner, _) = store
                            .wake
                            .wait_timeout_while(inner, store.config.flush_interval, |i| {
                                !i.closed && i.head_samples < store.config.head_max_samples
                            })
                            .unwrap_or_else(|p| p.into_inner());
                        if inner.closed {
                            return;
                        }
                    }
                    if let Err(e) = store.flush() {
                        tracing::error!("metrics flush failed: {e}");
                        // Don't spin on a persistent error (e.g. a full disk).
                        std::thread::sleep(Duration::from_secs(5));
                    }
                }
            })
            .expect("spawn the flusher thread")
    }

    /// Stops the flusher and flushes what is left.
    pub fn close(&self) -> Result<(), StoreError> {
        self.lock().closed = true;
        self.wake.notify_all();
        self.flush()
    }

    fn read_series(&self, parts: SeriesParts, start: i64, end: i64) -> Result<Vec<Sample>, StoreError> {
        let mut runs: Vec<Vec<Sample>> = Vec::with_capacity(parts.chunks.len() + 2);
        // A flush writes a series' chunks next to each other: read each such span at once.
        let mut i = 0;
        while i < parts.chunks.len() {
            let (block, first) = &parts.chunks[i];
            let mut j = i + 1;
            let mut span_end = first.offset + first.len as u64;
            while j < parts.chunks.len() && parts.chunks[j].0.id == block.id && parts.chunks[j].1.offset == span_end {
                span_end += parts.chunks[j].1.len as u64;
                j += 1;
            }
            let bytes =
                block.read_span(first.offset, span_end - first.offset).map_err(|e| self.io_error("blocks", e))?;
            for (_, chunk) in &parts.chunks[i..j] {
                let at = (chunk.offset - first.offset) as usize;
                let samples = chunk::decode(&bytes[at..at + chunk.len as usize])
                    .ok_or(StoreError::Corrupt { block: block.id })?;
                runs.push(samples);
            }
            i = j;
        }
        runs.extend(parts.memory);
        Ok(merge(runs, start, end))
    }

    /// Like `Source::select`, but reporting IO errors.
    pub fn try_select(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Series>, StoreError> {
        let wanted: Vec<(Labels, SeriesParts)> = {
            let inner = self.lock();
            inner
                .index
                .select(matchers)
                .into_iter()
                .map(|id| {
                    let chunks = inner.chunks[id as usize]
                        .iter()
                        .filter(|c| c.max_t >= start && c.min_t <= end)
                        .map(|c| (inner.blocks[&c.block].clone(), *c))
                        .collect();
                    let mut memory = Vec::new();
                    if let Some(frozen) = &inner.frozen {
                        memory.push(in_range(&frozen[id as usize], start, end));
                    }
                    memory.push(in_range(&inner.head[id as usize], start, end));
                    (inner.index.labels(id).clone(), SeriesParts { chunks, memory })
                })
                .collect()
        };
        // Counted from chunk headers before anything is decoded: a query over
        // the limit costs nothing.
        let samples: usize = wanted
            .iter()
            .map(|(_, p)| {
                p.chunks.iter().map(|(_, c)| c.samples as usize).sum::<usize>()
                    + p.memory.iter().map(Vec::len).sum::<usize>()
            })
            .sum();
        let max = self.config.limits.max_query_samples;
        if samples > max {
            return Err(StoreError::Limit(format!(
                "the query would read {samples} samples of {} series, more than the limit of {max} \
                 (--metrics-max-query-samples): narrow the selector or the time range",
                wanted.len()
            )));
        }
        // Many chunks are decoded on two threads (the machines m3s targets have few cores).
        let chunks: usize = wanted.iter().map(|(_, p)| p.chunks.len()).sum();
        let read = |part: Vec<(Labels, SeriesParts)>| -> Result<Vec<Series>, StoreError> {
            let mut out = Vec::with_capacity(part.len());
            for (labels, parts) in part {
                let samples = self.read_series(parts, start, end)?;
                if !samples.is_empty() {
                    out.push(Series { labels, samples });
                }
            }
            Ok(out)
        };
        if chunks < PARALLEL_CHUNKS {
            return read(wanted);
        }
        let mut wanted = wanted;
        let second = wanted.split_off(wanted.len() / 2);
        let (a, b) = std::thread::scope(|scope| {
            let b = scope.spawn(|| read(second));
            (read(wanted), b.join().expect("decoder thread"))
        });
        let mut out = a?;
        out.extend(b?);
        Ok(out)
    }
}

impl Source for Store {
    fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Series>, SelectError> {
        self.try_select(matchers, start, end).map_err(|e| {
            if !matches!(e, StoreError::Limit(_)) {
                tracing::error!("metrics query: {e}");
            }
            SelectError(e.to_string())
        })
    }
}

/// Above this many chunks a query decodes on two threads.
const PARALLEL_CHUNKS: usize = 64;

/// Chunks with the block that holds each.
type BlockChunks = Vec<(Arc<Block>, ChunkRef)>;

struct SeriesParts {
    chunks: BlockChunks,
    memory: Vec<Vec<Sample>>,
}

fn in_range(samples: &[Sample], start: i64, end: i64) -> Vec<Sample> {
    let lo = samples.partition_point(|s| s.t < start);
    let hi = samples.partition_point(|s| s.t <= end);
    samples[lo..hi.max(lo)].to_vec()
}

/// Inserts in time order; a sample at an existing timestamp replaces it (newer wins).
fn insert_sample(series: &mut Vec<Sample>, sample: Sample) {
    match series.last() {
        None => series.push(sample),
        Some(last) if last.t < sample.t => series.push(sample),
        _ => match series.binary_search_by(|s| s.t.cmp(&sample.t)) {
            Ok(i) => series[i] = sample,
            Err(i) => series.insert(i, sample),
        },
    }
}

/// Merges time-ordered runs (older sources first) into one, clipped to
/// `[start, end]`; at equal timestamps the later run wins. Runs that follow
/// each other in time (the usual case) are concatenated without sorting.
fn merge(runs: Vec<Vec<Sample>>, start: i64, end: i64) -> Vec<Sample> {
    let runs: Vec<Vec<Sample>> = runs.into_iter().filter(|r| !r.is_empty()).collect();
    let ordered = runs.windows(2).all(|w| w[0].last().expect("non-empty").t < w[1][0].t);
    let mut out: Vec<Sample>;
    if ordered {
        out = Vec::with_capacity(runs.iter().map(Vec::len).sum());
        for r in runs {
            out.extend(r);
        }
    } else {
        let mut tagged: Vec<(i64, usize, f64)> =
            runs.iter().enumerate().flat_map(|(rank, r)| r.iter().map(move |s| (s.t, rank, s.v))).collect();
        tagged.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        out = Vec::with_capacity(tagged.len());
        for (t, _, v) in tagged {
            match out.last_mut() {
                Some(last) if last.t == t => last.v = v,
                _ => out.push(Sample { t, v }),
            }
        }
    }
    let lo = out.partition_point(|s| s.t < start);
    let hi = out.partition_point(|s| s.t <= end);
    out.truncate(hi);
    out.drain(..lo.min(out.len()));
    out
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
