//! `xiaoer eval load`: a bounded load generator for a server on this machine.
//!
//! C workers each replay one conversation at a time from a built-in mix of
//! Chinese, English and mixed, single- and multi-turn conversations (written
//! for this purpose; none are eval case texts, so load never tunes to the
//! suite). The run stops at `--duration` or `--max-requests`, whichever
//! comes first, and never exceeds either: request slots are claimed before
//! sending, and calls still in flight at the deadline are cut off.
//!
//! For soak and fault runs, `--malformed-every N` turns every Nth request
//! slot into a malformed one (see [`crate::malformed`]) and `--ack-log FILE`
//! lists every handoff and feedback the server acknowledged, to be checked
//! against the database afterwards. Several endpoints spread the workers
//! over replicas; with `--failover` a request refused with UNAVAILABLE (a
//! replica killed or draining) goes to the next one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::future::Future;
use tokio::time::timeout_at;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;

use crate::cli::LoadArgs;
use crate::client::{connect, endpoint, AuthChannel};
use crate::latency::LatencySummary;
use crate::progress;
use crate::report::{self, RunInfo, LATENCY_PNG};

/// `channel` sent with every load request, so analytics can leave it out.
pub const LOAD_CHANNEL: &str = "loadtest";

/// The built-in traffic mix: realistic shopper conversations, one slice per
/// conversation, turns in order.
pub const CONVERSATIONS: &[&[&str]] = &[
    &["亲 这款羽绒服充绒量多少克呀"],
    &["现在付款的话 周末前能寄出吗"],
    &["店铺优惠券在哪个页面领啊 今天有活动吗"],
    &["上个月买的电动牙刷充不进电了 保修怎么弄"],
    &["积分快过期了 能换点啥东西吗"],
    &["能用信用卡付吗 还是只能微信支付宝"],
    &["any chance you deliver to new zealand? what would that cost"],
    &["is the tote's strap actual cowhide or pu?"],
    &["how long does a refund usually take to show up on my card"],
    &["my account got frozen after i typed the wrong code a few times"],
    &["when do your chat staff start work on sundays"],
    &["can the invoice show my company's tax number? finance is picky"],
    &["这个backpack能装15寸的laptop吗"],
    &["refund申请了一周还没到账 正常吗"],
    &[
        "哈喽 有人吗",
        "想问下这款卫衣175的个子穿多大",
        "腰围80呢 选M还是L",
    ],
    &[
        "hey there, quick q",
        "tracking shows signed for yesterday, but nobody here signed anything",
        "it was supposed to be left at the front desk",
    ],
    &[
        "订单还没发货 能改下收货地址吗",
        "改到公司 浦东张江那边",
        "好嘞谢谢",
    ],
    &[
        "want to send back the hiking boots, they rub my heel",
        "is sending them back free or do i cover it?",
        "ok cool thanks, bye",
    ],
    &["hi 客服", "这个奶油色还会restock吗", "大概要等多久"],
    &[
        "付款老是失败 说银行卡状态异常",
        "换了张卡还是不行",
        "算了 直接帮我转人工吧",
    ],
    &[
        "the glass vase came in pieces, outer box looked fine",
        "i can send a photo of the box too",
    ],
    &["明天杭州下雨不", "哦那你们店里有折叠伞卖吗"],
    &["I've messaged FOUR times about my order and still zero reply!!!"],
    &["帮我把刚拍的那单取消掉", "颜色拍错了 重新下"],
    &[
        "which couriers do you work with",
        "can i pay extra for next-day?",
    ],
    &[
        "VIP会员都有啥特权 有没有birthday礼包",
        "升到下一级要多少points",
    ],
];

/// What a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadOutcome {
    /// Requests sent (never more than `--max-requests`).
    pub requests_sent: u64,
    /// Calls that returned a response.
    pub ok: u64,
    /// Failed calls by gRPC status code name (e.g. "Unavailable").
    pub errors_by_code: BTreeMap<String, u64>,
    /// Calls still in flight at the deadline, cut off and not counted as errors.
    pub cut_at_deadline: u64,
    /// Conversations started.
    pub conversations: u64,
    /// Wall time of the run, in seconds.
    pub elapsed_s: f64,
    /// Successful replies per second.
    pub throughput_rps: f64,
    /// Latency of successful calls.
    pub latency: LatencySummary,
    /// Latency of calls refused with `RESOURCE_EXHAUSTED`: overload must be
    /// answered at once, not after a wait in a queue.
    pub refused_latency: LatencySummary,
    /// Distinct handoffs the server acknowledged (listed in `--ack-log`).
    pub handoffs_acknowledged: u64,
    /// Feedback calls the server acknowledged (sent with `--ack-log` only).
    pub feedback_acknowledged: u64,
    /// Requests sent again to another endpoint after UNAVAILABLE (`--failover`).
    pub failovers: u64,
    /// Malformed requests sent (`--malformed-every`), by the status they got.
    pub malformed_by_code: BTreeMap<String, u64>,
    /// Malformed requests not refused as they should be, by "kind: status".
    pub malformed_unexpected: BTreeMap<String, u64>,
    /// Folder holding report.json, report.md and latency.png.
    pub report_dir: PathBuf,
}

#[derive(Serialize)]
struct LoadReport<'a> {
    kind: &'static str,
    #[serde(flatten)]
    run: &'a RunInfo,
    endpoint: String,
    concurrency: u16,
    duration_limit_s: f64,
    max_requests: Option<u64>,
    seed: u64,
    #[serde(flatten)]
    outcome: &'a LoadOutcome,
}

/// Refuses endpoints off this machine unless explicitly allowed: a load run
/// aimed at a shared server by mistake would hurt real shoppers.
fn check_target(url: &str, allow_remote: bool) -> anyhow::Result<()> {
    let parsed = endpoint(url)?;
    let host = parsed
        .uri()
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback || allow_remote {
        Ok(())
    } else {
        anyhow::bail!("refusing to load {url}: not a loopback address (pass --allow-remote for your own test host)")
    }
}

#[derive(Default)]
struct WorkerStats {
    ok: u64,
    errors: BTreeMap<String, u64>,
    cut: u64,
    conversations: u64,
    latencies_ms: Vec<f64>,
    refused_latencies_ms: Vec<f64>,
    handoffs: BTreeSet<String>,
    /// (conversation, turn) of each acknowledged Feedback.
    feedback: Vec<(String, String)>,
    failovers: u64,
    malformed: BTreeMap<String, u64>,
    malformed_unexpected: BTreeMap<String, u64>,
}

struct Limits {
    deadline: tokio::time::Instant,
    max_requests: Option<u64>,
    sent: AtomicU64,
}

impl Limits {
    /// Claims one request slot and returns its number; `None` once the budget is spent.
    fn claim(&self) -> Option<u64> {
        let claimed = self.sent.fetch_add(1, Ordering::SeqCst);
        match self.max_requests {
            Some(max) if claimed >= max => {
                self.sent.fetch_sub(1, Ordering::SeqCst);
                None
            }
            _ => Some(claimed),
        }
    }
}

/// Runs the load test described by `args`, writes the report folder and
/// prints a short summary.
pub async fn run_load(args: &LoadArgs) -> anyhow::Result<LoadOutcome> {
    let mut clients = Vec::new();
    for url in &args.endpoint {
        check_target(url, args.allow_remote)?;
        clients.push(connect(url, &args.auth).await?);
    }
    anyhow::ensure!(!clients.is_empty(), "--endpoint: no server given");
    crate::plots::ensure_font()?;
    let report_dir = report::create_run_dir(args.out.as_deref())?;
    let run = RunInfo::now();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let duration = Duration::from_secs_f64(args.duration);

    let started = Instant::now();
    let limits = Arc::new(Limits {
        deadline: tokio::time::Instant::now() + duration,
        max_requests: args.max_requests,
        sent: AtomicU64::new(0),
    });
    let bar_len = args.max_requests.unwrap_or(0);
    let bar = progress::bar(
        bar_len,
        "load",
        "{prefix} {spinner} {pos} requests ({elapsed})",
    );
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..args.concurrency {
        let rng = StdRng::seed_from_u64(args.seed.wrapping_add(u64::from(worker)));
        let conversation_prefix = format!("load-{run_id}-{worker}");
        let targets = Targets {
            clients: clients.clone(),
            current: usize::from(worker) % clients.len(),
            failover: args.failover,
        };
        workers.spawn(run_worker(
            targets,
            Arc::clone(&limits),
            rng,
            Mix {
                conversations: CONVERSATIONS,
                prefix: conversation_prefix,
                malformed_every: args.malformed_every,
                feedback: args.ack_log.is_some(),
            },
            bar.clone(),
        ));
    }
    let mut totals = WorkerStats::default();
    while let Some(joined) = workers.join_next().await {
        let stats = joined.context("a load worker crashed")?;
        totals.ok += stats.ok;
        totals.cut += stats.cut;
        totals.conversations += stats.conversations;
        totals.latencies_ms.extend(stats.latencies_ms);
        totals
            .refused_latencies_ms
            .extend(stats.refused_latencies_ms);
        totals.handoffs.extend(stats.handoffs);
        totals.feedback.extend(stats.feedback);
        totals.failovers += stats.failovers;
        for (code, count) in stats.errors {
            *totals.errors.entry(code).or_default() += count;
        }
        for (code, count) in stats.malformed {
            *totals.malformed.entry(code).or_default() += count;
        }
        for (what, count) in stats.malformed_unexpected {
            *totals.malformed_unexpected.entry(what).or_default() += count;
        }
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(path) = &args.ack_log {
        let mut lines = String::new();
        for id in &totals.handoffs {
            let _ = writeln!(lines, "handoff {id}");
        }
        for (conversation, turn) in &totals.feedback {
            let _ = writeln!(lines, "feedback {conversation} {turn}");
        }
        std::fs::write(path, lines)
            .with_context(|| format!("writing --ack-log {}", path.display()))?;
    }

    let outcome = LoadOutcome {
        requests_sent: limits.sent.load(Ordering::SeqCst),
        ok: totals.ok,
        errors_by_code: totals.errors,
        cut_at_deadline: totals.cut,
        conversations: totals.conversations,
        elapsed_s,
        throughput_rps: if elapsed_s > 0.0 {
            totals.ok as f64 / elapsed_s
        } else {
            0.0
        },
        latency: LatencySummary::from_samples(&totals.latencies_ms),
        refused_latency: LatencySummary::from_samples(&totals.refused_latencies_ms),
        handoffs_acknowledged: totals.handoffs.len() as u64,
        feedback_acknowledged: totals.feedback.len() as u64,
        failovers: totals.failovers,
        malformed_by_code: totals.malformed,
        malformed_unexpected: totals.malformed_unexpected,
        report_dir: report_dir.clone(),
    };
    let report = LoadReport {
        kind: "load",
        run: &run,
        endpoint: args.endpoint.join(","),
        concurrency: args.concurrency,
        duration_limit_s: args.duration,
        max_requests: args.max_requests,
        seed: args.seed,
        outcome: &outcome,
    };
    report::write_json(&report_dir.join("report.json"), &report)?;
    report::write_text(&report_dir.join("report.md"), &markdown(&report))?;
    crate::plots::latency_plot(
        &report_dir.join(LATENCY_PNG),
        "Reply latency under load",
        &totals.latencies_ms,
    )?;

    println!(
        "{} requests in {:.1} s with {} workers: {} ok, {} errors, {} cut at the deadline",
        outcome.requests_sent,
        outcome.elapsed_s,
        args.concurrency,
        outcome.ok,
        outcome.errors_by_code.values().sum::<u64>(),
        outcome.cut_at_deadline
    );
    println!(
        "throughput {:.1} replies/s · latency {}",
        outcome.throughput_rps,
        outcome.latency.one_line()
    );
    for (code, count) in &outcome.errors_by_code {
        println!("  {code}: {count}");
    }
    if outcome.refused_latency.count > 0 {
        println!(
            "refused (RESOURCE_EXHAUSTED) latency {}",
            outcome.refused_latency.one_line()
        );
    }
    println!("handoffs acknowledged: {}", outcome.handoffs_acknowledged);
    if args.ack_log.is_some() {
        println!("feedback acknowledged: {}", outcome.feedback_acknowledged);
    }
    if args.failover {
        println!("failovers: {}", outcome.failovers);
    }
    if args.malformed_every.is_some() {
        println!(
            "malformed requests: {} sent, {} not refused as expected",
            outcome.malformed_by_code.values().sum::<u64>(),
            outcome.malformed_unexpected.values().sum::<u64>()
        );
        for (code, count) in &outcome.malformed_by_code {
            println!("  {code}: {count}");
        }
        for (what, count) in &outcome.malformed_unexpected {
            println!("  unexpected {what}: {count}");
        }
    }
    println!("report: {}", report_dir.display());
    Ok(outcome)
}

/// One worker's connections, one per endpoint, and the one it uses now.
struct Targets {
    clients: Vec<AutoReplyClient<AuthChannel>>,
    current: usize,
    failover: bool,
}

/// Whether a refusal means "this replica is gone, try another": UNAVAILABLE,
/// or UNKNOWN, which is what a connection cut mid-call (a killed replica)
/// looks like to the client. Sending again is safe: a Reply carries its
/// client turn id, and the server answers a repeat with the first answer.
fn fails_over(code: tonic::Code) -> bool {
    matches!(code, tonic::Code::Unavailable | tonic::Code::Unknown)
}

/// Pause before sending a request again to the next endpoint.
const FAILOVER_PAUSE: Duration = Duration::from_millis(50);

impl Targets {
    /// The connection in use.
    fn client(&self) -> AutoReplyClient<AuthChannel> {
        self.clients[self.current].clone()
    }

    /// Runs `call` on the current endpoint; with failover, a call refused
    /// as by a gone replica (see [`fails_over`]) moves on to the next
    /// endpoint, up to twice round them all. Returns the outcome and how
    /// many times it moved.
    async fn call<T, F, Fut>(&mut self, mut call: F) -> (Result<T, tonic::Status>, u64)
    where
        F: FnMut(AutoReplyClient<AuthChannel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut moves = 0u64;
        loop {
            match call(self.client()).await {
                Err(status)
                    if self.failover
                        && fails_over(status.code())
                        && moves < 2 * self.clients.len() as u64 =>
                {
                    moves += 1;
                    self.current = (self.current + 1) % self.clients.len();
                    tokio::time::sleep(FAILOVER_PAUSE).await;
                }
                outcome => return (outcome.map(tonic::Response::into_inner), moves),
            }
        }
    }
}

/// What one worker sends.
struct Mix {
    conversations: &'static [&'static [&'static str]],
    /// Conversation ids start with this, unique per run and worker.
    prefix: String,
    malformed_every: Option<u64>,
    /// Send a Feedback on every 4th answer (soak and kill runs).
    feedback: bool,
}

async fn run_worker(
    mut targets: Targets,
    limits: Arc<Limits>,
    mut rng: StdRng,
    mix: Mix,
    bar: indicatif::ProgressBar,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let conversations = mix.conversations;
    'conversations: while let Some(turns) =
        conversations.get(rng.random_range(0..conversations.len().max(1)))
    {
        let conversation_id = format!("{}-{}", mix.prefix, stats.conversations);
        stats.conversations += 1;
        for (turn, text) in turns.iter().enumerate() {
            // Every Nth slot carries a malformed request; the turn waits for the next slot.
            loop {
                if tokio::time::Instant::now() >= limits.deadline {
                    break 'conversations;
                }
                let Some(slot) = limits.claim() else {
                    break 'conversations;
                };
                let Some(every) = mix.malformed_every.filter(|every| (slot + 1) % every == 0)
                else {
                    break;
                };
                let bad = crate::malformed::nth(slot / every, &mix.prefix, LOAD_CHANNEL);
                match timeout_at(limits.deadline, targets.client().reply(bad.request)).await {
                    Err(_) => {
                        stats.cut += 1;
                        break 'conversations;
                    }
                    Ok(outcome) => {
                        let code = outcome.map_or_else(|s| s.code(), |_| tonic::Code::Ok);
                        *stats.malformed.entry(format!("{code:?}")).or_default() += 1;
                        if !bad.expected.contains(&code) {
                            *stats
                                .malformed_unexpected
                                .entry(format!("{}: {code:?}", bad.kind))
                                .or_default() += 1;
                        }
                    }
                }
                bar.inc(1);
            }
            let request = pb::ReplyRequest {
                conversation_id: conversation_id.clone(),
                text: (*text).to_string(),
                channel: LOAD_CHANNEL.to_string(),
                client_turn_id: format!("{conversation_id}-{}", turn + 1),
                ..Default::default()
            };
            let sent = Instant::now();
            let call = targets.call(|mut client| {
                let request = request.clone();
                async move { client.reply(request).await }
            });
            let (outcome, moves) = match timeout_at(limits.deadline, call).await {
                Err(_) => {
                    stats.cut += 1;
                    break 'conversations;
                }
                Ok(done) => done,
            };
            stats.failovers += moves;
            match outcome {
                Ok(response) => {
                    stats.ok += 1;
                    if let Some(handoff) = &response.handoff {
                        if !handoff.handoff_id.is_empty() {
                            stats.handoffs.insert(handoff.handoff_id.clone());
                        }
                    }
                    stats
                        .latencies_ms
                        .push(sent.elapsed().as_secs_f64() * 1000.0);
                    if mix.feedback && stats.ok % 4 == 0 {
                        send_feedback(
                            &mut targets,
                            &limits,
                            &conversation_id,
                            &response,
                            &mut stats,
                        )
                        .await;
                    }
                }
                Err(status) => {
                    if status.code() == tonic::Code::ResourceExhausted {
                        stats
                            .refused_latencies_ms
                            .push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    *stats
                        .errors
                        .entry(format!("{:?}", status.code()))
                        .or_default() += 1;
                }
            }
            bar.inc(1);
        }
    }
    stats
}

/// Rates `response` as a used draft and notes the acknowledgement; a
/// failed Feedback is counted with the errors, never as acknowledged.
async fn send_feedback(
    targets: &mut Targets,
    limits: &Limits,
    conversation_id: &str,
    response: &pb::ReplyResponse,
    stats: &mut WorkerStats,
) {
    let request = pb::FeedbackRequest {
        conversation_id: conversation_id.to_string(),
        turn_id: response.turn_id.clone(),
        suggestion_text: response.text.chars().take(200).collect(),
        verdict: "used".into(),
        edited_text: String::new(),
    };
    let call = targets.call(|mut client| {
        let request = request.clone();
        async move { client.feedback(request).await }
    });
    match timeout_at(limits.deadline, call).await {
        Err(_) => stats.cut += 1,
        Ok((outcome, moves)) => {
            stats.failovers += moves;
            match outcome {
                Ok(_) => stats
                    .feedback
                    .push((conversation_id.to_string(), response.turn_id.clone())),
                Err(status) => {
                    *stats
                        .errors
                        .entry(format!("Feedback {:?}", status.code()))
                        .or_default() += 1
                }
            }
        }
    }
}

fn markdown(report: &LoadReport<'_>) -> String {
    let outcome = report.outcome;
    let mut md = report.run.markdown_header("xiaoer load report");
    let _ = writeln!(md, "- endpoint: {}", report.endpoint);
    let _ = writeln!(
        md,
        "- limits: {} workers, {} s, {} (seed {})",
        report.concurrency,
        report.duration_limit_s,
        report
            .max_requests
            .map_or("no request cap".to_string(), |max| format!(
                "at most {max} requests"
            )),
        report.seed
    );
    let _ = writeln!(
        md,
        "- mix: {} built-in conversations (zh, en, mixed; 1–3 turns)\n",
        CONVERSATIONS.len()
    );
    let _ = writeln!(md, "## Result\n");
    let _ = writeln!(
        md,
        "| requests sent | ok | errors | cut at deadline | conversations | elapsed | throughput |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {:.2} s | {:.1} replies/s |\n",
        outcome.requests_sent,
        outcome.ok,
        outcome.errors_by_code.values().sum::<u64>(),
        outcome.cut_at_deadline,
        outcome.conversations,
        outcome.elapsed_s,
        outcome.throughput_rps
    );
    let _ = writeln!(md, "## Errors by gRPC status\n");
    if outcome.errors_by_code.is_empty() {
        let _ = writeln!(md, "None.\n");
    } else {
        let _ = writeln!(md, "| code | count |\n|---|---:|");
        for (code, count) in &outcome.errors_by_code {
            let _ = writeln!(md, "| {code} | {count} |");
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "Handoffs acknowledged: {}; feedback acknowledged: {}; failovers: {}.\n",
        outcome.handoffs_acknowledged, outcome.feedback_acknowledged, outcome.failovers
    );
    if !outcome.malformed_by_code.is_empty() {
        let _ = writeln!(md, "## Malformed requests by gRPC status\n");
        let _ = writeln!(md, "| code | count |\n|---|---:|");
        for (code, count) in &outcome.malformed_by_code {
            let _ = writeln!(md, "| {code} | {count} |");
        }
        let unexpected: u64 = outcome.malformed_unexpected.values().sum();
        let _ = writeln!(md, "\nNot refused as expected: {unexpected}.\n");
    }
    let _ = writeln!(md, "## Latency of successful calls\n");
    md.push_str(&report::latency_markdown(&outcome.latency));
    if outcome.refused_latency.count > 0 {
        let _ = writeln!(
            md,
            "\n## Latency of calls refused with RESOURCE_EXHAUSTED\n"
        );
        md.push_str(&report::latency_markdown(&outcome.refused_latency));
    }
    md
}

#[cfg(test)]
mod tests;
