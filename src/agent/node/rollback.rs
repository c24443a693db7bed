//! Where a rollback returns to: the version each install replaced, kept in the state dir.
//!
//! A Rollback operation names the updates at the version its rollout installed. Package tools
//! need the version to go back to, and neither apt nor rpm remembers it, so the agent writes
//! down, before every install, the version that was there (`rollback-points.json`, replaced
//! atomically). The journal cannot hold this: it forgets finished operations when compacted,
//! and a rollback may come weeks later.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::asset::UpdateRef;

/// File name in the state directory.
pub const FILE_NAME: &str = "rollback-points.json";
/// Oldest points are dropped beyond this many (one per update and install).
const MAX_POINTS: usize = 2000;

/// One install: update `id` went from `previous` to `installed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackPoint {
    /// Update identifier.
    pub id: String,
    /// Version the install put there (the operation's version).
    pub installed: Option<String>,
    /// Version before the install; None when the update was not installed at all.
    pub previous: Option<String>,
}

/// The rollback points of this machine, newest last.
#[derive(Debug)]
pub struct RollbackPoints {
    path: PathBuf,
    points: Vec<RollbackPoint>,
}

impl RollbackPoints {
    /// Reads the file in `state_dir` (none yet: no points).
    pub fn load(state_dir: &Path) -> Result<RollbackPoints, String> {
        let path = state_dir.join(FILE_NAME);
        let points = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a list of rollback points: {e}", path.display()))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(format!("{}: cannot read: {err}", path.display())),
        };
        Ok(RollbackPoints { path, points })
    }

    /// Records that `updates` are about to be installed over the versions in `before`
    /// (from [`crate::agent::backend::Backend::installed_versions`]), durably.
    pub fn remember(
        &mut self,
        updates: &[UpdateRef],
        before: &[(UpdateRef, Option<String>)],
    ) -> Result<(), String> {
        for update in updates {
            let previous = before
                .iter()
                .find(|(u, _)| u.id == update.id)
                .and_then(|(_, version)| version.clone());
            // An install of the version already there is no point to return to.
            if previous.is_some() && previous == update.version {
                continue;
            }
            self.points.push(RollbackPoint {
                id: update.id.clone(),
                installed: update.version.clone(),
                previous,
            });
        }
        let excess = self.points.len().saturating_sub(MAX_POINTS);
        self.points.drain(..excess);
        self.save()
    }

    /// What a Rollback of `updates` (at the versions their rollout installed) must install:
    /// each update at the version its install replaced. Updates without versions (Windows
    /// KBs, macOS labels) are uninstalled as named. Errors name every update without a point.
    pub fn targets(&self, updates: &[UpdateRef]) -> Result<Vec<UpdateRef>, String> {
        let mut targets = Vec::new();
        let mut unknown = Vec::new();
        for update in updates {
            if update.version.as_deref().unwrap_or_default().is_empty() {
                targets.push(update.clone());
                continue;
            }
            let point = self
                .points
                .iter()
                .rev()
                .find(|p| p.id == update.id && p.installed == update.version);
            match point.map(|p| p.previous.clone()) {
                Some(Some(previous)) => targets.push(UpdateRef {
                    id: update.id.clone(),
                    version: Some(previous),
                }),
                Some(None) => unknown.push(format!(
                    "{} {} (it was not installed before; remove it by hand if needed)",
                    update.id,
                    update.version.as_deref().unwrap_or_default()
                )),
                None => unknown.push(format!(
                    "{} {}",
                    update.id,
                    update.version.as_deref().unwrap_or_default()
                )),
            }
        }
        if unknown.is_empty() {
            Ok(targets)
        } else {
            Err(format!(
                "cannot roll back: this agent has no record of the version before {} ({})",
                unknown.join(", "),
                self.path.display()
            ))
        }
    }

    fn save(&self) -> Result<(), String> {
        let text = serde_json::to_string_pretty(&self.points)
            .map_err(|e| format!("{}: cannot encode: {e}", self.path.display()))?;
        crate::agent::files::replace_file(&self.path, text.as_bytes())
            .map_err(|e| format!("{}: cannot write: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(id: &str, version: &str) -> UpdateRef {
        UpdateRef {
            id: id.to_owned(),
            version: Some(version.to_owned()),
        }
    }

    #[test]
    fn a_rollback_returns_each_update_to_the_version_its_install_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut points = RollbackPoints::load(dir.path()).expect("load");
        points
            .remember(
                &[at("openssl", "3.0.15"), at("bash", "5.2.15-2+b7")],
                &[
                    (at("openssl", "3.0.15"), Some("3.0.14".to_owned())),
                    (at("bash", "5.2.15-2+b7"), Some("5.2.15-2+b2".to_owned())),
                ],
            )
            .expect("remember");
        // A later install of openssl over 3.0.15; rolling back 3.0.15 still means 3.0.14.
        points
            .remember(
                &[at("openssl", "3.0.16")],
                &[(at("openssl", "3.0.16"), Some("3.0.15".to_owned()))],
            )
            .expect("remember");

        let reloaded = RollbackPoints::load(dir.path()).expect("reload");
        assert_eq!(
            reloaded
                .targets(&[at("openssl", "3.0.15"), at("bash", "5.2.15-2+b7")])
                .expect("targets"),
            vec![at("openssl", "3.0.14"), at("bash", "5.2.15-2+b2")]
        );
        assert_eq!(
            reloaded
                .targets(&[at("openssl", "3.0.16")])
                .expect("targets"),
            vec![at("openssl", "3.0.15")]
        );
    }

    #[test]
    fn an_unknown_install_is_refused_by_name_and_kbs_pass_through() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut points = RollbackPoints::load(dir.path()).expect("load");
        points
            .remember(&[at("curl", "8.5.0")], &[(at("curl", "8.5.0"), None)])
            .expect("remember");
        let kb = UpdateRef {
            id: "KB5044281".to_owned(),
            version: None,
        };
        assert_eq!(
            points.targets(std::slice::from_ref(&kb)).expect("kb"),
            vec![kb]
        );
        let err = points
            .targets(&[at("zlib", "1.3"), at("curl", "8.5.0")])
            .expect_err("no point");
        assert!(err.contains("zlib 1.3"), "{err}");
        assert!(
            err.contains("curl 8.5.0 (it was not installed before"),
            "{err}"
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(FILE_NAME), "{ not json").expect("write");
        let err = RollbackPoints::load(dir.path()).expect_err("damaged");
        assert!(err.contains(FILE_NAME), "{err}");
    }
}
