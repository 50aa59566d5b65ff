//! Catalog publishing: loads the store once, then follows its change feed, building
//! each next [`Catalog`] and installing it into the gateway, the control plane's
//! watch and the runtime (which stops environments of changed functions).

use std::sync::Arc;

use anyhow::Context;
use portico_gateway::Gateway;
use portico_model::Catalog;
use portico_runtime::Invoker;
use portico_store::Store;
use tokio::sync::{broadcast, watch};

/// Loads the catalog and starts following the store. Returns the watch the control
/// plane waits on for read-your-writes.
pub async fn start(
    store: Arc<dyn Store>,
    invoker: Arc<Invoker>,
    gateway: Arc<Gateway>,
) -> anyhow::Result<watch::Receiver<Arc<Catalog>>> {
    // Subscribe before loading so no commit falls between the two.
    let mut feed = store.subscribe();
    let snap = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.load()).await??
    };
    let catalog = Arc::new(Catalog::from_records(snap.revision, snap.records));
    restore_code(&store, &invoker, &catalog).context("restoring function code")?;
    gateway.install(catalog.clone());
    invoker.limits().set_reservations(catalog.functions.values().map(|f| &**f));
    let (tx, rx) = watch::channel(catalog);
    tokio::spawn(async move {
        loop {
            let current = tx.borrow().clone();
            let next = match feed.recv().await {
                Ok(commit) if commit.revision <= current.revision => continue,
                Ok(commit) => Arc::new(current.apply(commit.revision, commit.changes.iter().cloned())),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let store = store.clone();
                    match tokio::task::spawn_blocking(move || store.load()).await {
                        Ok(Ok(s)) => Arc::new(Catalog::from_records(s.revision, s.records)),
                        _ => {
                            tracing::error!("reloading the catalog after falling behind failed");
                            continue;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            gateway.install(next.clone());
            invoker.limits().set_reservations(next.functions.values().map(|f| &**f));
            // A function just created or redeployed (new code or configuration: its warm
            // environments are stopped) is likely invoked next: a spare of its kind waits.
            for (key, f) in &next.functions {
                match current.functions.get(key) {
                    Some(old) if Arc::ptr_eq(old, f) || portico_runtime::can_share_environments(old, f) => {}
                    _ => invoker.expect(f),
                }
            }
            invoker.retain(|f| {
                next.version(&f.arn(), &f.version).is_some_and(|cur| portico_runtime::can_share_environments(f, cur))
            });
            tx.send_replace(next);
        }
    });
    Ok(rx)
}

/// Unpacks the package of every function whose code tree is missing (a fresh code
/// dir, or a node that has not seen the package yet) from the store's blobs.
fn restore_code(store: &Arc<dyn Store>, invoker: &Invoker, catalog: &Catalog) -> anyhow::Result<()> {
    for f in catalog.functions.values() {
        let sha = &f.code.sha256_hex;
        if invoker.code().contains(sha) {
            continue;
        }
        match store.get_blob(sha)? {
            Some(zip) => {
                invoker.code().install(sha, &zip)?;
            }
            None => tracing::error!(function = %f.name, "package {sha} is missing from the data dir"),
        }
    }
    Ok(())
}
