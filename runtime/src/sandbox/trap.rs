//! Why a call did not produce an answer, in the user's words: each message
//! names the limit and, where one applies, the policy file and key that
//! raise it.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::Trap;

use super::clock::Interrupt;
use super::output::Captured;
use super::policy::{format_duration, format_size, Limits};
use super::CallLimits;

/// Why a call did not produce an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// The per-call fuel budget ran out.
    #[error("fuel exhausted after {used} units ({}); raise `limits.fuel` in {file}", format_fuel(*used))]
    Fuel {
        /// The budget that ran out.
        used: u64,
        /// The policy file, such as `hello.toml`.
        file: Arc<str>,
    },
    /// The wall-clock limit passed, while running or while waiting its turn.
    #[error("timed out after {}{}; raise `limits.timeout` in {file}", format_duration(*after), if *queued { " waiting for its turn (its calls at once, or the host's handles or instances shared by all plugins, were all in use)" } else { "" })]
    Timeout {
        /// The limit.
        after: Duration,
        /// Whether the call never started.
        queued: bool,
        /// The policy file.
        file: Arc<str>,
    },
    /// The client cancelled the request.
    #[error("cancelled by the client")]
    Cancelled,
    /// The memory budget was exceeded.
    #[error("memory limit of {} exceeded; raise `limits.memory` in {file}", format_size(*limit))]
    Memory {
        /// The budget, in bytes.
        limit: u64,
        /// The policy file.
        file: Arc<str>,
    },
    /// One host call was handed more data than the guest may hold.
    #[error("the plugin passed more than {} to one host call (the bound is its memory limit, at most 128 MiB); raise `limits.memory` in {file} for a plugin that must", format_size(*limit))]
    HostCall {
        /// The bound, in bytes.
        limit: u64,
        /// The policy file.
        file: Arc<str>,
    },
    /// The guest recursed too deeply.
    #[error("stack overflow (the plugin recursed too deeply)")]
    StackOverflow,
    /// The guest panicked; the message is its own.
    #[error("the plugin panicked: {0}")]
    Panic(String),
    /// Any other trap.
    #[error("the plugin trapped: {0}")]
    Trap(String),
    /// The plugin produced more than `limits.max-output`.
    #[error("result of {} exceeds the output limit of {}; raise `limits.max-output` in {file}", format_size(*size), format_size(*max))]
    OutputTooLarge {
        /// The result's size, in bytes.
        size: u64,
        /// The limit.
        max: u64,
        /// The policy file.
        file: Arc<str>,
    },
    /// The plugin answered with something ward cannot use.
    #[error("invalid answer from the plugin: {0}")]
    Invalid(String),
    /// Its code, loaded on its first call (`plugin::CodeSource`), could not
    /// be. Why is the operator's to read in the log: it names host paths.
    #[error("its code could not be loaded; ward's log says why")]
    Unloadable,
    /// The guest was stopped to wait for the client's answers (MCP
    /// 2026-07-28 input requests); not a failure of the plugin.
    #[error("{0}")]
    Suspended(#[from] crate::backend::Suspended),
    /// A replayed request began on another version of the plugin.
    #[error("the request began on another version of this plugin (it was replaced since); send it again without `requestState`")]
    Replaced,
}

/// How a call ended without an answer.
pub enum Stop {
    /// The guest (or the host on its behalf) failed.
    Error(wasmtime::Error),
    /// The outer race ended it (see `clock.rs`).
    Interrupt(Interrupt),
}

/// Names the reason a call stopped, from how it stopped and what its
/// limits saw.
pub(super) fn explain(
    stop: Stop,
    limits: &CallLimits,
    policy: &Limits,
    file: &Arc<str>,
    output: &Captured,
) -> Failure {
    let interrupted = |why| match why {
        Interrupt::Cancelled => Failure::Cancelled,
        Interrupt::Timeout => Failure::Timeout {
            after: policy.timeout,
            queued: false,
            file: file.clone(),
        },
    };
    let error = match stop {
        Stop::Interrupt(why) => return interrupted(why),
        Stop::Error(error) => error,
    };
    if let Some(suspended) = error.downcast_ref::<crate::backend::Suspended>() {
        return Failure::Suspended(*suspended);
    }
    if limits.memory.exceeded() {
        return Failure::Memory {
            limit: limits.memory.limit(),
            file: file.clone(),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure::Fuel {
            used: policy.fuel,
            file: file.clone(),
        },
        Some(Trap::StackOverflow) => Failure::StackOverflow,
        Some(Trap::Interrupt) => interrupted(limits.clock.stopped().unwrap_or(Interrupt::Timeout)),
        Some(trap) => match output.panic_message() {
            Some(message) => Failure::Panic(message),
            None if *trap == Trap::MemoryOutOfBounds => Failure::Trap(format!(
                "{trap} (often the guest's own stack overflowing: deep recursion in the plugin)"
            )),
            None => Failure::Trap(trap.to_string()),
        },
        // wasmtime's error type for it is private; its text is the contract
        // (a test in tests/integration/sandbox.rs holds it to it).
        None if format!("{error:#}")
            .contains("fuel allocated for hostcalls has been exhausted") =>
        {
            Failure::HostCall {
                limit: super::hostcall_bytes(policy),
                file: file.clone(),
            }
        }
        None => Failure::Trap(format!("{error:#}")),
    }
}

/// Fuel in words: `50 million`, `10 billion`, `1.5 trillion`.
pub fn format_fuel(units: u64) -> String {
    const SCALES: [(u64, &str); 4] = [
        (1_000_000_000_000_000, "quadrillion"),
        (1_000_000_000_000, "trillion"),
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
    ];
    for (scale, word) in SCALES {
        if units >= scale {
            let tenths = units / (scale / 10);
            return match tenths % 10 {
                0 => format!("{} {word}", tenths / 10),
                d => format!("{}.{d} {word}", tenths / 10),
            };
        }
    }
    units.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuel_reads_as_words() {
        assert_eq!(format_fuel(50_000_000), "50 million");
        assert_eq!(format_fuel(10_000_000_000), "10 billion");
        assert_eq!(format_fuel(1_560_000_000_000), "1.5 trillion");
        assert_eq!(format_fuel(7_118), "7118");
    }

    #[test]
    fn messages_name_the_policy_file_and_key() {
        let f = Failure::Fuel {
            used: 50_000_000,
            file: "hello.toml".into(),
        };
        assert_eq!(
            f.to_string(),
            "fuel exhausted after 50000000 units (50 million); raise `limits.fuel` in hello.toml"
        );
        let t = Failure::Timeout {
            after: Duration::from_millis(300),
            queued: false,
            file: "hello.toml".into(),
        };
        assert_eq!(
            t.to_string(),
            "timed out after 300ms; raise `limits.timeout` in hello.toml"
        );
    }
}
