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
    /// Which events of each job were delivered, so an event arriving twice (written here and
    /// relayed back, or relayed twice) reaches subscribers once, and one arriving late (a
    /// job's QUEUED event published after a worker here already published its RUNNING one)
    /// still reaches them.
    delivered: Mutex<HashMap<Uuid, Delivered>>,
    /// Where events and access notices go to reach other replicas (PostgreSQL only).
    outbox: Option<mpsc::UnboundedSender<Outgoing>>,
}

/// The events of one job delivered so far: the highest `seq`, and which of the 64 below it.
#[derive(Default, Clone, Copy)]
struct Delivered {
    highest: i64,
    /// Bit `i` stands for `seq == highest - 1 - i`.
    below: u64,
}

impl Delivered {
    /// Records `seq`; whether it is new.
    fn first_time(&mut self, seq: i64) -> bool {
        if seq > self.highest {
            let shift = seq - self.highest;
            self.below = match u32::try_from(shift) {
                Ok(shift) if shift < 64 => (self.below << shift) | (1 << (shift - 1)),
                _ => 0,
            };
            self.highest = seq;
            return true;
        }
        let Ok(bit) = u32::try_from(self.highest - seq - 1) else {
            return false;
        };
        if bit >= 64 || self.below & (1 << bit) != 0 {
            return false;
        }
        self.below |= 1 << bit;
        true
    }
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
            if !delivered.entry(event.job_id).or_default().first_time(event.seq) {
                return;
            }
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
            .map_or(0, |delivered| delivered.highest)
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

#[cfg(test)]
mod tests {
    use super::Delivered;

    #[test]
    fn each_seq_is_delivered_once_in_any_order() {
        let mut delivered = Delivered::default();
        assert!(delivered.first_time(2));
        assert!(delivered.first_time(1), "a late event still goes out");
        assert!(!delivered.first_time(1));
        assert!(!delivered.first_time(2));
        assert!(delivered.first_time(3));
        assert!(delivered.first_time(70));
        assert!(
            !delivered.first_time(3),
            "far behind the highest counts as delivered"
        );
        assert!(delivered.first_time(69));
        assert!(delivered.first_time(7));
        assert!(!delivered.first_time(7));
        assert!(!delivered.first_time(70));
    }
}
