//! The count of calls whose work is still running: it shows that cancelled
//! calls leave nothing behind, and a graceful stop reports it.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use grpcio::RpcContext;

/// Counts calls whose work is still running. One relaxed atomic add and
/// subtract per call.
#[derive(Clone, Debug, Default)]
pub struct CallCounter(Arc<AtomicUsize>);

impl CallCounter {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Spawns a call's work on its completion queue, counted until the future
    /// ends: finished, failed, or dropped because the call was cancelled.
    pub(crate) fn spawn(
        &self,
        ctx: &RpcContext<'_>,
        work: impl Future<Output = ()> + Send + 'static,
    ) {
        self.0.fetch_add(1, Ordering::Relaxed);
        let guard = CallGuard(self.0.clone());
        ctx.spawn(async move {
            let _guard = guard;
            work.await
        });
    }
}

struct CallGuard(Arc<AtomicUsize>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
