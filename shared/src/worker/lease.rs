//! A worker process's lease: one row in the store covers every fire the process holds.
//!
//! [`Lease::keep`] registers the worker and renews its row every third of `LEASE_DURATION`
//! with one statement, however many fires it holds. A claim names the worker; the reaper
//! (in any worker) declares dead a worker whose lease ran out and takes back its fires.
//! Locally, the lease is held until the instant a renewal was *sent* plus the lease: never
//! later than the store's own expiry (set at the store's clock when the renewal arrived), so
//! a worker that believes it holds its fires has not been declared dead. A fire whose hold
//! is lost (declared dead, or time ran out with no renewal: a stalled process, an
//! unreachable database) is dropped before it is sent, and dropped mid-request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use crate::store::Store;
use crate::telemetry::error_chain;

/// The worker's registration, as last renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hold {
    /// The worker's row.
    worker: Uuid,
    /// Until when (this process's clock) its fires are surely its own.
    until: Instant,
}

/// The lease of one worker process; shared by its claims and executions.
#[derive(Debug)]
pub struct Lease {
    hold: watch::Sender<Option<Hold>>,
    duration: Duration,
    /// Set by [`Lease::retire`]: no worker is registered until fires are wanted again.
    retired: AtomicBool,
    /// Wakes the lease task when fires are wanted again after a retirement.
    wanted: Arc<Notify>,
}

impl Lease {
    /// A lease of `duration`, not yet registered; [`Lease::start`] registers and renews it.
    pub fn new(duration: Duration) -> Arc<Self> {
        let (hold, _) = watch::channel(None);
        Arc::new(Self {
            hold,
            duration,
            retired: AtomicBool::new(false),
            wanted: Arc::new(Notify::new()),
        })
    }

    /// Starts the task that registers the worker and keeps renewing its lease; it ends
    /// when the last handle on the lease is dropped.
    pub fn start(self: &Arc<Self>, store: Arc<dyn Store>) {
        tokio::spawn(keep(Arc::downgrade(self), self.wanted.clone(), store));
    }

    /// Gives up the lease (a stopping worker, or a Lambda invocation at its end): whatever
    /// is still held is taken back by the next reaper pass. The next claim registers anew.
    pub async fn retire(&self, store: &dyn Store) {
        self.retired.store(true, Ordering::SeqCst);
        if let Some(hold) = self.hold.send_replace(None) {
            if let Err(error) = store.worker_retire(hold.worker).await {
                tracing::warn!(error = %error_chain(&error), "could not retire the worker; its lease expires on its own");
            }
        }
    }

    /// The worker to claim fires for, once registered and while the lease is held; waits
    /// for the registration up to `patience`.
    pub async fn holder(&self, patience: Duration) -> Option<Uuid> {
        if self.retired.swap(false, Ordering::SeqCst) {
            self.wanted.notify_one();
        }
        let mut rx = self.hold.subscribe();
        let deadline = Instant::now() + patience;
        loop {
            if let Some(hold) = *rx.borrow_and_update() {
                if hold.until > Instant::now() {
                    return Some(hold.worker);
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// Whether fires claimed for `worker` are still surely its own.
    pub fn holds(&self, worker: Uuid) -> bool {
        matches!(*self.hold.borrow(), Some(hold) if hold.worker == worker && hold.until > Instant::now())
    }

    /// Completes when fires claimed for `worker` are no longer surely its own: it was
    /// declared dead, or its lease ran out locally with no renewal.
    pub async fn lost(&self, worker: Uuid) {
        let mut rx = self.hold.subscribe();
        loop {
            let until = match *rx.borrow_and_update() {
                Some(hold) if hold.worker == worker => hold.until,
                _ => return,
            };
            if until <= Instant::now() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Sets the hold to `to` if it is still `from` (and the lease is not retired): the lease
    /// task never undoes a retirement or a newer hold.
    fn replace(&self, from: Option<Hold>, to: Hold) -> bool {
        self.hold.send_if_modified(|current| {
            if *current != from || self.retired.load(Ordering::SeqCst) {
                return false;
            }
            *current = Some(to);
            true
        })
    }

    /// Drops `hold` if it is still the current one.
    fn forget(&self, hold: Hold) -> bool {
        self.hold.send_if_modified(|current| {
            if *current != Some(hold) {
                return false;
            }
            *current = None;
            true
        })
    }
}

/// Registers, then renews every third of the lease, until the lease is dropped. A renewal
/// the store refuses (the worker was declared dead) makes every held fire lost and
/// registers a new worker; a failed one is tried again sooner. A lease that lapsed here with
/// no renewal (a stalled process, an unreachable database) is never renewed after the
/// fact, since its fires were dropped: it is retired, so that a reaper takes them back at
/// once, and a new worker is registered.
async fn keep(lease: Weak<Lease>, wanted: Arc<Notify>, store: Arc<dyn Store>) {
    let mut wait = Duration::ZERO;
    loop {
        tokio::time::sleep(wait).await;
        let Some(lease) = lease.upgrade() else {
            return;
        };
        let every = lease.duration / 3;
        let retry = Duration::from_secs(1).min(every);
        if lease.retired.load(Ordering::SeqCst) {
            drop(lease);
            // Look again now and then: the lease may have been dropped meanwhile.
            let _ = tokio::time::timeout(Duration::from_secs(1), wanted.notified()).await;
            wait = Duration::ZERO;
            continue;
        }
        let sent = Instant::now();
        let current = *lease.hold.borrow();
        wait = match current {
            None => match store.worker_register(lease.duration).await {
                Ok(worker) => {
                    let hold = Hold {
                        worker,
                        until: sent + lease.duration,
                    };
                    if lease.replace(None, hold) {
                        tracing::info!(%worker, lease_secs = lease.duration.as_secs_f64(), "worker registered");
                    } else if let Err(error) = store.worker_retire(worker).await {
                        // Retired while registering.
                        tracing::warn!(error = %error_chain(&error), "could not retire the worker; its lease expires on its own");
                    }
                    every
                }
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "could not register the worker; will try again");
                    retry
                }
            },
            Some(hold) if hold.until <= sent => {
                lapse(&lease, store.as_ref(), hold).await;
                Duration::ZERO
            }
            Some(hold) => match store.worker_renew(hold.worker, lease.duration).await {
                Ok(true) if Instant::now() < hold.until => {
                    lease.replace(
                        Some(hold),
                        Hold {
                            worker: hold.worker,
                            until: sent + lease.duration,
                        },
                    );
                    every
                }
                Ok(true) => {
                    lapse(&lease, store.as_ref(), hold).await;
                    Duration::ZERO
                }
                Ok(false) => {
                    if lease.forget(hold) {
                        tracing::warn!(worker = %hold.worker, "this worker's lease ran out and its fires were taken back; dropping what it holds and registering again");
                    }
                    Duration::ZERO
                }
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "could not renew the worker's lease; will try again");
                    retry
                }
            },
        };
    }
}

/// Gives up a lease that lapsed before it was renewed: its fires are dropped here, and the
/// store is told, so a reaper takes them back without waiting for the expiry.
async fn lapse(lease: &Lease, store: &dyn Store, hold: Hold) {
    if !lease.forget(hold) {
        return;
    }
    tracing::warn!(worker = %hold.worker, "the worker's lease lapsed before it could be renewed; dropping what it holds and registering again");
    if let Err(error) = store.worker_retire(hold.worker).await {
        tracing::warn!(error = %error_chain(&error), "could not retire the lapsed worker; its lease expires on its own");
    }
}
