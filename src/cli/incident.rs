//! `incident`: record an incident caused by a patch as a PatchIncident, the auditable record
//! the KPI "incidents caused by patches" counts.
//!
//! The command checks that the Asset and the PatchRollout exist (and that suspected updates
//! belong to the rollout), then creates the PatchIncident signed with the caller's identity and
//! the time, under the field manager `kubectl-patchwave`. It never changes an incident: the
//! API server refuses changes to its spec.

use std::process::ExitCode;

use jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};

use super::cluster::{self, Cluster, ClusterArgs, ObjectRef};
use super::control::sign;
use super::{CliError, print};
use crate::api::{
    Asset, IncidentImpact, PLUGIN_FIELD_MANAGER, PatchIncident, PatchIncidentSpec, PatchRollout,
    Time,
};

/// Longest note the CRD accepts (`spec.note`).
pub const MAX_NOTE_CHARS: usize = 2048;
/// Most suspected updates the CRD accepts (`spec.updates`).
pub const MAX_UPDATES: usize = 100;
/// Longest object name Kubernetes accepts (a DNS subdomain).
const MAX_NAME: usize = 253;
/// How many names `<asset>-<time>`, `<asset>-<time>-2`, ... are tried before giving up.
const NAME_ATTEMPTS: usize = 20;
/// How far in the future `--at` may lie (clock skew between machines), in seconds.
const FUTURE_TOLERANCE_SECONDS: i64 = 300;

/// Record an incident caused by a patch, as an auditable PatchIncident.
///
/// Checks that the Asset and the PatchRollout exist in the namespace (and that every --update
/// is part of the rollout's frozen set), then creates a PatchIncident named
/// `<asset>-<yyyymmddhhmmss>` (UTC time of the incident; `-2`, `-3`, ... is appended when that
/// name is taken). It records the note, the impact, when the incident happened (now, or
/// --at) and who recorded it (your user name as the API server knows you).
///
/// An incident cannot be changed afterwards: the API server refuses any change to its spec.
/// To correct one, record a new incident that names the old one in its note.
///
/// To list incidents, use kubectl: `kubectl get patchincidents -n NS` (short name `pinc`;
/// `-o wide` adds the note).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    # DNS failed on a domain controller after the pilot ring was patched\n  \
    kubectl patchwave incident dc01 --rollout security-fast-1a2b3c4d -n acme \\\n      \
    --impact High --update KB5044281 --note 'INC-2231: DNS down 40 min after KB5044281'\n\n  \
    # An incident noticed later, with the time it happened\n  \
    kubectl patchwave incident erp01 --rollout monthly-9f8e7d6c -n acme \\\n      \
    --at 2025-11-30T07:45:00+01:00 --note 'INC-2240: ERP print service crashed'\n\n  \
    # List the incidents of a namespace (with notes)\n  \
    kubectl get patchincidents -n acme -o wide")]
pub struct IncidentArgs {
    /// The Asset on which the incident happened.
    pub asset: String,
    /// The PatchRollout the incident is attributed to.
    #[arg(long, value_name = "NAME")]
    pub rollout: String,
    /// What happened (1 to 2048 characters): symptom, ticket number, what was done.
    #[arg(long, value_name = "TEXT")]
    pub note: String,
    /// How badly the incident hurt the business.
    #[arg(long, value_enum, default_value_t = Impact::Medium, ignore_case = true)]
    pub impact: Impact,
    /// An update of the rollout you suspect (update id as in the rollout; repeatable).
    #[arg(long = "update", value_name = "ID")]
    pub updates: Vec<String>,
    /// When the incident happened, as RFC 3339 (2026-11-30T07:45:00+01:00). Default: now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<Timestamp>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `--impact`, spelled as in the CRD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Impact {
    /// A nuisance: a workaround exists, nobody was stopped.
    #[value(name = "Low")]
    Low,
    /// Some people or one service were disrupted for a while.
    #[value(name = "Medium")]
    Medium,
    /// A department or an important service was down.
    #[value(name = "High")]
    High,
    /// The business stopped (domain controller, ERP down).
    #[value(name = "Critical")]
    Critical,
}

impl From<Impact> for IncidentImpact {
    fn from(impact: Impact) -> Self {
        match impact {
            Impact::Low => IncidentImpact::Low,
            Impact::Medium => IncidentImpact::Medium,
            Impact::High => IncidentImpact::High,
            Impact::Critical => IncidentImpact::Critical,
        }
    }
}

/// Checks what can be checked without the cluster: the note's length, the number of updates,
/// a time that is not in the future.
fn check_args(args: &IncidentArgs, now: Timestamp) -> Result<(), CliError> {
    let chars = args.note.chars().count();
    if args.note.trim().is_empty() {
        return Err(CliError::Usage(
            "--note must say what happened (spec.note of the PatchIncident cannot be empty)"
                .to_owned(),
        ));
    }
    if chars > MAX_NOTE_CHARS {
        return Err(CliError::Usage(format!(
            "--note has {chars} characters; spec.note of a PatchIncident holds at most {MAX_NOTE_CHARS}"
        )));
    }
    if args.updates.len() > MAX_UPDATES {
        return Err(CliError::Usage(format!(
            "{} --update given; spec.updates of a PatchIncident holds at most {MAX_UPDATES}",
            args.updates.len()
        )));
    }
    if let Some(empty) = args.updates.iter().find(|u| u.trim().is_empty()) {
        return Err(CliError::Usage(format!(
            "--update {empty:?} is not an update id"
        )));
    }
    if let Some(at) = args.at
        && at.as_second() > now.as_second() + FUTURE_TOLERANCE_SECONDS
    {
        return Err(CliError::Usage(format!(
            "--at {at} lies in the future (now is {}); an incident is recorded after it happened",
            now.round(jiff::Unit::Second).unwrap_or(now)
        )));
    }
    Ok(())
}

/// The name of the `attempt`-th try (1 first): `<asset>-<yyyymmddhhmmss>`, then with `-2`,
/// `-3`, ...; the asset part is shortened so the name stays a valid object name.
pub fn incident_name(asset: &str, at: Timestamp, attempt: usize) -> String {
    let mut tail = format!("-{}", at.strftime("%Y%m%d%H%M%S"));
    if attempt > 1 {
        tail += &format!("-{attempt}");
    }
    let room = MAX_NAME.saturating_sub(tail.len());
    let mut head: String = asset.chars().take(room).collect();
    // A DNS subdomain ends with a letter or digit.
    while head.ends_with(['-', '.']) {
        head.pop();
    }
    format!("{head}{tail}")
}

/// Refuses suspected updates that are not part of the rollout's frozen set: a record with a
/// mistyped id could not be corrected later.
fn check_updates(
    updates: &[String],
    rollout: &PatchRollout,
    object: &ObjectRef,
) -> Result<(), CliError> {
    let known: Vec<&str> = rollout.spec.updates.iter().map(|u| u.id.as_str()).collect();
    let unknown: Vec<&str> = updates
        .iter()
        .map(String::as_str)
        .filter(|id| !known.contains(id))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    const SHOWN: usize = 10;
    let mut listed = known
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if known.len() > SHOWN {
        listed += &format!(", ... ({} in all)", known.len());
    }
    Err(CliError::Cluster(format!(
        "update {} is not part of {object} (its spec.updates: {listed}); nothing recorded",
        unknown.join(", ")
    )))
}

/// Refuses an incident the rollout cannot have caused, since it counts among the "incidents
/// caused by patches" of the KPIs: the rollout never gave the asset an operation (no record of
/// it in `status.rollouts`), or the incident happened before that operation was issued.
fn check_attribution(
    asset: &Asset,
    asset_ref: &ObjectRef,
    rollout_ref: &ObjectRef,
    occurred_at: Timestamp,
) -> Result<(), CliError> {
    let record = asset
        .status
        .iter()
        .flat_map(|s| s.rollouts.iter())
        .rfind(|r| r.rollout == rollout_ref.name);
    let Some(record) = record else {
        return Err(CliError::Cluster(format!(
            "{rollout_ref} never gave {asset_ref} an operation (its status.rollouts has no \
             record of it), so it cannot have caused this incident; nothing recorded. Check \
             the rollout with `kubectl get asset {} -n {} -o jsonpath='{{.status.rollouts}}'`",
            asset_ref.name, asset_ref.namespace
        )));
    };
    if let Some(started) = record.started_at.as_ref().map(|t| t.0)
        && occurred_at < started
    {
        return Err(CliError::Cluster(format!(
            "the incident happened at {occurred_at}, before {rollout_ref} gave {asset_ref} its \
             operation ({started}); nothing recorded. Check --at"
        )));
    }
    Ok(())
}

/// Runs `incident`.
pub fn run(args: &IncidentArgs) -> Result<ExitCode, CliError> {
    check_args(args, Timestamp::now())?;
    cluster::block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let asset_ref = ObjectRef::new("asset", &cluster, &args.asset);
        let asset = cluster
            .api::<Asset>()
            .get(&args.asset)
            .await
            .map_err(|e| asset_ref.error("read", e))?;
        let rollout_ref = ObjectRef::new("patchrollout", &cluster, &args.rollout);
        let rollout = cluster
            .api::<PatchRollout>()
            .get(&args.rollout)
            .await
            .map_err(|e| rollout_ref.error("read", e))?;
        check_updates(&args.updates, &rollout, &rollout_ref)?;

        let signature = sign(&cluster, Some(&args.note)).await;
        let occurred_at = args
            .at
            .map(|at| at.round(jiff::Unit::Second).unwrap_or(at))
            .or(signature.at.as_ref().map(|t| t.0))
            .unwrap_or_else(Timestamp::now);
        check_attribution(&asset, &asset_ref, &rollout_ref, occurred_at)?;
        let mut updates: Vec<String> = Vec::new();
        for id in &args.updates {
            if !updates.contains(id) {
                updates.push(id.clone());
            }
        }
        let spec = PatchIncidentSpec {
            asset: args.asset.clone(),
            rollout: args.rollout.clone(),
            note: args.note.clone(),
            impact: args.impact.into(),
            occurred_at: Some(Time(occurred_at)),
            reported_by: signature.by.clone(),
            updates,
        };
        let created = create(&cluster, &spec, occurred_at).await?;
        print(&describe(&created, &spec))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Creates the incident under the first free name; returns its reference.
async fn create(
    cluster: &Cluster,
    spec: &PatchIncidentSpec,
    at: Timestamp,
) -> Result<ObjectRef, CliError> {
    let api = cluster.api::<PatchIncident>();
    let params = PostParams {
        field_manager: Some(PLUGIN_FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    for attempt in 1..=NAME_ATTEMPTS {
        let name = incident_name(&spec.asset, at, attempt);
        let object = ObjectRef::new("patchincident", cluster, &name);
        let incident = PatchIncident {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(cluster.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: spec.clone(),
        };
        match api.create(&params, &incident).await {
            Ok(_) => return Ok(object),
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                tracing::debug!(%object, attempt, "name taken, trying the next");
            }
            Err(e) => return Err(object.error("create", e)),
        }
    }
    Err(CliError::Cluster(format!(
        "cannot find a free name for the incident of asset {} in namespace {}: {} and {} more names are taken",
        spec.asset,
        cluster.namespace,
        incident_name(&spec.asset, at, 1),
        NAME_ATTEMPTS - 1
    )))
}

/// What was recorded, for the terminal.
fn describe(object: &ObjectRef, spec: &PatchIncidentSpec) -> String {
    let mut out = format!(
        "recorded {object}: asset {}, rollout {}, impact {}",
        spec.asset, spec.rollout, spec.impact
    );
    if let Some(at) = &spec.occurred_at {
        out += &format!(", occurred at {}", at.0);
    }
    if let Some(by) = &spec.reported_by {
        out += &format!(", reported by {by}");
    }
    out += &format!("\n  note: {}\n", spec.note);
    if !spec.updates.is_empty() {
        out += &format!("  suspected updates: {}\n", spec.updates.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        "2026-11-30T19:02:11Z".parse().unwrap()
    }

    #[test]
    fn names_carry_the_asset_and_the_utc_time() {
        assert_eq!(incident_name("dc01", at(), 1), "dc01-20261130190211");
        assert_eq!(incident_name("dc01", at(), 2), "dc01-20261130190211-2");
        let offset: Timestamp = "2026-11-30T20:02:11+01:00".parse().unwrap();
        assert_eq!(incident_name("dc01", offset, 1), "dc01-20261130190211");
    }

    #[test]
    fn long_asset_names_are_shortened_to_a_valid_name() {
        // The cut after 238 characters falls just behind the dash.
        let asset = format!("{}-{}", "a".repeat(237), "b".repeat(15));
        for attempt in [1, 2, 20] {
            let name = incident_name(&asset, at(), attempt);
            assert!(name.len() <= 253, "{} chars", name.len());
            assert!(!name.contains("--") && !name.contains(".-"), "{name}");
        }
    }

    fn args(note: &str) -> IncidentArgs {
        IncidentArgs {
            asset: "dc01".into(),
            rollout: "r".into(),
            note: note.into(),
            impact: Impact::Medium,
            updates: Vec::new(),
            at: None,
            cluster: ClusterArgs::default(),
        }
    }

    #[test]
    fn arguments_are_checked_before_the_cluster_is_asked() {
        let now = at();
        assert!(check_args(&args("DNS down"), now).is_ok());
        assert!(check_args(&args("  "), now).is_err());
        let err = check_args(&args(&"x".repeat(2049)), now).unwrap_err();
        assert!(err.to_string().contains("at most 2048"), "{err}");
        assert!(check_args(&args(&"ä".repeat(2048)), now).is_ok());
        let mut future = args("later");
        future.at = Some("2026-12-01T00:00:00Z".parse().unwrap());
        let err = check_args(&future, now).unwrap_err();
        assert!(err.to_string().contains("future"), "{err}");
    }
}
