//! Errors of one reconcile, each with a fixed category for metric labels and Event reasons.

/// What went wrong while reconciling a namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a write.
    #[error("writing {kind} {namespace}/{name}: {source}")]
    Write {
        /// Kind of the object.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What the API server said (boxed: kube's error is large and reconciles return often).
        #[source]
        source: Box<kube::Error>,
    },
    /// An object could not be turned into the JSON of a server-side apply.
    #[error("encoding {kind} {name} for the API server: {source}")]
    Encode {
        /// Kind of the object.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The encoder's message.
        #[source]
        source: serde_json::Error,
    },
    /// This replica lost the leader lease during the reconcile; the new leader continues.
    #[error("lost the leader lease; leaving the writes to the new leader")]
    NotLeader,
    /// The walk over a namespace (snapshot, engine, statuses, compliance figures) did not
    /// finish: it panicked, which is a bug. Nothing was written; the namespace is tried again,
    /// and other namespaces go on.
    #[error("deciding namespace {namespace}: the decision stopped: {message}")]
    Engine {
        /// The namespace evaluated.
        namespace: String,
        /// What stopped it.
        message: String,
    },
}

impl Error {
    /// A short, fixed name for metric labels and Event reasons: one per variant, so dashboards
    /// and alerts do not break when a message changes.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Write { source, .. } => match source.as_ref() {
                kube::Error::Api(status) if status.code == 409 => "Conflict",
                kube::Error::Api(status) if status.code == 403 => "Forbidden",
                kube::Error::Api(status) if status.code == 422 => "Invalid",
                kube::Error::Api(_) => "ApiError",
                _ => "Unreachable",
            },
            Error::Encode { .. } => "Encode",
            Error::NotLeader => "NotLeader",
            Error::Engine { .. } => "EngineFailed",
        }
    }
}
