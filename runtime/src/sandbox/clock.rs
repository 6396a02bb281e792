//! The wall clock and client cancellation of one call, decided in one place.
//!
//! Two mechanisms enforce it, because neither suffices alone: the epoch
//! callback ([`Clock::tick`]) interrupts a guest running its own code, and
//! the outer race ([`Clock::race`]) ends a guest blocked in a host call (a
//! sleep, a blocking read), which no epoch deadline reaches. Both ask
//! [`stop_reason`], so they always agree on why a call ended.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Why ward stopped a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// The wall-clock limit passed.
    Timeout,
    /// The client cancelled the request.
    Cancelled,
}

/// When a call must end, and the client's cancellation.
#[derive(Debug, Clone)]
pub struct Clock {
    start: Instant,
    deadline: Instant,
    cancel: CancellationToken,
    stopped: Option<Interrupt>,
}

/// Cancellation wins over the deadline: a client that gave up should hear
/// nothing, not a timeout.
fn stop_reason(deadline: Instant, cancel: &CancellationToken) -> Option<Interrupt> {
    if cancel.is_cancelled() {
        Some(Interrupt::Cancelled)
    } else if Instant::now() >= deadline {
        Some(Interrupt::Timeout)
    } else {
        None
    }
}

impl Clock {
    /// A call that may run `timeout` from now, unless `cancel` fires.
    pub fn start(timeout: Duration, cancel: &CancellationToken) -> Self {
        let start = Instant::now();
        Self {
            start,
            deadline: start + timeout,
            cancel: cancel.clone(),
            stopped: None,
        }
    }

    /// Time since the call arrived.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Checked on every epoch tick: should the guest stop now?
    pub fn tick(&mut self) -> Option<Interrupt> {
        let why = stop_reason(self.deadline, &self.cancel);
        self.stopped = self.stopped.or(why);
        why
    }

    /// Runs `work` until it ends, the deadline passes or the client cancels,
    /// whichever comes first.
    pub async fn race<F: Future>(&self, work: F) -> Result<F::Output, Interrupt> {
        tokio::select! {
            biased;
            result = work => Ok(result),
            _ = self.cancel.cancelled() => Err(Interrupt::Cancelled),
            _ = tokio::time::sleep_until(self.deadline.into()) => {
                Err(stop_reason(self.deadline, &self.cancel).unwrap_or(Interrupt::Timeout))
            }
        }
    }

    /// Why the call was stopped, if it was: by the epoch callback, or now.
    pub fn stopped(&self) -> Option<Interrupt> {
        self.stopped
            .or_else(|| stop_reason(self.deadline, &self.cancel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_race_and_the_tick_agree() {
        let cancel = CancellationToken::new();
        let mut clock = Clock::start(Duration::from_millis(20), &cancel);
        assert_eq!(clock.tick(), None);
        let r = clock.race(std::future::pending::<()>()).await;
        assert_eq!(r, Err(Interrupt::Timeout));
        assert_eq!(clock.tick(), Some(Interrupt::Timeout));
        let mut clock = Clock::start(Duration::from_secs(60), &cancel);
        cancel.cancel();
        assert_eq!(
            clock.race(std::future::pending::<()>()).await,
            Err(Interrupt::Cancelled)
        );
        assert_eq!(clock.tick(), Some(Interrupt::Cancelled));
    }
}
