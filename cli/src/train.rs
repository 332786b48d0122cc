//! `xiaoer train`: retrains the intent and sentiment heads on the shipped data.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use xiaoer_models::e5::SHIPPED_FEATURE_LAYERS;
use xiaoer_models::E5Encoder;
use xiaoer_service::config::workspace_path;

/// Flags of `xiaoer train`; every path defaults to the repository layout.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Hand-written training data (intents/ and sentiment/) [default: models/data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Public data sets (bitext, clinc150, goemotions, ...) [default: datasets/ when fetched,
    /// else ../shared/datasets]; `scripts/fetch-datasets.sh` fetches them.
    #[arg(long, env = "XIAOER_DATASETS_DIR")]
    pub datasets_dir: Option<PathBuf>,
    /// Train on the shop's own hand-written examples alone, without any
    /// public data set (none needs to be present).
    #[arg(long)]
    pub only_shop_data: bool,
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
    if args.only_shop_data {
        config.public = xiaoer_models::train::PublicMix::none();
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    match args.adapter_blocks {
        Some(0) => config.adapter = None,
        Some(blocks) => {
            config.adapter = Some(xiaoer_models::train::AdapterConfig {
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
