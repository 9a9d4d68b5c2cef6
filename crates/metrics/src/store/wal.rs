//! The write-ahead log: numbered segments `wal/<seq>.wal` of framed records,
//! each record one write request's samples (`uvarint id, ivarint t, f64 v`).
//! A flush starts a new segment; segments before it are deleted once their
//! samples are in a block.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::bits::{Cursor, put_ivarint, put_uvarint};
use super::frame;
use super::series::SeriesId;
use crate::model::Sample;

pub struct Wal {
    dir: PathBuf,
    seq: u64,
    file: File,
}

impl Wal {
    /// Opens the log and replays every segment's valid records into `apply`.
    pub fn open(dir: &Path, mut apply: impl FnMut(SeriesId, Sample)) -> std::io::Result<Wal> {
        std::fs::create_dir_all(dir)?;
        let segments = segments(dir)?;
        for (_, path) in &segments {
            let bytes = std::fs::read(path)?;
            let (records, valid) = frame::read_all(&bytes);
            for record in records {
                let mut cur = Cursor::new(record);
                while !cur.is_empty() {
                    let (Some(id), Some(t), Some(v)) = (cur.uvarint(), cur.ivarint(), cur.f64()) else {
                        break;
                    };
                    apply(id as SeriesId, Sample { t, v });
                }
            }
            if valid < bytes.len() {
                tracing::warn!(path = %path.display(), cut = bytes.len() - valid, "write-ahead log: ignoring a torn tail");
            }
        }
        // Always continue in a fresh segment: an old one may end in a torn record.
        let seq = segments.last().map_or(1, |(s, _)| s + 1);
        let file = create_segment(dir, seq)?;
        Ok(Wal { dir: dir.to_owned(), seq, file })
    }

    pub fn append(&mut self, samples: &[(SeriesId, Sample)], fsync: bool) -> std::io::Result<()> {
        let mut payload = Vec::with_capacity(samples.len() * 14);
        for (id, s) in samples {
            put_uvarint(&mut payload, *id as u64);
            put_ivarint(&mut payload, s.t);
            payload.extend_from_slice(&s.v.to_le_bytes());
        }
        let mut buf = Vec::with_capacity(payload.len() + 8);
        frame::append(&mut buf, &payload);
        self.file.write_all(&buf)?;
        if fsync {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Starts a new segment and returns its number: everything appended before
    /// lives in segments with smaller numbers.
    pub fn rotate(&mut self) -> std::io::Result<u64> {
        self.file.sync_data()?;
        self.seq += 1;
        self.file = create_segment(&self.dir, self.seq)?;
        Ok(self.seq)
    }

    pub fn remove_before(&self, seq: u64) -> std::io::Result<()> {
        for (s, path) in segments(&self.dir)? {
            if s < seq {
                std::fs::remove_file(path)?;
            }
        }
        Ok(())
    }

    pub fn bytes_on_disk(&self) -> u64 {
        segments(&self.dir)
            .map_or(0, |segs| segs.iter().filter_map(|(_, p)| std::fs::metadata(p).ok()).map(|m| m.len()).sum())
    }
}

fn create_segment(dir: &Path, seq: u64) -> std::io::Result<File> {
    std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{seq:016}.wal")))
}

fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}
