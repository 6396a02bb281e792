//! Who may use an item and how often, checked before a guest runs: the
//! caller's scopes against the plugin's `[access]`, and a token of its rate
//! limits (`[limits] rate`, `plugin-rate`). A refused request costs no guest
//! run.

use crate::audit::Caller;
use crate::backend::{BackendError, CallContext};
use crate::plugin::Plugin;
use crate::service::access::{self, ItemKind};

use super::Registry;

/// An item a request uses, as routed.
pub(super) struct Use<'a> {
    /// The plugin serving it.
    pub plugin: &'a Plugin,
    /// What kind of item it is.
    pub kind: ItemKind,
    /// The plugin's own name (or URI, or template) of it, as `[access]`
    /// keys name it.
    pub item: &'a str,
    /// What the client called it: the exposed name, the URI or template.
    pub asked: &'a str,
    /// The MCP method, for metrics.
    pub method: &'static str,
}

impl Registry {
    /// Admits a request that the registry routed itself, unless the front
    /// door admitted it already (`cx.admitted`).
    pub(super) async fn admitted(&self, cx: &CallContext, to: Use<'_>) -> Result<(), BackendError> {
        if cx.admitted {
            return Ok(());
        }
        self.admit_to(cx.caller.as_deref(), to).await
    }

    /// Whether `caller` holds the scopes the item needs, and a token of the
    /// plugin's rate limits, which this takes.
    pub(super) async fn admit_to(
        &self,
        caller: Option<&Caller>,
        to: Use<'_>,
    ) -> Result<(), BackendError> {
        let plugin = to.plugin;
        let access = &plugin.policy().access;
        if !access.is_open() {
            let required = access.required(to.kind, to.item);
            let missing = access::missing(caller, &required);
            if !missing.is_empty() {
                crate::metrics::refused(plugin.name(), to.method, "forbidden");
                return Err(BackendError::Forbidden {
                    what: to.kind.noun(),
                    name: to.asked.to_string(),
                    required,
                    missing,
                });
            }
        }
        // Most plugins have no rates: no lock on every call for them.
        if plugin.policy().rates == Default::default() {
            return Ok(());
        }
        let limiter = self
            .limiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(plugin.name())
            .cloned();
        let Some(limiter) = limiter else {
            return Ok(());
        };
        let taken = limiter
            .take(self.shared.as_deref(), plugin.name(), &rate_key(caller))
            .await;
        if let Err(refused) = taken {
            let name = plugin.name();
            crate::metrics::rate_limited(name);
            crate::metrics::refused(name, to.method, "rate_limited");
            let whose = if refused.per_caller {
                "limits.rate, per caller"
            } else {
                "limits.plugin-rate, all callers together"
            };
            let wait = refused.retry_after.as_secs_f64().max(0.001);
            return Err(BackendError::RateLimited {
                message: format!(
                    "plugin `{name}` is over its rate limit of {} ({whose}, in {name}.toml); retry in {wait:.3} s",
                    refused.rate
                ),
                retry_after: refused.retry_after,
            });
        }
        Ok(())
    }
}

/// Whether `caller` holds the scopes `plugin` asks for `item`; takes no
/// rate token.
pub(super) fn permitted(
    caller: Option<&Caller>,
    plugin: &Plugin,
    kind: ItemKind,
    item: &str,
) -> bool {
    let access = &plugin.policy().access;
    access.is_open() || access::missing(caller, &access.required(kind, item)).is_empty()
}

/// Whose rate-limit bucket a request takes from: the token's subject or
/// client, or the local user.
fn rate_key(caller: Option<&Caller>) -> String {
    // Namespaced, so that a client id can never name a subject's bucket.
    match caller {
        Some(Caller {
            subject: Some(subject),
            ..
        }) => format!("sub:{subject}"),
        Some(Caller {
            client_id: Some(client),
            ..
        }) => format!("client:{client}"),
        Some(_) => "anonymous".to_string(),
        None => "local".to_string(),
    }
}
