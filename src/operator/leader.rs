//! Leader election on a Lease: any number of replicas watch, exactly one writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::Stream;
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

/// Lease settings.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// Lease name.
    pub name: String,
    /// Lease namespace (the operator's own).
    pub namespace: String,
    /// Holder identity (the pod name, or host and process id).
    pub identity: String,
    /// How long a lease lasts without renewal: a new leader takes over at most this long
    /// after the old one died.
    pub duration_seconds: u64,
    /// How long before expiry the holder renews.
    pub grace_seconds: u64,
}

/// Whether this replica may write. Without leader election it always may.
#[derive(Clone)]
pub struct Leadership {
    leader: Arc<AtomicBool>,
}

impl Leadership {
    /// A replica that is always the leader (`--leader-elect=false`).
    pub fn always() -> Self {
        Leadership {
            leader: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Whether this replica holds the lease now.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }
}

/// Starts competing for the lease. Returns the leadership flag and a stream that yields each
/// time this replica becomes the leader (to reconcile everything at once) or loses it.
pub async fn elect(
    client: Client,
    settings: &LeaseSettings,
) -> Result<
    (Leadership, impl Stream<Item = bool> + Send + 'static),
    kube_lease_manager::LeaseManagerError,
> {
    let manager = LeaseManagerBuilder::new(client, settings.name.clone())
        .with_namespace(settings.namespace.clone())
        .with_identity(settings.identity.clone())
        .with_duration(settings.duration_seconds)
        .with_grace(settings.grace_seconds)
        .with_field_manager(crate::api::OPERATOR_FIELD_MANAGER)
        .build()
        .await?;
    let (receiver, _task) = manager.watch().await;
    let leadership = Leadership {
        leader: Arc::new(AtomicBool::new(*receiver.borrow())),
    };
    let flag = leadership.leader.clone();
    let changes = futures::stream::unfold(
        (receiver, flag),
        |(mut receiver, flag): (watch::Receiver<bool>, Arc<AtomicBool>)| async move {
            // The task ends (and the sender drops) only when the process shuts down.
            receiver.changed().await.ok()?;
            let leader = *receiver.borrow_and_update();
            flag.store(leader, Ordering::SeqCst);
            if leader {
                tracing::info!("acquired the leader lease: reconciling everything");
            } else {
                tracing::warn!("lost the leader lease: no more writes from this replica");
            }
            Some((leader, (receiver, flag)))
        },
    );
    Ok((leadership, changes))
}
