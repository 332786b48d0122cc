//! Commands over the stored records: `xiaoer feedback export` and
//! `xiaoer forget`. They open the same database `serve` writes, chosen
//! with the same flags and environment.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use xiaoer_service::store::{sqlite_url, Store};

/// `xiaoer feedback …`.
#[derive(Subcommand)]
pub enum FeedbackCommand {
    /// Write all feedback as JSONL (for training and knowledge-base tooling).
    Export {
        /// Output file; `-` for standard output.
        #[arg(long, default_value = "-")]
        out: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Which database an offline command reads.
#[derive(clap::Args)]
pub struct DbArgs {
    /// Database URL [default: the SQLite file in --data-dir].
    #[arg(long, env = "XIAOER_DATABASE_URL")]
    database_url: Option<String>,
    /// Data directory of the embedded database.
    #[arg(long, env = "XIAOER_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
}

impl DbArgs {
    /// The data directory (`serve`'s vector cache lives in its `cache/`).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Opens the database; an absent SQLite file is an error rather than a
    /// new empty database, so a wrong folder cannot look like "no records".
    pub async fn connect(&self) -> anyhow::Result<Store> {
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| sqlite_url(&self.data_dir));
        if url.starts_with("sqlite:")
            && self.database_url.is_none()
            && !self.data_dir.join("xiaoer.db").exists()
        {
            bail!(
                "no database at {} — pass --data-dir or --database-url",
                self.data_dir.display()
            );
        }
        Ok(Store::connect(&url).await?)
    }
}

/// Writes every feedback record as one JSON line to `out` (`-`: stdout).
pub async fn export_feedback(out: &Path, db: &DbArgs) -> anyhow::Result<()> {
    let store = db.connect().await?;
    let records = store.all_feedback().await?;
    let mut sink: Box<dyn Write> = if out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?)
    };
    for record in &records {
        writeln!(sink, "{}", serde_json::to_string(record)?)?;
    }
    eprintln!("exported {} feedback records", records.len());
    Ok(())
}

/// Erases one conversation and audits the erasure, whether or not it existed.
pub async fn forget(conversation: &str, db: &DbArgs) -> anyhow::Result<()> {
    let store = db.connect().await?;
    let existed = store.forget_conversation(conversation).await?;
    let outcome = if existed { "erased" } else { "not_found" };
    store.audit("cli", "forget", conversation, outcome).await?;
    if existed {
        println!("conversation {conversation} erased");
    } else {
        println!("no conversation {conversation}; nothing to erase");
    }
    Ok(())
}
