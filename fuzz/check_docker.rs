//! The Docker Engine client's parsers, shared by the `docker_stream` fuzz
//! target and the corpus replay in crates/docker/tests/fuzz_corpus.rs: whatever
//! bytes a daemon (or something posing as one on its socket) answers, reading
//! them never panics, never gives more body than was sent or than the limit,
//! and a multiplexed stream never yields more payload than it carried.

const LIMIT: usize = 64 * 1024;

/// The first byte picks the parser: even, an HTTP answer; odd, a multiplexed
/// stream. Returns whether the input was accepted.
pub fn check_stream(data: &[u8]) -> bool {
    let Some((&which, rest)) = data.split_first() else { return false };
    if which % 2 == 0 {
        match docker::read_response(rest, LIMIT) {
            Ok((_, body)) => {
                assert!(body.len() <= rest.len() && body.len() <= LIMIT, "a body larger than its input or the limit");
                true
            }
            Err(_) => false,
        }
    } else {
        let mut total = 0usize;
        let result = docker::demux(rest, |_, bytes| {
            assert!(bytes.len() <= 64 * 1024, "a piece over 64 KiB");
            total += bytes.len();
            Ok(())
        });
        assert!(total <= rest.len(), "more payload than input");
        result.is_ok()
    }
}
