//! Memory: one budget for all linear memories and tables of an instance.
//!
//! Guards against a guest exhausting the host's memory. Composed components
//! have several memories, so the budget is a sum, not a per-memory cap. Growth
//! past the budget traps at once with a message naming the limit, rather than
//! handing the guest a failed `memory.grow` it would turn into an opaque
//! abort.

use wasmtime::{Error, ResourceLimiter, Result};

use super::policy::format_size;

/// Instances, memories and tables one call may create: far more than any
/// toolchain emits, few enough that metadata stays small.
const MAX_PER_CALL: usize = 128;

/// Sums memory and table growth of one store against a byte budget.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
    used: u64,
    peak: u64,
    pending: u64,
    exceeded: bool,
}

/// The error a guest traps with when it grows past its budget.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {} exceeded", format_size(*.0))]
pub struct MemoryExceeded(pub u64);

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes in all.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: 0,
            peak: 0,
            pending: 0,
            exceeded: false,
        }
    }

    /// The most memory the instance held at once, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// Whether the guest tried to grow past the budget.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// The budget, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn grow(&mut self, bytes: u64) -> Result<bool> {
        if self.used.saturating_add(bytes) > self.limit {
            self.exceeded = true;
            return Err(MemoryExceeded(self.limit).into());
        }
        self.used += bytes;
        self.pending = bytes;
        self.peak = self.peak.max(self.used);
        Ok(true)
    }

    fn failed(&mut self) {
        self.used -= self.pending;
        self.pending = 0;
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> Result<bool> {
        self.grow(desired.saturating_sub(current) as u64)
    }

    fn memory_grow_failed(&mut self, _error: Error) -> Result<()> {
        self.failed();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> Result<bool> {
        // Wasmtime stores each table element as one pointer.
        let elements = desired.saturating_sub(current) as u64;
        self.grow(elements * std::mem::size_of::<usize>() as u64)
    }

    fn table_grow_failed(&mut self, _error: Error) -> Result<()> {
        self.failed();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_PER_CALL
    }

    fn tables(&self) -> usize {
        MAX_PER_CALL
    }

    fn memories(&self) -> usize {
        MAX_PER_CALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_memory_and_table_and_tracks_the_peak() {
        let mut l = MemoryLimiter::new(100 << 10);
        assert!(l.memory_growing(0, 64 << 10, None).unwrap());
        assert!(l.table_growing(0, 100, None).unwrap());
        let err = l.memory_growing(0, 64 << 10, None).unwrap_err();
        assert_eq!(err.to_string(), "memory limit of 100 KiB exceeded");
        assert!(l.exceeded());
        assert_eq!(l.peak(), (64 << 10) + 800);
    }

    #[test]
    fn a_failed_growth_is_given_back() {
        let mut l = MemoryLimiter::new(1 << 20);
        l.memory_growing(0, 1 << 19, None).unwrap();
        l.memory_grow_failed(wasmtime::format_err!("os said no"))
            .unwrap();
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
    }
}
