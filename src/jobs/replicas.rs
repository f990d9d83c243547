//! The link between replicas on PostgreSQL. Writers never notify inside their event
//! transactions (notifying commits serialize on one lock); instead each replica's notifier
//! says "job J has events up to seq N" for everything it wrote, and "organization O's access
//! changed": at once after a quiet spell, then at most once every few milliseconds. Each
//! replica's listener reads the events it has not delivered from the table (one statement,
//! matching the organization explicitly) and hands them to its local bus. After the
//! listener reconnects, streams resync from the table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::bus::{EventBus, Outgoing};
use crate::ids::OrgId;
use crate::tenancy::{Db, unscoped};

const CHANNEL: &str = "tenantql_events";
/// The least time between two notices of one replica.
const COALESCE: Duration = Duration::from_millis(2);
/// PostgreSQL refuses payloads of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_000;

#[derive(Serialize, Deserialize, Default)]
struct Notice {
    /// The sending replica, which ignores its own notices.
    r: Uuid,
    /// `(organization, job, highest seq)`.
    #[serde(default)]
    e: Vec<(Uuid, Uuid, i64)>,
    /// Organizations whose access changed.
    #[serde(default)]
    a: Vec<Uuid>,
}

/// Starts the notifier and listener for this replica; returns the bus they serve.
pub async fn link(db: &Db) -> anyhow::Result<Arc<EventBus>> {
    let Some(mut listener) = db.listener().await? else {
        return Ok(Arc::new(EventBus::new(None)));
    };
    listener.listen(CHANNEL).await?;
    let replica = Uuid::now_v7();
    let (outbox, outgoing) = mpsc::unbounded_channel();
    let bus = Arc::new(EventBus::new(Some(outbox)));
    tokio::spawn(notify(db.clone(), replica, outgoing));
    tokio::spawn(listen(db.clone(), replica, listener, Arc::downgrade(&bus)));
    Ok(bus)
}

async fn notify(db: Db, replica: Uuid, mut outgoing: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(first) = outgoing.recv().await {
        let mut latest: HashMap<Uuid, (Uuid, i64)> = HashMap::new();
        let mut access: HashSet<Uuid> = HashSet::new();
        let mut flushes = Vec::new();
        let mut take = |message: Outgoing| match message {
            Outgoing::Event { org, job, seq } => {
                let entry = latest.entry(job).or_insert((org, seq));
                entry.1 = entry.1.max(seq);
            }
            Outgoing::AccessChanged { org } => {
                access.insert(org);
            }
            Outgoing::Flush(done) => flushes.push(done),
        };
        // The first notice after a quiet spell goes at once; the pause after each send is
        // what gathers a busy spell's events into one notice.
        take(first);
        while let Ok(message) = outgoing.try_recv() {
            take(message);
        }
        let events: Vec<_> = latest
            .into_iter()
            .map(|(job, (org, seq))| (org, job, seq))
            .collect();
        for payload in payloads(replica, events, access.into_iter().collect()) {
            if let Err(error) = db.notify(CHANNEL, &payload).await {
                tracing::warn!(error = format!("{error:#}"), "notifying other replicas failed");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
        tokio::time::sleep(COALESCE).await;
    }
}

/// Splits a notice into payloads that each fit PostgreSQL's limit.
fn payloads(replica: Uuid, events: Vec<(Uuid, Uuid, i64)>, access: Vec<Uuid>) -> Vec<String> {
    // One event entry serializes to under 100 bytes.
    const PER_PAYLOAD: usize = MAX_PAYLOAD / 100;
    let mut notices: Vec<Notice> = events
        .chunks(PER_PAYLOAD)
        .map(|chunk| Notice {
            r: replica,
            e: chunk.to_vec(),
            a: Vec::new(),
        })
        .collect();
    for chunk in access.chunks(PER_PAYLOAD) {
        notices.push(Notice {
            r: replica,
            e: Vec::new(),
            a: chunk.to_vec(),
        });
    }
    notices
        .iter()
        .filter_map(|notice| serde_json::to_string(notice).ok())
        .collect()
}

async fn listen(
    db: Db,
    replica: Uuid,
    mut listener: sea_orm::sqlx::postgres::PgListener,
    bus: std::sync::Weak<EventBus>,
) {
    loop {
        let notification = match listener.try_recv().await {
            Ok(Some(notification)) => notification,
            // The connection dropped; the next call reconnects. Anything sent meanwhile is lost.
            Ok(None) => {
                let Some(bus) = bus.upgrade() else { return };
                tracing::warn!("replica link reconnecting; live streams resync from the table");
                bus.resync();
                continue;
            }
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "replica link failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(bus) = bus.upgrade() else { return };
        let Ok(notice) = serde_json::from_str::<Notice>(notification.payload()) else {
            continue;
        };
        if notice.r == replica {
            continue;
        }
        for org in notice.a {
            bus.deliver_access_changed(org);
        }
        for (org, job, seq) in notice.e {
            let after = bus.last_delivered(job);
            if seq <= after {
                continue;
            }
            let limit = (seq - after).clamp(1, 1_000) as u64;
            match unscoped::job_queue::relayed_events(&db, OrgId(org), job, after, limit).await {
                Ok(events) => {
                    for event in events {
                        bus.deliver(Arc::new(event));
                    }
                }
                Err(error) => {
                    tracing::warn!(job.id = %job, error = format!("{error:#}"), "relaying events failed")
                }
            }
        }
    }
}
