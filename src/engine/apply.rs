//! Carrying out an [`Evaluation`] on objects in memory.
//!
//! The operator applies each evaluation to its snapshot of a namespace before it writes the
//! differences to the API server; `simulate` and `plan` apply it to the inventory they advance
//! through virtual time. Both go through [`apply`], so what an operation or an outcome does to
//! an Asset's status is written down once.

use std::collections::HashMap;
use std::sync::Arc;

use super::Inventory;
use super::evaluate::Evaluation;
use crate::api::Time;

/// What [`apply`] changed, by object name, so a caller can write exactly those objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Rollouts added to the inventory.
    pub created_rollouts: Vec<String>,
    /// Assets whose operator-owned status changed (an outcome or an operation).
    pub assets: Vec<String>,
}

/// Applies the engine's decisions to the objects: creates the rollouts, sets every rollout's
/// status, records outcomes on assets (clearing the finished operation) and hands out the
/// issued operations with their rollout records.
pub fn apply(inventory: &mut Inventory, evaluation: &Evaluation) -> Applied {
    let mut applied = Applied::default();
    for created in &evaluation.created_rollouts {
        let name = created.metadata.name.clone().unwrap_or_default();
        if inventory
            .rollouts
            .iter()
            .any(|r| r.metadata.name.as_deref() == Some(name.as_str()))
        {
            continue;
        }
        inventory.rollouts.push(created.clone());
        applied.created_rollouts.push(name);
    }
    for rollout in &mut inventory.rollouts {
        let Some(name) = rollout.metadata.name.as_deref() else {
            continue;
        };
        if let Some(status) = evaluation.rollout_statuses.get(name) {
            rollout.status = Some(status.clone());
        }
    }
    if evaluation.outcomes.is_empty() && evaluation.operations.is_empty() {
        return applied;
    }
    // The evaluation says where each asset was; an index is built only if that is not where
    // it is now (the caller evaluated another inventory).
    let mut index: Option<HashMap<String, usize>> = None;
    let mut locate = |assets: &[Arc<crate::api::Asset>], hint: usize, name: &str| {
        if assets
            .get(hint)
            .is_some_and(|a| a.metadata.name.as_deref() == Some(name))
        {
            return Some(hint);
        }
        index
            .get_or_insert_with(|| {
                assets
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| Some((a.metadata.name.clone()?, i)))
                    .collect()
            })
            .get(name)
            .copied()
    };
    let mut touched = vec![false; inventory.assets.len()];
    for outcome in &evaluation.outcomes {
        let Some(i) = locate(&inventory.assets, outcome.index, &outcome.asset) else {
            continue;
        };
        let status = Arc::make_mut(&mut inventory.assets[i])
            .status
            .get_or_insert_with(Default::default);
        if let Some(record) = status
            .rollouts
            .iter_mut()
            .find(|r| r.rollout == outcome.rollout)
        {
            record.phase = outcome.phase;
            record.finished_at = Some(Time(outcome.finished_at));
            record.message.clone_from(&outcome.message);
        }
        if status
            .operation
            .as_ref()
            .is_some_and(|o| o.id == outcome.operation_id)
        {
            status.operation = None;
        }
        touched[i] = true;
    }
    for issued in &evaluation.operations {
        let Some(i) = locate(&inventory.assets, issued.index, &issued.asset) else {
            continue;
        };
        let status = Arc::make_mut(&mut inventory.assets[i])
            .status
            .get_or_insert_with(Default::default);
        status
            .rollouts
            .retain(|r| r.rollout != issued.record.rollout);
        status.rollouts.push(issued.record.clone());
        // The newest records are the ones the engine needs; the oldest go first.
        let excess = status
            .rollouts
            .len()
            .saturating_sub(crate::api::asset::MAX_ROLLOUT_RECORDS);
        status.rollouts.drain(..excess);
        status.operation = Some(issued.operation.clone());
        touched[i] = true;
    }
    applied.assets = touched
        .iter()
        .enumerate()
        .filter(|(_, t)| **t)
        .filter_map(|(i, _)| inventory.assets[i].metadata.name.clone())
        .collect();
    applied
}
