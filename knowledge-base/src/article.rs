//! One knowledge-base article: TOML front matter between `+++` lines, then a
//! `# zh` and a `# en` body. Parsing never panics and reports every problem
//! with its line, because the articles are written by hand and a shop owner
//! editing one should learn exactly what to fix.

use std::fmt;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::error::Problem;
use crate::lang::{Bilingual, Language};
use crate::shop::{is_placeholder_key, ShopProfile};
use crate::taxonomy::is_intent;
use crate::util::line_at;

/// Chinese words that promise outcomes the shop cannot promise. A negated form
/// (`不一定`, `不保证`) is a caveat, not a promise, and is allowed.
pub const BANNED_ZH: [&str; 5] = ["肯定", "保证", "绝对", "百分之百", "一定"];

/// English wording that promises outcomes the shop cannot promise (matched as
/// whole words, any case; `100%` anywhere).
pub const BANNED_EN: [&str; 4] = ["guarantee", "guaranteed", "definitely", "100%"];

/// The date an article was last checked against the shop's real policy, so
/// stale articles can be listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReviewDate {
    /// Calendar year.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day of month, valid for that month.
    pub day: u8,
}

impl ReviewDate {
    /// Builds a date if it exists on the calendar.
    // `is_multiple_of` needs Rust 1.87; the workspace supports 1.85.
    #[allow(clippy::manual_is_multiple_of)]
    pub fn new(year: u16, month: u8, day: u8) -> Option<ReviewDate> {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (year > 0 && (1..=days).contains(&day)).then_some(ReviewDate { year, month, day })
    }

    /// Parses `YYYY-MM-DD` exactly.
    fn parse(s: &str) -> Option<ReviewDate> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year = s.get(0..4)?.parse().ok()?;
        let month = s.get(5..7)?.parse().ok()?;
        let day = s.get(8..10)?.parse().ok()?;
        ReviewDate::new(year, month, day)
    }
}

impl fmt::Display for ReviewDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A parsed, validated article with every `{{placeholder}}` already replaced
/// by the shop profile's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    pub(crate) id: String,
    pub(crate) title: Bilingual<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) intents: Vec<String>,
    pub(crate) related: Vec<String>,
    pub(crate) last_reviewed: ReviewDate,
    pub(crate) questions: Bilingual<Vec<String>>,
    pub(crate) body: Bilingual<String>,
}

impl Article {
    /// The article id (equal to its file stem), cited in answers and logs.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The title in `lang`.
    pub fn title(&self, lang: Language) -> &str {
        self.title.get(lang)
    }

    /// Free-form tags for grouping articles in tools.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The intents this article answers (names from [`crate::INTENTS`]).
    pub fn intents(&self) -> &[String] {
        &self.intents
    }

    /// Ids of articles worth offering next ("see also").
    pub fn related(&self) -> &[String] {
        &self.related
    }

    /// When the article was last checked against the shop's policy.
    pub fn last_reviewed(&self) -> ReviewDate {
        self.last_reviewed
    }

    /// Example shopper questions in `lang`; they drive both BM25 and dense matching.
    pub fn questions(&self, lang: Language) -> &[String] {
        self.questions.get(lang)
    }

    /// The answer text in `lang`, Markdown, placeholders resolved: what the bot sends.
    pub fn answer(&self, lang: Language) -> &str {
        self.body.get(lang)
    }
}

/// A problem inside one file: `(line, message)`; the caller adds the path.
pub(crate) type LineProblem = (Option<usize>, String);

/// What parsing one article file yields. Ids and links are kept even when the
/// article as a whole is invalid, so set-level checks (duplicate ids, broken
/// links) do not cascade into noise from one bad file.
#[derive(Debug)]
pub(crate) struct ParsedArticle {
    /// The id and its line, if the front matter had one.
    pub id: Option<(String, usize)>,
    /// Related ids with their lines.
    pub related: Vec<(String, usize)>,
    /// The article, when the file had no problems of its own.
    pub article: Option<Article>,
    /// Problems local to this file.
    pub problems: Vec<LineProblem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    id: Option<Spanned<String>>,
    title: Option<Spanned<Pair<String>>>,
    #[serde(default)]
    tags: Vec<String>,
    intents: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    related: Vec<Spanned<String>>,
    last_reviewed: Option<Spanned<toml::Value>>,
    questions: Option<Spanned<Pair<Vec<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair<T> {
    zh: Option<T>,
    en: Option<T>,
}

/// Parses one article file's text on its own: the article when the file has no
/// problems, otherwise every problem found in it, labelled with `file`.
///
/// Public so the fuzz targets (`fuzz/`) can drive the parser on arbitrary text
/// without going through the file system; the service and `xiaoer kb check`
/// load whole folders with [`crate::ArticleSet::load`] and [`crate::check`],
/// which add the cross-file checks (id equals the file stem, unique ids,
/// existing `related` links) that a single text cannot have.
pub fn parse_article_text(
    file: &Path,
    text: &str,
    shop: Option<&ShopProfile>,
) -> Result<Article, Vec<Problem>> {
    let parsed = parse_article(text, shop);
    match parsed.article {
        Some(article) if parsed.problems.is_empty() => Ok(article),
        _ => Err(parsed
            .problems
            .into_iter()
            .map(|(line, message)| Problem::new(file, line, message))
            .collect()),
    }
}

/// Parses one article. `shop` is used to check and resolve placeholders; pass
/// `None` when the shop profile itself is broken (placeholders are then left
/// unchecked rather than reported as unknown).
pub(crate) fn parse_article(text: &str, shop: Option<&ShopProfile>) -> ParsedArticle {
    let mut out = ParsedArticle {
        id: None,
        related: Vec::new(),
        article: None,
        problems: Vec::new(),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();

    if lines.first().map(|l| l.trim()) != Some("+++") {
        out.problems.push((
            Some(1),
            "the file must start with a `+++` line opening the TOML front matter".into(),
        ));
        return out;
    }
    let Some(close) = lines
        .iter()
        .skip(1)
        .position(|l| l.trim() == "+++")
        .map(|i| i + 1)
    else {
        out.problems.push((
            Some(1),
            "the front matter is never closed by a second `+++` line".into(),
        ));
        return out;
    };
    // Front matter lines are 2..=close (1-based); offsets in `fm` map to line 2 + line_at - 1.
    let fm = lines[1..close].join("\n");
    let fm_line = |offset: usize| line_at(&fm, offset) + 1;

    let front: FrontMatter = match toml::from_str(&fm) {
        Ok(front) => front,
        Err(e) => {
            let line = e.span().map(|s| fm_line(s.start)).unwrap_or(1);
            out.problems
                .push((Some(line), format!("front matter: {}", e.message().trim())));
            return out;
        }
    };

    let id_line = front.id.as_ref().map_or(1, |s| fm_line(s.span().start));
    let id = required_text(
        front.id.as_ref().map(|s| s.get_ref().as_str()),
        id_line,
        "id",
        &mut out.problems,
    );
    if let Some((id, line)) = &id {
        if !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            out.problems.push((
                Some(*line),
                format!("id {id:?} must use only a-z, 0-9 and '-'"),
            ));
        }
    }
    out.id = id.clone();
    out.related = front
        .related
        .iter()
        .map(|r| (r.get_ref().clone(), fm_line(r.span().start)))
        .collect();

    let title = pair_text(front.title.as_ref(), "title", &fm_line, &mut out.problems);
    let questions = pair_questions(front.questions.as_ref(), &fm_line, &mut out.problems);
    let intents = check_intents(front.intents.as_ref(), &fm_line, &mut out.problems);
    let last_reviewed = check_date(front.last_reviewed.as_ref(), &fm_line, &mut out.problems);
    let body = split_body(&lines, close, &mut out.problems);

    if let Some(shop) = shop {
        for (i, line) in lines.iter().enumerate() {
            for problem in placeholder_problems(line, shop) {
                out.problems.push((Some(i + 1), problem));
            }
        }
    }
    for (i, line) in lines.iter().enumerate().skip(close + 1) {
        if !is_lang_heading(line) {
            for phrase in banned_phrases(line) {
                out.problems.push((
                    Some(i + 1),
                    format!("banned absolute phrasing {phrase:?}: answers must not promise outcomes; soften it (一般/通常, usually/normally)"),
                ));
            }
        }
    }

    if !out.problems.is_empty() {
        return out;
    }
    if let (
        Some((id, _)),
        Some(title),
        Some(questions),
        Some(intents),
        Some(last_reviewed),
        Some(body),
    ) = (id, title, questions, intents, last_reviewed, body)
    {
        let resolve = |s: &str| match shop {
            Some(shop) => resolve_placeholders(s, shop),
            None => s.to_string(),
        };
        out.article = Some(Article {
            id,
            title: Bilingual {
                zh: resolve(&title.zh),
                en: resolve(&title.en),
            },
            tags: front.tags,
            intents,
            related: front.related.into_iter().map(Spanned::into_inner).collect(),
            last_reviewed,
            questions: Bilingual {
                zh: questions.zh.iter().map(|q| resolve(q)).collect(),
                en: questions.en.iter().map(|q| resolve(q)).collect(),
            },
            body: Bilingual {
                zh: resolve(&body.zh),
                en: resolve(&body.en),
            },
        });
    }
    out
}

/// A required, non-empty string; `line` is where it is (or where it belongs).
fn required_text(
    value: Option<&str>,
    line: usize,
    name: &str,
    problems: &mut Vec<LineProblem>,
) -> Option<(String, usize)> {
    match value {
        None => {
            problems.push((Some(line), format!("front matter is missing `{name}`")));
            None
        }
        Some(v) if v.trim().is_empty() => {
            problems.push((Some(line), format!("`{name}` is empty")));
            None
        }
        Some(v) => Some((v.trim().to_string(), line)),
    }
}

fn pair_text(
    pair: Option<&Spanned<Pair<String>>>,
    name: &str,
    fm_line: &dyn Fn(usize) -> usize,
    problems: &mut Vec<LineProblem>,
) -> Option<Bilingual<String>> {
    let Some(pair) = pair else {
        problems.push((
            Some(1),
            format!("front matter is missing `{name}` (with `zh` and `en`)"),
        ));
        return None;
    };
    let line = fm_line(pair.span().start);
    let p = pair.get_ref();
    let zh = required_text(p.zh.as_deref(), line, &format!("{name}.zh"), problems);
    let en = required_text(p.en.as_deref(), line, &format!("{name}.en"), problems);
    Some(Bilingual {
        zh: zh?.0,
        en: en?.0,
    })
}

fn pair_questions(
    pair: Option<&Spanned<Pair<Vec<String>>>>,
    fm_line: &dyn Fn(usize) -> usize,
    problems: &mut Vec<LineProblem>,
) -> Option<Bilingual<Vec<String>>> {
    let Some(pair) = pair else {
        problems.push((
            Some(1),
            "front matter is missing `[questions]` (with `zh` and `en` lists)".into(),
        ));
        return None;
    };
    let line = fm_line(pair.span().start);
    let p = pair.get_ref();
    let mut one = |list: &Option<Vec<String>>, lang: &str| -> Option<Vec<String>> {
        match list {
            None => {
                problems.push((Some(line), format!("`questions.{lang}` is missing")));
                None
            }
            Some(list) if list.is_empty() => {
                problems.push((Some(line), format!("`questions.{lang}` has no questions")));
                None
            }
            Some(list) if list.iter().any(|q| q.trim().is_empty()) => {
                problems.push((
                    Some(line),
                    format!("`questions.{lang}` has an empty question"),
                ));
                None
            }
            Some(list) => {
                let trimmed: Vec<String> = list.iter().map(|q| q.trim().to_string()).collect();
                let mut seen = std::collections::HashSet::new();
                match trimmed.iter().find(|q| !seen.insert(q.to_lowercase())) {
                    // A repeated question counts twice in the dense score
                    // (top-mean of similarities) and silently favours the article.
                    Some(repeat) => {
                        problems.push((
                            Some(line),
                            format!("`questions.{lang}` lists \"{repeat}\" twice"),
                        ));
                        None
                    }
                    None => Some(trimmed),
                }
            }
        }
    };
    let zh = one(&p.zh, "zh");
    let en = one(&p.en, "en");
    Some(Bilingual { zh: zh?, en: en? })
}

fn check_intents(
    intents: Option<&Spanned<Vec<Spanned<String>>>>,
    fm_line: &dyn Fn(usize) -> usize,
    problems: &mut Vec<LineProblem>,
) -> Option<Vec<String>> {
    let Some(intents) = intents else {
        problems.push((Some(1), "front matter is missing `intents`".into()));
        return None;
    };
    if intents.get_ref().is_empty() {
        problems.push((
            Some(fm_line(intents.span().start)),
            "`intents` is empty".into(),
        ));
        return None;
    }
    let before = problems.len();
    for intent in intents.get_ref() {
        if !is_intent(intent.get_ref()) {
            problems.push((
                Some(fm_line(intent.span().start)),
                format!(
                    "unknown intent {:?} (see xiaoer_kb::INTENTS)",
                    intent.get_ref()
                ),
            ));
        }
    }
    (problems.len() == before).then(|| {
        intents
            .get_ref()
            .iter()
            .map(|i| i.get_ref().clone())
            .collect()
    })
}

fn check_date(
    value: Option<&Spanned<toml::Value>>,
    fm_line: &dyn Fn(usize) -> usize,
    problems: &mut Vec<LineProblem>,
) -> Option<ReviewDate> {
    let Some(value) = value else {
        problems.push((Some(1), "front matter is missing `last_reviewed`".into()));
        return None;
    };
    let date = match value.get_ref() {
        toml::Value::String(s) => ReviewDate::parse(s.trim()),
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt
            .date
            .and_then(|d| ReviewDate::new(d.year, d.month, d.day)),
        _ => None,
    };
    if date.is_none() {
        problems.push((
            Some(fm_line(value.span().start)),
            "`last_reviewed` must be a date like \"2026-11-01\"".into(),
        ));
    }
    date
}

fn is_lang_heading(line: &str) -> bool {
    matches!(line.trim(), "# zh" | "# en")
}

/// Splits the lines after the front matter (`close` is the index of the closing
/// `+++`) into the `# zh` and `# en` bodies.
fn split_body(
    lines: &[&str],
    close: usize,
    problems: &mut Vec<LineProblem>,
) -> Option<Bilingual<String>> {
    let mut sections: [Option<(usize, Vec<&str>)>; 2] = [None, None];
    let mut current: Option<usize> = None;
    let mut stray_reported = false;
    for (i, line) in lines.iter().enumerate().skip(close + 1) {
        let lineno = i + 1;
        let slot = match line.trim() {
            "# zh" => Some(0),
            "# en" => Some(1),
            _ => None,
        };
        match (slot, current) {
            (Some(s), _) => {
                if sections[s].is_some() {
                    problems.push((Some(lineno), format!("second `{}` heading", line.trim())));
                } else {
                    sections[s] = Some((lineno, Vec::new()));
                }
                current = Some(s);
            }
            (None, Some(s)) => {
                if let Some((_, body)) = sections[s].as_mut() {
                    body.push(line);
                }
            }
            (None, None) => {
                if !line.trim().is_empty() && !stray_reported {
                    problems.push((
                        Some(lineno),
                        "text before the first `# zh` / `# en` heading".into(),
                    ));
                    stray_reported = true;
                }
            }
        }
    }
    let mut texts = [String::new(), String::new()];
    let mut ok = true;
    for (s, lang) in ["zh", "en"].iter().enumerate() {
        match &sections[s] {
            None => {
                problems.push((Some(close + 1), format!("missing the `# {lang}` body")));
                ok = false;
            }
            Some((line, body)) => {
                let text = body.join("\n").trim().to_string();
                if text.is_empty() {
                    problems.push((Some(*line), format!("the `# {lang}` body is empty")));
                    ok = false;
                }
                texts[s] = text;
            }
        }
    }
    let [zh, en] = texts;
    ok.then_some(Bilingual { zh, en })
}

/// Problems with the `{{key}}` placeholders on one line.
fn placeholder_problems(line: &str, shop: &ShopProfile) -> Vec<String> {
    let mut problems = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            problems.push("`{{` without a closing `}}`".to_string());
            break;
        };
        let key = after[..end].trim();
        if !is_placeholder_key(key) {
            problems.push(format!(
                "malformed placeholder {{{{{key}}}}} (keys use a-z, 0-9, _)"
            ));
        } else if shop.get(key).is_none() {
            problems.push(format!(
                "unknown placeholder {{{{{key}}}}}: not defined in shop.toml [profile]"
            ));
        }
        rest = &after[end + 2..];
    }
    problems
}

/// Replaces every known `{{key}}` with the profile value; unknown ones stay
/// (they are reported by the check, so this only happens for unchecked input).
fn resolve_placeholders(text: &str, shop: &ShopProfile) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        match shop.get(after[..end].trim()) {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn banned_en_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        // A fixed pattern: compiling it cannot fail at run time.
        Regex::new(r"(?i)\b(guarantee[ds]?|definitely)\b|100\s*%").expect("static regex")
    })
}

/// The banned phrases on one body line, in order of appearance.
pub(crate) fn banned_phrases(line: &str) -> Vec<String> {
    let mut found: Vec<(usize, String)> = Vec::new();
    for word in BANNED_ZH {
        for (pos, _) in line.match_indices(word) {
            if !line[..pos].ends_with('不') {
                found.push((pos, word.to_string()));
            }
        }
    }
    for m in banned_en_regex().find_iter(line) {
        found.push((m.start(), m.as_str().to_string()));
    }
    found.sort();
    found.into_iter().map(|(_, w)| w).collect()
}

#[cfg(test)]
mod tests;
