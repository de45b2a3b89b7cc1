//! A long-running process's operations on instances (`serve`): one at a
//! time per instance, and per name being created. Each runs as a task of
//! its own, to its end, whatever happens to the request that asked for it;
//! the instance's connection pool goes first where its connections die
//! with it, and watchers (the API's status cache) hear when it ends.

use super::data_plane::DataPlane;
use super::{CreateRequest, Created, OnFailure, Pending};
use crate::error::{Error, Result};
use crate::home::Home;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// How many locks the map holds before the unused ones go.
pub const LOCKS_KEPT: usize = 1024;

/// Whether an operation's connections die with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// It stops, moves or replaces the server: start again from a new pool.
    Drop,
    /// The server stays as it is (a resize in place, the agent).
    Keep,
}

pub struct Serial {
    home: Home,
    /// Pools, the running rule and passwords: the data routes' way in.
    pub data: DataPlane,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    generation: AtomicU64,
    changed: Notify,
    /// A create claimed a spare of the warm pool: make another.
    pub spare_claimed: Notify,
}

/// What a create (or a restore into a new instance) answers.
pub enum Provisioned {
    /// Ready (or a spare claimed).
    Done(Created),
    /// Recorded and under way; the client polls its status.
    Accepted(Created),
}

impl Serial {
    pub fn new(home: &Home) -> Serial {
        Serial {
            home: home.clone(),
            data: DataPlane::new(home),
            locks: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            changed: Notify::new(),
            spare_claimed: Notify::new(),
        }
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The lock that serializes operations on one instance (or on one name
    /// being created).
    pub fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: past a size, the locks nobody holds or waits for (the
        // map's is their only reference) go; requests for made-up names
        // cannot grow it without end.
        if locks.len() >= LOCKS_KEPT {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(key.to_string()).or_default().clone()
    }

    #[cfg(test)]
    pub fn locks_len(&self) -> usize {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Says that instances changed (an operation ended).
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
    }

    /// Grows with every change: a cache made under another is stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Returns at the next change.
    pub async fn next_change(&self) {
        self.changed.notified().await
    }

    /// `op` on instance `id`, under its lock, as a task of its own.
    pub fn spawn<T, F, Fut>(
        self: &Arc<Self>,
        id: &str,
        pool: Pool,
        op: F,
    ) -> tokio::task::JoinHandle<Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(Home) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send,
    {
        let (me, id) = (self.clone(), id.to_string());
        tokio::spawn(async move {
            let guard = me.lock_for(&id).lock_owned().await;
            if pool == Pool::Drop {
                me.data.drop_pool(&id);
            }
            let res = op(me.home.clone()).await;
            drop(guard);
            me.changed();
            res
        })
    }

    /// `spawn`, waited for.
    pub async fn run<T, F, Fut>(self: &Arc<Self>, id: &str, pool: Pool, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Home) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send,
    {
        joined(self.spawn(id, pool, op)).await
    }

    /// A create: a spare of the warm pool where one fits (ready at once),
    /// else a new instance (`provision`).
    pub async fn create(self: &Arc<Self>, req: CreateRequest, wait: bool) -> Result<Provisioned> {
        {
            let name_lock = self.lock_for(&format!("name:{}", req.name));
            let _name_guard = name_lock.lock().await;
            if let Some(created) = super::pool::claim(&self.home, &req).await? {
                self.spare_claimed.notify_one();
                self.changed();
                return Ok(Provisioned::Done(created));
            }
        }
        let name = req.name.clone();
        self.provision(wait, name, move |home| async move {
            super::create_begin(&home, &req).await
        })
        .await
    }

    /// A create, or a restore into a new instance: `begin` allocates it
    /// (errors there change nothing), then the rest runs as a task of its
    /// own, to its end (ready, or rolled back); the caller only watches it
    /// (`wait`) or is answered once it is recorded.
    pub async fn provision<F, Fut>(
        self: &Arc<Self>,
        wait: bool,
        name: String,
        begin: F,
    ) -> Result<Provisioned>
    where
        F: FnOnce(Home) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Pending>> + Send,
    {
        let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        let task = tokio::spawn(async move {
            // Creates of one name are serialized: the second sees it taken.
            let name_lock = me.lock_for(&format!("name:{name}"));
            let name_guard = name_lock.lock().await;
            let pending = begin(me.home.clone()).await?;
            drop(name_guard);
            let id = pending.instance.id.clone();
            let guard = me.lock_for(&id).lock_owned().await;
            let unfinished = Unfinished(Some((me.home.clone(), id.clone())));
            me.changed();
            let _ = accepted_tx.send(Created {
                instance: super::view(&pending.instance, None),
                password: pending.password().to_string(),
                url: super::connection_url(&me.home, &pending.instance, pending.password()),
                from_pool: false,
            });
            // Without `wait` nobody hears the outcome: keep a failed entry,
            // with its reason, for the client polling it.
            let on_failure = if wait {
                OnFailure::RollBack
            } else {
                OnFailure::RollBackRecord
            };
            let res = super::create_finish(&me.home, pending, on_failure).await;
            drop(unfinished.disarm());
            if let Err(e) = &res {
                log::warn!("create of {id} failed: {e}");
            }
            drop(guard);
            me.changed();
            res
        });
        if wait {
            return Ok(Provisioned::Done(joined(task).await?));
        }
        match accepted_rx.await {
            Ok(accepted) => Ok(Provisioned::Accepted(accepted)),
            // The create failed before it was recorded (name taken, no port).
            Err(_) => Ok(Provisioned::Done(joined(task).await?)),
        }
    }
}

/// An operation's task, its panic included, as a result.
pub async fn joined<T>(task: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    task.await.unwrap_or_else(|e| {
        log::error!("an operation's task failed: {e}");
        Err(Error::Failed(
            "the operation failed unexpectedly (see the server log)".into(),
        ))
    })
}

/// A create's task that ends without finishing (a panic) rolls its instance
/// back, so that no entry stays `creating` under a live server.
struct Unfinished(Option<(Home, String)>);

impl Unfinished {
    fn disarm(mut self) -> Self {
        self.0 = None;
        self
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some((home, id)) = self.0.take() {
            log::error!("the create of {id} ended unfinished; rolling it back");
            tokio::spawn(async move {
                if let Err(e) = super::destroy::remove_unfinished(&home, &id).await {
                    log::error!("rolling back {id}: {e}");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_map_is_bounded_and_keeps_held_locks() {
        let d = crate::testing::TempDir::new("locks");
        let home = Home::new(crate::settings::Settings::with_root(d.path().to_path_buf()));
        let serial = Serial::new(&home);
        let held = serial.lock_for("held");
        for i in 0..3 * LOCKS_KEPT {
            drop(serial.lock_for(&format!("made-up-{i}")));
        }
        assert!(serial.locks_len() <= LOCKS_KEPT, "{}", serial.locks_len());
        assert!(Arc::ptr_eq(&held, &serial.lock_for("held")));
    }

    #[tokio::test]
    async fn an_operation_holds_the_instance_and_says_when_it_ends() {
        let d = crate::testing::TempDir::new("serial");
        let home = Home::new(crate::settings::Settings::with_root(d.path().to_path_buf()));
        let serial = Arc::new(Serial::new(&home));
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let before = serial.generation();
        let first = serial.spawn("db_00000001", Pool::Keep, move |_| async move {
            go_rx.await.map_err(|_| Error::Failed("dropped".into()))
        });
        // Held: another operation on it waits; one on another instance not.
        let lock = serial.lock_for("db_00000001");
        tokio::task::yield_now().await;
        while lock.try_lock().is_ok() {
            tokio::task::yield_now().await;
        }
        serial
            .run("db_00000002", Pool::Keep, |_| async { Ok(()) })
            .await
            .unwrap();
        assert!(first.is_finished().then_some(()).is_none());
        go_tx.send(()).unwrap();
        joined(first).await.unwrap();
        assert_eq!(serial.generation(), before + 2);
        assert!(lock.try_lock().is_ok());
        // A panic is an error, not a lost task.
        let e = serial
            .run("db_00000001", Pool::Keep, |_| async {
                if true {
                    panic!("boom");
                }
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("unexpectedly"), "{e}");
    }
}
