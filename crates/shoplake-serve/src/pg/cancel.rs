//! Ending a statement early: its deadline (the statement timeout), or a cancel request (psql's
//! Ctrl-C, a BI tool's stop button), which a client sends on a second connection with the
//! process id and secret key it was given at login. Either ends the statement with SQLSTATE
//! 57014, as PostgreSQL does; the connection stays usable.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use datafusion_postgres::pgwire;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{ClientInfo, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::error::PgWireResult;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::handler::user_error;
use super::policy::error;
use crate::users::constant_time_eq;

/// One connection's cancel requests, counted.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    requests: AtomicU64,
    notify: Notify,
}

impl Cancel {
    /// Cancels the statement running now, if any.
    pub fn cancel(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Completes once a request arrives after the `seen`-th.
    async fn after(&self, seen: u64) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the count is read: a request in between is not missed.
            notified.as_mut().enable();
            if self.requests.load(Ordering::SeqCst) != seen {
                return;
            }
            notified.await;
        }
    }
}

/// What ends one statement: its deadline, or a cancel request made while it runs.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    deadline: Instant,
    cancel: Arc<Cancel>,
    seen: u64,
}

impl Stop {
    /// A statement starting now, with `deadline`.
    pub fn new(deadline: Instant, cancel: &Arc<Cancel>) -> Stop {
        Stop {
            deadline,
            cancel: cancel.clone(),
            seen: cancel.requests.load(Ordering::SeqCst),
        }
    }

    /// `work`'s output, unless the deadline passes or a cancel request comes first.
    pub async fn within<T>(&self, work: impl Future<Output = T>) -> PgWireResult<T> {
        tokio::select! {
            biased;
            _ = self.cancel.after(self.seen) => Err(user_error(error(
                "57014",
                "canceling statement due to user request",
            ))),
            done = tokio::time::timeout_at(self.deadline, work) => done.map_err(|_| {
                user_error(error("57014", "canceling statement due to statement timeout"))
            }),
        }
    }
}

/// The connections' process ids and secret keys, for cancel requests.
#[derive(Debug, Default)]
pub(crate) struct Cancels {
    /// Shared, so that every connection gets a process id of its own.
    keys: RandomPidSecretKeyGenerator,
    connections: Mutex<HashMap<i32, (SecretKey, Weak<Cancel>)>>,
}

impl Cancels {
    /// A process id and secret key for a connection that just logged in.
    pub fn register(&self, client: &dyn ClientInfo, cancel: &Arc<Cancel>) -> (i32, SecretKey) {
        let (pid, secret) = self.keys.generate(client);
        self.locked()
            .insert(pid, (secret.clone(), Arc::downgrade(cancel)));
        (pid, secret)
    }

    /// Forgets a connection that ended.
    pub fn forget(&self, pid: i32) {
        self.locked().remove(&pid);
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<i32, (SecretKey, Weak<Cancel>)>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl CancelHandler for Cancels {
    async fn on_cancel_request(&self, request: CancelRequest) {
        // As in PostgreSQL: a wrong key or a connection gone is ignored, and nothing is said.
        let cancel = self
            .locked()
            .get(&request.pid)
            .filter(|(secret, _)| {
                constant_time_eq(&secret.to_bytes(), &request.secret_key.to_bytes())
            })
            .and_then(|(_, cancel)| cancel.upgrade());
        if let Some(cancel) = cancel {
            tracing::debug!("pg: cancel request for connection {}", request.pid);
            cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_request_ends_the_statement_running_not_the_next() {
        let cancel = Arc::new(Cancel::default());
        let far = Instant::now() + Duration::from_secs(60);
        // A request before the statement starts is not for it.
        cancel.cancel();
        let stop = Stop::new(far, &cancel);
        assert_eq!(stop.within(async { 7 }).await.unwrap(), 7);

        let running = {
            let stop = stop.clone();
            tokio::spawn(async move { stop.within(std::future::pending::<()>()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
        let e = running.await.unwrap().unwrap_err().to_string();
        assert!(e.contains("user request"), "{e}");

        let soon = Stop::new(Instant::now() + Duration::from_millis(20), &cancel);
        let e = soon
            .within(std::future::pending::<()>())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("statement timeout"), "{e}");
    }

    #[tokio::test]
    async fn only_a_connection_s_own_key_cancels_it() {
        let cancels = Cancels::default();
        let client =
            pgwire::api::DefaultClient::<()>::new("127.0.0.1:5433".parse().unwrap(), false);
        let (a, b) = (Arc::new(Cancel::default()), Arc::new(Cancel::default()));
        let (pid_a, secret_a) = cancels.register(&client, &a);
        let (pid_b, _) = cancels.register(&client, &b);
        assert_ne!(pid_a, pid_b);
        let count = |c: &Cancel| c.requests.load(Ordering::SeqCst);

        cancels
            .on_cancel_request(CancelRequest::new(pid_b, secret_a.clone()))
            .await;
        assert_eq!((count(&a), count(&b)), (0, 0), "a's key does not cancel b");
        cancels
            .on_cancel_request(CancelRequest::new(pid_a, secret_a.clone()))
            .await;
        assert_eq!((count(&a), count(&b)), (1, 0));
        cancels.forget(pid_a);
        cancels
            .on_cancel_request(CancelRequest::new(pid_a, secret_a))
            .await;
        assert_eq!(count(&a), 1, "a connection gone is not cancelled");
    }
}
