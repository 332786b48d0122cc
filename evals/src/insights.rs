//! `xiaoer insights`: what the bot resolved on its own, why the rest went to
//! people, how fast people answered, what agents thought of the drafts and
//! what shoppers thought of the answers — over the conversations started in
//! a time window, read from the store `serve` writes.
//!
//! Definitions (also in docs/insights.md):
//! - *contained*: the conversation never reached a person (no handoff);
//! - *verified resolved*: contained, and the shopper did not come back —
//!   no message of theirs arrived more than [`QUIET_GAP`] after a bot answer
//!   and within the resolution window of it. A contained conversation whose
//!   last answer is younger than the window is *pending*, neither verified
//!   nor failed;
//! - a conversation's intent and language are those of its first message;
//! - load-test traffic (channel `loadtest`) is left out and counted apart.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use xiaoer_domain::{Intent, TurnRole};
use xiaoer_proto::v1 as pb;
use xiaoer_service::clock::{civil_from_days, rfc3339};
use xiaoer_service::store::{HandoffRecord, InsightRows, TurnRecord};

use crate::latency::{percentile, sorted_finite};
use crate::load::LOAD_CHANNEL;
use crate::plots::{self, PlotError};

/// Silence after a bot answer past which a new shopper message is a new
/// contact (they came back), not the same exchange going on.
pub const QUIET_GAP_MS: i64 = 30 * 60 * 1000;
/// Lowest-rated answers listed in the report.
const LOWEST_LISTED: usize = 10;
/// Longest answer excerpt quoted in the report.
const EXCERPT_CHARS: usize = 160;

/// The period a report covers and how it judges resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Conversations created from here (unix ms, inclusive)…
    pub from_ms: i64,
    /// …to here (exclusive).
    pub to_ms: i64,
    /// How long a shopper must stay away for a contained conversation to
    /// count as resolved.
    pub resolution_ms: i64,
    /// The time the report is made; answers younger than the window are pending.
    pub now_ms: i64,
}

/// Containment and verified resolution of a set of conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resolution {
    /// Conversations counted.
    pub conversations: u64,
    /// Never reached a person.
    pub contained: u64,
    /// Contained and the shopper did not come back within the window.
    pub verified: u64,
    /// Contained, last answer younger than the window: not judged yet.
    pub pending: u64,
    /// contained / conversations.
    pub containment_rate: Option<f64>,
    /// verified / (conversations − pending); none while every contained
    /// conversation is still pending.
    pub verified_rate: Option<f64>,
}

/// Conversations and shopper messages of one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Conversations started that day.
    pub conversations: u64,
    /// Shopper messages sent that day.
    pub messages: u64,
}

/// p50 and p90 of a duration, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timing {
    /// Durations measured.
    pub count: u64,
    /// Median, seconds.
    pub p50_s: Option<f64>,
    /// 90th percentile, seconds.
    pub p90_s: Option<f64>,
}

/// Handoffs of the window's conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Handoffs {
    /// Handoffs of the counted conversations.
    pub total: u64,
    /// Per reason (`CUSTOMER_REQUEST`, …).
    pub by_reason: BTreeMap<String, u64>,
    /// Per queue (`logistics`, …).
    pub by_queue: BTreeMap<String, u64>,
    /// Creation to claim, claimed handoffs only.
    pub time_to_claim: Timing,
    /// Creation to resolution, resolved handoffs only.
    pub time_to_resolve: Timing,
    /// Handoffs with a due time.
    pub with_due_time: u64,
    /// Claimed after their due time, or still waiting past it.
    pub sla_breached: u64,
    /// sla_breached / with_due_time.
    pub sla_breach_rate: Option<f64>,
}

/// A count and its share of a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Share {
    /// The whole.
    pub of: u64,
    /// The part.
    pub count: u64,
    /// count / of.
    pub rate: Option<f64>,
}

/// Agents' verdicts on drafts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verdicts {
    /// Verdicts given.
    pub total: u64,
    /// Drafts sent as they were.
    pub used: u64,
    /// Drafts sent after changes.
    pub edited: u64,
    /// Drafts not sent.
    pub rejected: u64,
}

/// Shoppers' ratings of a set of answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ratings {
    /// Ratings given.
    pub count: u64,
    /// Mean rating, 1–5.
    pub average: Option<f64>,
    /// Share rated 4 or 5.
    pub csat: Option<f64>,
}

/// One low rating, for the service lead to read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatedAnswer {
    /// The conversation.
    pub conversation_id: String,
    /// The bot turn rated.
    pub turn_id: String,
    /// 1–5.
    pub rating: i64,
    /// The article the answer cited ("" for none).
    pub article_id: String,
    /// The answer as stored (masked), cut to a few lines.
    pub answer: String,
    /// The shopper's comment (masked).
    pub comment: String,
}

/// Shoppers' satisfaction where the storefront reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Satisfaction {
    /// Every rating of the window.
    pub overall: Ratings,
    /// Count per rating, "1" to "5".
    pub distribution: BTreeMap<String, u64>,
    /// Per cited article ("" for answers citing none).
    pub per_article: BTreeMap<String, Ratings>,
    /// The lowest-rated answers (2 stars or less), worst first.
    pub lowest: Vec<RatedAnswer>,
}

/// Everything `report.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Window start, RFC 3339.
    pub from: String,
    /// Window end (exclusive), RFC 3339.
    pub to: String,
    /// The resolution window, hours.
    pub resolution_window_hours: f64,
    /// Load-test conversations left out.
    pub load_test_conversations_excluded: u64,
    /// Conversations counted.
    pub conversations: u64,
    /// Shopper messages.
    pub messages: u64,
    /// Volumes per UTC day.
    pub per_day: Vec<Day>,
    /// Containment and verified resolution of all conversations.
    pub resolution: Resolution,
    /// The same, per language of the first message.
    pub resolution_per_language: BTreeMap<String, Resolution>,
    /// The same, per intent of the first message.
    pub resolution_per_intent: BTreeMap<String, Resolution>,
    /// Shopper messages per (top) intent.
    pub messages_per_intent: BTreeMap<String, u64>,
    /// Handoffs, their reasons, queues and timing.
    pub handoffs: Handoffs,
    /// Bot answers that were clarifying questions.
    pub clarify: Share,
    /// Shopper messages whose top intent was out of scope.
    pub out_of_scope: Share,
    /// Agents' verdicts on drafts.
    pub drafts: Verdicts,
    /// The same, per intent.
    pub drafts_per_intent: BTreeMap<String, Verdicts>,
    /// Shoppers' ratings.
    pub satisfaction: Satisfaction,
    /// Shopper messages the bot could not answer ([`crate::gaps::candidates`]);
    /// set with [`Report::gaps`] by the caller that mines them.
    pub gap_candidates: u64,
    /// Those messages grouped by meaning, largest group first; absent when
    /// fewer than two were found or mining was not asked for.
    pub gaps: Option<crate::gaps::Gaps>,
}

fn rate(count: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| count as f64 / of as f64)
}

fn share(count: u64, of: u64) -> Share {
    Share {
        of,
        count,
        rate: rate(count, of),
    }
}

/// `YYYY-MM-DD` of a unix ms time, UTC.
fn date_of(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

fn timing(mut seconds: Vec<f64>) -> Timing {
    seconds = sorted_finite(&seconds);
    Timing {
        count: seconds.len() as u64,
        p50_s: percentile(&seconds, 0.5),
        p90_s: percentile(&seconds, 0.9),
    }
}

/// How one conversation ended, for the resolution counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    HandedOff,
    Verified,
    CameBack,
    Pending,
}

/// Judges one contained conversation's turns (oldest first).
fn contained_outcome(turns: &[&TurnRecord], window: &Window) -> Outcome {
    let mut last_answer: Option<i64> = None;
    for turn in turns {
        match turn.role {
            TurnRole::Bot => last_answer = Some(turn.at_ms),
            TurnRole::Customer => {
                if let Some(answer) = last_answer {
                    let gap = turn.at_ms - answer;
                    if gap > QUIET_GAP_MS && gap <= window.resolution_ms {
                        return Outcome::CameBack;
                    }
                }
            }
            TurnRole::Agent => {}
        }
    }
    match last_answer {
        Some(answer) if window.now_ms - answer < window.resolution_ms => Outcome::Pending,
        _ => Outcome::Verified,
    }
}

impl Resolution {
    fn add(&mut self, outcome: Outcome) {
        self.conversations += 1;
        match outcome {
            Outcome::HandedOff => {}
            Outcome::Verified => {
                self.contained += 1;
                self.verified += 1;
            }
            Outcome::CameBack => self.contained += 1,
            Outcome::Pending => {
                self.contained += 1;
                self.pending += 1;
            }
        }
    }

    fn finish(&mut self) {
        self.containment_rate = rate(self.contained, self.conversations);
        // With every contained conversation still pending, only handoffs are
        // judged and the rate would read 0%: it is unknown instead.
        self.verified_rate = (self.contained > self.pending)
            .then(|| rate(self.verified, self.conversations - self.pending))
            .flatten();
    }
}

impl Verdicts {
    fn add(&mut self, verdict: &str) {
        self.total += 1;
        match verdict {
            "used" => self.used += 1,
            "edited" => self.edited += 1,
            _ => self.rejected += 1,
        }
    }
}

/// Ratings summary of `values` (1–5).
fn ratings(values: &[i64]) -> Ratings {
    let count = values.len() as u64;
    Ratings {
        count,
        average: (count > 0).then(|| values.iter().sum::<i64>() as f64 / count as f64),
        csat: rate(values.iter().filter(|r| **r >= 4).count() as u64, count),
    }
}

/// Did the handoff miss its due time (as of `now_ms` if still waiting)?
fn breached(handoff: &HandoffRecord, now_ms: i64) -> bool {
    handoff.due_at_ms > 0 && handoff.claimed_at_ms.unwrap_or(now_ms) > handoff.due_at_ms
}

/// The intent a draft verdict is filed under: the rated turn's own intent
/// for a bot turn, else that of the shopper's last message before it.
fn verdict_intent(turns: &[&TurnRecord], turn_id: &str) -> Intent {
    let Some(at) = turns.iter().position(|t| t.id == turn_id) else {
        return Intent::HumanAgent;
    };
    if turns[at].role == TurnRole::Bot {
        return turns[at].intent;
    }
    turns[..at]
        .iter()
        .rev()
        .find(|t| t.role == TurnRole::Customer && t.intent != Intent::HumanAgent)
        .map_or(Intent::HumanAgent, |t| t.intent)
}

/// Computes the report from what the store holds.
pub fn compute(rows: &InsightRows, window: &Window) -> Report {
    let mut report = Report {
        from: rfc3339(window.from_ms),
        to: rfc3339(window.to_ms),
        resolution_window_hours: window.resolution_ms as f64 / 3_600_000.0,
        ..Report::default()
    };
    let mut turns_of: BTreeMap<&str, Vec<&TurnRecord>> = BTreeMap::new();
    for (conversation, turn) in &rows.turns {
        turns_of.entry(conversation).or_default().push(turn);
    }
    let handed_off: std::collections::BTreeSet<&str> = rows
        .handoffs
        .iter()
        .map(|h| h.conversation_id.as_str())
        .collect();
    let mut days: BTreeMap<String, Day> = BTreeMap::new();
    let mut counted = std::collections::BTreeSet::new();
    let mut bot_answers = 0;
    let mut clarifying = 0;
    let mut out_of_scope = 0;
    for conversation in &rows.conversations {
        if conversation.channel == LOAD_CHANNEL {
            report.load_test_conversations_excluded += 1;
            continue;
        }
        counted.insert(conversation.id.as_str());
        let turns = turns_of
            .get(conversation.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let date = date_of(conversation.created_at_ms);
        days.entry(date.clone())
            .or_insert_with(|| Day {
                date,
                conversations: 0,
                messages: 0,
            })
            .conversations += 1;
        for turn in turns {
            match turn.role {
                TurnRole::Customer => {
                    report.messages += 1;
                    *report
                        .messages_per_intent
                        .entry(turn.intent.to_string())
                        .or_default() += 1;
                    out_of_scope += u64::from(turn.intent == Intent::OutOfScope);
                    let date = date_of(turn.at_ms);
                    days.entry(date.clone())
                        .or_insert_with(|| Day {
                            date,
                            conversations: 0,
                            messages: 0,
                        })
                        .messages += 1;
                }
                TurnRole::Bot => {
                    bot_answers += 1;
                    clarifying += u64::from(turn.action == pb::Action::Clarify as i32);
                }
                TurnRole::Agent => {}
            }
        }
        let outcome = if handed_off.contains(conversation.id.as_str()) {
            Outcome::HandedOff
        } else {
            contained_outcome(turns, window)
        };
        let intent = turns
            .iter()
            .find(|t| t.role == TurnRole::Customer)
            .map_or(Intent::OutOfScope, |t| t.intent);
        report.resolution.add(outcome);
        report
            .resolution_per_language
            .entry(conversation.language.clone())
            .or_default()
            .add(outcome);
        report
            .resolution_per_intent
            .entry(intent.to_string())
            .or_default()
            .add(outcome);
    }
    report.conversations = report.resolution.conversations;
    report.per_day = days.into_values().collect();
    report.resolution.finish();
    report
        .resolution_per_language
        .values_mut()
        .chain(report.resolution_per_intent.values_mut())
        .for_each(Resolution::finish);
    report.clarify = share(clarifying, bot_answers);
    report.out_of_scope = share(out_of_scope, report.messages);

    let handoffs: Vec<&HandoffRecord> = rows
        .handoffs
        .iter()
        .filter(|h| counted.contains(h.conversation_id.as_str()))
        .collect();
    let h = &mut report.handoffs;
    h.total = handoffs.len() as u64;
    for handoff in &handoffs {
        *h.by_reason
            .entry(handoff.details.reason.to_string())
            .or_default() += 1;
        *h.by_queue
            .entry(handoff.details.queue.to_string())
            .or_default() += 1;
        h.with_due_time += u64::from(handoff.due_at_ms > 0);
        h.sla_breached += u64::from(breached(handoff, window.now_ms));
    }
    let seconds_after = |pick: fn(&HandoffRecord) -> Option<i64>| {
        handoffs
            .iter()
            .filter_map(|h| pick(h).map(|at| (at - h.created_at_ms) as f64 / 1000.0))
            .collect::<Vec<_>>()
    };
    h.time_to_claim = timing(seconds_after(|h| h.claimed_at_ms));
    h.time_to_resolve = timing(seconds_after(|h| h.resolved_at_ms));
    h.sla_breach_rate = rate(h.sla_breached, h.with_due_time);

    for feedback in rows
        .feedback
        .iter()
        .filter(|f| counted.contains(f.conversation_id.as_str()))
    {
        let turns = turns_of
            .get(feedback.conversation_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        report.drafts.add(&feedback.verdict);
        report
            .drafts_per_intent
            .entry(verdict_intent(turns, &feedback.turn_id).to_string())
            .or_default()
            .add(&feedback.verdict);
    }

    let find_turn = |conversation: &str, id: &str| {
        turns_of
            .get(conversation)
            .and_then(|turns| turns.iter().find(|t| t.id == id).copied())
    };
    let rated: Vec<RatedAnswer> = rows
        .ratings
        .iter()
        .filter(|r| counted.contains(r.conversation_id.as_str()))
        .map(|r| {
            let turn = find_turn(&r.conversation_id, &r.turn_id);
            RatedAnswer {
                conversation_id: r.conversation_id.clone(),
                turn_id: r.turn_id.clone(),
                rating: r.rating,
                article_id: turn
                    .and_then(|t| t.articles.first().cloned())
                    .unwrap_or_default(),
                answer: turn
                    .map(|t| t.text.chars().take(EXCERPT_CHARS).collect())
                    .unwrap_or_default(),
                comment: r.comment.clone(),
            }
        })
        .collect();
    let s = &mut report.satisfaction;
    s.overall = ratings(&rated.iter().map(|r| r.rating).collect::<Vec<_>>());
    for r in &rated {
        *s.distribution.entry(r.rating.to_string()).or_default() += 1;
    }
    let mut per_article: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &rated {
        per_article
            .entry(r.article_id.clone())
            .or_default()
            .push(r.rating);
    }
    s.per_article = per_article
        .into_iter()
        .map(|(article, values)| (article, ratings(&values)))
        .collect();
    let mut lowest: Vec<RatedAnswer> = rated.into_iter().filter(|r| r.rating <= 2).collect();
    lowest.sort_by_key(|r| r.rating);
    lowest.truncate(LOWEST_LISTED);
    s.lowest = lowest;
    report
}

fn percent(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{:.1}%", v * 100.0))
}

fn seconds(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{v:.0} s"))
}

/// `report.md`: the same figures for a person.
pub fn markdown(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut md = String::new();
    let _ = writeln!(md, "# xiaoer insights\n");
    let _ = writeln!(
        md,
        "Conversations started {} to {} (UTC); resolution window {} h. {} conversations, {} shopper messages{}.\n",
        report.from,
        report.to,
        report.resolution_window_hours,
        report.conversations,
        report.messages,
        if report.load_test_conversations_excluded > 0 {
            format!(
                " ({} load-test conversations left out)",
                report.load_test_conversations_excluded
            )
        } else {
            String::new()
        }
    );
    if report.conversations == 0 {
        let _ = writeln!(md, "No conversations in this window.");
        return md;
    }
    let r = &report.resolution;
    let verified = if r.verified_rate.is_some() {
        format!(
            "Verified resolved (the shopper did not come back within the window): **{}** ({} of {} judged; {} still pending).",
            percent(r.verified_rate),
            r.verified,
            r.conversations - r.pending,
            r.pending
        )
    } else {
        format!(
            "Verified resolution: not judged yet — all {} contained conversations are younger than the {} h window.",
            r.pending, report.resolution_window_hours
        )
    };
    let _ = writeln!(
        md,
        "## Resolution\n\nContained (no person needed): **{}** ({}/{}). {verified}\n",
        percent(r.containment_rate),
        r.contained,
        r.conversations,
    );
    let table = |md: &mut String, title: &str, rows: &BTreeMap<String, Resolution>| {
        let _ = writeln!(
            md,
            "| {title} | conversations | contained | verified |\n| --- | ---: | ---: | ---: |"
        );
        for (name, r) in rows {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} |",
                r.conversations,
                percent(r.containment_rate),
                percent(r.verified_rate)
            );
        }
        md.push('\n');
    };
    table(&mut md, "language", &report.resolution_per_language);
    table(&mut md, "intent", &report.resolution_per_intent);
    let _ = writeln!(
        md,
        "![conversations per day](volume.png)\n\n![containment per intent](containment.png)\n"
    );
    let h = &report.handoffs;
    let _ = writeln!(
        md,
        "## Handoffs\n\n{} handoffs. Time to claim p50 {} / p90 {}; to resolve p50 {} / p90 {}. Due times missed: {} of {} ({}).\n",
        h.total,
        seconds(h.time_to_claim.p50_s),
        seconds(h.time_to_claim.p90_s),
        seconds(h.time_to_resolve.p50_s),
        seconds(h.time_to_resolve.p90_s),
        h.sla_breached,
        h.with_due_time,
        percent(h.sla_breach_rate)
    );
    for (title, rows) in [("reason", &h.by_reason), ("queue", &h.by_queue)] {
        let _ = writeln!(md, "| {title} | handoffs |\n| --- | ---: |");
        for (name, count) in rows {
            let _ = writeln!(md, "| {name} | {count} |");
        }
        md.push('\n');
    }
    let _ = writeln!(md, "![handoffs by reason](handoffs.png)\n");
    let _ = writeln!(
        md,
        "## The bot's answers\n\nClarifying questions: {} of bot answers. Out-of-scope messages: {} of shopper messages.\n",
        percent(report.clarify.rate),
        percent(report.out_of_scope.rate)
    );
    let d = &report.drafts;
    let _ = writeln!(
        md,
        "## Drafts\n\n{} verdicts: used {}, edited {}, rejected {}.\n\n| intent | used | edited | rejected |\n| --- | ---: | ---: | ---: |",
        d.total, d.used, d.edited, d.rejected
    );
    for (intent, v) in &report.drafts_per_intent {
        let _ = writeln!(
            md,
            "| {intent} | {} | {} | {} |",
            v.used, v.edited, v.rejected
        );
    }
    let s = &report.satisfaction;
    let _ = writeln!(
        md,
        "\n## Satisfaction\n\n{} ratings, average {}, CSAT (4–5) {}.\n\n| article | ratings | average | CSAT |\n| --- | ---: | ---: | ---: |",
        s.overall.count,
        s.overall.average.map_or("–".into(), |a| format!("{a:.2}")),
        percent(s.overall.csat)
    );
    for (article, r) in &s.per_article {
        let name = if article.is_empty() {
            "(none)"
        } else {
            article
        };
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} |",
            r.count,
            r.average.map_or("–".into(), |a| format!("{a:.2}")),
            percent(r.csat)
        );
    }
    if !s.lowest.is_empty() {
        let _ = writeln!(md, "\nLowest rated answers:\n");
        for r in &s.lowest {
            let _ = writeln!(
                md,
                "- {}★ `{}` — {} {}",
                r.rating,
                if r.article_id.is_empty() {
                    "(none)"
                } else {
                    &r.article_id
                },
                r.answer.replace('\n', " "),
                if r.comment.is_empty() {
                    String::new()
                } else {
                    format!("(shopper: {})", r.comment.replace('\n', " "))
                }
            );
        }
    }
    md.push_str("\n![ratings](ratings.png)\n");
    md.push_str(&crate::gaps::markdown(
        report.gaps.as_ref(),
        report.gap_candidates,
    ));
    md
}

/// Writes `report.json`, `report.md` and the four charts into `dir`.
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<()> {
    crate::report::write_json(&dir.join("report.json"), report)?;
    crate::report::write_text(&dir.join("report.md"), &markdown(report))?;
    charts(report, dir)?;
    Ok(())
}

fn charts(report: &Report, dir: &Path) -> Result<(), PlotError> {
    let volume: Vec<(String, f64)> = report
        .per_day
        .iter()
        .map(|d| (d.date[5..].to_string(), d.conversations as f64))
        .collect();
    plots::bar_chart(
        &dir.join("volume.png"),
        "Conversations per day",
        &volume,
        false,
    )?;
    let containment: Vec<(String, f64)> = report
        .resolution_per_intent
        .iter()
        .map(|(intent, r)| (intent.clone(), r.containment_rate.unwrap_or(0.0)))
        .collect();
    plots::bar_chart(
        &dir.join("containment.png"),
        "Contained (no person needed), per intent",
        &containment,
        true,
    )?;
    let reasons: Vec<(String, f64)> = report
        .handoffs
        .by_reason
        .iter()
        .map(|(reason, count)| (reason.clone(), *count as f64))
        .collect();
    plots::bar_chart(
        &dir.join("handoffs.png"),
        "Handoffs by reason",
        &reasons,
        false,
    )?;
    let stars: Vec<(String, f64)> = (1..=5)
        .map(|star| {
            let count = report
                .satisfaction
                .distribution
                .get(&star.to_string())
                .copied()
                .unwrap_or(0);
            (format!("{star}"), count as f64)
        })
        .collect();
    plots::bar_chart(
        &dir.join("ratings.png"),
        "Ratings of bot answers",
        &stars,
        false,
    )
}

#[cfg(test)]
mod tests;
