//! Startup and shutdown: load the model, heads and knowledge base, connect
//! the store, then serve the three contract services plus health and
//! reflection until SIGTERM/Ctrl-C. Shutdown drains in three steps: health
//! (gRPC and `/readyz`) turns NOT_SERVING while calls are still served for
//! the drain window, so load balancers move traffic away; then watch
//! streams end with UNAVAILABLE and new connections are refused; then calls
//! in flight finish.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tracing::{info, warn};
use xiaoer_kb::{KnowledgeBase, VectorCache};
use xiaoer_models::{Classifier, E5Encoder, E5Options, Encoder, InferencePool, PoolConfig};
use xiaoer_proto::v1::auto_reply_server::AutoReplyServer;
use xiaoer_proto::v1::handoffs_server::HandoffsServer;
use xiaoer_proto::v1::knowledge_base_server::KnowledgeBaseServer;

use crate::auth::AuthLayer;
use crate::config::ServeConfig;
use crate::grpc::{AutoReplyService, HandoffsService, KnowledgeBaseService};
use crate::reply::{Limits, Models, Responder};
use crate::request_id::RequestIdLayer;
use crate::sla::DueClock;
use crate::store::Store;
use crate::telemetry::Readiness;
use crate::{kb_sync, queue_gauges, retention};

/// Everything loaded and connected, ready to serve.
pub struct App {
    pub responder: Arc<Responder>,
    pub config: ServeConfig,
    /// What `/readyz` reports; set once serving starts, cleared on drain.
    readiness: Readiness,
    /// The console's socket, bound at load so it accepts connections as
    /// soon as the server is reported ready (and a bad address fails load).
    console_listener: Option<TcpListener>,
}

/// Says what is missing and which command fixes it, before any slow loading.
fn check_installation(config: &ServeConfig) -> anyhow::Result<()> {
    let weights = config.models_dir.join("e5-small-q4.bin");
    if !weights.exists() {
        bail!(
            "encoder weights not found at {} — run scripts/fetch-weights.sh (or set --models-dir)",
            weights.display()
        );
    }
    if !config.heads_dir.join("classifier.json").exists() {
        bail!(
            "trained heads not found in {} — run `xiaoer train` (or set --heads-dir)",
            config.heads_dir.display()
        );
    }
    if let Some(tls) = &config.tls {
        for (flag, path) in [("--tls-cert", &tls.cert), ("--tls-key", &tls.key)] {
            if !path.is_file() {
                bail!("{flag} {}: no such file", path.display());
            }
        }
    }
    if !config.kb_dir.join("shop.toml").exists() {
        bail!("knowledge base not found in {} (no shop.toml) — set --kb-dir to the folder with shop.toml and articles/", config.kb_dir.display());
    }
    Ok(())
}

impl App {
    /// Loads every part; fails fast with an actionable message.
    pub async fn load(config: ServeConfig) -> anyhow::Result<App> {
        check_installation(&config)?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let store = Store::connect(&config.database_url)
            .await
            .context("database")?;
        let dirs = ModelDirs {
            models: config.models_dir.clone(),
            heads: config.heads_dir.clone(),
            kb: config.kb_dir.clone(),
            vector_cache: config.data_dir.join("cache"),
        };
        let kernel_threads = config.kernel_threads;
        let models =
            tokio::task::spawn_blocking(move || load_models(&dirs, kernel_threads)).await??;
        let pool = InferencePool::start(
            Arc::clone(&models.encoder),
            PoolConfig {
                workers: config.inference_threads,
                ..PoolConfig::default()
            },
        );
        let due = DueClock {
            response_times: config.response_times,
            hours: models.kb.current().shop().service_hours.clone(),
        };
        let responder = Responder::new(
            models,
            pool,
            store,
            config.policy.clone(),
            Limits {
                max_concurrent: config.max_concurrent,
                conversation: config.conversation_limit,
                stream_life: config.max_connection_age_grace,
            },
            due,
        );
        let console_listener = match config.console_addr {
            Some(addr) => Some(crate::console::bind(addr, &config.tokens).await?),
            None => None,
        };
        Ok(App {
            responder: Arc::new(responder),
            config,
            readiness: Readiness::default(),
            console_listener,
        })
    }

    /// Reports readiness to `readiness` (the one the probe listener serves,
    /// started before the slow loading so probes answer 503 meanwhile).
    pub fn with_readiness(mut self, readiness: Readiness) -> App {
        self.readiness = readiness;
        self
    }
}

/// Every health entry at once: the overall "" and each contract service, so
/// a probe of any of them sees the same state.
async fn set_health(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    use tonic::server::NamedService;
    for service in [
        "",
        <AutoReplyServer<AutoReplyService> as NamedService>::NAME,
        <HandoffsServer<HandoffsService> as NamedService>::NAME,
        <KnowledgeBaseServer<KnowledgeBaseService> as NamedService>::NAME,
    ] {
        reporter.set_service_status(service, status).await;
    }
}

/// Where `load_models` reads from.
struct ModelDirs {
    models: PathBuf,
    heads: PathBuf,
    kb: PathBuf,
    /// The knowledge base's vectors between runs (in the data folder).
    vector_cache: PathBuf,
}

fn load_models(dirs: &ModelDirs, kernel_threads: usize) -> anyhow::Result<Models> {
    let (models_dir, heads_dir, kb_dir) = (&dirs.models, &dirs.heads, &dirs.kb);
    let started = std::time::Instant::now();
    let options = E5Options {
        kernel_threads,
        ..E5Options::default()
    };
    let mut e5 = E5Encoder::load_with(models_dir, options).with_context(|| {
        format!(
            "encoder in {} — run scripts/fetch-weights.sh",
            models_dir.display()
        )
    })?;
    let classifier = Classifier::load(heads_dir)
        .with_context(|| format!("heads in {} — run `xiaoer train`", heads_dir.display()))?;
    e5.set_feature_layers(classifier.feature_layers())
        .context("the heads' feature layers do not fit this encoder — run `xiaoer train`")?;
    if let Some(adapter) = classifier.adapter() {
        e5.install_adapter(adapter)
            .context("the heads' encoder adapter does not fit this encoder — run `xiaoer train`")?;
    }
    let encoder: Arc<dyn Encoder> = Arc::new(e5);
    classifier
        .check_encoder(encoder.as_ref())
        .context("heads were trained for another encoder — run `xiaoer train`")?;
    let encoder_ready = started.elapsed();
    // Unchanged articles keep their vectors across restarts: encoding them
    // was almost all of the start-up time.
    let cache = VectorCache::for_encoder(&dirs.vector_cache, encoder.as_ref())
        .context("knowledge-base vector cache")?;
    let kb = KnowledgeBase::open_cached(kb_dir, encoder.as_ref(), cache).with_context(|| {
        format!(
            "knowledge base in {} — run `xiaoer kb check`",
            kb_dir.display()
        )
    })?;
    // Where start-up time goes, for whoever tunes it (issue #25).
    info!(
        encoder_and_heads_s = encoder_ready.as_secs_f64(),
        knowledge_base_s = (started.elapsed() - encoder_ready).as_secs_f64(),
        articles = kb.current().len(),
        "models loaded"
    );
    Ok(Models {
        encoder,
        classifier: Arc::new(classifier),
        kb: Arc::new(kb),
    })
}

/// Serves on `listener` until `shutdown` completes, then drains in-flight
/// calls. Health turns NOT_SERVING first so load balancers stop sending.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let responder = app.responder;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    set_health(&health_reporter, ServingStatus::Serving).await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(xiaoer_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(xiaoer_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    // Hot reload: the service team's article edits go live without a restart.
    let watcher = app.config.kb_watch.then(|| {
        xiaoer_kb::watch(Arc::clone(responder.knowledge_base()), Arc::clone(responder.encoder()), Duration::from_millis(750), |outcome| {
            if let Ok(done) = outcome {
                info!(articles = done.articles, version = %done.version, "knowledge base folder changed: reloaded");
            }
        })
        .map_err(|e| warn!(error = %e, "cannot watch the knowledge base folder; use KnowledgeBase/Reload"))
        .ok()
    });
    // Background tasks beside the server, all stopped once it has drained.
    let (stop_tasks, tasks_stopped) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = tasks_stopped.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut tasks = vec![
        // A Reload through any replica reaches this one through the database.
        kb_sync::spawn_follower(Arc::clone(&responder), kb_sync::POLL_INTERVAL, stopped()),
        // Live events: one poller per server feeds every watcher here.
        responder.events().spawn_poller(stopped()),
        // Queue depth, oldest wait and overdue handoffs for Prometheus.
        queue_gauges::spawn(responder.store().clone(), queue_gauges::REFRESH, stopped()),
    ];
    if let Some(days) = app.config.retention_days {
        info!(
            days,
            "retention on: purging conversations idle longer than that, hourly"
        );
        tasks.push(retention::spawn(
            responder.store().clone(),
            days,
            retention::PURGE_INTERVAL,
            stopped(),
        ));
    }
    let addr = listener.local_addr()?;
    let tokens = app.config.tokens.clone();
    crate::auth::check_exposure(addr, &tokens)?;
    // The agents' web console, beside gRPC, stopping with it.
    if let Some(console_listener) = app.console_listener {
        let responder = Arc::clone(&responder);
        let tokens = tokens.clone();
        let secure = app.config.tls.is_some();
        let stopped = stopped();
        tasks.push(tokio::spawn(async move {
            if let Err(e) =
                crate::console::serve(responder, console_listener, tokens, secure, stopped).await
            {
                warn!(error = %format!("{e:#}"), "helpdesk console stopped");
            }
        }));
    }
    if tokens.is_empty() {
        warn!(%addr, "no access tokens configured: accepting unauthenticated calls on loopback only; create tokens with `xiaoer token new --role ROLE` to serve other hosts");
    } else {
        info!(tokens = tokens.len(), "access control on: the xiaoer.v1 services need a bearer token; health and reflection stay open");
        if app.config.tls.is_none() && !addr.ip().is_loopback() {
            warn!(%addr, "tokens travel in plain text: serve TLS with --tls-cert/--tls-key or put a TLS-terminating proxy in front");
        }
    }
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &app.config.tls {
        builder = builder.tls_config(tls.server_config()?).with_context(|| {
            format!("TLS with {} and {}", tls.cert.display(), tls.key.display())
        })?;
    }
    info!(%addr, tls = app.config.tls.is_some(), database = %crate::store::redact_url(&app.config.database_url), "xiaoer serving");
    let drain_window = app.config.drain_window;
    let draining = {
        let reporter = health_reporter.clone();
        let events = Arc::clone(responder.events());
        let readiness = app.readiness.clone();
        async move {
            shutdown.await;
            readiness.set(false);
            set_health(&reporter, ServingStatus::NotServing).await;
            info!(
                window = %crate::duration::HumanDuration(drain_window),
                "shutting down: health NOT_SERVING, still serving for the drain window"
            );
            tokio::time::sleep(drain_window).await;
            info!("drain window over: ending watch streams, refusing new connections, finishing calls in flight");
            // Watch streams never end by themselves; end them so the drain can.
            events.close();
        }
    };
    let layers = tower::ServiceBuilder::new()
        .layer(RequestIdLayer)
        .layer(AuthLayer::new(tokens, responder.store().clone()));
    app.readiness.set(true);
    let result = builder
        .timeout(Duration::from_secs(30))
        .max_connection_age(app.config.max_connection_age)
        .max_connection_age_grace(app.config.max_connection_age_grace)
        .layer(layers)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(AutoReplyServer::new(AutoReplyService(Arc::clone(
            &responder,
        ))))
        .add_service(HandoffsServer::new(HandoffsService(Arc::clone(&responder))))
        .add_service(KnowledgeBaseServer::new(KnowledgeBaseService(Arc::clone(
            &responder,
        ))))
        // Nagle's algorithm on the accepted sockets held each small reply
        // back until the client's delayed ACK: +40 ms on every call
        // (measured: 14 ms in the server, 56 ms at the client).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            draining,
        )
        .await;
    drop(watcher);
    stop_tasks.send_replace(true);
    for task in tasks {
        let _ = task.await;
    }
    result.map_err(Into::into)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
