//! Labelled text for the heads: our own hand-written JSONL files and the
//! public data sets' files, read with their provenance.
//!
//! Every loader reports problems as `path:line: reason` (or `data path: reason`
//! for whole-file problems), because the hand-written files are edited by many
//! people and a typo must be found in seconds, not after a training run.
//! Public datasets are only read, never copied: what is used is identified by
//! a content hash in [`SourceFile`]. Labels stay strings here, as the files
//! write them; each is checked against its [`xiaoer_domain`] vocabulary.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use xiaoer_domain::{Intent, RequestLabel, SentimentLabel, UnknownName};

use crate::heads::SourceFile;
use crate::lang::Language;
use crate::ModelError;

/// Whether an example was written for xiaoer or mapped from a public dataset.
/// Validation data is carved from our own examples only, so calibration and
/// thresholds are fitted on the distribution the shop actually sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Hand-written for xiaoer (`models/data`).
    Own,
    /// Mapped from a public dataset.
    Public,
}

/// One labelled text.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The message, trimmed.
    pub text: String,
    /// Intent or sentiment label, validated against the task's label set.
    pub label: String,
    /// Language of the file it came from (for per-language metrics).
    pub lang: Language,
    /// Own or public (validation is carved from own data only).
    pub origin: Origin,
}

/// Examples plus the files they came from.
#[derive(Debug, Clone, Default)]
pub struct LabelledSet {
    /// The examples, in file order (public ones in sampled order).
    pub examples: Vec<Example>,
    /// One entry per file read.
    pub sources: Vec<SourceFile>,
}

impl LabelledSet {
    /// Appends another set (examples and provenance).
    pub fn extend(&mut self, other: LabelledSet) {
        self.examples.extend(other.examples);
        self.sources.extend(other.sources);
    }
}

/// Which of our own files to read: `train` feeds training and validation,
/// `heldout` is only ever used for the final report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `train.{zh,en}.jsonl`.
    Train,
    /// `heldout.{zh,en}.jsonl`.
    Heldout,
}

impl Split {
    fn stem(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Heldout => "heldout",
        }
    }
}

/// A file read whole, with its content hash for provenance.
pub(super) struct RawFile {
    /// The path as error messages show it.
    pub(super) display: String,
    text: String,
    /// Hex SHA-256 of the bytes read.
    pub(super) sha256: String,
}

/// Lowercase hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Reads `path` whole as UTF-8 and hashes it.
pub(super) fn read_raw(path: &Path, display: String) -> Result<RawFile, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::Data {
        path: path.display().to_string(),
        reason: format!("cannot read: {e}"),
    })?;
    let sha256 = sha256_hex(&bytes);
    let text = String::from_utf8(bytes).map_err(|e| ModelError::Data {
        path: path.display().to_string(),
        reason: format!("not UTF-8: {e}"),
    })?;
    Ok(RawFile {
        display,
        text,
        sha256,
    })
}

/// One parsed JSONL line: 1-based line number and the object.
type Record = (usize, Map<String, Value>);

/// Parses every non-blank line as a JSON object.
pub(super) fn records(file: &RawFile) -> Result<Vec<Record>, ModelError> {
    let mut out = Vec::new();
    for (i, line) in file.text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| ModelError::Record {
            path: file.display.clone(),
            line: line_no,
            reason: format!("malformed JSON: {e}"),
        })?;
        match value {
            Value::Object(map) => out.push((line_no, map)),
            other => {
                return Err(ModelError::Record {
                    path: file.display.clone(),
                    line: line_no,
                    reason: format!("expected a JSON object, found {}", json_kind(&other)),
                })
            }
        }
    }
    Ok(out)
}

/// "a number", "an array", …: what a field wrongly holds, for messages.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required string field of one record.
fn str_field<'a>(
    file: &RawFile,
    line: usize,
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<&'a str, ModelError> {
    let err = |reason: String| ModelError::Record {
        path: file.display.clone(),
        line,
        reason,
    };
    match obj.get(key) {
        None => Err(err(format!("missing field \"{key}\""))),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(other) => Err(err(format!(
            "field \"{key}\" must be a string, found {}",
            json_kind(other)
        ))),
    }
}

/// `text` field, required non-blank: an empty training text is always a bug.
pub(super) fn text_field<'a>(
    file: &RawFile,
    line: usize,
    obj: &'a Map<String, Value>,
) -> Result<&'a str, ModelError> {
    let text = str_field(file, line, obj, "text")?.trim();
    if text.is_empty() {
        return Err(ModelError::Record {
            path: file.display.clone(),
            line,
            reason: "field \"text\" is empty".into(),
        });
    }
    Ok(text)
}

/// Reads one of our own labelled files: one JSON object per line with a
/// `text` and a `label_field` whose value must name an `L`.
/// `root` is only used to print a stable, relative path in provenance.
pub fn load_own_file<L: FromStr<Err = UnknownName>>(
    path: &Path,
    root: &Path,
    label_field: &str,
    lang: Language,
) -> Result<LabelledSet, ModelError> {
    let file = read_raw(path, path.display().to_string())?;
    let mut examples = Vec::new();
    for (line, obj) in records(&file)? {
        let text = text_field(&file, line, &obj)?;
        let label = str_field(&file, line, &obj, label_field)?;
        if let Err(unknown) = label.parse::<L>() {
            return Err(ModelError::Record {
                path: file.display.clone(),
                line,
                reason: format!(
                    "unknown {label_field} \"{label}\" (expected one of: {})",
                    unknown.expected
                ),
            });
        }
        examples.push(Example {
            text: text.to_string(),
            label: label.to_string(),
            lang,
            origin: Origin::Own,
        });
    }
    let source = SourceFile {
        path: relative_display(path, root),
        sha256: file.sha256,
        rows_used: examples.len(),
    };
    Ok(LabelledSet {
        examples,
        sources: vec![source],
    })
}

/// `path` relative to `root`, `/`-separated, as provenance records it.
fn relative_display(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Both language files of one task's split, `data_dir/task/{split}.{zh,en}.jsonl`:
/// all must exist, labelled with `label_field` as names of `L`.
fn load_task<L: FromStr<Err = UnknownName>>(
    data_dir: &Path,
    task: &str,
    label_field: &str,
    split: Split,
) -> Result<LabelledSet, ModelError> {
    let mut set = LabelledSet::default();
    for &lang in &Language::ALL {
        let path: PathBuf =
            data_dir
                .join(task)
                .join(format!("{}.{}.jsonl", split.stem(), lang.code()));
        set.extend(load_own_file::<L>(&path, data_dir, label_field, lang)?);
    }
    Ok(set)
}

/// Our intent data: `data_dir/intents/{split}.{zh,en}.jsonl`, records
/// `{"text", "intent"}` naming an [`Intent`]. Both files must exist.
pub fn load_intents(data_dir: &Path, split: Split) -> Result<LabelledSet, ModelError> {
    load_task::<Intent>(data_dir, "intents", "intent", split)
}

/// Our sentiment data: `data_dir/sentiment/{split}.{zh,en}.jsonl`, records
/// `{"text", "label"}` with label positive|neutral|negative|angry.
pub fn load_sentiment(data_dir: &Path, split: Split) -> Result<LabelledSet, ModelError> {
    load_task::<SentimentLabel>(data_dir, "sentiment", "label", split)
}

/// Our request data: `data_dir/requests/{split}.{zh,en}.jsonl`, records
/// `{"text", "label"}` with a [`RequestLabel`]: can the bot serve this with
/// information (`self_service`), or does it ask staff to decide or do
/// something (`staff_action`: waive a fee, approve a refund, reroute a
/// shipped parcel)? Intent alone cannot tell "how long do refunds take" from
/// "approve my refund today", and only the second needs a person.
pub fn load_requests(data_dir: &Path, split: Split) -> Result<LabelledSet, ModelError> {
    load_task::<RequestLabel>(data_dir, "requests", "label", split)
}

/// Fails if any of `labels` has no example, naming every empty class: a head
/// can never predict a class it has not seen, and silently shipping such a
/// head would hide a data gap.
pub fn require_every_class<L: fmt::Display>(
    examples: &[Example],
    labels: &[L],
    context: &str,
) -> Result<(), ModelError> {
    let present: BTreeSet<&str> = examples.iter().map(|e| e.label.as_str()).collect();
    let empty: Vec<String> = labels
        .iter()
        .map(ToString::to_string)
        .filter(|l| !present.contains(l.as_str()))
        .collect();
    if empty.is_empty() {
        Ok(())
    } else {
        Err(ModelError::Data {
            path: context.to_string(),
            reason: format!("no examples for class(es): {}", empty.join(", ")),
        })
    }
}

/// Reads a public dataset file of `{"text", "label": string}` records
/// (BANKING77, CLINC150, bitext, SMP2017 layout) as (text, label) pairs.
pub fn load_public_pairs(
    datasets_dir: &Path,
    dataset: &str,
    file: &str,
) -> Result<(Vec<(String, String)>, SourceFile), ModelError> {
    if !datasets_dir.join(dataset).is_dir() {
        return Err(super::datasets::missing_set(datasets_dir, dataset));
    }
    let path = datasets_dir.join(dataset).join(file);
    let raw = read_raw(&path, path.display().to_string())?;
    let mut pairs = Vec::new();
    for (line, obj) in records(&raw)? {
        let text = text_field(&raw, line, &obj)?;
        let label = str_field(&raw, line, &obj, "label")?;
        pairs.push((text.to_string(), label.to_string()));
    }
    let source = SourceFile {
        path: format!("{dataset}/{file}"),
        sha256: raw.sha256,
        rows_used: pairs.len(),
    };
    Ok((pairs, source))
}

/// A text and its label names, as a public data set file gives them.
pub type LabelledRow = (String, Vec<String>);

/// Text and labels of every record of a public data set file whose `label`
/// is a list of names (GoEmotions), one name, or an integer (the online
/// shopping reviews' 0/1), so benchmarks keep each data set's own labels.
pub fn load_public_labels(
    datasets_dir: &Path,
    dataset: &str,
    file: &str,
) -> Result<(Vec<LabelledRow>, SourceFile), ModelError> {
    if !datasets_dir.join(dataset).is_dir() {
        return Err(super::datasets::missing_set(datasets_dir, dataset));
    }
    let path = datasets_dir.join(dataset).join(file);
    let raw = read_raw(&path, path.display().to_string())?;
    let mut rows = Vec::new();
    for (line, obj) in records(&raw)? {
        let text = text_field(&raw, line, &obj)?;
        let bad = |reason: String| ModelError::Record {
            path: raw.display.clone(),
            line,
            reason,
        };
        let labels = match obj.get("label") {
            Some(Value::String(name)) => vec![name.clone()],
            Some(Value::Number(n)) if n.is_i64() => vec![n.to_string()],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|item| match item {
                    Value::String(name) => Ok(name.clone()),
                    other => Err(bad(format!(
                        "field \"label\" must hold names, found {}",
                        json_kind(other)
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(Value::Array(_)) => return Err(bad("field \"label\" is an empty list".into())),
            Some(other) => {
                return Err(bad(format!(
                    "field \"label\" must be a name, an integer or a list of names, found {}",
                    json_kind(other)
                )))
            }
            None => return Err(bad("missing field \"label\"".into())),
        };
        rows.push((text.to_string(), labels));
    }
    let source = SourceFile {
        path: format!("{dataset}/{file}"),
        sha256: raw.sha256,
        rows_used: rows.len(),
    };
    Ok((rows, source))
}

#[cfg(test)]
mod tests;
