use super::*;
use crate::E5Encoder;
use std::sync::mpsc::Receiver;

/// Wraps the tiny model and records the size of every batch it sees.
struct Recording {
    inner: E5Encoder,
    batches: Mutex<Vec<(usize, TextRole)>>,
}

impl Encoder for Recording {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn name(&self) -> &str {
        "recording"
    }
    fn encode_batch(&self, texts: &[&str], role: TextRole) -> Result<Vec<Vec<f32>>, ModelError> {
        self.batches.lock().expect("lock").push((texts.len(), role));
        if texts.contains(&"panic please") {
            panic!("test panic");
        }
        self.inner.encode_batch(texts, role)
    }
}

/// Announces each batch on `entered`, then blocks until the test sends
/// a token on the gate: lets tests hold the worker busy and fill the queue.
struct Gated {
    entered: Mutex<mpsc::Sender<()>>,
    gate: Mutex<Receiver<()>>,
}

impl Gated {
    fn new() -> (Arc<Self>, Receiver<()>, mpsc::Sender<()>) {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let g = Gated {
            entered: Mutex::new(entered_tx),
            gate: Mutex::new(gate),
        };
        (Arc::new(g), entered_rx, open)
    }
}

impl Encoder for Gated {
    fn dim(&self) -> usize {
        2
    }
    fn name(&self) -> &str {
        "gated"
    }
    fn encode_batch(&self, texts: &[&str], _: TextRole) -> Result<Vec<Vec<f32>>, ModelError> {
        let _ = self.entered.lock().expect("lock").send(());
        self.gate
            .lock()
            .expect("lock")
            .recv()
            .map_err(|_| ModelError::Stopped)?;
        Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_batched_and_answered_in_order() {
    let enc = Arc::new(Recording {
        inner: E5Encoder::tiny_random(9),
        batches: Mutex::new(Vec::new()),
    });
    let config = PoolConfig {
        workers: 1,
        queue_capacity: 64,
        max_batch: 8,
        max_wait: Duration::from_millis(200),
    };
    let pool = Arc::new(InferencePool::start(enc.clone(), config));
    let texts: Vec<String> = (0..12).map(|i| format!("订单 {i} where")).collect();
    let handles: Vec<_> = texts
        .iter()
        .map(|t| {
            let (pool, t) = (Arc::clone(&pool), t.clone());
            tokio::spawn(async move { pool.embed(t, TextRole::Query).await })
        })
        .collect();
    let passage = pool
        .embed("退货政策".into(), TextRole::Passage)
        .await
        .expect("passage");
    for (handle, text) in handles.into_iter().zip(&texts) {
        let got = handle.await.expect("join").expect("embed");
        let want = enc
            .inner
            .encode_batch(&[text], TextRole::Query)
            .expect("direct");
        let diff = got
            .retrieval
            .iter()
            .zip(&want[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{text}: {diff}");
    }
    let want = enc
        .inner
        .encode_batch(&["退货政策"], TextRole::Passage)
        .expect("direct");
    assert!(passage
        .retrieval
        .iter()
        .zip(&want[0])
        .all(|(a, b)| (a - b).abs() < 1e-5));
    let batches = enc.batches.lock().expect("lock").clone();
    assert!(batches.iter().all(|&(n, _)| n <= 8), "{batches:?}");
    assert_eq!(batches.iter().map(|&(n, _)| n).sum::<usize>(), 13);
    assert_eq!(pool.queue_depth(), 0);
}

/// An idle pool does not wait for company: with an hour of `max_wait`, a
/// lone request is still answered (the old gather waited the whole window).
#[tokio::test]
async fn an_idle_pool_answers_a_lone_request_without_waiting() {
    let enc = Arc::new(Recording {
        inner: E5Encoder::tiny_random(9),
        batches: Mutex::new(Vec::new()),
    });
    let pool = InferencePool::start(
        enc.clone(),
        PoolConfig {
            workers: 2,
            queue_capacity: 8,
            max_batch: 8,
            max_wait: Duration::from_secs(3600),
        },
    );
    let answered = tokio::time::timeout(
        Duration::from_secs(60),
        pool.embed("hi".into(), TextRole::Query),
    )
    .await;
    assert!(matches!(answered, Ok(Ok(_))), "{answered:?}");
    assert_eq!(
        *enc.batches.lock().expect("lock"),
        vec![(1, TextRole::Query)]
    );
}

/// What queued while the worker was busy goes into the next forward pass
/// together, up to `max_batch`: seven requests take three passes (1 + 4 + 2),
/// so three openings of the gate answer them all; one pass per request would
/// leave four unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_queued_while_busy_share_the_next_batch() {
    let (enc, entered, open) = Gated::new();
    let pool = Arc::new(InferencePool::start(
        enc,
        PoolConfig {
            workers: 1,
            queue_capacity: 32,
            max_batch: 4,
            max_wait: Duration::ZERO,
        },
    ));
    let send = |text: String| {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move { pool.embed(text, TextRole::Query).await })
    };
    let mut handles = vec![send("first".into())];
    let entered = tokio::task::spawn_blocking(move || {
        entered.recv().expect("the first batch started");
        entered
    })
    .await
    .expect("join");
    handles.extend((0..6).map(|i| send(format!("queued {i}"))));
    while pool.queue_depth() < 6 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..3 {
        open.send(()).expect("open the gate");
    }
    for handle in handles {
        let answered = tokio::time::timeout(Duration::from_secs(60), handle).await;
        assert!(
            matches!(answered, Ok(Ok(Ok(_)))),
            "a request was left without a batch"
        );
    }
    drop(entered);
}

#[tokio::test]
async fn full_queue_is_overloaded_immediately() {
    let (enc, entered, open) = Gated::new();
    let config = PoolConfig {
        workers: 1,
        queue_capacity: 2,
        max_batch: 1,
        max_wait: Duration::ZERO,
    };
    let pool = Arc::new(InferencePool::start(enc, config));
    let spawn = |text: &str| {
        let (p, t) = (Arc::clone(&pool), text.to_owned());
        tokio::spawn(async move { p.embed(t, TextRole::Query).await })
    };
    // The first request occupies the worker, two more fill the queue.
    let mut pending = vec![spawn("t0")];
    while entered.try_recv().is_err() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    pending.push(spawn("t1"));
    pending.push(spawn("t2"));
    while pool.queue_depth() < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    let err = pool.embed("one too many".into(), TextRole::Query).await;
    assert!(matches!(err, Err(ModelError::Overloaded)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "overload must not wait"
    );
    for _ in 0..3 {
        open.send(()).expect("gate");
    }
    for p in pending {
        assert_eq!(p.await.expect("join").expect("embed").retrieval, [1.0, 0.0]);
    }
    assert_eq!(pool.queue_depth(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_batch_fails_only_its_requests() {
    let enc = Arc::new(Recording {
        inner: E5Encoder::tiny_random(5),
        batches: Mutex::new(Vec::new()),
    });
    let pool = InferencePool::start(
        enc,
        PoolConfig {
            max_wait: Duration::ZERO,
            ..PoolConfig::default()
        },
    );
    let err = pool.embed("panic please".into(), TextRole::Query).await;
    assert!(
        matches!(err, Err(ModelError::Inference(ref m)) if m.contains("panicked")),
        "{err:?}"
    );
    let ok = pool
        .embed("still alive?".into(), TextRole::Query)
        .await
        .expect("worker survived");
    assert_eq!(ok.classification.len(), 64);
}

#[test]
fn drop_joins_workers_after_the_batch_in_flight() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let (enc, entered, open) = Gated::new();
    let config = PoolConfig {
        workers: 2,
        queue_capacity: 8,
        max_batch: 4,
        max_wait: Duration::ZERO,
    };
    let pool = InferencePool::start(enc, config);
    {
        // Enqueue five requests (one poll each), then abandon them.
        let mut futures: Vec<_> = (0..5)
            .map(|i| Box::pin(pool.embed(format!("q{i}"), TextRole::Query)))
            .collect();
        rt.block_on(async {
            for f in &mut futures {
                let _ = tokio::time::timeout(Duration::from_millis(1), f.as_mut()).await;
            }
        });
        entered.recv().expect("a worker started a batch");
    }
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..5 {
            let _ = open.send(());
        }
    });
    drop(pool); // returns once the blocked batch is released; abandoned jobs are skipped
    releaser.join().expect("releaser");
}
