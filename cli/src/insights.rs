//! `xiaoer insights`: the daily report over the store `serve` writes (see
//! `xiaoer_evals::insights` for what it counts and how).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};
use xiaoer_evals::gaps;
use xiaoer_evals::insights::{self, Window};
use xiaoer_kb::{ArticleSet, KnownVectors, Remembering, VectorCache};
use xiaoer_models::E5Encoder;
use xiaoer_service::clock::{now_ms, rfc3339};
use xiaoer_service::config::workspace_path;
use xiaoer_service::duration::HumanDuration;

use crate::records::DbArgs;

/// Options of `xiaoer insights`.
#[derive(clap::Args)]
pub struct InsightsArgs {
    /// Start of the window: a duration ago (30s, 15m, 24h, 7d) or a UTC date (2026-12-01).
    #[arg(long, default_value = "7d", value_name = "WHEN")]
    since: Moment,
    /// End of the window, exclusive, in the same forms [default: now].
    #[arg(long, value_name = "WHEN")]
    until: Option<Moment>,
    /// How long a shopper must stay away for a contained conversation to count as resolved.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    resolution_window: HumanDuration,
    /// Report folder [default: reports/<YYYYMMDD-HHMMSS>-<git rev>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Knowledge base the gap report compares unanswered questions with.
    #[arg(long, env = "XIAOER_KB_DIR", default_value_os_t = workspace_path("knowledge-base"))]
    kb_dir: PathBuf,
    /// Encoder weights for grouping unanswered questions by meaning.
    #[arg(long, env = "XIAOER_MODELS_DIR", default_value_os_t = workspace_path("models/weights"))]
    models_dir: PathBuf,
    #[command(flatten)]
    db: DbArgs,
}

/// A point in time as a person writes it on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// This long before now.
    Ago(HumanDuration),
    /// Midnight UTC of a date, unix ms.
    Date(i64),
}

impl FromStr for Moment {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.len() == 10 && text.as_bytes()[4] == b'-' {
            return xiaoer_domain::parse_date(text)
                .map(|days| Moment::Date(days * 86_400_000))
                .map_err(|e| format!("{text:?}: {e}"));
        }
        text.parse()
            .map(Moment::Ago)
            .map_err(|e| format!("{e}; or a date like 2026-12-01"))
    }
}

impl Moment {
    fn at(self, now_ms: i64) -> i64 {
        match self {
            Moment::Ago(ago) => now_ms - i64::try_from(ago.0.as_millis()).unwrap_or(i64::MAX),
            Moment::Date(ms) => ms,
        }
    }
}

/// Reads the window's conversations, writes the report, prints a summary.
pub async fn insights(args: InsightsArgs) -> anyhow::Result<()> {
    let now = now_ms();
    let window = Window {
        from_ms: args.since.at(now),
        to_ms: args.until.map_or(now, |until| until.at(now)),
        resolution_ms: i64::try_from(args.resolution_window.0.as_millis()).unwrap_or(i64::MAX),
        now_ms: now,
    };
    if window.from_ms >= window.to_ms {
        bail!(
            "--since ({}) must be before --until ({})",
            rfc3339(window.from_ms),
            rfc3339(window.to_ms)
        );
    }
    let store = args.db.connect().await?;
    let spinner = xiaoer_evals::progress_spinner("insights");
    spinner.set_message("reading the store");
    let rows = store
        .insight_rows(window.from_ms, window.to_ms)
        .await
        .context("reading the store")?;
    spinner.set_message("computing and drawing");
    let mut report = insights::compute(&rows, &window);
    let candidates = gaps::candidates(&rows);
    report.gap_candidates = candidates.len() as u64;
    if candidates.len() >= 2 {
        spinner.set_message(format!(
            "grouping {} unanswered questions",
            candidates.len()
        ));
        let cache = args.db.data_dir().join("cache");
        report.gaps = Some(mine_gaps(
            &candidates,
            &args.kb_dir,
            &args.models_dir,
            &cache,
        )?);
    }
    let dir = xiaoer_evals::report::create_run_dir(args.out.as_deref())?;
    insights::write(&report, &dir)?;
    spinner.finish_and_clear();
    let r = &report.resolution;
    println!(
        "{} conversations, {} shopper messages, {} to {}",
        report.conversations, report.messages, report.from, report.to
    );
    if report.conversations > 0 {
        println!(
            "contained {}/{}, verified resolved {}/{} ({} pending), {} handoffs, {} ratings",
            r.contained,
            r.conversations,
            r.verified,
            r.conversations - r.pending,
            r.pending,
            report.handoffs.total,
            report.satisfaction.overall.count
        );
    }
    if let Some(found) = &report.gaps {
        println!(
            "{} unanswered questions in {} groups of two or more",
            found.candidates,
            found.clusters.len()
        );
    }
    println!("report: {}", dir.display());
    Ok(())
}

/// Groups the most recent unanswered questions (at most
/// [`gaps::MAX_MESSAGES`]) by meaning against the knowledge base, reusing
/// the articles' vectors `serve` keeps in `cache_dir` when it is there.
fn mine_gaps(
    candidates: &[gaps::Candidate],
    kb_dir: &Path,
    models_dir: &Path,
    cache_dir: &Path,
) -> anyhow::Result<gaps::Gaps> {
    let recent = &candidates[candidates.len().saturating_sub(gaps::MAX_MESSAGES)..];
    let set = ArticleSet::load(kb_dir)
        .with_context(|| format!("loading the knowledge base from {}", kb_dir.display()))?;
    let encoder = E5Encoder::load(models_dir).with_context(|| {
        format!(
            "loading the encoder from {} (run scripts/fetch-weights.sh)",
            models_dir.display()
        )
    })?;
    let known = if cache_dir.is_dir() {
        VectorCache::for_encoder(cache_dir, &encoder)?.load()
    } else {
        KnownVectors::new()
    };
    let remembering = Remembering::new(&encoder, known);
    let texts: Vec<&str> = recent.iter().map(|c| c.text.as_str()).collect();
    let replies: Vec<Vec<String>> = recent.iter().map(|c| c.agent_replies.clone()).collect();
    Ok(gaps::mine(&remembering, set.articles(), &texts, &replies)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_durations_ago_or_dates() {
        assert_eq!(
            "7d".parse::<Moment>().unwrap().at(10 * 86_400_000),
            3 * 86_400_000
        );
        assert_eq!(
            "1970-01-03".parse::<Moment>().unwrap(),
            Moment::Date(2 * 86_400_000)
        );
        for bad in ["yesterday", "7", "2026-13-01", "2026-02-30", ""] {
            assert!(bad.parse::<Moment>().is_err(), "{bad:?}");
        }
    }
}
