//! The blocking threads that run one instance's statements: at most `max`
//! at once (`DBAAS_DB_CONCURRENCY`), fed from one queue.
//!
//! Why not a `spawn_blocking` per statement: on a host with few cores, every
//! extra runnable thread in the root CPU group weighs as much as the
//! instance's whole container group, so PostgreSQL's backends wait behind
//! them (measured on 2 cores with wrk -c 8: 8 at once, read p99 6-13 ms;
//! 4 at once, 1.5-2.6 ms and more requests per second). And a
//! lane that finds the next statement already queued runs it without a
//! thread wake-up, where a fresh `spawn_blocking` pays one per statement.
//! Each lane is itself a `spawn_blocking` task, so the synchronous client
//! never runs on a tokio worker; a lane ends after `IDLE` without work.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// How long an idle lane waits for work before its thread goes back to
/// tokio's pool. Short, so that shutting down never waits on idle lanes.
const IDLE: Duration = Duration::from_millis(200);

/// Statements that may wait per lane: beyond, a request is answered 503
/// (Retry-After) at once rather than queued without bound.
pub const QUEUE_PER_LANE: usize = 64;

pub struct Lanes {
    state: Mutex<State>,
    work: Condvar,
    max: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Lanes running (busy or idle).
    lanes: usize,
    /// Lanes waiting for work.
    idle: usize,
}

impl Lanes {
    pub fn new(max: usize) -> Arc<Lanes> {
        Arc::new(Lanes {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            max: max.max(1),
        })
    }

    /// Queues `job`; an idle lane takes it, or a new lane starts if fewer
    /// than `max` run. A queue already holding `QUEUE_PER_LANE` jobs per
    /// lane refuses it (returns false). Must be called within the tokio
    /// runtime.
    pub fn submit(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) -> bool {
        let mut st = self.state.lock().expect("lanes");
        if st.queue.len() >= QUEUE_PER_LANE * self.max {
            return false;
        }
        st.queue.push_back(Box::new(job));
        if st.idle > 0 {
            self.work.notify_one();
        } else if st.lanes < self.max {
            st.lanes += 1;
            let lanes = self.clone();
            tokio::task::spawn_blocking(move || lanes.drain());
        }
        // Otherwise every lane is busy and takes the job when it finishes:
        // a lane only waits once the queue is empty.
        true
    }

    /// The most lanes that run at once.
    pub fn max(&self) -> usize {
        self.max
    }

    fn drain(&self) {
        let mut st = self.state.lock().expect("lanes");
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                // A panicking job must not take its lane's slot with it; its
                // caller sees the dropped result channel.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                st = self.state.lock().expect("lanes");
                continue;
            }
            st.idle += 1;
            let (guard, wait) = self.work.wait_timeout(st, IDLE).expect("lanes");
            st = guard;
            st.idle -= 1;
            if wait.timed_out() && st.queue.is_empty() {
                st.lanes -= 1;
                return;
            }
        }
    }

    #[cfg(test)]
    fn running(&self) -> usize {
        self.state.lock().expect("lanes").lanes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap()
    }

    #[test]
    fn runs_every_job_and_never_more_than_max_at_once() {
        let rt = runtime();
        let lanes = Lanes::new(3);
        let (now, most, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        rt.block_on(async {
            for _ in 0..40 {
                let (now, most, done, tx) = (now.clone(), most.clone(), done.clone(), tx.clone());
                lanes.submit(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    now.fetch_sub(1, Ordering::SeqCst);
                    done.fetch_add(1, Ordering::SeqCst);
                    tx.send(()).unwrap();
                });
            }
        });
        for _ in 0..40 {
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 40);
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert!(lanes.running() <= 3);
    }

    #[test]
    fn idle_lanes_end_and_a_panic_keeps_the_slot() {
        let rt = runtime();
        let lanes = Lanes::new(1);
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        rt.block_on(async {
            lanes.submit(|| panic!("job failed"));
            let tx = tx.clone();
            lanes.submit(move || tx.send(7).unwrap());
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 7);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while lanes.running() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(lanes.running(), 0, "the idle lane ended");
        // And a new job starts a new lane.
        rt.block_on(async { lanes.submit(move || tx.send(8).unwrap()) });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 8);
    }

    #[test]
    fn a_full_queue_refuses() {
        let rt = runtime();
        let lanes = Lanes::new(1);
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        rt.block_on(async {
            // One job holds the lane; the queue fills behind it.
            assert!(lanes.submit(move || {
                let _ = release_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(5));
            }));
            std::thread::sleep(Duration::from_millis(50));
            for _ in 0..QUEUE_PER_LANE {
                assert!(lanes.submit(|| {}));
            }
            assert!(!lanes.submit(|| {}), "the queue took more than its bound");
        });
        release_tx.send(()).unwrap();
    }
}
