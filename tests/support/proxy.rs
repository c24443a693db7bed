//! A TCP proxy between one client and the shared API server, to take the server away from
//! that client only.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use kube::config::Kubeconfig;
use patchwave::devcluster::LocalControlPlane;

/// A TCP proxy to the API server that the test can cut and restore, to take the API server
/// away from one client (an agent, the operator) without stopping it for the other tests.
pub struct Proxy {
    /// Loopback port to connect to instead of the API server.
    pub port: u16,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `target`
    /// (`host:port`); TLS passes through untouched.
    pub async fn start(target: String) -> Proxy {
        Proxy::start_with(target, None).await
    }

    /// A proxy to the API server of `plane` whose answers arrive at `bytes_per_second` per
    /// connection: a list of many objects takes long, a short answer does not.
    pub async fn throttled(plane: &LocalControlPlane, bytes_per_second: u64) -> Proxy {
        Proxy::start_with(api_server_address(plane), Some(bytes_per_second)).await
    }

    async fn start_with(target: String, bytes_per_second: Option<u64>) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let accepting = {
            let (up, connections) = (up.clone(), connections.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        continue; // dropped: connection reset
                    }
                    let target = target.clone();
                    let connection = tokio::spawn(async move {
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                            return;
                        };
                        match bytes_per_second {
                            None => {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                            Some(rate) => {
                                let (mut from_client, to_client) = inbound.into_split();
                                let (from_server, mut to_server) = outbound.into_split();
                                let upstream = tokio::io::copy(&mut from_client, &mut to_server);
                                let downstream = copy_throttled(from_server, to_client, rate);
                                let _ = tokio::join!(upstream, downstream);
                            }
                        }
                    });
                    connections
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(connection);
                }
            })
        };
        Proxy {
            port,
            up,
            connections,
            accepting,
        }
    }

    /// A proxy to the API server of `plane`.
    pub async fn to_api_server(plane: &LocalControlPlane) -> Proxy {
        Proxy::start_with(api_server_address(plane), None).await
    }

    /// Sends every cluster of `kubeconfig` through this proxy.
    pub fn route(&self, kubeconfig: &mut Kubeconfig) {
        for cluster in &mut kubeconfig.clusters {
            if let Some(cluster) = cluster.cluster.as_mut() {
                cluster.server = Some(format!("https://127.0.0.1:{}", self.port));
            }
        }
    }

    /// The control plane's admin kubeconfig sent through this proxy, written as `name` in the
    /// control plane's work directory (for a process such as the operator).
    pub fn admin_kubeconfig(&self, plane: &LocalControlPlane, name: &str) -> PathBuf {
        let mut kubeconfig = plane.kubeconfig();
        self.route(&mut kubeconfig);
        let path = plane.work_dir().join(name);
        patchwave::devcluster::write_kubeconfig(&path, &kubeconfig)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// The API server goes away: open connections are cut, new ones refused.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for connection in self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            connection.abort();
        }
    }

    /// The API server is back: new connections go through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `host:port` of the API server of `plane`.
fn api_server_address(plane: &LocalControlPlane) -> String {
    plane.server_url().trim_start_matches("https://").to_owned()
}

/// Copies `from` to `to` at about `rate` bytes per second.
async fn copy_throttled(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    rate: u64,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0_u8; 4096];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buffer[..read]).await?;
        let pause = std::time::Duration::from_secs_f64(read as f64 / rate.max(1) as f64);
        tokio::time::sleep(pause).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}
