//! The series index: label sets ↔ series ids, postings by label, and its
//! append-only log (`series.log`), written before any sample refers to an id.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::bits::{Cursor, put_uvarint};
use super::frame;
use crate::model::{Labels, MatchOp, Matcher};

pub type SeriesId = u32;

#[derive(Default)]
pub struct SeriesIndex {
    ids: HashMap<Labels, SeriesId>,
    labels: Vec<Labels>,
    /// label name → value → ids (ascending, since ids are handed out in order).
    postings: HashMap<String, HashMap<String, Vec<SeriesId>>>,
}

impl SeriesIndex {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn get(&self, labels: &Labels) -> Option<SeriesId> {
        self.ids.get(labels).copied()
    }

    pub fn labels(&self, id: SeriesId) -> &Labels {
        &self.labels[id as usize]
    }

    /// Adds a new series (the caller checked it is absent) and returns its id.
    pub fn insert(&mut self, labels: Labels) -> SeriesId {
        let id = self.labels.len() as SeriesId;
        for (k, v) in labels.iter() {
            self.postings.entry(k.to_string()).or_default().entry(v.to_string()).or_default().push(id);
        }
        self.ids.insert(labels.clone(), id);
        self.labels.push(labels);
        id
    }

    /// Forgets the series added after the first `len` (newest first), as if
    /// they had never been inserted.
    pub fn truncate(&mut self, len: usize) {
        while self.labels.len() > len {
            let labels = self.labels.pop().expect("longer than len");
            for (k, v) in labels.iter() {
                if let Some(values) = self.postings.get_mut(k) {
                    if let Some(ids) = values.get_mut(v) {
                        ids.pop(); // the newest id is the last
                        if ids.is_empty() {
                            values.remove(v);
                        }
                    }
                    if values.is_empty() {
                        self.postings.remove(k);
                    }
                }
            }
            self.ids.remove(&labels);
        }
    }

    /// Ids of the series matching every matcher, ascending. Equality matchers
    /// narrow through postings; the others filter.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<SeriesId> {
        let mut candidates: Option<Vec<SeriesId>> = None;
        for m in matchers.iter().filter(|m| m.op == MatchOp::Eq && !m.value.is_empty()) {
            let ids = self.postings.get(&m.name).and_then(|vals| vals.get(&m.value)).cloned().unwrap_or_default();
            candidates = Some(match candidates {
                None => ids,
                Some(prev) => intersect(&prev, &ids),
            });
        }
        let ids: Vec<SeriesId> = match candidates {
            Some(ids) => ids,
            None => {
                // Without an equality matcher, a regex on one label still narrows to that label's postings
                // when it cannot match the empty value.
                match matchers.iter().find(|m| !m.matches_empty()) {
                    Some(m) => {
                        let mut ids: Vec<SeriesId> = self
                            .postings
                            .get(&m.name)
                            .into_iter()
                            .flat_map(|vals| vals.iter().filter(|(v, _)| m.matches(v)).flat_map(|(_, ids)| ids))
                            .copied()
                            .collect();
                        ids.sort_unstable();
                        ids
                    }
                    None => (0..self.labels.len() as SeriesId).collect(),
                }
            }
        };
        ids.into_iter().filter(|&id| matchers.iter().all(|m| m.matches_labels(&self.labels[id as usize]))).collect()
    }

    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.postings.keys().map(String::as_str)
    }

    pub fn label_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.postings.get(name).into_iter().flat_map(|vals| vals.keys().map(String::as_str))
    }
}

fn intersect(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// `series.log`: one record per series, `uvarint id, uvarint n, n × (name, value)`.
pub struct SeriesLog {
    file: File,
}

impl SeriesLog {
    /// Opens the log, loading every valid record into a new index; a torn tail is cut off.
    pub fn open(path: &Path) -> std::io::Result<(SeriesLog, SeriesIndex)> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let (records, valid) = frame::read_all(&bytes);
        let mut index = SeriesIndex::default();
        for (n, record) in records.iter().enumerate() {
            let labels = decode_record(record, index.len() as SeriesId).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: record {} is not the series it should be", path.display(), n + 1),
                )
            })?;
            index.insert(labels);
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        if valid < bytes.len() {
            tracing::warn!(path = %path.display(), cut = bytes.len() - valid, "series log: cutting a torn tail");
            file.set_len(valid as u64)?;
        }
        Ok((SeriesLog { file }, index))
    }

    /// Appends new series in one write.
    pub fn append(&mut self, series: &[(SeriesId, &Labels)], fsync: bool) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut payload = Vec::new();
        for (id, labels) in series {
            payload.clear();
            put_uvarint(&mut payload, *id as u64);
            put_uvarint(&mut payload, labels.len() as u64);
            for (k, v) in labels.iter() {
                put_uvarint(&mut payload, k.len() as u64);
                payload.extend_from_slice(k.as_bytes());
                put_uvarint(&mut payload, v.len() as u64);
                payload.extend_from_slice(v.as_bytes());
            }
            frame::append(&mut buf, &payload);
        }
        self.file.write_all(&buf)?;
        if fsync {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

fn decode_record(record: &[u8], expected_id: SeriesId) -> Option<Labels> {
    let mut cur = Cursor::new(record);
    if cur.uvarint()? != expected_id as u64 {
        return None;
    }
    let n = cur.uvarint()? as usize;
    let mut pairs = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let klen = cur.uvarint()? as usize;
        let k = String::from_utf8(cur.take(klen)?.to_vec()).ok()?;
        let vlen = cur.uvarint()? as usize;
        let v = String::from_utf8(cur.take(vlen)?.to_vec()).ok()?;
        pairs.push((k, v));
    }
    Some(Labels::new(pairs))
}
