//! The human controls: `approve`, `pause`, `unpause`, `resume`, `abort` on a PatchRollout and
//! `hold`, `unhold` on an Asset.
//!
//! Each command reads the object, decides what to write to its `spec`, and writes it with
//! [`cluster::change_spec`] (a merge patch guarded by the resourceVersion read, retried on
//! conflict). A command whose effect is already in place says so and writes nothing, so
//! running one twice is harmless. Approvals, resumes and aborts are signed with the caller's
//! identity, the time and an optional note: the rollout is the audit record.

use std::process::ExitCode;

use jiff::Timestamp;
use serde_json::json;

use super::cluster::{self, Change, Cluster, ClusterArgs, ObjectRef};
use super::{CliError, print};
use crate::api::ring::RingApproval;
use crate::api::rollout::{Approval, Resume, RingPhase, RolloutPhase};
use crate::api::{Asset, PatchPolicy, PatchRollout, Ring, Signature, Time};

/// Most approved assets a rollout holds (the CRD's bound on `spec.approvedAssets`).
const MAX_APPROVED_ASSETS: usize = 1000;
/// Most resumes a rollout holds (the CRD's bound on `spec.resumes`).
const MAX_RESUMES: usize = 64;

/// Approve rings or assets of a rollout.
///
/// A ring with `approval: Manual` starts only once it is approved on the rollout; an asset
/// whose criticality the policy lists in `manualApproval` (Critical by default) is patched
/// only once it is approved. Each approval is signed with your identity (as the API server
/// knows you), the time and the note. Approving what is already approved writes nothing.
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "kubectl patchwave approve <ROLLOUT> --ring <NAME>... and/or --asset <NAME>... [OPTIONS]"
)]
#[command(after_help = "Examples:\n  \
    # Let the ring dept-a start\n  \
    kubectl patchwave approve security-fast-1a2b3c4d --ring dept-a -n acme --note 'CHG-1042'\n\n  \
    # Approve the domain controllers individually\n  \
    kubectl patchwave approve security-fast-1a2b3c4d --asset dc01 --asset dc02 -n acme")]
pub struct ApproveArgs {
    /// The PatchRollout.
    pub rollout: String,
    /// A ring of the rollout to approve (repeatable). Give --ring, --asset or both.
    // Checked in `approve`, whose message names both flags (clap's names only one).
    #[arg(long = "ring", value_name = "NAME")]
    pub rings: Vec<String>,
    /// An Asset to approve (repeatable). Give --ring, --asset or both.
    #[arg(long = "asset", value_name = "NAME")]
    pub assets: Vec<String>,
    /// Why, in a sentence (a change ticket number is a good note).
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Pause a rollout: no new operation starts; operations in flight finish.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    kubectl patchwave pause security-fast-1a2b3c4d -n acme\n  \
    kubectl patchwave unpause security-fast-1a2b3c4d -n acme   # go on")]
pub struct PauseArgs {
    /// The PatchRollout.
    pub rollout: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Resume a halted ring, accepting its failures so far.
///
/// The ring's failure threshold then applies to the failures after this resume.
///
/// Writes `{ring, halt}` to `spec.resumes`, where `halt` is the number of the ring's current
/// halt (`status.rings[].halts`), so this resume can never skip a later halt. Refuses when
/// the ring is not halted.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    kubectl patchwave status security-fast-1a2b3c4d -n acme     # see why it halted\n  \
    kubectl patchwave resume security-fast-1a2b3c4d --ring pilot -n acme --note 'lt-it-03 reimaged'")]
pub struct ResumeArgs {
    /// The PatchRollout.
    pub rollout: String,
    /// The halted ring.
    #[arg(long, value_name = "NAME")]
    pub ring: String,
    /// Why, in a sentence.
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Abort a rollout (irreversible, needs --yes).
///
/// Nothing new starts, the rollout ends Aborted, and the policy's next change creates a new
/// rollout. This cannot be undone, so it needs --yes; without it the command only says what
/// it would do (exit status 1).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    kubectl patchwave abort security-fast-1a2b3c4d -n acme --note 'bad KB5044281' --yes")]
pub struct AbortArgs {
    /// The PatchRollout.
    pub rollout: String,
    /// Why, in a sentence.
    #[arg(long)]
    pub note: Option<String>,
    /// Really abort (irreversible).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Put an asset on hold: it is not patched until the hold is cleared.
///
/// Whatever the policies say, a held asset gets no operation and is reported as Held.
/// Holding an asset that is already on hold with another --reason updates the reason.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    kubectl patchwave hold erp01 -n acme --reason 'year-end closing until 2027-01-10'\n  \
    kubectl patchwave unhold erp01 -n acme")]
pub struct HoldArgs {
    /// The Asset.
    pub asset: String,
    /// Why it is on hold (shown in status and reports).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Clear an asset's hold (and its reason).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  kubectl patchwave unhold erp01 -n acme")]
pub struct UnholdArgs {
    /// The Asset.
    pub asset: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// A signature by the caller, now, with `note` (also used by `incident`).
pub(crate) async fn sign(cluster: &Cluster, note: Option<&str>) -> Signature {
    Signature {
        by: Some(cluster.identity().await),
        // Whole seconds: what the API server stores anyway, and what messages show.
        at: Some(Time(
            Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or_else(|_| Timestamp::now()),
        )),
        note: note.map(str::to_owned),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, CliError> {
    serde_json::to_value(value)
        .map_err(|e| CliError::Cluster(format!("cannot encode the change: {e}")))
}

/// The error for a ring name that the rollout does not have.
fn unknown_ring(ring: &str, object: &ObjectRef, rollout: &PatchRollout) -> CliError {
    CliError::Cluster(format!(
        "ring \"{ring}\" is not part of {object} (its rings: {})",
        rollout.spec.rings.join(", ")
    ))
}

/// Refuses to steer a rollout that is over.
fn refuse_if_over(object: &ObjectRef, rollout: &PatchRollout, what: &str) -> Result<(), CliError> {
    if let Some(abort) = &rollout.spec.abort {
        return Err(CliError::Cluster(format!(
            "{object} was aborted{}; nothing to {what}",
            abort.by_at()
        )));
    }
    if rollout
        .status
        .as_ref()
        .is_some_and(|s| s.phase == RolloutPhase::Succeeded)
    {
        return Err(CliError::Cluster(format!(
            "{object} already succeeded; nothing to {what}"
        )));
    }
    Ok(())
}

fn done(message: &str) -> Result<ExitCode, CliError> {
    print(&format!("{message}\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `approve`.
pub fn approve(args: &ApproveArgs) -> Result<ExitCode, CliError> {
    if args.rings.is_empty() && args.assets.is_empty() {
        return Err(CliError::Usage(format!(
            "nothing to approve: give --ring NAME and/or --asset NAME (each repeatable), for \
             example `kubectl patchwave approve {} --ring pilot`",
            args.rollout
        )));
    }
    // A name given twice is one approval.
    let once = |names: &[String]| -> Vec<String> {
        let mut seen = Vec::new();
        for name in names {
            if !seen.contains(name) {
                seen.push(name.clone());
            }
        }
        seen
    };
    let (rings, asset_names) = (once(&args.rings), once(&args.assets));
    cluster::block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let object = ObjectRef::new("patchrollout", &cluster, &args.rollout);
        let assets = cluster.api::<Asset>();
        let mut read_assets = Vec::new();
        for asset in &asset_names {
            let asset_ref = ObjectRef::new("asset", &cluster, asset);
            read_assets.push(
                assets
                    .get(asset)
                    .await
                    .map_err(|e| asset_ref.error("read", e))?,
            );
        }
        let needless = needless_approvals(&cluster, &args.rollout, &rings, &read_assets).await;
        let signature = sign(&cluster, args.note.as_deref()).await;
        let message = cluster::change_spec(&cluster.api::<PatchRollout>(), &object, |rollout| {
            refuse_if_over(&object, rollout, "approve")?;
            for ring in &rings {
                if !rollout.spec.rings.contains(ring) {
                    return Err(unknown_ring(ring, &object, rollout));
                }
            }
            let mut notes = Vec::new();
            let mut approved_rings = rollout.spec.approved_rings.clone();
            let mut approved_assets = rollout.spec.approved_assets.clone();
            let mut added = Vec::new();
            for (kind, names, list) in [
                ("ring", &rings, &mut approved_rings),
                ("asset", &asset_names, &mut approved_assets),
            ] {
                for name in names {
                    if let Some(existing) = list.iter().find(|a| &a.name == name) {
                        notes.push(format!(
                            "{kind} {name} already approved{}",
                            existing.signature.by_at()
                        ));
                    } else {
                        list.push(Approval {
                            name: name.clone(),
                            signature: signature.clone(),
                        });
                        added.push((kind, name));
                    }
                }
            }
            if approved_assets.len() > MAX_APPROVED_ASSETS {
                return Err(CliError::Cluster(format!(
                    "{object} would hold {} approved assets, more than the {MAX_APPROVED_ASSETS} spec.approvedAssets allows",
                    approved_assets.len()
                )));
            }
            let mut message = notes.join("\n");
            if added.is_empty() {
                message = format!("{message}\nnothing to change on {object}");
                return Ok(Change::Nothing(message.trim_start().to_owned()));
            }
            let words: Vec<String> = added.iter().map(|(k, n)| format!("{k} {n}")).collect();
            message = format!(
                "{message}\napproved {} of {object}{}",
                words.join(", "),
                signature.by_at()
            );
            let mut spec = serde_json::Map::new();
            if added.iter().any(|(k, _)| *k == "ring") {
                spec.insert("approvedRings".into(), to_json(&approved_rings)?);
            }
            if added.iter().any(|(k, _)| *k == "asset") {
                spec.insert("approvedAssets".into(), to_json(&approved_assets)?);
            }
            Ok(Change::Spec(
                serde_json::Value::Object(spec),
                message.trim_start().to_owned(),
            ))
        })
        .await?;
        let notes: String = needless.iter().map(|n| format!("\nnote: {n}")).collect();
        done(&format!("{message}{notes}"))
    })
}

/// Approvals the rollout does not wait for: a ring whose approval is Automatic, an asset whose
/// criticality the policy's `manualApproval` does not list. They are recorded all the same
/// (an audit trail may want them); the caller is told so that a mistyped intent shows. Best
/// effort: what cannot be read yields no note (the write itself reports real errors).
async fn needless_approvals(
    cluster: &Cluster,
    rollout: &str,
    rings: &[String],
    assets: &[Asset],
) -> Vec<String> {
    let mut notes = Vec::new();
    for ring in rings {
        if let Ok(object) = cluster.api::<Ring>().get(ring).await
            && object.spec.approval == RingApproval::Automatic
        {
            notes.push(format!(
                "ring {ring} has approval Automatic: it starts without an approval (recorded anyway)"
            ));
        }
    }
    if assets.is_empty() {
        return notes;
    }
    let Ok(rollout) = cluster.api::<PatchRollout>().get(rollout).await else {
        return notes;
    };
    let policy_name = &rollout.spec.policy;
    let Ok(policy) = cluster.api::<PatchPolicy>().get(policy_name).await else {
        return notes;
    };
    let manual = &policy.spec.manual_approval;
    for asset in assets {
        let criticality = asset.spec.criticality;
        if !manual.contains(&criticality) {
            let name = asset.metadata.name.as_deref().unwrap_or_default();
            notes.push(if manual.is_empty() {
                format!(
                    "policy {policy_name} asks no per-asset approval: asset {name} needs none \
                     (recorded anyway)"
                )
            } else {
                let listed: Vec<String> = manual.iter().map(|c| format!("{c:?}")).collect();
                format!(
                    "asset {name} is {criticality:?}, and policy {policy_name} asks a \
                     per-asset approval only for [{}]: it needs none (recorded anyway)",
                    listed.join(", ")
                )
            });
        }
    }
    notes
}

/// Runs `pause` (`paused` true) or `unpause` (`paused` false).
pub fn pause(args: &PauseArgs, paused: bool) -> Result<ExitCode, CliError> {
    cluster::block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let object = ObjectRef::new("patchrollout", &cluster, &args.rollout);
        let message = cluster::change_spec(&cluster.api::<PatchRollout>(), &object, |rollout| {
            refuse_if_over(&object, rollout, if paused { "pause" } else { "unpause" })?;
            Ok(match (rollout.spec.paused, paused) {
                (true, true) => Change::Nothing(format!("{object} is already paused")),
                (false, false) => Change::Nothing(format!("{object} is not paused")),
                (_, true) => Change::Spec(
                    json!({"paused": true}),
                    format!(
                        "paused {object}: no new operation starts; operations in flight finish"
                    ),
                ),
                (_, false) => Change::Spec(
                    json!({"paused": false}),
                    format!("unpaused {object}: operations start again"),
                ),
            })
        })
        .await?;
        done(&message)
    })
}

/// Runs `resume`.
pub fn resume(args: &ResumeArgs) -> Result<ExitCode, CliError> {
    cluster::block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let object = ObjectRef::new("patchrollout", &cluster, &args.rollout);
        let signature = sign(&cluster, args.note.as_deref()).await;
        let ring = &args.ring;
        let message = cluster::change_spec(&cluster.api::<PatchRollout>(), &object, |rollout| {
            if !rollout.spec.rings.contains(ring) {
                return Err(unknown_ring(ring, &object, rollout));
            }
            refuse_if_over(&object, rollout, "resume")?;
            let progress = rollout
                .status
                .as_ref()
                .and_then(|s| s.rings.iter().find(|r| &r.name == ring));
            let (phase, halts) = progress.map_or((RingPhase::Pending, 0), |p| (p.phase, p.halts));
            if !matches!(phase, RingPhase::Halted | RingPhase::RollingBack) || halts < 1 {
                return Err(CliError::Cluster(format!(
                    "ring \"{ring}\" of {object} is not halted (status.rings[{ring}].phase is {phase:?}); nothing to resume"
                )));
            }
            if let Some(existing) = rollout
                .spec
                .resumes
                .iter()
                .find(|r| &r.ring == ring && r.halt == halts)
            {
                return Ok(Change::Nothing(format!(
                    "halt {halts} of ring {ring} of {object} is already resumed{}; the operator goes on at its next reconcile",
                    existing.signature.by_at()
                )));
            }
            if rollout.spec.resumes.len() >= MAX_RESUMES {
                return Err(CliError::Cluster(format!(
                    "{object} already holds {MAX_RESUMES} resumes, as many as spec.resumes allows; abort it and let the policy create a new rollout"
                )));
            }
            let mut resumes = rollout.spec.resumes.clone();
            resumes.push(Resume {
                ring: ring.clone(),
                halt: halts,
                signature: signature.clone(),
            });
            Ok(Change::Spec(
                json!({"resumes": to_json(&resumes)?}),
                format!(
                    "resumed ring {ring} of {object} after halt {halts}{}: its failures so far are accepted",
                    signature.by_at()
                ),
            ))
        })
        .await?;
        done(&message)
    })
}

/// Runs `abort`.
pub fn abort(args: &AbortArgs) -> Result<ExitCode, CliError> {
    cluster::block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let object = ObjectRef::new("patchrollout", &cluster, &args.rollout);
        let api = cluster.api::<PatchRollout>();
        if !args.yes {
            let rollout = api
                .get(&args.rollout)
                .await
                .map_err(|e| object.error("read", e))?;
            if let Some(abort) = &rollout.spec.abort {
                return done(&format!("{object} is already aborted{}", abort.by_at()));
            }
            refuse_if_over(&object, &rollout, "abort")?;
            let phase = rollout.status.map(|s| s.phase).unwrap_or_default();
            print(&format!(
                "would abort {object} (phase {phase:?}): nothing new starts, it ends Aborted, and \
                 the policy's next change creates a new rollout.\nThis cannot be undone. Run again \
                 with --yes to abort.\n"
            ))?;
            return Ok(ExitCode::from(1));
        }
        let signature = sign(&cluster, args.note.as_deref()).await;
        let message = cluster::change_spec(&api, &object, |rollout| {
            if let Some(abort) = &rollout.spec.abort {
                return Ok(Change::Nothing(format!(
                    "{object} is already aborted{}",
                    abort.by_at()
                )));
            }
            refuse_if_over(&object, rollout, "abort")?;
            Ok(Change::Spec(
                json!({"abort": to_json(&signature)?}),
                format!("aborted {object}{}: nothing new starts", signature.by_at()),
            ))
        })
        .await?;
        done(&message)
    })
}

/// Runs `hold`.
pub fn hold(args: &HoldArgs) -> Result<ExitCode, CliError> {
    cluster::block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let object = ObjectRef::new("asset", &cluster, &args.asset);
        let message = cluster::change_spec(&cluster.api::<Asset>(), &object, |asset| {
            let same_reason = args.reason.is_none() || args.reason == asset.spec.hold_reason;
            if asset.spec.hold && same_reason {
                return Ok(Change::Nothing(format!(
                    "{object} is already on hold{}",
                    asset
                        .spec
                        .hold_reason
                        .as_ref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                )));
            }
            let reason = args.reason.clone().or_else(|| {
                // Re-holding keeps the reason; a new hold without one clears a stale reason.
                asset.spec.hold.then(|| asset.spec.hold_reason.clone())?
            });
            // A hold stops what would start; the agent finishes what it was already given.
            let in_flight = asset
                .status
                .as_ref()
                .and_then(|s| s.operation.as_ref())
                .map(|o| {
                    format!(
                        "; its operation in flight ({}) still finishes, as the agent already has it",
                        o.id
                    )
                })
                .unwrap_or_default();
            Ok(Change::Spec(
                json!({"hold": true, "holdReason": reason}),
                format!(
                    "{object} is on hold{}: no new operation starts until `kubectl patchwave unhold {} -n {}`{in_flight}",
                    reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default(),
                    object.name,
                    object.namespace
                ),
            ))
        })
        .await?;
        done(&message)
    })
}

/// Runs `unhold`.
pub fn unhold(args: &UnholdArgs) -> Result<ExitCode, CliError> {
    cluster::block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let object = ObjectRef::new("asset", &cluster, &args.asset);
        let message = cluster::change_spec(&cluster.api::<Asset>(), &object, |asset| {
            if !asset.spec.hold && asset.spec.hold_reason.is_none() {
                return Ok(Change::Nothing(format!("{object} is not on hold")));
            }
            Ok(Change::Spec(
                json!({"hold": false, "holdReason": null}),
                format!("{object} is no longer on hold"),
            ))
        })
        .await?;
        done(&message)
    })
}
