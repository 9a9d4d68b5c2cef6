//! Chunk encoding: one series' samples, compressed.
//!
//! Timestamps are delta-of-delta coded as in Gorilla (one bit for a regular
//! interval). Values take the smaller of two encodings:
//! - *decimal*: when every value is an integer times 10^-e (what sensors and
//!   line protocol usually carry, e.g. `12.34`), the integers are delta or
//!   delta-of-delta coded with bucket widths chosen per chunk from the
//!   residuals' own distribution (VictoriaMetrics's insight: most floats are
//!   decimals in disguise);
//! - *xor*: Gorilla's XOR against the previous value, exact for any bit
//!   pattern (NaN payloads, ±Inf, -0.0).
//!
//! Layout: `uvarint count, ivarint t0, u8 value mode (| 0x80: regular
//! timestamps, then ivarint interval), mode header, bitstream` where the
//! bitstream holds the timestamps (unless regular) then the values.

use super::bits::{BitReader, BitWriter, Cursor, put_ivarint, put_uvarint, unzigzag, zigzag};
use crate::model::Sample;

const MODE_XOR: u8 = 0;
const MODE_DECIMAL_DELTA: u8 = 1;
const MODE_DECIMAL_DOD: u8 = 2;
/// Flag in the mode byte: timestamps are `t0 + i × interval`, stored as the interval alone.
const REGULAR_TIMESTAMPS: u8 = 0x80;
/// Largest decimal exponent tried (values with up to 9 decimal digits).
const MAX_EXP: u32 = 9;

/// Encodes samples (time-ordered, non-empty) into one chunk.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    assert!(!samples.is_empty(), "a chunk holds at least one sample");
    let mut header = Vec::with_capacity(16);
    put_uvarint(&mut header, samples.len() as u64);
    put_ivarint(&mut header, samples[0].t);

    // A regular interval (the usual scrape) costs nothing per sample: only the interval is kept.
    let interval = samples.get(1).map(|s| s.t.wrapping_sub(samples[0].t));
    let regular = interval.is_some_and(|d| samples.windows(2).all(|w| w[1].t.wrapping_sub(w[0].t) == d));
    let mut ts = BitWriter::with_capacity(samples.len() / 8 + 8);
    let mut ts_header = Vec::new();
    let ts_flag = if regular {
        put_ivarint(&mut ts_header, interval.expect("regular needs two samples"));
        REGULAR_TIMESTAMPS
    } else {
        encode_timestamps(samples, &mut ts);
        0
    };

    let xor = {
        let mut bits = ts.clone();
        encode_xor(samples, &mut bits);
        let mut out = header.clone();
        out.push(MODE_XOR | ts_flag);
        out.extend_from_slice(&ts_header);
        out.extend(bits.into_bytes());
        out
    };
    let Some((exp, ints)) = as_decimals(samples) else {
        return xor;
    };
    let mut best = xor;
    for mode in [MODE_DECIMAL_DELTA, MODE_DECIMAL_DOD] {
        let mut out = header.clone();
        out.push(mode | ts_flag);
        out.extend_from_slice(&ts_header);
        out.push(exp as u8);
        let mut bits = ts.clone();
        encode_ints(&ints, mode == MODE_DECIMAL_DOD, &mut out, &mut bits);
        out.extend(bits.into_bytes());
        if out.len() < best.len() {
            best = out;
        }
    }
    best
}

/// Decodes a chunk; `None` when it is corrupt.
pub fn decode(chunk: &[u8]) -> Option<Vec<Sample>> {
    let mut cur = Cursor::new(chunk);
    let count = usize::try_from(cur.uvarint()?).ok()?;
    // A chunk never holds more samples than it has bits (+ header): reject absurd counts early.
    if count == 0 || count > chunk.len() * 8 + 1 {
        return None;
    }
    let t0 = cur.ivarint()?;
    let mode_byte = cur.u8()?;
    let mode = mode_byte & !REGULAR_TIMESTAMPS;
    let interval = if mode_byte & REGULAR_TIMESTAMPS != 0 { Some(cur.ivarint()?) } else { None };
    let (exp, dod, first_int, first_delta, widths) = match mode {
        MODE_XOR => (0, false, 0, 0, [0; 3]),
        MODE_DECIMAL_DELTA | MODE_DECIMAL_DOD => {
            let exp = cur.u8()? as u32;
            let first = cur.ivarint()?;
            let dod = mode == MODE_DECIMAL_DOD;
            let first_delta = if dod && count > 1 { cur.ivarint()? } else { 0 };
            let w = [cur.u8()? as u32, cur.u8()? as u32, cur.u8()? as u32];
            if exp > MAX_EXP || w.iter().any(|&w| w > 64) {
                return None;
            }
            (exp, dod, first, first_delta, w)
        }
        _ => return None,
    };
    let mut bits = BitReader::new(cur.rest());
    let times = match interval {
        Some(d) => (0..count as i64).map(|i| t0.wrapping_add(d.wrapping_mul(i))).collect(),
        None => decode_timestamps(&mut bits, t0, count)?,
    };
    let values = if mode == MODE_XOR {
        decode_xor(&mut bits, count)?
    } else {
        let ints = decode_ints(&mut bits, count, dod, first_int, first_delta, widths)?;
        let scale = 10f64.powi(exp as i32);
        ints.into_iter().map(|n| n as f64 / scale).collect()
    };
    Some(times.into_iter().zip(values).map(|(t, v)| Sample { t, v }).collect())
}

/// The time range and count of a chunk without decoding values.
pub fn summary(samples: &[Sample]) -> (i64, i64, usize) {
    (samples[0].t, samples[samples.len() - 1].t, samples.len())
}

fn encode_timestamps(samples: &[Sample], bits: &mut BitWriter) {
    let mut prev_t = samples[0].t;
    let mut prev_delta = 0i64;
    for (i, s) in samples.iter().enumerate().skip(1) {
        let delta = s.t.wrapping_sub(prev_t);
        if i == 1 {
            write_bucketed(bits, zigzag(delta), [14, 20, 32]);
        } else {
            write_bucketed(bits, zigzag(delta.wrapping_sub(prev_delta)), [7, 9, 12]);
        }
        prev_delta = delta;
        prev_t = s.t;
    }
}

fn decode_timestamps(bits: &mut BitReader, t0: i64, count: usize) -> Option<Vec<i64>> {
    let mut out = Vec::with_capacity(count);
    out.push(t0);
    let mut prev_t = t0;
    let mut delta = 0i64;
    for i in 1..count {
        if i == 1 {
            delta = unzigzag(read_bucketed(bits, [14, 20, 32])?);
        } else {
            delta = delta.wrapping_add(unzigzag(read_bucketed(bits, [7, 9, 12])?));
        }
        prev_t = prev_t.wrapping_add(delta);
        out.push(prev_t);
    }
    Some(out)
}

/// `0` for zero, `10`+w0 bits, `110`+w1, `1110`+w2, `1111`+64.
fn write_bucketed(bits: &mut BitWriter, v: u64, widths: [u32; 3]) {
    if v == 0 {
        bits.bit(false);
        return;
    }
    for (i, &w) in widths.iter().enumerate() {
        if w == 64 || v < (1u64 << w) {
            bits.bits((1u64 << (i + 1)) - 1, i as u32 + 1);
            bits.bit(false);
            bits.bits(v, w);
            return;
        }
    }
    bits.bits(0b1111, 4);
    bits.bits(v, 64);
}

fn read_bucketed(bits: &mut BitReader, widths: [u32; 3]) -> Option<u64> {
    match bits.unary(4)? {
        0 => Some(0),
        n @ 1..=3 => bits.bits(widths[n as usize - 1]),
        _ => bits.bits(64),
    }
}

/// The exponent and integers when every value is exactly `n / 10^e`.
fn as_decimals(samples: &[Sample]) -> Option<(u32, Vec<i64>)> {
    'exp: for exp in 0..=MAX_EXP {
        let scale = 10f64.powi(exp as i32);
        let mut ints = Vec::with_capacity(samples.len());
        for s in samples {
            let n = (s.v * scale).round();
            // |n| < 2^53 keeps n exact; the division check makes decoding bit-exact
            // (it also rejects -0.0, NaN and the infinities).
            if n.is_nan()
                || n.abs() >= 9_007_199_254_740_992.0
                || ((n as i64) as f64 / scale).to_bits() != s.v.to_bits()
            {
                continue 'exp;
            }
            ints.push(n as i64);
        }
        return Some((exp, ints));
    }
    None
}

fn encode_ints(ints: &[i64], dod: bool, header: &mut Vec<u8>, bits: &mut BitWriter) {
    put_ivarint(header, ints[0]);
    let mut residuals = Vec::with_capacity(ints.len());
    if dod {
        if ints.len() > 1 {
            let first_delta = ints[1] - ints[0];
            put_ivarint(header, first_delta);
            let mut prev_delta = first_delta;
            for w in ints[1..].windows(2) {
                let delta = w[1] - w[0];
                residuals.push(zigzag(delta - prev_delta));
                prev_delta = delta;
            }
        }
    } else {
        residuals.extend(ints.windows(2).map(|w| zigzag(w[1] - w[0])));
    }
    let widths = best_widths(&residuals);
    header.extend(widths.iter().map(|&w| w as u8));
    for r in residuals {
        write_bucketed(bits, r, widths);
    }
}

fn decode_ints(
    bits: &mut BitReader,
    count: usize,
    dod: bool,
    first: i64,
    first_delta: i64,
    widths: [u32; 3],
) -> Option<Vec<i64>> {
    let mut out = Vec::with_capacity(count);
    out.push(first);
    if dod && count > 1 {
        out.push(first.wrapping_add(first_delta));
    }
    let mut delta = first_delta;
    while out.len() < count {
        let r = unzigzag(read_bucketed(bits, widths)?);
        let prev = *out.last().expect("non-empty");
        if dod {
            delta = delta.wrapping_add(r);
            out.push(prev.wrapping_add(delta));
        } else {
            out.push(prev.wrapping_add(r));
        }
    }
    Some(out)
}

/// Bucket widths minimising the encoded size of these residuals.
fn best_widths(residuals: &[u64]) -> [u32; 3] {
    let mut hist = [0u64; 65];
    for &r in residuals {
        hist[64 - r.leading_zeros() as usize] += 1;
    }
    let max = (1..=64).rev().find(|&b| hist[b] > 0).unwrap_or(1) as u32;
    // prefix[b] = residuals of width <= b (nonzero ones).
    let mut prefix = [0u64; 65];
    for b in 1..=64 {
        prefix[b] = prefix[b - 1] + hist[b];
    }
    let count = |lo: u32, hi: u32| prefix[hi as usize] - prefix[lo as usize];
    let mut best = (u64::MAX, [max, max, max]);
    for w1 in 1..=max {
        for w2 in w1..=max {
            let cost =
                count(0, w1) * (2 + w1 as u64) + count(w1, w2) * (3 + w2 as u64) + count(w2, max) * (4 + max as u64);
            if cost < best.0 {
                best = (cost, [w1, w2, max]);
            }
        }
    }
    best.1
}

fn encode_xor(samples: &[Sample], bits: &mut BitWriter) {
    let mut prev = samples[0].v.to_bits();
    bits.bits(prev, 64);
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for s in &samples[1..] {
        let v = s.v.to_bits();
        let x = v ^ prev;
        prev = v;
        if x == 0 {
            bits.bit(false);
            continue;
        }
        bits.bit(true);
        let l = x.leading_zeros().min(31);
        let t = x.trailing_zeros();
        if lead != u32::MAX && l >= lead && t >= trail {
            bits.bit(false);
            bits.bits(x >> trail, 64 - lead - trail);
        } else {
            bits.bit(true);
            let sig = 64 - l - t;
            bits.bits(l as u64, 5);
            bits.bits((sig % 64) as u64, 6); // 64 is written as 0
            bits.bits(x >> t, sig);
            lead = l;
            trail = t;
        }
    }
}

fn decode_xor(bits: &mut BitReader, count: usize) -> Option<Vec<f64>> {
    let mut out = Vec::with_capacity(count);
    let mut prev = bits.bits(64)?;
    out.push(f64::from_bits(prev));
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for _ in 1..count {
        if bits.bit()? {
            let x = if bits.bit()? {
                lead = bits.bits(5)? as u32;
                let sig = match bits.bits(6)? as u32 {
                    0 => 64,
                    n => n,
                };
                if lead + sig > 64 {
                    return None;
                }
                trail = 64 - lead - sig;
                bits.bits(sig)? << trail
            } else {
                if lead == u32::MAX {
                    return None;
                }
                bits.bits(64 - lead - trail)? << trail
            };
            prev ^= x;
        }
        out.push(f64::from_bits(prev));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[f64]) -> Vec<Sample> {
        values.iter().enumerate().map(|(i, &v)| Sample { t: 1_700_000_000_000 + i as i64 * 30_000, v }).collect()
    }

    fn round_trip(s: &[Sample]) -> Vec<u8> {
        let chunk = encode(s);
        let back = decode(&chunk).expect("decodes");
        assert_eq!(back.len(), s.len());
        for (a, b) in back.iter().zip(s) {
            assert_eq!(a.t, b.t);
            assert_eq!(a.v.to_bits(), b.v.to_bits(), "{} vs {}", a.v, b.v);
        }
        chunk
    }

    #[test]
    fn regular_decimals_are_small() {
        // Divided last, as a parser of "10.37" gets the nearest double.
        let values: Vec<f64> = (0..480).map(|i| (1000 + i * 37 % 200) as f64 / 100.0).collect();
        let chunk = round_trip(&samples(&values));
        // 480 timestamps at one bit each, values in at most 12 bits each (deltas up to ±199).
        assert!(chunk.len() < 480 * 13 / 8 + 100, "{} bytes", chunk.len());
    }

    #[test]
    fn specials_take_the_xor_path() {
        round_trip(&samples(&[f64::NAN, f64::INFINITY, -0.0, f64::NEG_INFINITY, 1.5, 1.5, f64::MIN_POSITIVE]));
        round_trip(&samples(&[0.1 + 0.2, 1e300, -1e-300]));
    }

    #[test]
    fn constant_counter_uses_delta_of_delta() {
        let values: Vec<f64> = (0..480).map(|i| 1000.0 + i as f64 * 512.0).collect();
        let chunk = round_trip(&samples(&values));
        // Regular timestamps cost nothing; one bit per value.
        assert!(chunk.len() <= 480 / 8 + 30, "{} bytes", chunk.len());
    }

    #[test]
    fn irregular_and_single() {
        round_trip(&[Sample { t: -5, v: 1.0 }]);
        round_trip(&[Sample { t: 0, v: 1.0 }, Sample { t: i64::MAX / 2, v: -3.0 }, Sample { t: i64::MAX, v: 2.0 }]);
    }

    #[test]
    fn corrupt_chunks_are_rejected_not_panics() {
        let chunk = encode(&samples(&[1.0, 2.5, 3.25, f64::NAN]));
        for cut in 0..chunk.len() {
            let _ = decode(&chunk[..cut]);
        }
        assert!(decode(&[]).is_none());
        assert!(decode(&[5, 0, 9]).is_none());
    }
}
