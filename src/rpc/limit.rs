//! The server-wide limit on calls in flight: each call holds a place from
//! when its handler is called until its reply is dropped; a call that finds
//! none free is refused with RESOURCE_EXHAUSTED, so the calls' memory stays
//! bounded whatever the connections and their stream limits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use grpcio::{RpcStatus, RpcStatusCode};

/// At most `max` calls at once, shared by every service it is given to.
#[derive(Clone, Debug)]
pub struct InFlightLimit {
    max: usize,
    held: Arc<AtomicUsize>,
    /// What it counts, as a refusal says it: `calls`.
    what: &'static str,
}

impl InFlightLimit {
    /// At most `max` calls; 0 for no limit.
    pub fn new(max: usize) -> Self {
        InFlightLimit::of("calls", max)
    }

    /// At most `max` of `what` (`calls`, `open streams (health Watch,
    /// reflection)`), as a refusal names them; 0 for no limit.
    pub fn of(what: &'static str, max: usize) -> Self {
        InFlightLimit {
            max: if max == 0 { usize::MAX } else { max },
            held: Arc::default(),
            what,
        }
    }

    /// A place for one call, or the status refusing it.
    pub(crate) fn admit(&self) -> Result<InFlight, RpcStatus> {
        if self.max == usize::MAX {
            return Ok(InFlight(None));
        }
        if self.held.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.held.fetch_sub(1, Ordering::Relaxed);
            return Err(RpcStatus::with_message(
                RpcStatusCode::RESOURCE_EXHAUSTED,
                format!(
                    "the server has {} {} in flight, its limit: retry later",
                    self.max, self.what
                ),
            ));
        }
        Ok(InFlight(Some(self.held.clone())))
    }
}

/// One call's place, given back when dropped.
pub(crate) struct InFlight(Option<Arc<AtomicUsize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(held) = &self.0 {
            held.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_refused_past_the_limit_and_given_back() {
        let limit = InFlightLimit::new(2);
        let first = limit.admit().unwrap();
        let _second = limit.admit().unwrap();
        let refused = limit.admit().err().unwrap();
        assert_eq!(refused.code(), RpcStatusCode::RESOURCE_EXHAUSTED);
        drop(first);
        assert!(limit.admit().is_ok());
    }

    #[test]
    fn zero_is_no_limit() {
        let limit = InFlightLimit::new(0);
        let places: Vec<_> = (0..10_000).map(|_| limit.admit().unwrap()).collect();
        assert_eq!(places.len(), 10_000);
    }
}
