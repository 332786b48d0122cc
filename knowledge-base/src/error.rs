//! One error type for the crate, so the service can turn any knowledge-base
//! failure into a log line or a gRPC status in one place.

use std::fmt;
use std::path::PathBuf;

use xiaoer_models::ModelError;

/// One finding of [`crate::check`]: what is wrong, in which file, on which line.
///
/// Kept as data (not as an error string) so a CI job can print all of them at
/// once and an editor can jump to the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in (an article, `shop.toml`, or the folder itself).
    pub file: PathBuf,
    /// 1-based line, when the problem sits on one line; `None` for whole-file
    /// problems such as a missing file or a duplicate id.
    pub line: Option<usize>,
    /// What is wrong and, where it helps, how to fix it.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(
        file: impl Into<PathBuf>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Everything that can go wrong while loading, indexing, searching or
/// evaluating the knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// A file or folder could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The article set has problems; the list is the same as [`crate::check`] reports.
    #[error("knowledge base has {} problem(s); first: {}", problems.len(), first_problem(problems))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// A data file (evaluation queries, a dataset) has a malformed line.
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        /// The file with the bad line.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A retrieval config weighs answer bodies, but the index was built
    /// without their embeddings (only [`crate::KnowledgeIndex::build_for_tuning`]
    /// or a config that weighs them embeds answer bodies).
    #[error("the retrieval config weighs answer bodies, but this index has no answer-body embeddings; build it with KnowledgeIndex::build_for_tuning")]
    NoBodyEmbeddings,
    /// An evaluation query names an article the index does not have.
    #[error("query {query}: article {article:?} is not in the knowledge base")]
    UnknownArticle {
        /// The query's id.
        query: String,
        /// The missing article id.
        article: String,
    },
    /// The search engine failed while building the in-memory index.
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The sentence encoder failed.
    #[error("encoder: {0}")]
    Model(#[from] ModelError),
    /// The encoder returned vectors that do not fit what was asked for.
    #[error("encoder {encoder} returned {message}")]
    EncoderShape {
        /// The encoder's name.
        encoder: String,
        /// What was wrong (count or length of vectors).
        message: String,
    },
    /// The folder watcher could not be set up.
    #[error("watching {}: {source}", path.display())]
    Watch {
        /// The watched folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: notify::Error,
    },
}

fn first_problem(problems: &[Problem]) -> String {
    problems.first().map(Problem::to_string).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_display_has_file_and_line() {
        let p = Problem::new("articles/a.md", Some(3), "bad");
        assert_eq!(p.to_string(), "articles/a.md:3: bad");
        let p = Problem::new("articles", None, "missing");
        assert_eq!(p.to_string(), "articles: missing");
    }

    #[test]
    fn invalid_error_names_the_first_problem() {
        let e = KbError::Invalid {
            problems: vec![
                Problem::new("x.md", Some(1), "one"),
                Problem::new("y.md", None, "two"),
            ],
        };
        assert_eq!(
            e.to_string(),
            "knowledge base has 2 problem(s); first: x.md:1: one"
        );
    }
}
