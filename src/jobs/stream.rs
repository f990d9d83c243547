//! Live event streams for subscriptions. A job stream replays stored events after the
//! client's `afterSeq`, then follows live ones in `seq` order with no gap and no duplicate
//! (anything missed, from lag or another replica, is read back from the table), and ends
//! after the terminal event. Every stream ends, with an error, when its caller's access ends.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::Stream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::bus::{EventBus, Subscription};
use crate::domain::jobs::{self, Event};
use crate::error::{AppError, AppResult};
use crate::ids::JobId;
use crate::tenancy::Tenant;

/// Events read from the table per round when catching up.
const CATCH_UP_BATCH: u64 = 500;

type Recheck = Box<dyn Fn() -> Pin<Box<dyn Future<Output = AppResult<()>> + Send>> + Send + Sync>;

/// What ends a stream besides its own end: the access token's expiry, and a notice that the
/// organization's access changed after which `recheck` fails.
pub struct Liveness {
    pub expires_at: Option<DateTime<Utc>>,
    pub recheck: Recheck,
}

/// Resolves, with the error to end the stream with, when the caller's access has ended: the
/// access token expired, or a notice that the organization's access changed was followed by
/// a failed re-check. Made once per stream and polled across its events, so a live stream
/// holds one timer and one receiver instead of making and dropping them for every event.
type Ended = Pin<Box<dyn Future<Output = AppError> + Send>>;

fn access_ended(bus: &EventBus, org: Uuid, liveness: Liveness) -> Ended {
    let mut notices = bus.access_notices();
    Box::pin(async move {
        let expiry = async {
            match liveness.expires_at {
                Some(at) => tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                () = &mut expiry => return AppError::Unauthenticated,
                notice = notices.recv() => {
                    let concerns_us = match notice {
                        Ok(changed) => changed == org,
                        Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => false,
                    };
                    if concerns_us && let Err(error) = (liveness.recheck)().await {
                        return error;
                    }
                }
            }
        }
    })
}

/// Resolves when events may have been missed (the replica link reconnected); the table has
/// them. Made once and kept across events, like [`Ended`]; it hands its receiver back so a
/// job stream can wait for the next one without missing any in between.
type Resynced = Pin<Box<dyn Future<Output = broadcast::Receiver<()>> + Send>>;

fn resynced(mut notices: broadcast::Receiver<()>) -> Resynced {
    Box::pin(async move {
        if let Err(RecvError::Closed) = notices.recv().await {
            std::future::pending::<()>().await;
        }
        notices
    })
}

struct JobStream {
    tenant: Tenant,
    job: JobId,
    last_seq: i64,
    pending: VecDeque<Arc<Event>>,
    /// The last read from the table was full: more may be stored.
    more_stored: bool,
    subscription: Subscription,
    ended: Ended,
    resync: Resynced,
    done: bool,
}

impl JobStream {
    async fn catch_up(&mut self) -> AppResult<()> {
        let (job, after) = (self.job, self.last_seq);
        let events = self
            .tenant
            .read(async |scoped| jobs::events_after(scoped, job, after, CATCH_UP_BATCH).await)
            .await?;
        self.more_stored = events.len() as u64 == CATCH_UP_BATCH;
        self.pending.extend(events.into_iter().map(Arc::new));
        Ok(())
    }

    async fn next(&mut self) -> Option<AppResult<Arc<Event>>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.seq <= self.last_seq {
                    continue;
                }
                self.last_seq = event.seq;
                self.done = event.status.is_terminal();
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if self.more_stored {
                // Boxed: inline, the read's future would be part of every idle stream.
                if let Err(error) = Box::pin(self.catch_up()).await {
                    self.done = true;
                    return Some(Err(error));
                }
                continue;
            }
            tokio::select! {
                received = self.subscription.receiver.recv() => match received {
                    Ok(event) if event.seq <= self.last_seq => {}
                    Ok(event) if event.seq == self.last_seq + 1
                        && event.organization_id == self.tenant.context().org.0 =>
                    {
                        self.pending.push_back(event);
                    }
                    // A gap (another replica wrote it, or this receiver lagged): read the table.
                    Ok(_) | Err(RecvError::Lagged(_)) => self.more_stored = true,
                    Err(RecvError::Closed) => return None,
                },
                notices = &mut self.resync => {
                    self.more_stored = true;
                    self.resync = resynced(notices);
                }
                error = &mut self.ended => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// `agentJobProgress`: the caller has already been authorized for `job`.
pub fn job_events(
    bus: &Arc<EventBus>,
    tenant: Tenant,
    job: JobId,
    after_seq: i64,
    liveness: Liveness,
) -> impl Stream<Item = AppResult<Arc<Event>>> + Send + use<> {
    let org = tenant.context().org.0;
    let state = JobStream {
        subscription: bus.subscribe_job(job.0),
        ended: access_ended(bus, org, liveness),
        resync: resynced(bus.resync_notices()),
        tenant,
        job,
        last_seq: after_seq,
        pending: VecDeque::new(),
        more_stored: true,
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        state.next().await.map(|item| (item, state))
    })
}

struct ProjectStream {
    subscription: Subscription,
    org: Uuid,
    ended: Ended,
    resync: Resynced,
    done: bool,
}

/// `projectJobEvents`: live events of every job of one project (already authorized). A
/// receiver that falls behind is ended with an error rather than silently skipping events.
pub fn project_events(
    bus: &Arc<EventBus>,
    org: Uuid,
    project: Uuid,
    liveness: Liveness,
) -> impl Stream<Item = AppResult<Arc<Event>>> + Send + use<> {
    let state = ProjectStream {
        subscription: bus.subscribe_project(project),
        org,
        ended: access_ended(bus, org, liveness),
        resync: resynced(bus.resync_notices()),
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        loop {
            let item = tokio::select! {
                received = state.subscription.receiver.recv() => match received {
                    Ok(event) if event.organization_id == state.org => Ok(event),
                    Ok(_) => continue,
                    // Skipping events silently would lie; ending lets the client resubscribe
                    // (agentJobProgress replays any one job's events from the table).
                    Err(RecvError::Lagged(_)) => Err(AppError::RateLimited { retry_after_seconds: 1 }),
                    Err(RecvError::Closed) => return None,
                },
                // Events may have been missed while the replica link reconnected.
                _ = &mut state.resync => Err(AppError::RateLimited { retry_after_seconds: 1 }),
                error = &mut state.ended => Err(error),
            };
            state.done = item.is_err();
            return Some((item, state));
        }
    })
}
