//! What replicas behind one load balancer share through Redis (`--redis
//! URL`): the result cache's second level and the rate-limit buckets.
//!
//! Design decisions:
//! - **Redis is a helper, never a gate.** Every operation has a short
//!   deadline; when Redis is slow or away, a cache lookup misses and a rate
//!   check falls back to this replica's own buckets, with a warning at most
//!   once a minute, and for a few seconds after a failure Redis is not asked
//!   at all. Requests never fail because Redis did.
//! - **The buckets are GCRA in one Lua script**, atomic in Redis, with
//!   Redis's own clock, so replicas whose clocks differ agree on every
//!   bucket. Keys hold the rate they enforce: a changed rate starts a fresh
//!   bucket rather than reading one kept for another rate.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use redis::aio::ConnectionManager;

use super::rate::Rate;

/// How long one Redis operation may take before ward goes on without it.
const DEADLINE: Duration = Duration::from_millis(500);

/// After a failure, how long ward does without Redis before it tries
/// again, so that a Redis that hangs costs one deadline, not one per request.
const BACKOFF: Duration = Duration::from_secs(5);

/// GCRA: KEYS[1] holds the bucket's theoretical arrival time (µs of Redis's
/// clock); ARGV[1] is the emission interval and ARGV[2] the burst tolerance
/// (µs). Returns 0 when the call passes (and takes its token), else the
/// microseconds until one would.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then return math.ceil(allow_at - now) end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1000)
return 0
";

/// A connection to the shared Redis.
pub struct Shared {
    connection: ConnectionManager,
    gcra: redis::Script,
    warned: Mutex<Option<Instant>>,
    /// Until when Redis is not asked, after a failure.
    resting: Mutex<Option<Instant>>,
    url: String,
}

impl Shared {
    /// Connects to `url` (`redis://HOST:PORT/DB`), at start-up: a Redis
    /// that cannot be reached then is an error, so a typo is not silent.
    pub async fn connect(url: &str) -> Result<Shared> {
        let shown = redact(url);
        let client = redis::Client::open(url).with_context(|| {
            format!("--redis {shown}: not a Redis URL (expected redis://HOST:PORT)")
        })?;
        let connection =
            tokio::time::timeout(Duration::from_secs(5), client.get_connection_manager())
                .await
                .with_context(|| format!("--redis {shown}: no answer within 5 s"))?
                .with_context(|| {
                    format!("--redis {shown}: cannot connect; start Redis or correct the URL")
                })?;
        Ok(Shared {
            connection,
            gcra: redis::Script::new(GCRA),
            warned: Mutex::new(None),
            resting: Mutex::new(None),
            url: shown,
        })
    }

    /// The cached JSON under `key` and how long it has left.
    pub async fn cache_get(&self, key: &str) -> Option<(String, Duration)> {
        let mut con = self.connection.clone();
        let key = format!("ward:result:{key}");
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&key).cmd("PTTL").arg(&key);
        let query = pipe.query_async::<(Option<String>, i64)>(&mut con);
        let (json, ttl) = self.within("reading the result cache", query).await?;
        Some((json?, Duration::from_millis(u64::try_from(ttl).ok()?)))
    }

    /// Keeps `json` under `key` for `ttl`.
    pub async fn cache_put(&self, key: &str, json: &str, ttl: Duration) {
        let mut con = self.connection.clone();
        let mut set = redis::cmd("SET");
        set.arg(format!("ward:result:{key}"))
            .arg(json)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        let query = set.query_async::<()>(&mut con);
        self.within("writing the result cache", query).await;
    }

    /// Takes a token from the shared bucket `bucket` for `rate`: `Some(Ok)`
    /// when the call passes, `Some(Err(wait))` when it must wait, `None`
    /// when Redis did not answer (the caller falls back to its own buckets).
    pub async fn take(&self, bucket: &str, rate: Rate) -> Option<Result<(), Duration>> {
        let interval = (rate.per.as_micros() / u128::from(rate.count.get())).max(1) as u64;
        let tolerance = interval * u64::from(rate.burst.get() - 1);
        let key = format!(
            "ward:rate:{bucket}:{}/{}s/{}",
            rate.count,
            rate.per.as_secs(),
            rate.burst
        );
        let mut con = self.connection.clone();
        let mut invocation = self.gcra.key(key);
        invocation.arg(interval).arg(tolerance);
        let invocation = invocation.invoke_async::<u64>(&mut con);
        let wait = self.within("checking a rate limit", invocation).await?;
        Some(match wait {
            0 => Ok(()),
            us => Err(Duration::from_micros(us)),
        })
    }

    /// Runs `operation` within [`DEADLINE`]; on failure, warns (once a
    /// minute) and gives `None`.
    async fn within<T>(
        &self,
        what: &str,
        operation: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        let resting = *self.resting.lock().unwrap_or_else(|e| e.into_inner());
        if resting.is_some_and(|until| Instant::now() < until) {
            return None;
        }
        let error = match tokio::time::timeout(DEADLINE, operation).await {
            Ok(Ok(value)) => return Some(value),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", DEADLINE.as_millis()),
        };
        *self.resting.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + BACKOFF);
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
            *warned = Some(Instant::now());
            tracing::warn!(
                "Redis at {} failed {what}: {error}; going on without it (this replica's own cache and rate limits), asking again in {} s",
                self.url,
                BACKOFF.as_secs()
            );
        }
        None
    }
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            super::redact("redis://:pw@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(
            super::redact("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
