//! The compiled-artifact cache: warm starts hit it; corrupt or foreign
//! entries are recompiled, never fatal and never trusted.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::util::*;

async fn start_with_cache(dir: &Dir, cache: &std::path::Path) -> Ward {
    let mut cmd = serve_command(dir.path());
    cmd.env("WARD_CACHE_DIR", cache);
    Ward::start_command(cmd, Era::Legacy("2025-11-25")).await
}

#[tokio::test]
async fn warm_starts_hit_the_cache_and_bad_entries_are_recompiled() {
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("ward");

    let ward = start_with_cache(&dir, &cache_dir).await;
    ward.wait_log("cached=false").await;
    drop(ward);
    let entries: Vec<_> = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        std::fs::metadata(&cache_dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let ward = start_with_cache(&dir, &cache_dir).await;
    ward.wait_log("cached=true").await;
    drop(ward);

    // A corrupt entry is recompiled (and rewritten).
    std::fs::write(&entries[0], b"corrupt").unwrap();
    let ward = start_with_cache(&dir, &cache_dir).await;
    ward.wait_log("unusable").await;
    assert!(text(&ward.call("hello_greet", json!({"name": "Hal"})).await).contains("Hal"));
    drop(ward);

    // An entry others could have written is never deserialized.
    std::fs::set_permissions(&entries[0], std::fs::Permissions::from_mode(0o666)).unwrap();
    let ward = start_with_cache(&dir, &cache_dir).await;
    let log = ward.wait_log("cached=false").await;
    assert!(!log.contains("cached=true"), "{log}");
    assert!(text(&ward.call("hello_greet", json!({"name": "Ida"})).await).contains("Ida"));
}
