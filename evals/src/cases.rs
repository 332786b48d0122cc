//! The conversation case suite: JSONL files under `evals/cases/`, one case a line.
//!
//! Cases are parsed and validated in full before any request is sent, so a
//! typo in a suite is reported as `file:line: reason` instead of surfacing as
//! a confusing failed case halfway through a run.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use xiaoer_domain::HandoffReason;
use xiaoer_proto::v1 as pb;

/// What the bot decided for one message; mirrors `xiaoer.v1.Action`.
///
/// `Unspecified` only ever describes a response (a broken server, or a call
/// that failed); a case may not expect it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    /// The bot answered, usually citing a knowledge-base article.
    Answer,
    /// The bot asked the shopper to rephrase.
    Clarify,
    /// The conversation went to a human agent.
    Handoff,
    /// No decision came back.
    Unspecified,
}

impl Action {
    /// The upper-case name used in case files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Answer => "ANSWER",
            Action::Clarify => "CLARIFY",
            Action::Handoff => "HANDOFF",
            Action::Unspecified => "UNSPECIFIED",
        }
    }

    /// Maps the wire enum; unknown values count as `Unspecified`.
    pub fn from_proto(value: i32) -> Self {
        match pb::Action::try_from(value) {
            Ok(pb::Action::Answer) => Action::Answer,
            Ok(pb::Action::Clarify) => Action::Clarify,
            Ok(pb::Action::Handoff) => Action::Handoff,
            Ok(pb::Action::Unspecified) | Err(_) => Action::Unspecified,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The language a case is written in; the unit of the per-language breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Chinese.
    Zh,
    /// English.
    En,
    /// Chinese and English in one conversation.
    Mixed,
}

impl Lang {
    /// The lower-case name used in case files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
            Lang::Mixed => "mixed",
        }
    }
}

/// What the last turn of a case should produce.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expectation {
    /// The decision that must come back.
    pub action: Action,
    /// The intent the classifier should name; scored separately, never fails a case.
    pub intent: String,
    /// Acceptable top sources for an `ANSWER`; empty means "any, or none".
    pub articles: Vec<String>,
    /// The handoff reason that must come back for a `HANDOFF`.
    pub handoff_reason: Option<HandoffReason>,
    /// For a `HANDOFF`: articles that answer the conversation's problem; the
    /// handoff's drafts should include one (scored, never fails a case).
    pub draft_articles: Vec<String>,
}

/// One order in a case's shopper context; mirrors `xiaoer.v1.OrderSummary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Order {
    /// Storefront order id.
    pub order_id: String,
    /// Storefront status word, e.g. "paid", "shipped".
    pub status: String,
    /// Courier name.
    pub carrier: String,
    /// Courier tracking number.
    pub tracking_number: String,
    /// RFC 3339 timestamp.
    pub placed_at: String,
    /// Item descriptions.
    pub items: Vec<String>,
}

/// Shopper context sent with every turn of a case, for order-aware cases;
/// mirrors `xiaoer.v1.CustomerContext` field by field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Customer {
    /// Storefront customer id.
    pub customer_id: String,
    /// Name to greet the shopper with.
    pub display_name: String,
    /// Membership tier word.
    pub membership_tier: String,
    /// The shopper's recent orders.
    pub orders: Vec<Order>,
}

impl From<&Customer> for pb::CustomerContext {
    fn from(customer: &Customer) -> Self {
        pb::CustomerContext {
            customer_id: customer.customer_id.clone(),
            display_name: customer.display_name.clone(),
            membership_tier: customer.membership_tier.clone(),
            orders: customer
                .orders
                .iter()
                .map(|order| pb::OrderSummary {
                    order_id: order.order_id.clone(),
                    status: order.status.clone(),
                    carrier: order.carrier.clone(),
                    tracking_number: order.tracking_number.clone(),
                    placed_at: order.placed_at.clone(),
                    items: order.items.clone(),
                })
                .collect(),
        }
    }
}

/// Where a case was written, so every message about it can point there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The case file as given or discovered.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One validated conversation case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    /// Unique id across the whole suite.
    pub id: String,
    /// Language of the conversation.
    pub lang: Lang,
    /// Shopper messages, sent in order in one fresh conversation.
    pub turns: Vec<String>,
    /// What the last turn must produce.
    pub expect: Expectation,
    /// Optional shopper context sent with every turn.
    pub customer: Option<Customer>,
    /// File and line the case came from.
    pub origin: Origin,
}

/// Why a case suite could not be loaded; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// A line that is not a valid case.
    #[error("{origin}: {reason}")]
    Malformed {
        /// File and line of the bad case.
        origin: Origin,
        /// What is wrong with it.
        reason: String,
    },
    /// A case file that cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A named case file or folder that exists nowhere we look.
    #[error("case file {} not found (looked in the current directory and the workspace)", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// A folder or default location with no `*.jsonl` files.
    #[error("no *.jsonl case files in {}", dir.display())]
    NoFiles {
        /// The folder searched.
        dir: PathBuf,
    },
    /// Files that hold no case at all (an empty suite would "pass" silently).
    #[error("{}: no cases", path.display())]
    Empty {
        /// The empty file.
        path: PathBuf,
    },
}

/// Provenance of one case file, recorded in report.json as the data version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFileInfo {
    /// The file as resolved.
    pub path: PathBuf,
    /// Cases in it.
    pub cases: usize,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
}

/// A loaded suite: the cases plus what identifies the data they came from.
#[derive(Debug, Clone)]
pub struct CaseSuite {
    /// All cases, in file order.
    pub cases: Vec<Case>,
    /// One entry per file.
    pub files: Vec<CaseFileInfo>,
    /// Hex SHA-256 over every file's name and bytes: equal hashes mean the
    /// same suite, so baseline comparisons can say whether the data moved.
    pub sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: String,
    lang: Lang,
    turns: Vec<String>,
    expect: RawExpect,
    #[serde(default)]
    customer: Option<Customer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    action: Action,
    intent: String,
    #[serde(default)]
    articles: Vec<String>,
    #[serde(default)]
    handoff_reason: String,
    #[serde(default)]
    draft_articles: Vec<String>,
}

/// The case folder used when no files are named: `evals/cases` under the
/// current directory (a workspace checkout), else this crate's own `cases/`.
pub fn default_case_dir() -> PathBuf {
    let in_cwd = PathBuf::from("evals").join("cases");
    if in_cwd.is_dir() {
        in_cwd
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")
    }
}

/// Turns the command-line FILES into concrete `*.jsonl` paths.
///
/// No FILES means every file in [`default_case_dir`]. A relative path is
/// looked up in the current directory first, then from the workspace root
/// and this crate's folder, so `evals/cases/faq_zh.jsonl` works from anywhere
/// in a checkout. A folder stands for the `*.jsonl` files inside it.
pub fn resolve_case_files(files: &[PathBuf]) -> Result<Vec<PathBuf>, CaseError> {
    if files.is_empty() {
        return jsonl_in(&default_case_dir());
    }
    let mut resolved = Vec::new();
    for given in files {
        let found = locate(given).ok_or_else(|| CaseError::NotFound {
            path: given.clone(),
        })?;
        if found.is_dir() {
            resolved.extend(jsonl_in(&found)?);
        } else {
            resolved.push(found);
        }
    }
    Ok(resolved)
}

fn locate(given: &Path) -> Option<PathBuf> {
    if given.exists() {
        return Some(given.to_path_buf());
    }
    if given.is_absolute() {
        return None;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut candidates = Vec::new();
    if let Some(workspace) = crate_dir.parent() {
        candidates.push(workspace.join(given));
    }
    candidates.push(crate_dir.join(given));
    candidates.into_iter().find(|candidate| candidate.exists())
}

fn jsonl_in(dir: &Path) -> Result<Vec<PathBuf>, CaseError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CaseError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CaseError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "jsonl") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(CaseError::NoFiles {
            dir: dir.to_path_buf(),
        });
    }
    Ok(files)
}

/// Reads, parses and validates every file; ids must be unique across files.
pub fn load_suite(paths: &[PathBuf]) -> Result<CaseSuite, CaseError> {
    let mut cases = Vec::new();
    let mut files = Vec::new();
    let mut suite_hash = Sha256::new();
    let mut seen: HashMap<String, Origin> = HashMap::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|source| CaseError::Io {
            path: path.clone(),
            source,
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|err| CaseError::Malformed {
            origin: Origin {
                file: path.clone(),
                line: line_of_byte(&bytes, err.valid_up_to()),
            },
            reason: "not valid UTF-8".to_string(),
        })?;
        let parsed = parse_cases(path, text)?;
        if parsed.is_empty() {
            return Err(CaseError::Empty { path: path.clone() });
        }
        for case in &parsed {
            if let Some(first) = seen.insert(case.id.clone(), case.origin.clone()) {
                return Err(CaseError::Malformed {
                    origin: case.origin.clone(),
                    reason: format!("duplicate id {:?} (first used at {first})", case.id),
                });
            }
        }
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        suite_hash.update(name.as_bytes());
        suite_hash.update([0]);
        suite_hash.update(&bytes);
        suite_hash.update([0]);
        files.push(CaseFileInfo {
            path: path.clone(),
            cases: parsed.len(),
            sha256: hex(&Sha256::digest(&bytes)),
        });
        cases.extend(parsed);
    }
    Ok(CaseSuite {
        cases,
        files,
        sha256: hex(&suite_hash.finalize()),
    })
}

fn line_of_byte(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses one file's text; `file` only labels error messages and origins.
/// Blank lines are skipped; every other line must be one valid case.
pub fn parse_cases(file: &Path, text: &str) -> Result<Vec<Case>, CaseError> {
    let mut cases = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let origin = Origin {
            file: file.to_path_buf(),
            line: index + 1,
        };
        match parse_line(line, origin.clone()) {
            Ok(case) => cases.push(case),
            Err(reason) => return Err(CaseError::Malformed { origin, reason }),
        }
    }
    Ok(cases)
}

fn parse_line(line: &str, origin: Origin) -> Result<Case, String> {
    let raw: RawCase = serde_json::from_str(line).map_err(|err| json_reason(&err))?;
    if raw.id.trim().is_empty() {
        return Err("empty id".to_string());
    }
    if raw.turns.is_empty() {
        return Err("no turns".to_string());
    }
    if let Some(blank) = raw.turns.iter().position(|turn| turn.trim().is_empty()) {
        return Err(format!("turn {} is empty", blank + 1));
    }
    let expect = raw.expect;
    if expect.action == Action::Unspecified {
        return Err("expect.action must be ANSWER, CLARIFY or HANDOFF".to_string());
    }
    if expect.intent.trim().is_empty() {
        return Err("expect.intent is empty".to_string());
    }
    let handoff_reason = parse_handoff_reason(&expect.handoff_reason)?;
    match (expect.action, handoff_reason) {
        (Action::Handoff, None) => return Err("HANDOFF needs a handoff_reason".to_string()),
        (Action::Answer | Action::Clarify, Some(reason)) => {
            return Err(format!(
                "handoff_reason {reason} given for {} (only HANDOFF has one)",
                expect.action
            ))
        }
        _ => {}
    }
    if expect.action != Action::Answer && !expect.articles.is_empty() {
        return Err(format!(
            "articles given for {} (only ANSWER cites articles)",
            expect.action
        ));
    }
    if expect.action != Action::Handoff && !expect.draft_articles.is_empty() {
        return Err(format!(
            "draft_articles given for {} (only a HANDOFF carries drafts)",
            expect.action
        ));
    }
    if expect
        .articles
        .iter()
        .chain(&expect.draft_articles)
        .any(|article| article.trim().is_empty())
    {
        return Err("empty article id in expect.articles or expect.draft_articles".to_string());
    }
    Ok(Case {
        id: raw.id,
        lang: raw.lang,
        turns: raw.turns,
        expect: Expectation {
            action: expect.action,
            intent: expect.intent,
            articles: expect.articles,
            handoff_reason,
            draft_articles: expect.draft_articles,
        },
        customer: raw.customer,
        origin,
    })
}

/// serde_json ends its messages with "at line 1 column N"; every case is one
/// line, so only the column is worth keeping.
fn json_reason(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let bare = match message.rfind(" at line ") {
        Some(cut) => &message[..cut],
        None => message.as_str(),
    };
    format!("invalid case JSON: {bare} (column {})", err.column())
}

/// The case-file spelling of a handoff reason; the empty string means "no reason".
fn parse_handoff_reason(text: &str) -> Result<Option<HandoffReason>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        let names: Vec<&str> = HandoffReason::ALL.iter().map(|r| r.as_str()).collect();
        format!(
            "unknown handoff_reason {text:?} (expected {} or \"\")",
            names.join(", ")
        )
    })
}

#[cfg(test)]
mod tests;
