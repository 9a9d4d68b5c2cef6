//! Immutable block files `blocks/<id>.blk`: the chunks one flush sealed, then
//! an index of them by series. Written to a temporary name, synced, renamed:
//! a block either exists whole or not at all.
//!
//! Layout: `MAGIC, chunks..., index, u64 index offset, u32 index crc, MAGIC`;
//! index: `uvarint series count`, then per series `uvarint id, uvarint n`,
//! and per chunk `uvarint len, ivarint min_t, uvarint max_t - min_t, uvarint samples`
//! (chunk offsets follow from the lengths, in file order).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::bits::{Cursor, put_ivarint, put_uvarint};
use super::series::SeriesId;

const MAGIC: &[u8; 8] = b"M3SBLK1\n";

/// Where one chunk is.
#[derive(Clone, Copy, Debug)]
pub struct ChunkRef {
    pub block: u64,
    pub offset: u64,
    pub len: u32,
    pub min_t: i64,
    pub max_t: i64,
    pub samples: u32,
}

pub struct Block {
    pub id: u64,
    pub path: PathBuf,
    file: File,
    pub size: u64,
    pub max_t: i64,
}

impl Block {
    /// `len` bytes from `offset` (one chunk, or several adjacent ones).
    pub fn read_span(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0; len as usize];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

/// One encoded chunk handed to the writer.
pub struct EncodedChunk {
    pub bytes: Vec<u8>,
    pub min_t: i64,
    pub max_t: i64,
    pub samples: u32,
}

pub fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016}.blk"))
}

/// Writes a block of `series` (ascending ids) and opens it.
pub fn write(
    dir: &Path,
    id: u64,
    series: &[(SeriesId, Vec<EncodedChunk>)],
) -> std::io::Result<(Block, Vec<(SeriesId, ChunkRef)>)> {
    let final_path = path(dir, id);
    let tmp = final_path.with_extension("blk.tmp");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    out.write_all(MAGIC)?;
    let mut index = Vec::new();
    put_uvarint(&mut index, series.len() as u64);
    for (sid, chunks) in series {
        put_uvarint(&mut index, *sid as u64);
        put_uvarint(&mut index, chunks.len() as u64);
        for c in chunks {
            out.write_all(&c.bytes)?;
            put_uvarint(&mut index, c.bytes.len() as u64);
            put_ivarint(&mut index, c.min_t);
            put_uvarint(&mut index, c.max_t.wrapping_sub(c.min_t) as u64);
            put_uvarint(&mut index, c.samples as u64);
        }
    }
    let index_offset =
        MAGIC.len() as u64 + series.iter().flat_map(|(_, cs)| cs).map(|c| c.bytes.len() as u64).sum::<u64>();
    out.write_all(&index)?;
    out.write_all(&index_offset.to_le_bytes())?;
    out.write_all(&crc32fast::hash(&index).to_le_bytes())?;
    out.write_all(MAGIC)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &final_path)?;
    File::open(dir)?.sync_all()?;
    open(&final_path, id)
}

/// Opens a block and reads its index.
pub fn open(path: &Path, id: u64) -> std::io::Result<(Block, Vec<(SeriesId, ChunkRef)>)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {what}", path.display()));
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let tail_len = 8 + 4 + MAGIC.len() as u64;
    if size < MAGIC.len() as u64 + tail_len {
        return Err(bad("too short to be a block"));
    }
    let mut tail = vec![0; tail_len as usize];
    file.read_exact_at(&mut tail, size - tail_len)?;
    if &tail[12..] != MAGIC {
        return Err(bad("no end marker (an incomplete write?)"));
    }
    let index_offset = u64::from_le_bytes(tail[..8].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(tail[8..12].try_into().expect("4 bytes"));
    let index_len = (size - tail_len).checked_sub(index_offset).ok_or_else(|| bad("index offset past the end"))?;
    let mut index = vec![0; index_len as usize];
    file.read_exact_at(&mut index, index_offset)?;
    if crc32fast::hash(&index) != crc {
        return Err(bad("index checksum mismatch"));
    }
    let mut refs = Vec::new();
    let mut cur = Cursor::new(&index);
    let mut offset = MAGIC.len() as u64;
    let mut max_t = i64::MIN;
    let n = cur.uvarint().ok_or_else(|| bad("truncated index"))?;
    for _ in 0..n {
        let (Some(sid), Some(chunks)) = (cur.uvarint(), cur.uvarint()) else { return Err(bad("truncated index")) };
        for _ in 0..chunks {
            let (Some(len), Some(lo), Some(span), Some(samples)) =
                (cur.uvarint(), cur.ivarint(), cur.uvarint(), cur.uvarint())
            else {
                return Err(bad("truncated index"));
            };
            let r = ChunkRef {
                block: id,
                offset,
                len: len as u32,
                min_t: lo,
                max_t: lo.wrapping_add(span as i64),
                samples: samples as u32,
            };
            offset += len;
            if offset > index_offset {
                return Err(bad("chunk past the index"));
            }
            max_t = max_t.max(r.max_t);
            refs.push((sid as SeriesId, r));
        }
    }
    Ok((Block { id, path: path.to_owned(), file, size, max_t }, refs))
}

/// Block ids present in `dir`, ascending; leftover temporary files are removed.
pub fn list(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".blk.tmp") {
            std::fs::remove_file(&path)?;
        } else if let Some(id) = name.strip_suffix(".blk").and_then(|n| n.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}
