//! Compose loading on arbitrary input: never a panic; an error always names a
//! position and says something; a loaded project normalizes to a document that
//! loads back to the same project, and translates without panicking.
//! Shared by the fuzz target and the corpus replay test (crates/framework/tests/fuzz_corpus.rs).

use compose::{Env, SourceFile, load, normalize};

/// Returns whether the input loaded.
pub fn check(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let env = Env::new([("A".to_owned(), "1".to_owned())].into_iter().collect());
    match load(&[SourceFile::new("fuzz.yaml", text.as_ref())], &env) {
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a failed load has at least one error");
            for d in &errors.0 {
                assert!(!d.message.is_empty(), "an error says what is wrong: {d:?}");
            }
            false
        }
        Ok(project) => {
            let doc = normalize(&project);
            let again = load(&[SourceFile::new("normalized.json", doc.to_string())], &Env::default())
                .unwrap_or_else(|e| panic!("the normalized document does not load: {e}\n{doc}"));
            assert_eq!(normalize(&again), doc, "normalizing is stable");
            let _ = framework::translate::translate("fuzz", &project, &Default::default());
            true
        }
    }
}
