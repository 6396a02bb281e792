//! A policy file's text → a policy or errors that name the file. Whatever the
//! text, parsing never panics, and every problem names the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ward::sandbox::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A directory that does not exist: fs grants cannot open anything real.
    let path = Path::new("/nonexistent-ward-fuzz/fuzz.toml");
    if let Err(error) = Policy::parse(text, path, "fuzz") {
        assert!(error.to_string().contains("fuzz.toml"), "{error}");
    }
});
