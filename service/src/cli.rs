//! Subcommands other than `serve`: the terminal chat client, training,
//! knowledge-base tools and evals. Each is a thin layer over a crate's API.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use xiaoer_evals::client::connect_channel;
use xiaoer_evals::{ClientAuthArgs, EvalCommand as EvalsCommand};
use xiaoer_kb::{ArticleSet, KnowledgeIndex, RetrievalMode, SearchQuery};
use xiaoer_models::e5::SHIPPED_FEATURE_LAYERS;
use xiaoer_models::{E5Encoder, Encoder, TextRole};
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;

use crate::auth::{NewToken, Role};
use crate::config::{workspace_path, ServeArgs};
use crate::server::{self, App};

/// Flags of `xiaoer chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Server to talk to.
    #[arg(
        long,
        default_value = "http://127.0.0.1:50051",
        env = "XIAOER_ENDPOINT"
    )]
    pub endpoint: String,
    /// Locale sent with each message (empty: the server detects the language).
    #[arg(long, default_value = "")]
    pub locale: String,
    /// Show intent, sentiment and sources under each reply.
    #[arg(long)]
    pub verbose: bool,
    /// Token and CA for a secured server.
    #[command(flatten)]
    pub auth: ClientAuthArgs,
}

/// Reads shopper messages line by line and prints the bot's replies.
/// `/new` starts a new conversation, `/quit` (or end of input) leaves.
pub async fn chat(args: ChatArgs, input: impl BufRead, mut out: impl Write) -> anyhow::Result<()> {
    let mut client = AutoReplyClient::new(connect_channel(&args.endpoint, &args.auth).await?);
    let mut conversation = new_conversation_id();
    writeln!(out, "店小二 xiaoer — type a message as a shopper would (/new for a new conversation, /quit to leave)")?;
    for line in input.lines() {
        let line = line?;
        let text = line.trim();
        match text {
            "" => continue,
            "/quit" | "/exit" => break,
            "/new" => {
                conversation = new_conversation_id();
                writeln!(out, "— new conversation {conversation} —")?;
                continue;
            }
            _ => {}
        }
        let request = pb::ReplyRequest {
            conversation_id: conversation.clone(),
            text: text.to_string(),
            locale: args.locale.clone(),
            channel: "terminal".into(),
            ..Default::default()
        };
        match client.reply(request).await {
            Ok(response) => write_reply(&mut out, &response.into_inner(), args.verbose)?,
            Err(status) => writeln!(out, "[{:?}] {}", status.code(), status.message())?,
        }
        out.flush()?;
    }
    Ok(())
}

fn write_reply(
    out: &mut impl Write,
    reply: &pb::ReplyResponse,
    verbose: bool,
) -> std::io::Result<()> {
    let action = pb::Action::try_from(reply.action)
        .map(|a| a.as_str_name())
        .unwrap_or("?");
    writeln!(out, "小二> {}", reply.text)?;
    if verbose {
        let intent = reply
            .intent
            .as_ref()
            .map(|i| format!("{} {:.2}", i.name, i.confidence))
            .unwrap_or_default();
        let anger = reply
            .sentiment
            .as_ref()
            .map(|s| s.score)
            .unwrap_or_default();
        let sources: Vec<&str> = reply
            .sources
            .iter()
            .map(|s| s.article_id.as_str())
            .collect();
        writeln!(
            out,
            "      [{action} · intent {intent} · anger {anger:.2} · sources {sources:?}]"
        )?;
    } else if let Some(handoff) = &reply.handoff {
        writeln!(
            out,
            "      [handed off to the {} queue, priority {}]",
            handoff.queue, handoff.priority
        )?;
    }
    Ok(())
}

fn new_conversation_id() -> String {
    format!("chat-{}", uuid::Uuid::new_v4().simple())
}

/// `xiaoer health`: succeeds only when the server reports SERVING. Health
/// needs no token, but an https:// server needs `auth.tls_ca`.
pub async fn health(endpoint: &str, auth: &ClientAuthArgs) -> anyhow::Result<()> {
    use tonic_health::pb::{
        health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
    };
    let mut client = HealthClient::new(connect_channel(endpoint, auth).await?);
    let status = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner()
        .status;
    if status != ServingStatus::Serving as i32 {
        bail!("{endpoint} is not serving (status {status})");
    }
    println!("SERVING");
    Ok(())
}

/// `xiaoer token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an access token: prints it once, with the lines to add to the server's config.
    New {
        /// What the token may do: storefront, helpdesk or admin.
        #[arg(long)]
        role: Role,
        /// Name identifying the caller in the audit log [default: ROLE-<random>].
        #[arg(long)]
        name: Option<String>,
    },
}

/// Runs a token subcommand. Only the hash is ever stored; the token itself
/// exists on this terminal and, from now on, with the client.
pub fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::New { role, name } => {
            let made = NewToken::generate(role, name.as_deref())?;
            print!("{}", made.instructions());
            Ok(())
        }
    }
}

/// Flags of `xiaoer train`; every path defaults to the repository layout.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Hand-written training data (intents/ and sentiment/) [default: models/data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Public data sets (bitext, clinc150, goemotions, ...) [default: ../shared/datasets].
    #[arg(long)]
    pub datasets_dir: Option<PathBuf>,
    /// Encoder weights [default: models/weights].
    #[arg(long, env = "XIAOER_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Where the trained heads are written [default: models/heads].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Embedding cache, so re-runs skip the encoder [default: target/embedding-cache].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Seed for initialisation and shuffling (same seed, same heads).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Top encoder blocks to adapt (LoRA) before training the heads; 0 (the
    /// default, what the shipped heads use) trains on the frozen embedding.
    /// README "Adapted top blocks" has the measured trade-off.
    #[arg(long)]
    pub adapter_blocks: Option<usize>,
    /// Encoder blocks whose mean-pooled outputs the heads read, comma
    /// separated (`12` alone: the final embedding) [default: 8,12, or 12 with
    /// --adapter-blocks, which trains on the final embedding]. README
    /// "Intent and sentiment heads" has the measured effect.
    #[arg(long, value_delimiter = ',')]
    pub feature_layers: Option<Vec<usize>>,
}

/// Trains both heads and prints the held-out report.
pub async fn train(args: TrainArgs) -> anyhow::Result<()> {
    let mut config = xiaoer_models::TrainConfig::for_workspace(&workspace_path("."));
    let overrides = [
        (&mut config.data_dir, args.data_dir),
        (&mut config.datasets_dir, args.datasets_dir),
        (&mut config.models_dir, args.models_dir),
        (&mut config.out_dir, args.out),
        (&mut config.cache_dir, args.cache_dir),
    ];
    for (slot, value) in overrides {
        if let Some(value) = value {
            *slot = value;
        }
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    match args.adapter_blocks {
        Some(0) => config.adapter = None,
        Some(blocks) => {
            config.adapter = Some(xiaoer_models::adapter::AdapterConfig {
                blocks,
                ..Default::default()
            })
        }
        None => {}
    }
    let started = std::time::Instant::now();
    let (report, encoder_seconds) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut encoder = E5Encoder::load(&config.models_dir).with_context(|| {
            format!(
                "{} — run scripts/fetch-weights.sh",
                config.models_dir.display()
            )
        })?;
        let layers = match (&args.feature_layers, &config.adapter) {
            (Some(layers), _) => layers.clone(),
            (None, Some(_)) => Vec::new(),
            (None, None) => SHIPPED_FEATURE_LAYERS.to_vec(),
        };
        encoder
            .set_feature_layers(&layers)
            .context("--feature-layers")?;
        let encoder_seconds = started.elapsed().as_secs_f32();
        Ok((
            xiaoer_models::train_shipped(config, &encoder)?,
            encoder_seconds,
        ))
    })
    .await??;
    println!("{report}");
    println!(
        "wall time {:.1}s (encoder load {encoder_seconds:.1}s)",
        started.elapsed().as_secs_f32()
    );
    Ok(())
}

/// `xiaoer kb …`.
#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Validate the knowledge-base folder; fails with file and line on any problem.
    Check {
        #[arg(long, env = "XIAOER_KB_DIR", default_value_os_t = workspace_path("knowledge-base"))]
        kb_dir: PathBuf,
    },
    /// Search the knowledge base from the terminal, with scores and snippets.
    Search {
        /// The shopper's question.
        query: String,
        #[arg(long, env = "XIAOER_KB_DIR", default_value_os_t = workspace_path("knowledge-base"))]
        kb_dir: PathBuf,
        #[arg(long, env = "XIAOER_MODELS_DIR", default_value_os_t = workspace_path("models/weights"))]
        models_dir: PathBuf,
        /// bm25, dense or hybrid.
        #[arg(long, default_value = "hybrid")]
        mode: String,
        #[arg(long, default_value_t = 5)]
        limit: usize,
    },
}

/// Runs a knowledge-base subcommand.
pub async fn kb(command: KbCommand) -> anyhow::Result<()> {
    match command {
        KbCommand::Check { kb_dir } => {
            let problems = xiaoer_kb::check(&kb_dir);
            for p in &problems {
                println!("{p}");
            }
            if !problems.is_empty() {
                bail!("{} problem(s) in {}", problems.len(), kb_dir.display());
            }
            let set = ArticleSet::load(&kb_dir)?;
            println!(
                "{}: {} articles OK (version {})",
                kb_dir.display(),
                set.len(),
                set.version()
            );
            Ok(())
        }
        KbCommand::Search {
            query,
            kb_dir,
            models_dir,
            mode,
            limit,
        } => {
            let mode = match mode.as_str() {
                "bm25" => RetrievalMode::Bm25,
                "dense" => RetrievalMode::Dense,
                "hybrid" => RetrievalMode::Hybrid,
                other => bail!("--mode must be bm25, dense or hybrid, not {other:?}"),
            };
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let encoder = E5Encoder::load(&models_dir).with_context(|| {
                    format!("{} — run scripts/fetch-weights.sh", models_dir.display())
                })?;
                let index = KnowledgeIndex::build(ArticleSet::load(&kb_dir)?, &encoder)?;
                let embedding = encoder
                    .encode_batch(&[query.as_str()], TextRole::Query)?
                    .remove(0);
                let language = xiaoer_models::detect_language(&query);
                let hits = index.search(&SearchQuery {
                    text: &query,
                    embedding: Some(&embedding),
                    language,
                    limit,
                    mode,
                });
                for (rank, hit) in hits.iter().enumerate() {
                    println!(
                        "{}. {:<24} {:.3}  {}\n   {}",
                        rank + 1,
                        hit.article_id,
                        hit.score,
                        hit.title,
                        hit.snippet
                    );
                }
                println!("decision: {:?}", index.decide(&hits));
                Ok(())
            })
            .await?
        }
    }
}

/// `xiaoer eval …`: starts an in-process server on an ephemeral loopback
/// port when no --endpoint is given, so cases always go through gRPC.
pub async fn eval(command: EvalsCommand) -> anyhow::Result<()> {
    match command {
        EvalsCommand::Cases(args) => {
            let outcome = match args.endpoint.clone() {
                Some(endpoint) => xiaoer_evals::run_cases(&args, &endpoint).await?,
                None => {
                    let (endpoint, stop) = start_in_process().await?;
                    let outcome = xiaoer_evals::run_cases(&args, &endpoint).await;
                    let _ = stop.send(());
                    outcome?
                }
            };
            if outcome.regressed {
                bail!("regression against the baseline");
            }
            Ok(())
        }
        EvalsCommand::Load(args) => {
            xiaoer_evals::run_load(&args).await?;
            Ok(())
        }
        EvalsCommand::Bench(args) => crate::bench::run(&args).await,
    }
}

/// Starts the server with default settings and a throwaway database on an
/// ephemeral loopback port; returns its URL and a stop handle.
async fn start_in_process() -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let data_dir =
        std::env::temp_dir().join(format!("xiaoer-eval-{}", uuid::Uuid::new_v4().simple()));
    let args = ServeArgs {
        data_dir: Some(data_dir),
        ..ServeArgs::default()
    };
    let app = App::load(args.resolve()?).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(app, listener, async move {
        let _ = stopped.await;
    }));
    Ok((endpoint, stop))
}
