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
    let files: Vec<_> = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let of = |ext: &str| -> Vec<_> {
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .cloned()
            .collect()
    };
    // The artifact, and what hello listed (it is granted nothing); perhaps
    // hello.wasm's digest by its identity, if it was copied long enough
    // before it was read (`a_file_changed_in_place_...` below).
    let entries = of("cwasm");
    assert_eq!(entries.len(), 1, "{files:?}");
    assert_eq!(of("listing").len(), 1, "{files:?}");
    assert_eq!(files.len() - of("ident").len(), 2, "{files:?}");
    assert_eq!(
        std::fs::metadata(&cache_dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // A warm start lists hello from the cache; its code loads, from the
    // cache too, on its first call.
    let ward = start_with_cache(&dir, &cache_dir).await;
    ward.wait_log("cached=true").await;
    assert_eq!(ward.tool_names().await, vec!["hello_greet"]);
    assert!(!ward.log().contains("first call"), "{}", ward.log());
    assert!(text(&ward.call("hello_greet", json!({"name": "Gil"})).await).contains("Gil"));
    let log = ward.wait_log("loaded its code on its first call").await;
    assert!(
        log.lines()
            .any(|l| l.contains("first call") && l.contains("cached=true")),
        "{log}"
    );
    drop(ward);

    // A corrupt entry is recompiled (and rewritten).
    std::fs::write(&entries[0], b"corrupt").unwrap();
    let ward = start_with_cache(&dir, &cache_dir).await;
    assert!(text(&ward.call("hello_greet", json!({"name": "Hal"})).await).contains("Hal"));
    ward.wait_log("unusable").await;
    drop(ward);

    // An entry others could have written is never deserialized (nor its
    // listing served: the plugin is compiled and run at start).
    std::fs::set_permissions(&entries[0], std::fs::Permissions::from_mode(0o666)).unwrap();
    let ward = start_with_cache(&dir, &cache_dir).await;
    assert!(text(&ward.call("hello_greet", json!({"name": "Ida"})).await).contains("Ida"));
    let log = ward.wait_log("writable by others").await;
    assert!(
        log.lines()
            .any(|l| l.contains("plugin=hello") && l.contains("cached=false")),
        "{log}"
    );
    assert!(!log.contains("cached=true"), "{log}");
}

/// A restart takes the digest of a plugin file it hashed before from the
/// file's identity instead of reading it again. The attack on that: change
/// the bytes in place, keeping the size, and put the modification time
/// back. The status-change time still moves, so ward hashes the file again,
/// and the pin refuses the changed bytes.
#[tokio::test]
async fn a_file_changed_in_place_with_its_time_put_back_is_hashed_again() {
    use sha2::Digest as _;
    use std::io::{Seek as _, Write as _};
    let dir = Dir::new();
    dir.plugin("hello", "hello");
    let path = dir.path().join("hello.wasm");
    let bytes = std::fs::read(&path).unwrap();
    let pin: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.policy("hello", &format!("[source]\nsha256 = \"{pin}\"\n"));
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("ward");
    // A file is remembered only once it has settled (`cache::SETTLED`, 2 s
    // after it last changed): nothing to await but the clock.
    let changed = |meta: &std::fs::Metadata| {
        use std::os::unix::fs::MetadataExt as _;
        std::time::UNIX_EPOCH
            + std::time::Duration::new(meta.ctime() as u64, meta.ctime_nsec() as u32)
    };
    let settled =
        changed(&std::fs::metadata(&path).unwrap()) + std::time::Duration::from_millis(2100);
    if let Ok(wait) = settled.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    for hashed in ["hashed=true", "hashed=false"] {
        let ward = start_with_cache(&dir, &cache_dir).await;
        let log = ward.wait_log("loaded ").await;
        assert!(log.contains(hashed), "{log}");
        assert_eq!(ward.tool_names().await, vec!["hello_greet"]);
        drop(ward);
    }

    // A remembered digest the pin refuses (here forged in ward's own cache;
    // a file changed through a shared mapping can leave one) is checked
    // against the bytes before hello is refused: it serves, and the right
    // digest is remembered again.
    let ident = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "ident"))
        .expect("hello.wasm's identity");
    let mut forged = std::fs::read(&ident).unwrap();
    forged[8..].fill(0);
    std::fs::write(&ident, &forged).unwrap();
    for hashed in ["hashed=true", "hashed=false"] {
        let ward = start_with_cache(&dir, &cache_dir).await;
        let log = ward.wait_log("loaded ").await;
        assert!(log.contains(hashed), "{log}");
        assert_eq!(ward.tool_names().await, vec!["hello_greet"], "{log}");
        drop(ward);
    }

    // The attack.
    let before = std::fs::metadata(&path).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    let middle = bytes.len() as u64 / 2;
    (&file).seek(std::io::SeekFrom::Start(middle)).unwrap();
    (&file).write_all(&[!bytes[middle as usize]]).unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    drop(file);
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(
        (after.len(), after.modified().unwrap()),
        (before.len(), before.modified().unwrap())
    );

    let ward = start_with_cache(&dir, &cache_dir).await;
    let log = ward.wait_log("pins `[source] sha256").await;
    assert!(!log.contains("hashed=false"), "{log}");
    assert!(ward.tool_names().await.is_empty(), "{log}");
}

/// Only a plugin granted nothing that could change its lists (no files, no
/// environment, no network) is listed from the cache: one granted a
/// variable is run at every start.
#[tokio::test]
async fn a_plugin_with_grants_is_never_listed_from_the_cache() {
    let dir = Dir::new();
    dir.plugin("hello", "hello")
        .policy("hello", "[env]\nGREETING = \"hi\"\n");
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("ward");
    for _ in 0..2 {
        let ward = start_with_cache(&dir, &cache_dir).await;
        assert_eq!(ward.tool_names().await, vec!["hello_greet"]);
        drop(ward);
    }
    let listings = std::fs::read_dir(&cache_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "listing")
        })
        .count();
    assert_eq!(listings, 0);
}

/// The cache entry of built plugin `source` in `cache_dir`: its name starts
/// with the hex sha256 of the wasm.
fn entry_of(cache_dir: &std::path::Path, source: &str) -> std::path::PathBuf {
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(std::fs::read(wasm(source)).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let found: Vec<_> = std::fs::read_dir(cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(&hex))
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(found.len(), 1, "entries of {source}: {found:?}");
    found.into_iter().next().unwrap()
}

/// A cache directory holding the entries of `hello` and `stats`.
async fn warm_cache() -> (tempfile::TempDir, std::path::PathBuf, Dir) {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("ward");
    let dir = Dir::new();
    dir.plugin("hello", "hello").plugin("stats", "stats");
    let ward = start_with_cache(&dir, &cache_dir).await;
    assert_eq!(ward.tool_names().await.len(), 2, "{}", ward.log());
    drop(ward);
    (cache, cache_dir, dir)
}

/// Regression test for issue 11 item 1: an entry truncated under a running
/// ward (a plugin with a grant over the cache did it with one write) killed
/// ward with SIGBUS, because entries were mapped from their files.
#[tokio::test]
async fn an_entry_truncated_while_serving_cannot_crash_ward() {
    let (_cache, cache_dir, dir) = warm_cache().await;
    let ward = start_with_cache(&dir, &cache_dir).await;
    ward.wait_log("cached=true").await;
    for source in ["hello", "stats"] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(entry_of(&cache_dir, source))
            .unwrap()
            .set_len(0)
            .unwrap();
    }
    for i in 0..20 {
        let r = ward
            .call("hello_greet", json!({"name": format!("Ann{i}")}))
            .await;
        assert!(text(&r).contains(&format!("Ann{i}")), "{r:?}");
        let r = ward
            .call("stats_describe", json!({"numbers": [1.0, 3.0]}))
            .await;
        assert!(!is_error(&r), "{r:?}");
    }
}

/// Another wasm's artifact renamed to this one's key is recompiled, never
/// served under this plugin's name.
#[tokio::test]
async fn a_swapped_entry_is_refused_and_recompiled() {
    let (_cache, cache_dir, dir) = warm_cache().await;
    std::fs::copy(entry_of(&cache_dir, "stats"), entry_of(&cache_dir, "hello")).unwrap();
    let ward = start_with_cache(&dir, &cache_dir).await;
    assert_eq!(
        ward.tool_names().await,
        vec!["hello_greet", "stats_describe"],
        "{}",
        ward.log()
    );
    assert!(text(&ward.call("hello_greet", json!({"name": "Bo"})).await).contains("Bo"));
    let log = ward.wait_log("unusable").await;
    assert!(log.contains("recompiling"), "{log}");
}

/// One flipped byte in the middle of an entry (code or data) is caught
/// before deserializing, not executed.
#[tokio::test]
async fn a_corrupted_entry_is_refused_and_recompiled() {
    let (_cache, cache_dir, dir) = warm_cache().await;
    let path = entry_of(&cache_dir, "hello");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let ward = start_with_cache(&dir, &cache_dir).await;
    assert!(text(&ward.call("hello_greet", json!({"name": "Cy"})).await).contains("Cy"));
    let log = ward.wait_log("unusable").await;
    assert!(log.contains(&format!("{}", path.display())), "{log}");
    let log = ward.wait_log("first call").await;
    assert!(
        log.lines()
            .any(|l| l.contains("plugin=hello") && l.contains("cached=false")),
        "{log}"
    );
    // And the rewritten entry is good again.
    drop(ward);
    let ward = start_with_cache(&dir, &cache_dir).await;
    assert!(text(&ward.call("hello_greet", json!({"name": "Di"})).await).contains("Di"));
    ward.wait_log("first call").await;
    assert!(!ward.log().contains("unusable"), "{}", ward.log());
}

/// Regression test for issue 11 item 10: the cache is bounded; the least
/// recently used entries go first.
#[tokio::test]
async fn the_cache_is_bounded_and_evicts_the_least_recently_used() {
    let (_cache, cache_dir, _) = warm_cache().await;
    let hello = entry_of(&cache_dir, "hello");
    let stats = entry_of(&cache_dir, "stats");
    let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len();
    // hello was used an hour ago; under a cap that holds only one of the
    // two, it is the one to go.
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&hello)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let only_stats = Dir::new();
    only_stats.plugin("stats", "stats");
    let cap = size(&hello).max(size(&stats)) + size(&hello).min(size(&stats)) / 2;
    let mut cmd = serve_command(only_stats.path());
    cmd.env("WARD_CACHE_DIR", &cache_dir)
        .env("WARD_CACHE_MAX_SIZE", cap.to_string());
    let ward = Ward::start_command(cmd, Era::Legacy("2025-11-25")).await;
    ward.wait_log("cached=true").await;
    assert!(stats.exists(), "the entry in use was evicted");
    assert!(!hello.exists(), "the least recently used entry was kept");
    let total: u64 = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total <= cap, "{total} > {cap}");
}

/// A listing is served only beside its artifact: with the artifact evicted
/// (or deleted), the plugin is loaded and run at start as before, so its
/// first call never depends on the file still holding what was listed.
#[tokio::test]
async fn a_listing_without_its_artifact_is_not_served() {
    let (_cache, cache_dir, dir) = warm_cache().await;
    std::fs::remove_file(entry_of(&cache_dir, "hello")).unwrap();
    let listings = |of: &str| {
        std::fs::read_dir(&cache_dir)
            .unwrap()
            .filter(|e| {
                let path = e.as_ref().unwrap().path();
                path.extension().is_some_and(|e| e == "listing")
                    && path.to_string_lossy().contains(of)
            })
            .count()
    };
    let hex = |source: &str| -> String {
        use sha2::Digest as _;
        sha2::Sha256::digest(std::fs::read(wasm(source)).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(listings(&hex("hello")), 1);
    let ward = start_with_cache(&dir, &cache_dir).await;
    let log = ward.wait_log("plugin=hello").await;
    assert!(
        log.lines().any(|l| l.contains("loaded ")
            && l.contains("plugin=hello")
            && l.contains("cached=false")),
        "{log}"
    );
    assert!(text(&ward.call("hello_greet", json!({"name": "Eve"})).await).contains("Eve"));
    assert!(!ward.log().contains("first call"), "{}", ward.log());
}
