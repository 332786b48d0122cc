//! `xiaoer insights`: the daily report over the store `serve` writes (see
//! `xiaoer_evals::insights` for what it counts and how).

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Context};
use xiaoer_evals::insights::{self, Window};
use xiaoer_service::clock::{now_ms, rfc3339};
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
    let report = insights::compute(&rows, &window);
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
    println!("report: {}", dir.display());
    Ok(())
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
