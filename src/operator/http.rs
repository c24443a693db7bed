//! `/metrics`, `/healthz` and `/readyz`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use super::metrics::Metrics;
use super::readiness::CacheSync;

/// What the endpoints read.
#[derive(Clone)]
pub struct Probes {
    /// Metrics to encode.
    pub metrics: Arc<Metrics>,
    /// Which caches have listed their objects (readiness).
    pub caches: Arc<CacheSync>,
}

/// Serves the endpoints on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, probes: Probes) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(probes);
    axum::serve(listener, app).await
}

async fn metrics(State(probes): State<Probes>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        probes.metrics.encode(),
    )
}

async fn readyz(State(probes): State<Probes>) -> impl IntoResponse {
    if probes.caches.is_synced() {
        (StatusCode::OK, "ok".to_owned())
    } else {
        let pending = probes.caches.pending().join(", ");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("caches not synced yet: {pending}"),
        )
    }
}
