//! Agent jobs at run time: the event bus, workers, live streams, and (on PostgreSQL) the
//! link to other replicas. What a job of each kind does is in `runners`, below `domain`.

pub mod bus;
pub mod replicas;
pub mod stream;
pub mod worker;

use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::runners::Toolbox;
use crate::tenancy::{Db, TenantDb};
pub use bus::EventBus;
pub use worker::WorkerConfig;

/// The job machinery one server (or worker-only) process runs.
pub struct Jobs {
    pub bus: Arc<EventBus>,
    wake: Arc<Notify>,
    pub toolbox: Arc<Toolbox>,
    pub config: WorkerConfig,
}

impl Jobs {
    pub fn new(bus: Arc<EventBus>, toolbox: Arc<Toolbox>, config: WorkerConfig) -> Self {
        Self {
            bus,
            wake: Arc::new(Notify::new()),
            toolbox,
            config,
        }
    }

    /// Wakes an idle local worker: a job was just queued.
    pub fn job_queued(&self) {
        self.wake.notify_one();
    }

    /// Runs up to `slots` jobs at a time in this process until `shutdown`; the handle ends
    /// once the jobs running then have stopped.
    pub fn spawn_workers(
        &self,
        db: &Db,
        tenant_db: &TenantDb,
        slots: usize,
        shutdown: &watch::Receiver<bool>,
    ) -> Option<JoinHandle<()>> {
        (slots > 0).then(|| {
            tokio::spawn(worker::run(
                db.clone(),
                tenant_db.clone(),
                self.bus.clone(),
                self.wake.clone(),
                self.toolbox.clone(),
                self.config,
                slots,
                shutdown.clone(),
            ))
        })
    }
}
