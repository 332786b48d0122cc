//! [`InferencePool`]: runs an [`Encoder`] on dedicated OS threads with dynamic
//! batching, behind an async, non-blocking API.
//!
//! Why: a forward pass is tens of milliseconds of pure CPU work. Running it on
//! tokio's worker threads would stall every other request on that thread, and
//! one-text-at-a-time forwards waste most of the CPU (weights are streamed
//! once per forward, so a batch of 16 costs far less than 16 singles). The
//! pool therefore owns a few OS threads that pull requests from one bounded
//! queue, take what is already queued (up to `max_batch` texts) and encode
//! it in one forward pass. Only while another worker is busy — under load,
//! when more requests are bound to arrive — does a worker wait a short
//! window (`max_wait`) for more; an idle pool answers a lone request at once.
//!
//! Backpressure: the queue is bounded and [`InferencePool::embed`] uses
//! `try_send`, so when the pool is saturated callers get
//! [`ModelError::Overloaded`] at once (the service maps it to
//! `RESOURCE_EXHAUSTED`) instead of queueing unbounded latency.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::{EmbeddingViews, Encoder, ModelError, TextRole};

/// Sizing of an [`InferencePool`]. Zero values are raised to 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads; default one per core. Pair with single-threaded
    /// candle kernels ([`prefer_single_threaded_kernels`]): on the 2-core
    /// host, candle's intra-op threading cost 60–70% more CPU per message in
    /// batches. The encoder's linear layers have their own kernel threads
    /// ([`crate::E5Options::kernel_threads`]), which the workers share.
    pub workers: usize,
    /// Requests that may wait in the queue before `embed` reports
    /// [`ModelError::Overloaded`].
    pub queue_capacity: usize,
    /// Most texts encoded in one forward pass. Per-message cost was flat from
    /// 16 to 32 on the build host, so 16 keeps batch latency lower for free.
    pub max_batch: usize,
    /// How long a worker holding a request waits for more to batch with it,
    /// while another worker is busy; never when the pool is otherwise idle.
    pub max_wait: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            workers: one_per_core(),
            queue_capacity: 256,
            max_batch: 16,
            max_wait: Duration::from_millis(2),
        }
    }
}

/// One thread per available core, at most 8: the default for both the
/// pool's workers and each forward's kernel threads.
pub fn one_per_core() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Makes candle's CPU kernels single-threaded (`RAYON_NUM_THREADS=1`,
/// `CANDLE_NUM_THREADS=1`) unless those variables are already set, so the
/// pool's workers — one per core — are the only parallelism. Measured on the
/// 2-core host (f32, batches of 16): 10.7 CPU-ms per message versus 17.7
/// with candle's default intra-op threading (rayon GEMM plus a spinning
/// barrier pool), and the same single-message latency under load.
///
/// Candle reads these variables once, lazily, so call this at the very start
/// of `main`, before any thread exists (before building the tokio runtime):
/// changing the environment while other threads may read it is unsound.
/// Deployments can set the variables instead.
pub fn prefer_single_threaded_kernels() {
    for var in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, "1");
        }
    }
}

type Reply = oneshot::Sender<Result<EmbeddingViews, ModelError>>;

struct Job {
    text: String,
    role: TextRole,
    reply: Reply,
}

/// A pool of inference threads in front of one shared encoder.
///
/// Dropping it closes the queue and joins the workers. `embed` futures borrow
/// the pool, so by then no caller is waiting: queued requests are skipped
/// without computing, and drop blocks only until a batch already running
/// finishes (tens of milliseconds). Share it as `Arc<InferencePool>`.
pub struct InferencePool {
    sender: Option<SyncSender<Job>>,
    depth: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<()>>,
    encoder: Arc<dyn Encoder>,
}

impl std::fmt::Debug for InferencePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferencePool")
            .field("encoder", &self.encoder)
            .field("workers", &self.workers.len())
            .field("queue_depth", &self.queue_depth())
            .finish()
    }
}

impl InferencePool {
    /// Spawns the worker threads (named `xiaoer-infer-N`).
    ///
    /// # Panics
    /// If the OS refuses to create a thread — only at start-up, where
    /// failing fast is the right response.
    pub fn start(encoder: Arc<dyn Encoder>, config: PoolConfig) -> InferencePool {
        let (sender, receiver) = mpsc::sync_channel::<Job>(config.queue_capacity.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let depth = Arc::new(AtomicUsize::new(0));
        let busy = Arc::new(AtomicUsize::new(0));
        let workers = (0..config.workers.max(1))
            .map(|i| {
                let worker = Worker {
                    encoder: Arc::clone(&encoder),
                    receiver: Arc::clone(&receiver),
                    depth: Arc::clone(&depth),
                    busy: Arc::clone(&busy),
                    max_batch: config.max_batch.max(1),
                    max_wait: config.max_wait,
                };
                std::thread::Builder::new()
                    .name(format!("xiaoer-infer-{i}"))
                    .spawn(move || worker.run())
                    .expect("spawn inference worker thread")
            })
            .collect();
        InferencePool {
            sender: Some(sender),
            depth,
            workers,
            encoder,
        }
    }

    /// Encodes one text (both views, see [`Encoder::encode_views`]). Never
    /// blocks the async task: if the queue is full it returns [`ModelError::Overloaded`] immediately; otherwise it awaits
    /// the worker's reply. Cancelling the future is fine — the worker skips
    /// requests nobody waits for.
    pub async fn embed(&self, text: String, role: TextRole) -> Result<EmbeddingViews, ModelError> {
        let sender = self.sender.as_ref().ok_or(ModelError::Stopped)?;
        let (reply, response) = oneshot::channel();
        // Count before sending so a fast worker's decrement cannot underflow.
        self.depth.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = sender.try_send(Job { text, role, reply }) {
            self.depth.fetch_sub(1, Ordering::SeqCst);
            return Err(match e {
                TrySendError::Full(_) => ModelError::Overloaded,
                TrySendError::Disconnected(_) => ModelError::Stopped,
            });
        }
        response.await.map_err(|_| ModelError::Stopped)?
    }

    /// Requests accepted but not yet picked up by a worker; exported as a
    /// gauge so load can be watched before it turns into `Overloaded`.
    pub fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::SeqCst)
    }

    /// The encoder the workers run (its `dim()` and `name()` for callers).
    pub fn encoder(&self) -> &Arc<dyn Encoder> {
        &self.encoder
    }
}

impl Drop for InferencePool {
    fn drop(&mut self) {
        // Closing the channel ends each worker's loop once the queue is drained.
        self.sender.take();
        for handle in self.workers.drain(..) {
            if handle.join().is_err() {
                tracing::error!("inference worker panicked outside a batch");
            }
        }
    }
}

struct Worker {
    encoder: Arc<dyn Encoder>,
    receiver: Arc<Mutex<mpsc::Receiver<Job>>>,
    depth: Arc<AtomicUsize>,
    /// Workers encoding a batch right now: a sign of load.
    busy: Arc<AtomicUsize>,
    max_batch: usize,
    max_wait: Duration,
}

impl Worker {
    fn run(self) {
        while let Some(batch) = self.gather() {
            self.busy.fetch_add(1, Ordering::SeqCst);
            self.process(batch);
            self.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Blocks for one job, then takes what is already queued, up to
    /// `max_batch`; only while another worker is busy does it wait up to
    /// `max_wait` for more. Holding the lock meanwhile is deliberate: other
    /// idle workers have nothing to do until this batch is formed. `None` =
    /// shut down.
    fn gather(&self) -> Option<Vec<Job>> {
        // A poisoned lock only means another worker panicked while holding
        // it; the receiver itself is still consistent.
        let rx = self.receiver.lock().unwrap_or_else(|p| p.into_inner());
        let first = rx.recv().ok()?;
        self.depth.fetch_sub(1, Ordering::SeqCst);
        let under_load = self.busy.load(Ordering::SeqCst) > 0;
        let deadline = Instant::now()
            + if under_load {
                self.max_wait
            } else {
                Duration::ZERO
            };
        let mut batch = vec![first];
        while batch.len() < self.max_batch {
            let next = match deadline.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => rx.recv_timeout(wait).ok(),
                _ => rx.try_recv().ok(),
            };
            let Some(job) = next else { break };
            self.depth.fetch_sub(1, Ordering::SeqCst);
            batch.push(job);
        }
        Some(batch)
    }

    /// Encodes a batch (one forward per role present) and answers every job.
    fn process(&self, batch: Vec<Job>) {
        let (queries, passages): (Vec<Job>, Vec<Job>) = batch
            .into_iter()
            .filter(|job| !job.reply.is_closed())
            .partition(|job| job.role == TextRole::Query);
        for (role, jobs) in [(TextRole::Query, queries), (TextRole::Passage, passages)] {
            if jobs.is_empty() {
                continue;
            }
            let texts: Vec<&str> = jobs.iter().map(|j| j.text.as_str()).collect();
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| self.encoder.encode_views(&texts, role)))
                .unwrap_or_else(|_| Err(ModelError::Inference("encoder panicked".into())));
            tracing::debug!(
                batch = jobs.len(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "encoded batch"
            );
            match result {
                Ok(vectors) if vectors.len() == jobs.len() => {
                    for (job, v) in jobs.into_iter().zip(vectors) {
                        // The caller may have gone away; nothing to do then.
                        let _ = job.reply.send(Ok(v));
                    }
                }
                Ok(vectors) => {
                    let msg = format!(
                        "encoder returned {} vectors for {} texts",
                        vectors.len(),
                        jobs.len()
                    );
                    for job in jobs {
                        let _ = job.reply.send(Err(ModelError::Inference(msg.clone())));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for job in jobs {
                        let _ = job.reply.send(Err(ModelError::Inference(msg.clone())));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
