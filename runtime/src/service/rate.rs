//! How often a caller may use a plugin: `[limits] rate` and `burst` per
//! caller, `plugin-rate` and `plugin-burst` for all callers together.
//!
//! ```toml
//! [limits]
//! rate = "100/min"        # per caller; "N/s", "N/min" or "N/h"
//! burst = 20              # calls at once after a quiet spell (default: N)
//! plugin-rate = "1000/min" # all callers of this plugin together
//! plugin-burst = 50
//! ```
//!
//! Design decisions:
//! - **A token bucket (GCRA) from `governor`**, keyed by the caller's
//!   identity, so one client flooding a plugin cannot use up another's
//!   share; the overall bucket protects the plugin (and whatever it calls)
//!   from all of them together.
//! - **Refused before the guest runs**, with the time until the next call
//!   would pass, which the protocol layer turns into a retry hint (and
//!   `Retry-After` over HTTP).
//! - **A request is checked against the overall bucket only when its
//!   caller's bucket let it through**, so one caller over its own limit
//!   does not drain the others' shared budget.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use toml::Table;

use super::redis::Shared;
use crate::sandbox::policy::{found, Problems};

/// One rate: `count` calls per `per`, and at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Calls per period.
    pub count: NonZeroU32,
    /// The period.
    pub per: Duration,
    /// Calls that may come at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl Rate {
    /// The quota `governor` enforces: one call every `per / count`, up to
    /// `burst` saved up.
    fn quota(self) -> Quota {
        let every = self.per / self.count.get();
        Quota::with_period(every.max(Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(self.burst)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit} (burst {})", self.count, self.burst)
    }
}

/// A plugin's rates, from its `[limits]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// Per caller (`rate`, `burst`).
    pub per_caller: Option<Rate>,
    /// All callers together (`plugin-rate`, `plugin-burst`).
    pub per_plugin: Option<Rate>,
}

/// Parses the rate keys of `[limits]`.
pub(crate) fn parse(p: &mut Problems, limits: &Table) -> Rates {
    Rates {
        per_caller: rate(p, limits, "rate", "burst"),
        per_plugin: rate(p, limits, "plugin-rate", "plugin-burst"),
    }
}

fn rate(p: &mut Problems, limits: &Table, rate_key: &str, burst_key: &str) -> Option<Rate> {
    let full = |key: &str| format!("limits.{key}");
    let burst = limits.get(burst_key).and_then(|v| match v.as_integer() {
        Some(n) if (1..=1_000_000).contains(&n) => NonZeroU32::new(n as u32),
        _ => {
            p.invalid(
                &full(burst_key),
                format!(
                    "expected an integer from 1 to 1000000 (calls at once), found {}",
                    found(v)
                ),
            );
            None
        }
    });
    let Some(v) = limits.get(rate_key) else {
        if limits.contains_key(burst_key) {
            p.invalid(
                &full(burst_key),
                format!("a burst needs a rate: set limits.{rate_key} too (such as \"100/min\")"),
            );
        }
        return None;
    };
    let Some((count, per)) = v.as_str().and_then(parse_rate) else {
        p.invalid(
            &full(rate_key),
            format!(
                "expected calls per period such as \"100/min\" (\"N/s\", \"N/min\" or \"N/h\", N from 1 to 1000000), found {}",
                found(v)
            ),
        );
        return None;
    };
    Some(Rate {
        count,
        per,
        burst: burst.unwrap_or(count),
    })
}

/// `"100/min"` → 100 per minute.
fn parse_rate(s: &str) -> Option<(NonZeroU32, Duration)> {
    let (count, unit) = s.split_once('/')?;
    let count: u32 = count.trim().replace('_', "").parse().ok()?;
    if count > 1_000_000 {
        return None;
    }
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "min" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return None,
    };
    Some((NonZeroU32::new(count)?, per))
}

/// The buckets of one plugin.
pub struct Limiter {
    rates: Rates,
    per_caller: Option<DefaultKeyedRateLimiter<String>>,
    per_plugin: Option<DefaultDirectRateLimiter>,
}

/// A call refused by a rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// When a call would pass again.
    pub retry_after: Duration,
    /// Which rate refused it, for the message.
    pub rate: Rate,
    /// Whether it was the caller's own rate (else the plugin's overall one).
    pub per_caller: bool,
}

impl Limiter {
    /// Fresh buckets for `rates`; `None` when there are none to keep.
    pub fn new(rates: Rates) -> Option<Limiter> {
        if rates == Rates::default() {
            return None;
        }
        Some(Limiter {
            rates,
            per_caller: rates.per_caller.map(|r| RateLimiter::keyed(r.quota())),
            per_plugin: rates.per_plugin.map(|r| RateLimiter::direct(r.quota())),
        })
    }

    /// The rates these buckets enforce.
    pub fn rates(&self) -> Rates {
        self.rates
    }

    /// Takes one call for `caller` of `plugin` from the buckets, or says
    /// when to retry: from the buckets replicas share in Redis when there
    /// is one (and it answers), else from this process's.
    pub async fn take(
        &self,
        shared: Option<&Shared>,
        plugin: &str,
        caller: &str,
    ) -> Result<(), Refused> {
        let Some(shared) = shared else {
            return self.check(caller);
        };
        if let Some(rate) = self.rates.per_caller {
            let bucket = format!("{plugin}:caller:{caller}");
            match shared.take(&bucket, rate).await {
                Some(Ok(())) => {}
                Some(Err(retry_after)) => {
                    return Err(Refused {
                        retry_after,
                        rate,
                        per_caller: true,
                    })
                }
                None => return self.check(caller),
            }
        }
        if let Some(rate) = self.rates.per_plugin {
            match shared.take(&format!("{plugin}:all"), rate).await {
                Some(Ok(())) => {}
                Some(Err(retry_after)) => {
                    return Err(Refused {
                        retry_after,
                        rate,
                        per_caller: false,
                    })
                }
                None => return self.check_plugin(),
            }
        }
        Ok(())
    }

    /// Takes one call for `caller` from this process's buckets, or says
    /// when to retry.
    pub fn check(&self, caller: &str) -> Result<(), Refused> {
        let now = DefaultClock::default().now();
        if let (Some(limiter), Some(rate)) = (&self.per_caller, self.rates.per_caller) {
            if let Err(not_until) = limiter.check_key(&caller.to_string()) {
                return Err(Refused {
                    retry_after: not_until.wait_time_from(now),
                    rate,
                    per_caller: true,
                });
            }
            // Forget idle callers now and then, so the map stays small.
            if limiter.len() > 10_000 {
                limiter.retain_recent();
            }
        }
        self.check_plugin()
    }

    /// Takes one call from this process's overall bucket.
    fn check_plugin(&self) -> Result<(), Refused> {
        if let (Some(limiter), Some(rate)) = (&self.per_plugin, self.rates.per_plugin) {
            if let Err(not_until) = limiter.check() {
                return Err(Refused {
                    retry_after: not_until.wait_time_from(DefaultClock::default().now()),
                    rate,
                    per_caller: false,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(text: &str) -> Result<Rates, Vec<String>> {
        let table: Table = toml::from_str(text).unwrap();
        let mut p = Problems::default();
        let rates = parse(&mut p, &table);
        let problems = p.messages();
        if problems.is_empty() {
            Ok(rates)
        } else {
            Err(problems)
        }
    }

    #[test]
    fn rates_parse_with_their_units_and_a_default_burst() {
        let r = rates("rate = \"100/min\"\nburst = 20\nplugin-rate = \"5/s\"").unwrap();
        let per_caller = r.per_caller.unwrap();
        assert_eq!(
            (
                per_caller.count.get(),
                per_caller.per,
                per_caller.burst.get()
            ),
            (100, Duration::from_secs(60), 20)
        );
        let per_plugin = r.per_plugin.unwrap();
        assert_eq!(per_plugin.burst.get(), 5, "the burst defaults to N");
        assert_eq!(
            rates("rate = \"2/h\"").unwrap().per_caller.unwrap().per,
            Duration::from_secs(3600)
        );
        assert_eq!(rates("").unwrap(), Rates::default());
    }

    #[test]
    fn bad_rates_name_the_key() {
        for (text, key) in [
            ("rate = \"100\"", "limits.rate"),
            ("rate = \"0/s\"", "limits.rate"),
            ("rate = \"10/day\"", "limits.rate"),
            ("rate = 100", "limits.rate"),
            ("rate = \"1/s\"\nburst = 0", "limits.burst"),
            ("burst = 5", "limits.burst"),
            ("plugin-burst = 5", "limits.plugin-burst"),
        ] {
            let problems = rates(text).unwrap_err();
            assert!(problems[0].starts_with(key), "{text}: {problems:?}");
        }
    }

    #[test]
    fn each_caller_has_its_own_bucket_and_the_plugin_one_for_all() {
        let limiter = Limiter::new(
            rates("rate = \"1/h\"\nburst = 2\nplugin-rate = \"1/h\"\nplugin-burst = 3").unwrap(),
        )
        .unwrap();
        assert!(limiter.check("alice").is_ok());
        assert!(limiter.check("alice").is_ok());
        let refused = limiter.check("alice").unwrap_err();
        assert!(refused.per_caller);
        assert!(
            refused.retry_after > Duration::from_secs(60 * 59),
            "{refused:?}"
        );
        assert!(limiter.check("bob").is_ok(), "bob has his own bucket");
        let refused = limiter.check("bob").unwrap_err();
        assert!(!refused.per_caller, "the plugin's three calls are used up");
        assert!(Limiter::new(Rates::default()).is_none());
    }
}
