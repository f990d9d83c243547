//! The in-process event bus: job events by job and by project, and notices that an
//! organization's access changed. Channels are bounded; a receiver that falls behind sees
//! `Lagged` and catches up from the table. Events from other replicas arrive through
//! [`super::replicas`] and are delivered here the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::domain::jobs::Event;

/// Events buffered per job or project channel before a slow receiver lags.
const CHANNEL_CAPACITY: usize = 256;
/// How many jobs the bus remembers the last delivered `seq` of.
const REMEMBERED_JOBS: usize = 100_000;

type Channels = Mutex<HashMap<Uuid, broadcast::Sender<Arc<Event>>>>;

pub struct EventBus {
    jobs: Channels,
    projects: Channels,
    access: broadcast::Sender<Uuid>,
    /// Fires when events may have been missed (the replica link reconnected).
    resync: broadcast::Sender<()>,
    /// The highest `seq` delivered per job, so an event arriving twice (written here and
    /// relayed back, or relayed twice) reaches subscribers once.
    delivered: Mutex<HashMap<Uuid, i64>>,
    /// Where events and access notices go to reach other replicas (PostgreSQL only).
    outbox: Option<mpsc::UnboundedSender<Outgoing>>,
}

/// What this replica tells the others.
#[derive(Debug)]
pub enum Outgoing {
    Event {
        org: Uuid,
        job: Uuid,
        seq: i64,
    },
    AccessChanged {
        org: Uuid,
    },
    /// Answered once everything sent before it has been passed on.
    Flush(tokio::sync::oneshot::Sender<()>),
}

#[derive(Clone, Copy)]
enum Topic {
    Job,
    Project,
}

/// A live receiver for one job or project; dropping it releases the channel when it was the
/// last one.
pub struct Subscription {
    pub receiver: broadcast::Receiver<Arc<Event>>,
    bus: Arc<EventBus>,
    topic: Topic,
    key: Uuid,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = lock(self.bus.channels(self.topic));
        if channels
            .get(&self.key)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            channels.remove(&self.key);
        }
    }
}

fn lock(channels: &Channels) -> MutexGuard<'_, HashMap<Uuid, broadcast::Sender<Arc<Event>>>> {
    channels.lock().unwrap_or_else(PoisonError::into_inner)
}

fn send(channels: &Channels, key: Uuid, event: &Arc<Event>) {
    let mut channels = lock(channels);
    if let Some(sender) = channels.get(&key)
        && sender.send(event.clone()).is_err()
    {
        channels.remove(&key);
    }
}

impl EventBus {
    pub fn new(outbox: Option<mpsc::UnboundedSender<Outgoing>>) -> Self {
        Self {
            jobs: Mutex::default(),
            projects: Mutex::default(),
            access: broadcast::channel(CHANNEL_CAPACITY).0,
            resync: broadcast::channel(4).0,
            delivered: Mutex::default(),
            outbox,
        }
    }

    /// An event this replica wrote (after its transaction committed): delivered here and
    /// announced to the other replicas.
    pub fn publish(&self, event: Event) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(Outgoing::Event {
                org: event.organization_id,
                job: event.job_id,
                seq: event.seq,
            });
        }
        self.deliver(Arc::new(event));
    }

    /// Delivers an event to this replica's subscribers only, once.
    pub fn deliver(&self, event: Arc<Event>) {
        {
            let mut delivered = self.delivered.lock().unwrap_or_else(PoisonError::into_inner);
            if delivered.len() >= REMEMBERED_JOBS {
                delivered.clear();
            }
            let last = delivered.entry(event.job_id).or_insert(0);
            if event.seq <= *last {
                return;
            }
            *last = event.seq;
        }
        send(&self.jobs, event.job_id, &event);
        send(&self.projects, event.project_id, &event);
    }

    fn channels(&self, topic: Topic) -> &Channels {
        match topic {
            Topic::Job => &self.jobs,
            Topic::Project => &self.projects,
        }
    }

    fn subscribe(self: &Arc<Self>, topic: Topic, key: Uuid) -> Subscription {
        let receiver = lock(self.channels(topic))
            .entry(key)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        Subscription {
            receiver,
            bus: self.clone(),
            topic,
            key,
        }
    }

    /// The highest `seq` of `job` delivered here (0 if none, or forgotten).
    pub fn last_delivered(&self, job: Uuid) -> i64 {
        self.delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&job)
            .copied()
            .unwrap_or(0)
    }

    pub fn subscribe_job(self: &Arc<Self>, job: Uuid) -> Subscription {
        self.subscribe(Topic::Job, job)
    }

    pub fn subscribe_project(self: &Arc<Self>, project: Uuid) -> Subscription {
        self.subscribe(Topic::Project, project)
    }

    /// Waits (at most a second) until the other replicas were told of everything published
    /// so far: on shutdown, before the pool closes.
    pub async fn flush(&self) {
        let Some(outbox) = &self.outbox else { return };
        let (done, flushed) = tokio::sync::oneshot::channel();
        if outbox.send(Outgoing::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), flushed).await;
        }
    }

    /// Someone's access to `org` was reduced (member removed or demoted, key revoked, the
    /// organization erased): live streams of that organization re-check their caller.
    pub fn access_changed(&self, org: Uuid) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(Outgoing::AccessChanged { org });
        }
        self.deliver_access_changed(org);
    }

    pub fn deliver_access_changed(&self, org: Uuid) {
        let _ = self.access.send(org);
    }

    pub fn access_notices(&self) -> broadcast::Receiver<Uuid> {
        self.access.subscribe()
    }

    /// Tells every live stream that events may have been missed, so job streams re-read the
    /// table and project streams end (their clients resubscribe).
    pub fn resync(&self) {
        let _ = self.resync.send(());
    }

    pub fn resync_notices(&self) -> broadcast::Receiver<()> {
        self.resync.subscribe()
    }
}
