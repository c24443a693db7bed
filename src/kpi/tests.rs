//! The KPIs against small histories whose figures were computed by hand (in the comments).

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn t(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn november() -> Period {
    Period {
        from: t("2026-11-01T00:00:00Z"),
        to: t("2026-12-01T00:00:00Z"),
    }
}

fn asset(value: serde_json::Value) -> Asset {
    serde_json::from_value(value).unwrap()
}

fn policy(value: serde_json::Value) -> PatchPolicy {
    serde_json::from_value(value).unwrap()
}

/// The company of the hand computation:
/// - a1 (Critical, enrolled 10-01): u1 Critical Security released 11-02 installed 11-05;
///   u2 Important Bugfix released 11-10 installed 11-30; u3 Low Bugfix released 10-01, missing.
/// - a2 (Low, enrolled mid-month on 11-15): u1 released 11-02 installed 11-16 (its clock
///   starts at enrolment); u4 Moderate Security released 11-20 but installed 11-18 (before its
///   release date was known).
/// - a3 (Medium, enrolled 09-01): u5 Critical Security released 10-28, installed 11-01 12:00,
///   rolled back 11-02, reinstalled 11-10.
fn company() -> Vec<Asset> {
    let entry = |id: &str, action: &str, at: &str, released: &str, severity: &str, class: &str| {
        json!({"id": id, "version": "1", "action": action, "at": at, "releasedAt": released,
               "severity": severity, "classification": class})
    };
    vec![
        asset(json!({
            "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
            "metadata": {"name": "a1", "creationTimestamp": "2026-10-01T00:00:00Z"},
            "spec": {"osFamily": "Linux", "criticality": "Critical"},
            "status": {
                "reported": {
                    "availableUpdates": [{"id": "u3", "version": "1", "severity": "Low",
                        "classification": "Bugfix", "releasedAt": "2026-10-01T00:00:00Z"}],
                    "installedHistory": [
                        entry("u1", "Install", "2026-11-05T00:00:00Z", "2026-11-02T00:00:00Z", "Critical", "Security"),
                        entry("u2", "Install", "2026-11-30T00:00:00Z", "2026-11-10T00:00:00Z", "Important", "Bugfix"),
                    ]
                },
                "rollouts": [{"rollout": "r1", "action": "Install", "phase": "Succeeded",
                              "finishedAt": "2026-11-05T00:00:00Z"}]
            }
        })),
        asset(json!({
            "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
            "metadata": {"name": "a2", "creationTimestamp": "2026-11-15T00:00:00Z"},
            "spec": {"osFamily": "Windows", "criticality": "Low"},
            "status": {
                "reported": {
                    "availableUpdates": [],
                    "installedHistory": [
                        entry("u1", "Install", "2026-11-16T00:00:00Z", "2026-11-02T00:00:00Z", "Critical", "Security"),
                        entry("u4", "Install", "2026-11-18T00:00:00Z", "2026-11-20T00:00:00Z", "Moderate", "Security"),
                    ]
                },
                "rollouts": [{"rollout": "r1", "action": "Install", "phase": "Failed",
                              "finishedAt": "2026-11-16T00:00:00Z"}]
            }
        })),
        asset(json!({
            "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
            "metadata": {"name": "a3", "creationTimestamp": "2026-09-01T00:00:00Z"},
            "spec": {"osFamily": "Linux", "criticality": "Medium"},
            "status": {
                "reported": {
                    "availableUpdates": [],
                    "installedHistory": [
                        entry("u5", "Install", "2026-11-01T12:00:00Z", "2026-10-28T00:00:00Z", "Critical", "Security"),
                        entry("u5", "Rollback", "2026-11-02T00:00:00Z", "2026-10-28T00:00:00Z", "Critical", "Security"),
                        entry("u5", "Install", "2026-11-10T00:00:00Z", "2026-10-28T00:00:00Z", "Critical", "Security"),
                    ]
                },
                "rollouts": [{"rollout": "r0", "action": "Rollback", "phase": "Succeeded",
                              "finishedAt": "2026-11-02T00:00:00Z"}]
            }
        })),
    ]
}

fn policies() -> Vec<PatchPolicy> {
    vec![policy(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchPolicy",
        "metadata": {"name": "all"},
        "spec": {"selector": {}, "updates": {"classifications": ["Security", "Bugfix"]},
                 "rings": ["pilot"]}
    }))]
}

fn rollouts() -> Vec<PatchRollout> {
    let rollout = |name: &str, created: &str, phase: &str, halts: i32| -> PatchRollout {
        serde_json::from_value(json!({
            "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchRollout",
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"policy": "all", "policyGeneration": 1, "revision": "h", "updates": [],
                     "rings": ["pilot"]},
            "status": {"phase": phase, "rings": [{"name": "pilot", "phase": "Completed",
                        "halts": halts}]}
        }))
        .unwrap()
    };
    vec![
        rollout("r0", "2026-10-27T00:00:00Z", "Succeeded", 0),
        rollout("r1", "2026-11-03T00:00:00Z", "Succeeded", 1),
    ]
}

fn incidents() -> Vec<RecordedIncident> {
    let incident = |at: &str| RecordedIncident {
        asset: "a1".to_owned(),
        rollout: "r1".to_owned(),
        impact: "High".to_owned(),
        occurred_at: t(at),
        note: "ERP client crashes at start".to_owned(),
    };
    vec![
        incident("2026-11-20T09:00:00Z"),
        incident("2026-10-20T09:00:00Z"),
    ]
}

fn november_figures() -> Figures {
    let (assets, policies, rollouts, incidents) = (company(), policies(), rollouts(), incidents());
    figures(
        Inputs {
            assets: &assets.iter().collect::<Vec<_>>(),
            rollouts: &rollouts.iter().collect::<Vec<_>>(),
            policies: &policies,
            incidents: &incidents,
            policy: None,
        },
        november(),
    )
}

fn rate(due: u32, on_time: u32) -> Rate {
    Rate {
        due,
        on_time,
        rate: Some(f64::from(on_time) / f64::from(due)),
    }
}

#[test]
fn patch_rates_are_judged_at_each_horizon_mark_inside_the_period() {
    let f = november_figures();
    // 7-day marks in November: a1.u1 11-09 (installed 11-05: on time), a1.u2 11-17 (installed
    // only 11-30: late), a2.u1 11-22 (clock from enrolment 11-15; installed 11-16: on time),
    // a2.u4 11-27 (installed 11-18: on time), a3.u5 11-04 (rolled back 11-02: late). 3 of 5.
    assert_eq!(f.patch_rate.within7, rate(5, 3));
    // 14-day marks: a1.u1 11-16 yes, a1.u2 11-24 no, a2.u1 11-29 yes, a3.u5 11-11 (reinstalled
    // 11-10) yes; a2.u4's mark 12-04 is after the period. 3 of 4.
    assert_eq!(f.patch_rate.within14, rate(4, 3));
    // 30-day marks: only a3.u5 (11-27), installed. a1.u3's mark 10-31 is before the period.
    assert_eq!(f.patch_rate.within30, rate(1, 1));
    // Critical or Security at 7 days: a1.u1, a2.u1, a2.u4 on time, a3.u5 late.
    assert_eq!(f.critical_security_within7, rate(4, 3));
    assert_eq!(f.patch_rate_by_severity["Important"].within7, rate(1, 0));
    assert_eq!(f.patch_rate_by_criticality["Medium"].within7, rate(1, 0));
    assert_eq!(f.patch_rate_by_criticality["Low"].within7, rate(2, 2));
}

#[test]
fn time_to_patch_counts_first_installations_from_the_clock_start() {
    let f = november_figures();
    // a1.u1 72 h, a1.u2 480 h, a2.u1 24 h (from enrolment), a2.u4 0 h (installed before its
    // release date: clamped), a3.u5 108 h (first install; the reinstall does not count again).
    assert_eq!(f.time_to_patch.installed, 5);
    let mean = f.time_to_patch.mean_hours.unwrap();
    assert!((mean - 136.8).abs() < 1e-9, "{mean}");
    assert_eq!(f.time_to_patch.median_hours, Some(72.0));
    assert_eq!(f.time_to_patch.without_release_date, 0);
}

/// Updates a machine already had when it was enrolled are not patchwave's work: they used to
/// count as patched in 0 hours (and on time), pulling the mean time to patch down.
#[test]
fn updates_installed_before_enrolment_are_left_out_of_rates_and_times() {
    let enrolled_late = asset(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
        "metadata": {"name": "new", "creationTimestamp": "2026-11-15T00:00:00Z"},
        "spec": {"osFamily": "Linux"},
        "status": {"reported": {"availableUpdates": [], "installedHistory": [
            // Before enrolment: left out.
            {"id": "old", "version": "1", "action": "Install", "at": "2026-11-03T00:00:00Z",
             "releasedAt": "2026-11-01T00:00:00Z", "severity": "Critical",
             "classification": "Security"},
            // After enrolment: 48 h from the enrolment (its clock start).
            {"id": "mine", "version": "1", "action": "Install", "at": "2026-11-17T00:00:00Z",
             "releasedAt": "2026-11-01T00:00:00Z", "severity": "Critical",
             "classification": "Security"}
        ]}}
    }));
    let f = figures(
        Inputs {
            assets: &[&enrolled_late],
            rollouts: &[],
            policies: &[],
            incidents: &[],
            policy: None,
        },
        november(),
    );
    assert_eq!(f.time_to_patch.installed, 1);
    assert_eq!(f.time_to_patch.mean_hours, Some(48.0));
    // Only `mine` is judged at its 7-day mark (11-22), on time.
    assert_eq!(f.patch_rate.within7, rate(1, 1));
}

/// An update no longer reported (installed) is judged as its history entry says, package name
/// included: a policy that includes a package by name owns its installs.
#[test]
fn a_policy_including_a_package_by_name_owns_its_installs() {
    let web = asset(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
        "metadata": {"name": "web", "creationTimestamp": "2026-10-01T00:00:00Z"},
        "spec": {"osFamily": "Linux"},
        "status": {"reported": {"availableUpdates": [], "installedHistory": [
            {"id": "USN-7001-1", "version": "3.0.13", "package": "openssl", "action": "Install",
             "at": "2026-11-04T00:00:00Z", "releasedAt": "2026-11-02T00:00:00Z",
             "severity": "Critical", "classification": "Security"}
        ]}}
    }));
    let policies = [policy(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchPolicy",
        "metadata": {"name": "openssl"},
        "spec": {"selector": {}, "updates": {"include": ["openssl*"]}, "rings": ["pilot"]}
    }))];
    let f = figures(
        Inputs {
            assets: &[&web],
            rollouts: &[],
            policies: &policies,
            incidents: &[],
            policy: Some("openssl"),
        },
        november(),
    );
    assert_eq!(f.time_to_patch.installed, 1);
    assert_eq!(f.time_to_patch.mean_hours, Some(48.0));
}

#[test]
fn open_overdue_and_compliance_at_the_end_of_the_period() {
    let f = november_figures();
    // Only a1.u3 is missing: released 10-01, 61 days old on 12-01.
    assert_eq!(f.open.total(), 1);
    assert_eq!(f.open.over30, 1);
    assert_eq!(f.open_by_severity["Low"].over30, 1);
    // Low Bugfix under policy "all": 30 days, due 10-31, 31 days overdue on 12-01.
    assert_eq!(f.overdue, 1);
    assert_eq!(f.overdue_by_policy["all"], 1);
    assert_eq!(f.most_overdue[0].asset, "a1");
    assert_eq!(f.most_overdue[0].days_overdue, 31);
    // a1 is not compliant; a2 and a3 are.
    assert_eq!(f.compliance.assets, 3);
    assert_eq!(f.compliance.compliant, 2);
    assert_eq!(f.compliance_by_criticality["Critical"].compliant, 0);
    assert_eq!(f.compliance_by_criticality["Low"].compliant, 1);
    assert_eq!(f.non_compliant_assets, vec!["a1"]);
}

#[test]
fn rollouts_operations_and_incidents_of_the_period() {
    let f = november_figures();
    // r1 was created in November, succeeded after one halt; r0 is October's.
    assert_eq!(
        f.rollouts,
        RolloutFigures {
            created: 1,
            succeeded: 1,
            halted: 1,
            aborted: 0,
            in_progress: 0
        }
    );
    assert_eq!(f.operations.succeeded, 1);
    assert_eq!(f.operations.failed, 1);
    assert_eq!(f.operations.rolled_back, 1);
    // One failed install, one rollback, one recorded incident (October's is not counted).
    assert_eq!(f.incidents.failed_operations, 1);
    assert_eq!(f.incidents.rollbacks, 1);
    assert_eq!(f.incidents.recorded, 1);
    assert_eq!(f.incidents.total, 3);
}

#[test]
fn an_asset_enrolled_after_the_period_is_not_counted_and_a_higher_priority_policy_owns() {
    let mut assets = company();
    let mut late = assets[0].clone();
    late.metadata.name = Some("late".to_owned());
    late.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        t("2026-12-05T00:00:00Z"),
    ));
    assets.push(late);
    // A security policy of higher priority with a 3-day security deadline does not take the
    // Bugfix u3: it stays with "all".
    let mut policies = policies();
    policies.push(policy(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchPolicy",
        "metadata": {"name": "security"},
        "spec": {"selector": {}, "priority": 100, "updates": {"classifications": ["Security"]},
                 "deadlines": {"security": 3}, "rings": ["pilot"]}
    })));
    let f = figures(
        Inputs {
            assets: &assets.iter().collect::<Vec<_>>(),
            rollouts: &[],
            policies: &policies,
            incidents: &[],
            policy: None,
        },
        november(),
    );
    assert_eq!(f.assets, 3);
    assert_eq!(f.compliance.assets, 3);
    assert_eq!(f.overdue_by_policy.get("all"), Some(&1));
    assert_eq!(f.overdue_by_policy.get("security"), None);
}

#[test]
fn an_update_without_a_release_date_is_counted_apart() {
    let assets = [asset(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
        "metadata": {"name": "x", "creationTimestamp": "2026-10-01T00:00:00Z"},
        "spec": {"osFamily": "MacOS"},
        "status": {"reported": {
            "availableUpdates": [{"id": "m", "version": "2"}],
            "installedHistory": [{"id": "k", "version": "1", "action": "Install",
                                  "at": "2026-11-03T00:00:00Z"}]
        }}
    }))];
    let f = figures(
        Inputs {
            assets: &assets.iter().collect::<Vec<_>>(),
            rollouts: &[],
            policies: &policies(),
            incidents: &[],
            policy: None,
        },
        november(),
    );
    assert_eq!(f.patch_rate.within7.due, 0);
    assert_eq!(f.patch_rate.within7.rate, None);
    assert_eq!(f.time_to_patch.installed, 0);
    assert_eq!(f.time_to_patch.without_release_date, 1);
    assert_eq!(f.open.unknown, 1);
    assert_eq!(f.overdue, 0);
    assert_eq!(f.compliance.compliant, 1);
}

#[test]
fn an_asset_no_agent_reported_for_is_not_compliant_and_named() {
    let mut assets = company();
    // Enrolled in October; its agent never reported (no `status` at all, as `enroll` leaves it).
    assets.push(asset(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
        "metadata": {"name": "silent", "namespace": "acme",
                     "creationTimestamp": "2026-10-01T00:00:00Z"},
        "spec": {"osFamily": "Windows", "criticality": "Low"}
    })));
    let inputs = Inputs {
        assets: &assets.iter().collect::<Vec<_>>(),
        rollouts: &[],
        policies: &policies(),
        incidents: &[],
        policy: None,
    };
    let f = figures(inputs, november());
    // a2 and a3 compliant; a1 overdue; "silent" unknown, so not compliant either.
    assert_eq!(f.compliance.assets, 4);
    assert_eq!(f.compliance.compliant, 2);
    assert_eq!(f.compliance.unreported, 1);
    assert_eq!(f.compliance.overdue(), 1);
    assert_eq!(f.compliance.rate, Some(0.5));
    assert_eq!(f.compliance_by_criticality["Low"].unreported, 1);
    assert_eq!(f.compliance_by_criticality["Low"].compliant, 1);
    assert_eq!(f.unreported_assets, vec!["silent"]);
    assert_eq!(f.non_compliant_assets, vec!["a1", "silent"]);

    let report_of = |assets: &[&Asset]| {
        report::build(
            Inputs { assets, ..inputs },
            vec!["acme".to_owned()],
            november(),
            t("2026-12-01T08:00:00Z"),
        )
    };
    let report = report_of(inputs.assets);
    assert_eq!(report.summary.compliant, Some(false));
    assert_eq!(
        report.summary.verdict,
        "Not compliant: 1 update(s) on 1 asset(s) are past their deadline; 1 asset(s) have never \
         reported, so what they miss is unknown; 50% of assets are compliant."
    );
    let decision = report
        .decisions
        .iter()
        .find(|d| d.object == "asset/silent")
        .expect("a decision about the silent asset");
    assert!(
        decision.what.starts_with("silent has never reported"),
        "{}",
        decision.what
    );
    assert_eq!(
        decision.command.as_deref(),
        Some("kubectl patchwave enroll silent -n acme --kubeconfig-out silent.kubeconfig")
    );

    // Without the overdue asset, only the unknown one keeps the company from compliance.
    let reported_or_silent: Vec<&Asset> = assets
        .iter()
        .filter(|a| a.metadata.name.as_deref() != Some("a1"))
        .collect();
    let report = report_of(&reported_or_silent);
    assert_eq!(report.summary.compliant, Some(false));
    assert_eq!(
        report.summary.verdict,
        "Not compliant: 1 asset(s) have never reported, so what they miss is unknown; no \
         reporting asset has an update past its deadline; 67% of assets are compliant."
    );
}

#[test]
fn a_policy_alone_counts_the_updates_it_owns_and_its_rollouts() {
    let (assets, rollouts, incidents) = (company(), rollouts(), incidents());
    let mut policies = policies();
    // "security" (priority 100) takes the Security updates from "all"; "drivers" takes
    // Driver updates, of which there are none, and never made a rollout.
    policies.push(policy(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchPolicy",
        "metadata": {"name": "security"},
        "spec": {"selector": {}, "priority": 100, "updates": {"classifications": ["Security"]},
                 "rings": ["pilot"]}
    })));
    policies.push(policy(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchPolicy",
        "metadata": {"name": "drivers"},
        "spec": {"selector": {}, "updates": {"classifications": ["Driver"]}, "rings": ["pilot"]}
    })));
    let assets: Vec<&Asset> = assets.iter().collect();
    let rollouts: Vec<&PatchRollout> = rollouts.iter().collect();
    let of = |policy: Option<&str>| {
        figures(
            Inputs {
                assets: &assets,
                rollouts: &rollouts,
                policies: &policies,
                incidents: &incidents,
                policy,
            },
            november(),
        )
    };

    // "security" owns a1.u1, a2.u1, a2.u4 and a3.u5: at 7 days 3 of 4 (a3.u5 was rolled
    // back); 72, 24, 0 and 108 h to patch. It made no rollout: no operation or incident.
    let security = of(Some("security"));
    assert_eq!(security.patch_rate.within7, rate(4, 3));
    assert_eq!(security.critical_security_within7, rate(4, 3));
    assert_eq!(security.time_to_patch.installed, 4);
    assert_eq!(security.time_to_patch.mean_hours, Some(51.0));
    assert_eq!(security.time_to_patch.median_hours, Some(48.0));
    assert_eq!(security.open.total(), 0);
    assert_eq!(security.overdue, 0);
    assert_eq!(security.rollouts.created, 0);
    assert_eq!(security.incidents.total, 0);
    // Compliance is of its assets, whoever owns the overdue update: a1's u3 is "all"'s.
    assert_eq!(security.compliance.compliant, 2);
    assert_eq!(security.compliance.assets, 3);

    // "all" keeps a1.u2 (late at 7 days, 480 h) and the missing, overdue a1.u3; r0 and r1 are
    // its rollouts: the failed install, the rollback and the incident recorded against r1.
    let all = of(Some("all"));
    assert_eq!(all.patch_rate.within7, rate(1, 0));
    assert_eq!(all.critical_security_within7.due, 0);
    assert_eq!(all.time_to_patch.installed, 1);
    assert_eq!(all.time_to_patch.mean_hours, Some(480.0));
    assert_eq!(all.open.total(), 1);
    assert_eq!(all.overdue_by_policy["all"], 1);
    assert_eq!(all.rollouts.created, 1);
    assert_eq!(all.incidents.total, 3);

    // "drivers" owns nothing on these assets and made no rollout: nothing to judge but
    // compliance.
    let drivers = of(Some("drivers"));
    assert_eq!(drivers.patch_rate.within7.rate, None);
    assert_eq!(drivers.time_to_patch.installed, 0);
    assert_eq!(drivers.time_to_patch.mean_hours, None);
    assert_eq!(drivers.open.total(), 0);
    assert_eq!(drivers.operations.failed, 0);
    assert_eq!(drivers.incidents.total, 0);
    assert_eq!(drivers.incidents.recorded_list, Vec::new());
    assert_eq!(drivers.compliance.compliant, 2);

    // Together, everything is counted once, as without the other policies.
    let everything = of(None);
    assert_eq!(everything.time_to_patch.installed, 5);
    assert_eq!(everything.incidents.total, 3);
    assert_eq!(everything.patch_rate.within7, rate(5, 3));
}

/// The KPIs attribute updates as the engine does ([`owners`]): a suspended policy keeps its
/// updates, a policy the operator found invalid owns none, an include glob sees the package
/// name of a reported update, and an id reported with two versions belongs to nobody.
#[test]
fn updates_belong_to_the_policies_the_engine_gives_them_to() {
    let asset = asset(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
        "metadata": {"name": "a1", "creationTimestamp": "2026-10-01T00:00:00Z"},
        "spec": {"osFamily": "Linux"},
        "status": {"reported": {"availableUpdates": [
            {"id": "sec-1", "version": "1", "severity": "Critical", "classification": "Security",
             "releasedAt": "2026-10-01T00:00:00Z"},
            {"id": "USN-7000-1", "package": "openssl", "version": "3", "severity": "Low",
             "classification": "Bugfix", "releasedAt": "2026-10-01T00:00:00Z"},
            {"id": "twice", "version": "1", "severity": "Low", "classification": "Bugfix",
             "releasedAt": "2026-10-01T00:00:00Z"},
            {"id": "twice", "version": "2", "severity": "Low", "classification": "Bugfix",
             "releasedAt": "2026-10-01T00:00:00Z"}
        ]}}
    }));
    let policy_of = |name: &str,
                     priority: i32,
                     updates: serde_json::Value,
                     extra: serde_json::Value| {
        let mut spec =
            json!({"selector": {}, "priority": priority, "updates": updates, "rings": ["pilot"]});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        policy(json!({
            "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchPolicy",
            "metadata": {"name": name}, "spec": spec
        }))
    };
    let mut broken = policy_of("broken", 200, json!({}), json!({}));
    broken.status = Some(crate::api::PatchPolicyStatus {
        conditions: vec![crate::engine::evaluate::set_condition(
            &[],
            "Ready",
            false,
            "InvalidSpec",
            "spec.rings[0]: Ring \"pilot\" does not exist",
            None,
            t("2026-11-01T00:00:00Z"),
        )],
        ..Default::default()
    });
    let policies = vec![
        broken,
        policy_of(
            "security",
            100,
            json!({"classifications": ["Security"]}),
            json!({"suspend": true}),
        ),
        policy_of("openssl", 50, json!({"include": ["openssl"]}), json!({})),
        policy_of("all", 10, json!({}), json!({})),
    ];
    let assets = [&asset];
    let open_of = |policy: &str| {
        figures(
            Inputs {
                assets: &assets,
                rollouts: &[],
                policies: &policies,
                incidents: &[],
                policy: Some(policy),
            },
            november(),
        )
        .open
        .total()
    };
    // The invalid policy would take everything; it owns nothing.
    assert_eq!(open_of("broken"), 0);
    // Suspended, security still owns its update: "all" does not get it.
    assert_eq!(open_of("security"), 1);
    // The include glob matches the reported package name.
    assert_eq!(open_of("openssl"), 1);
    // "all" has neither of those, nor either entry of "twice".
    assert_eq!(open_of("all"), 0);
}
