//! [`LeaseBudget`]: at most so many partition leases held by one process; the others' writers wait
//! as standbys, so several processes share the partitions.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::SourceError;
use crate::source::WriterLease;

/// A [`WriterLease`] that is taken only while a slot of a budget shared by the process's leases is
/// free: with a budget of `n`, the process holds at most `n` of them, and a lease it loses or
/// releases frees its slot for another.
pub struct LeaseBudget {
    lease: Arc<dyn WriterLease>,
    budget: Arc<Semaphore>,
    /// The slot this lease uses while held.
    slot: Mutex<Option<OwnedSemaphorePermit>>,
}

impl LeaseBudget {
    /// `lease`, counted against `budget` (a semaphore with one permit per lease the process may
    /// hold).
    pub fn new(lease: Arc<dyn WriterLease>, budget: Arc<Semaphore>) -> LeaseBudget {
        LeaseBudget {
            lease,
            budget,
            slot: Mutex::new(None),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<OwnedSemaphorePermit>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl WriterLease for LeaseBudget {
    async fn try_acquire(&self) -> Result<bool, SourceError> {
        if self.slot().is_none() {
            match self.budget.clone().try_acquire_owned() {
                Ok(permit) => *self.slot() = Some(permit),
                Err(_) => return Ok(false),
            }
        }
        let acquired = self.lease.try_acquire().await;
        if !matches!(acquired, Ok(true)) {
            self.slot().take();
        }
        acquired
    }

    async fn is_held(&self) -> Result<bool, SourceError> {
        let held = self.lease.is_held().await;
        if !matches!(held, Ok(true)) {
            self.slot().take();
        }
        held
    }

    async fn release(&self) -> Result<(), SourceError> {
        let released = self.lease.release().await;
        self.slot().take();
        released
    }

    async fn lost(&self) -> SourceError {
        self.lease.lost().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemorySource;

    #[tokio::test]
    async fn a_process_holds_no_more_leases_than_its_budget() {
        let budget = Arc::new(Semaphore::new(2));
        let sources: Vec<_> = (0..3).map(|_| MemorySource::new()).collect();
        let leases: Vec<LeaseBudget> = sources
            .iter()
            .map(|source| LeaseBudget::new(Arc::new(source.lease()), budget.clone()))
            .collect();
        assert!(leases[0].try_acquire().await.unwrap());
        assert!(leases[0].try_acquire().await.unwrap(), "idempotent");
        assert!(leases[1].try_acquire().await.unwrap());
        assert!(
            !leases[2].try_acquire().await.unwrap(),
            "the budget is spent"
        );
        leases[0].release().await.unwrap();
        assert!(
            leases[2].try_acquire().await.unwrap(),
            "a released lease frees its slot"
        );
        assert!(!leases[0].try_acquire().await.unwrap());
    }

    #[tokio::test]
    async fn a_lease_held_elsewhere_spends_nothing() {
        let budget = Arc::new(Semaphore::new(1));
        let source = MemorySource::new();
        let elsewhere = source.lease();
        assert!(elsewhere.try_acquire().await.unwrap());
        let busy = LeaseBudget::new(Arc::new(source.lease()), budget.clone());
        assert!(!busy.try_acquire().await.unwrap());
        assert_eq!(budget.available_permits(), 1);
    }
}
