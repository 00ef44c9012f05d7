//! Keeping long-lived background tasks alive across a panic.
//!
//! A tokio task that panics ends silently (only its `JoinHandle` sees it). For a task that owns
//! per-partition work for the life of the broker, such as a replica fetcher, that means the
//! work just stops: partitions stop replicating while the broker looks healthy. Tasks like that
//! run their body under [`restart_on_panic`], which logs the panic at ERROR and starts the body
//! again after a pause.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;

/// Runs `make()` to completion, and again after `backoff` each time it panics. The body must
/// not rely on state that a panic could have left half updated (it should re-read what it
/// needs, as the fetcher does from the logs).
pub async fn restart_on_panic<F, Fut>(what: &str, backoff: Duration, mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        match AssertUnwindSafe(make()).catch_unwind().await {
            Ok(()) => return,
            Err(p) => {
                tracing::error!(task = what, panic = %panic_message(p.as_ref()), "task panicked; restarting it");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_panicking_body_is_restarted_until_it_returns() {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        restart_on_panic("test", Duration::from_millis(1), move || {
            let r = r.clone();
            async move {
                if r.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("boom");
                }
            }
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
