//! Leader election on a Lease: any number of replicas watch, exactly one writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::Stream;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
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

/// Whether a lease `duration` and `grace` period, in seconds, make a working lease:
/// kube-lease-manager panics on a zero duration or grace, and a grace as long as the lease
/// would renew it without pause.
pub fn check_times(duration: u64, grace: u64) -> Result<(), String> {
    if duration < 2 {
        return Err(format!(
            "lease duration {duration} s is too short: it must be at least 2 s, longer than the grace period"
        ));
    }
    if grace == 0 || grace >= duration {
        return Err(format!(
            "lease grace {grace} s must be at least 1 s and less than the lease duration ({duration} s): the leader renews that long before its lease runs out"
        ));
    }
    Ok(())
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
///
/// kube-lease-manager acquires and renews the lease, but while it cannot reach the API server
/// it keeps reporting the lease as held: it retries and never says the lease ran out. A
/// replica cut off from the server for longer than the lease would then write again the
/// moment the server is back, although another replica may have taken over meanwhile. So this
/// replica counts as the leader only while the manager says so *and* the Lease as last read
/// names it, renewed recently enough: [`confirmed_until`] ends a quarter of the grace period
/// before others may take the lease over. While it believes it holds the lease, it reads the
/// Lease every quarter of the grace period (a get, which the operator's Role allows on its own
/// Lease).
pub async fn elect(
    client: Client,
    settings: &LeaseSettings,
) -> Result<
    (Leadership, impl Stream<Item = bool> + Send + 'static),
    kube_lease_manager::LeaseManagerError,
> {
    let manager = LeaseManagerBuilder::new(client.clone(), settings.name.clone())
        .with_namespace(settings.namespace.clone())
        .with_identity(settings.identity.clone())
        .with_duration(settings.duration_seconds)
        .with_grace(settings.grace_seconds)
        .with_field_manager(crate::api::OPERATOR_FIELD_MANAGER)
        .build()
        .await?;
    let (mut held, _task) = manager.watch().await;
    let leadership = Leadership {
        leader: Arc::new(AtomicBool::new(false)),
    };
    let flag = leadership.leader.clone();
    let (sender, receiver) = watch::channel(false);
    let leases: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let settings = settings.clone();
    let poll = confirmation_poll(&settings);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut until: Option<Timestamp> = None;
        loop {
            tokio::select! {
                changed = held.changed() => {
                    if changed.is_err() {
                        break; // the manager stopped: the process is shutting down
                    }
                }
                // Only a replica that believes it holds the lease needs the confirmation.
                _ = ticker.tick(), if *held.borrow() => {
                    // A server that does not answer confirms nothing; the last confirmation
                    // runs out on its own.
                    let read = tokio::time::timeout(poll, leases.get(&settings.name)).await;
                    if let Ok(Ok(lease)) = read {
                        until = confirmed_until(&lease, &settings);
                    }
                }
            }
            let confirmed = until.is_some_and(|u| Timestamp::now() < u);
            let leader = *held.borrow_and_update() && confirmed;
            if leader != flag.load(Ordering::SeqCst) {
                flag.store(leader, Ordering::SeqCst);
                if leader {
                    tracing::info!("acquired the leader lease: reconciling everything");
                } else {
                    tracing::warn!(
                        "lost the leader lease (or could not renew it in time): no more writes from this replica"
                    );
                }
                if sender.send(leader).is_err() {
                    break;
                }
            }
        }
    });
    let changes = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok()?;
        let leader = *receiver.borrow_and_update();
        Some((leader, receiver))
    });
    Ok((leadership, changes))
}

/// How often the Lease is read to confirm the holder: a quarter of the grace period, at least
/// every 100 ms.
fn confirmation_poll(settings: &LeaseSettings) -> Duration {
    Duration::from_millis(settings.grace_seconds.saturating_mul(250).max(100))
}

/// Until when `lease` lets this replica write: `None` unless it names this replica as the
/// holder with a renew time. Others may take the lease over at renew time plus its duration;
/// this replica stops a quarter of the grace period earlier, which leaves three quarters of
/// the grace period, after the manager renews, for a read to confirm the renewal.
pub fn confirmed_until(lease: &Lease, settings: &LeaseSettings) -> Option<Timestamp> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0;
    let duration = spec
        .lease_duration_seconds
        .map_or(settings.duration_seconds, |d| u64::try_from(d).unwrap_or(0));
    let margin = settings.grace_seconds.saturating_mul(250);
    let valid = Duration::from_secs(duration).saturating_sub(Duration::from_millis(margin));
    renewed.checked_add(valid).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn settings() -> LeaseSettings {
        LeaseSettings {
            name: "patchwave-operator".to_owned(),
            namespace: "patchwave-system".to_owned(),
            identity: "replica-a".to_owned(),
            duration_seconds: 15,
            grace_seconds: 5,
        }
    }

    #[test]
    fn lease_times_that_the_lease_manager_cannot_work_with_are_refused() {
        assert_eq!(
            check_times(settings().duration_seconds, settings().grace_seconds),
            Ok(())
        );
        assert_eq!(check_times(2, 1), Ok(()));
        for (duration, grace, says) in [
            (
                5,
                10,
                "lease grace 10 s must be at least 1 s and less than the lease duration (5 s)",
            ),
            (5, 5, "lease grace 5 s must be"),
            (15, 0, "lease grace 0 s must be at least 1 s"),
            (1, 0, "lease duration 1 s is too short"),
            (0, 5, "lease duration 0 s is too short"),
        ] {
            let error = check_times(duration, grace).expect_err("refused");
            assert!(error.contains(says), "{duration}/{grace}: {error}");
        }
    }

    fn lease(holder: Option<&str>, renewed: Option<&str>, duration: Option<i32>) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                renew_time: renewed.map(|t| MicroTime(t.parse().expect("timestamp"))),
                lease_duration_seconds: duration,
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn the_holder_is_confirmed_until_a_quarter_grace_before_others_may_take_over() {
        let until = confirmed_until(
            &lease(Some("replica-a"), Some("2026-11-27T10:00:00Z"), Some(15)),
            &settings(),
        );
        // 15 s lease, 5 s grace: others may take over at 10:00:15; this replica stops 1.25 s
        // earlier.
        assert_eq!(
            until,
            Some("2026-11-27T10:00:13.75Z".parse().expect("timestamp"))
        );
        // The duration on the Lease wins over the setting (another replica may have written it).
        let until = confirmed_until(
            &lease(Some("replica-a"), Some("2026-11-27T10:00:00Z"), Some(4)),
            &settings(),
        );
        assert_eq!(
            until,
            Some("2026-11-27T10:00:02.75Z".parse().expect("timestamp"))
        );
    }

    #[test]
    fn another_holder_or_no_renewal_confirms_nothing() {
        let settings = settings();
        for lease in [
            lease(Some("replica-b"), Some("2026-11-27T10:00:00Z"), Some(15)),
            lease(None, Some("2026-11-27T10:00:00Z"), Some(15)),
            lease(Some("replica-a"), None, Some(15)),
            Lease::default(),
        ] {
            assert_eq!(confirmed_until(&lease, &settings), None, "{lease:?}");
        }
    }

    #[test]
    fn the_lease_is_read_four_times_per_grace_period() {
        assert_eq!(confirmation_poll(&settings()), Duration::from_millis(1250));
        let short = LeaseSettings {
            grace_seconds: 0,
            ..settings()
        };
        assert_eq!(confirmation_poll(&short), Duration::from_millis(100));
    }
}
