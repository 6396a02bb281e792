//! Results kept for the next caller who asks the same: a plugin's `[cache]`
//! section.
//!
//! ```toml
//! [cache]
//! ttl = "60s"            # resources/read results, and the tools below
//! tools = ["forecast"]   # only tools annotated read-only and idempotent
//! ```
//!
//! Design decisions:
//! - **Keyed by everything the answer depends on**: the plugin's version
//!   (its wasm's sha256, so a replaced plugin never answers from its
//!   predecessor's results), the method and item, the exact arguments, and
//!   the caller's scopes (so a cached answer never reaches a caller who
//!   could not have asked for it). Only successful answers are kept.
//! - **Two levels.** An in-process cache bounded in bytes (least recently
//!   used out first), and with `--redis` a second level that replicas
//!   behind one load balancer share. Redis being away costs a log line and
//!   a guest run, never a failed request.
//! - **A hit costs no guest run** and says so: `_meta."ward/cache": "hit"`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use toml::Table;

use super::redis::Shared;
use crate::audit::Caller;
use crate::backend::{
    ClientAnswer, ClientHandle, ClientMethod, ClientRequests, Question, Suspended,
};

use crate::sandbox::policy::{found, parse_duration, Problems};

/// Accepted `cache.ttl`: 1 s to 1 day.
pub const TTL_BOUNDS: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(86_400);

/// A plugin's `[cache]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePolicy {
    /// How long a result is kept; `None`: nothing is cached.
    pub ttl: Option<Duration>,
    /// The plugin's own names of the tools whose results are kept.
    pub tools: Vec<String>,
}

/// Parses `[cache]`.
pub(crate) fn parse(p: &mut Problems, table: &Table) -> CachePolicy {
    p.check_keys("cache", table, &["ttl", "tools"]);
    let mut cache = CachePolicy::default();
    match table.get("ttl") {
        Some(v) => match v.as_str().and_then(parse_duration) {
            Some(ttl) if TTL_BOUNDS.contains(&ttl) => cache.ttl = Some(ttl),
            _ => p.invalid(
                "cache.ttl",
                format!(
                    "expected a duration from 1s to 24h such as \"60s\" or \"5m\", found {}",
                    found(v)
                ),
            ),
        },
        None => p.invalid(
            "cache.ttl",
            "missing (expected how long results are kept, such as \"60s\")".into(),
        ),
    }
    if let Some(v) = table.get("tools") {
        match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(name) if !name.is_empty() => cache.tools.push(name.to_string()),
                        _ => p.invalid(
                            &format!("cache.tools[{i}]"),
                            format!("expected a tool name of the plugin, found {}", found(item)),
                        ),
                    }
                }
            }
            None => p.invalid(
                "cache.tools",
                format!(
                    "expected an array of tool names such as [\"forecast\"], found {}",
                    found(v)
                ),
            ),
        }
    }
    cache
}

/// Why a tool named in `cache.tools` cannot be cached, if it cannot: it
/// must exist and be annotated read-only and idempotent, since a cached
/// answer stands for a call that did not happen.
pub fn uncacheable(name: &str, tool: Option<(bool, bool)>) -> Option<String> {
    match tool {
        None => Some(format!(
            "cache.tools names {name:?}, which is no tool of the plugin; correct the name or remove it"
        )),
        Some((true, true)) => None,
        Some(_) => Some(format!(
            "cache.tools names {name:?}, which is not annotated both readOnlyHint and idempotentHint; \
             only such tools may be cached (a cached answer stands for a call that did not happen)"
        )),
    }
}

/// The in-process level's size, without `--cache-bytes`: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// What identifies one cached answer: a digest of everything it depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    /// The key of `method` on `item` of the plugin version `sha256`, with
    /// `arguments`, as `caller` asks it.
    pub fn new(
        plugin: &str,
        sha256: &[u8; 32],
        caller: Option<&Caller>,
        method: &str,
        item: &str,
        arguments: &Value,
    ) -> Key {
        let mut h = Sha256::new();
        // "all", or "scopes:" and the sorted scopes: no set of scopes can
        // spell the unrestricted caller's key.
        let scopes = match caller.and_then(|c| c.scopes.as_ref()) {
            None => "all".to_string(),
            Some(scopes) => {
                let mut scopes = scopes.clone();
                scopes.sort();
                format!("scopes:{}", scopes.join(" "))
            }
        };
        for part in [
            plugin.as_bytes(),
            sha256,
            scopes.as_bytes(),
            method.as_bytes(),
            item.as_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(arguments.to_string().as_bytes());
        let digest = h.finalize();
        Key(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The key as text (for the shared level).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone)]
struct Entry {
    expires: Instant,
    json: Arc<str>,
}

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<Key, Entry> for Weight {
    fn weight(&self, key: &Key, entry: &Entry) -> u64 {
        (key.0.len() + entry.json.len() + 64) as u64
    }
}

/// Cached answers: in this process, and in Redis when one is shared.
pub struct ResultCache {
    local: quick_cache::sync::Cache<Key, Entry, Weight>,
    shared: Option<Arc<Shared>>,
}

impl ResultCache {
    /// A cache of at most `bytes` in this process, with `shared` as the
    /// second level.
    pub fn new(bytes: u64, shared: Option<Arc<Shared>>) -> ResultCache {
        let items = (bytes / 4096).clamp(16, 1 << 20) as usize;
        ResultCache {
            local: quick_cache::sync::Cache::with_weighter(items, bytes, Weight),
            shared,
        }
    }

    /// The answer kept under `key`, if it has not expired.
    pub async fn get(&self, key: &Key) -> Option<Value> {
        if let Some(entry) = self.local.get(key) {
            if entry.expires > Instant::now() {
                return serde_json::from_str(&entry.json).ok();
            }
            self.local.remove(key);
        }
        let shared = self.shared.as_ref()?;
        let (json, ttl) = shared.cache_get(key.as_str()).await?;
        let value = serde_json::from_str(&json).ok()?;
        self.local.insert(
            key.clone(),
            Entry {
                expires: Instant::now() + ttl,
                json: json.into(),
            },
        );
        Some(value)
    }

    /// Keeps `value` under `key` for `ttl`.
    pub async fn put(&self, key: Key, ttl: Duration, value: &Value) {
        let json: Arc<str> = value.to_string().into();
        if let Some(shared) = &self.shared {
            shared.cache_put(key.as_str(), &json, ttl).await;
        }
        self.local.insert(
            key,
            Entry {
                expires: Instant::now() + ttl,
                json,
            },
        );
    }
}

impl Default for ResultCache {
    fn default() -> Self {
        ResultCache::new(DEFAULT_CACHE_BYTES, None)
    }
}

/// Whether the guest of a run asked its client anything: an answer built
/// from the client's answers (its roots, its user's input, its model's
/// message) belongs to that client, and is never kept for another caller.
#[derive(Clone, Default)]
pub struct Asked(Arc<AtomicBool>);

impl Asked {
    /// Puts a watch on `client`, the client of one run.
    pub fn watch(client: &mut Option<ClientHandle>) -> Asked {
        let asked = Asked::default();
        if let Some(inner) = client.take() {
            *client = Some(ClientHandle(Arc::new(Watched {
                inner,
                asked: asked.clone(),
            })));
        }
        asked
    }

    /// Whether the guest asked (or looked at what its client supports).
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

struct Watched {
    inner: ClientHandle,
    asked: Asked,
}

impl ClientRequests for Watched {
    fn ask(
        &self,
        questions: Vec<Question>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<ClientAnswer>, Suspended>> + Send + '_>> {
        self.asked.0.store(true, Ordering::Relaxed);
        self.inner.0.ask(questions)
    }

    fn supports(&self, method: ClientMethod) -> bool {
        // What the client supports shapes the answer as much as what it says.
        self.asked.0.store(true, Ordering::Relaxed);
        self.inner.0.supports(method)
    }
}
