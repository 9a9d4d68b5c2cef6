//! The property the `recordio_events` fuzz target checks, shared with the
//! corpus replay test in crates/mesos/tests/fuzz_corpus.rs: arbitrary bytes,
//! cut into chunks whose size the first byte picks, go through the RecordIO
//! decoder and the scheduler event decoder. Errors are fine; panics are not,
//! and whatever decodes must encode again.

use mesos::recordio::Decoder;
use mesos::v1::scheduler::Event;

/// Returns how many events decoded.
pub fn check(data: &[u8]) -> usize {
    let Some((&first, rest)) = data.split_first() else { return 0 };
    let chunk = usize::from(first % 64) + 1;
    let mut decoder = Decoder::new(1 << 20);
    let mut events = 0;
    for piece in rest.chunks(chunk) {
        decoder.feed(piece);
        loop {
            match decoder.next_record() {
                Ok(Some(record)) => {
                    if let Ok(event) = serde_json::from_slice::<Event>(&record) {
                        serde_json::to_vec(&event).expect("a decoded event re-encodes");
                        events += 1;
                    }
                }
                Ok(None) => break,
                Err(_) => return events,
            }
        }
    }
    let _ = decoder.finish();
    events
}
