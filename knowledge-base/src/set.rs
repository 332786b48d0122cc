//! Loading a knowledge-base folder (`shop.toml` + `articles/*.md`) and the
//! checks across files: id = file stem, unique ids, existing cross-links.
//! [`check`] and [`ArticleSet::load`] share one scan, so whatever CI accepts
//! is exactly what the service can load.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::article::{parse_article, Article};
use crate::error::{KbError, Problem};
use crate::shop::ShopProfile;
use crate::util::Fnv64;

/// File name of the shop profile inside a knowledge-base folder.
pub const SHOP_FILE: &str = "shop.toml";
/// Folder of article files inside a knowledge-base folder.
pub const ARTICLES_DIR: &str = "articles";

/// A complete, valid set of articles plus the shop profile they were resolved with.
#[derive(Debug, Clone)]
pub struct ArticleSet {
    articles: Vec<Article>,
    shop: ShopProfile,
    version: String,
}

impl ArticleSet {
    /// Reads and validates `kb_dir`. Any problem [`check`] would report makes
    /// this fail with [`KbError::Invalid`], so a half-broken set never goes live.
    pub fn load(kb_dir: impl AsRef<Path>) -> Result<ArticleSet, KbError> {
        let (set, problems) = scan(kb_dir.as_ref());
        match set {
            Some(set) if problems.is_empty() => Ok(set),
            _ => Err(KbError::Invalid { problems }),
        }
    }

    /// Builds a set from articles made in code (benchmarks' synthetic sets).
    /// The version hashes the articles' text so it still changes with content.
    pub(crate) fn from_articles(articles: Vec<Article>, shop: ShopProfile) -> ArticleSet {
        let mut h = Fnv64::new();
        for a in &articles {
            h.write_field(a.id.as_bytes());
            for text in [&a.title.zh, &a.title.en, &a.body.zh, &a.body.en] {
                h.write_field(text.as_bytes());
            }
            for q in a.questions.zh.iter().chain(&a.questions.en) {
                h.write_field(q.as_bytes());
            }
        }
        ArticleSet {
            articles,
            shop,
            version: h.hex(),
        }
    }

    /// All articles, sorted by file name.
    pub fn articles(&self) -> &[Article] {
        &self.articles
    }

    /// The article with `id`, if any.
    pub fn get(&self, id: &str) -> Option<&Article> {
        self.articles.iter().find(|a| a.id == id)
    }

    /// The shop profile the placeholders were resolved with.
    pub fn shop(&self) -> &ShopProfile {
        &self.shop
    }

    /// Content hash of `shop.toml` and every article file (16 hex digits); it
    /// changes exactly when the content does, so reloads can be skipped and
    /// logs can say which content answered.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Number of articles.
    pub fn len(&self) -> usize {
        self.articles.len()
    }

    /// Whether there are no articles (never true for a loaded folder).
    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
    }
}

/// Every problem in the knowledge-base folder `kb_dir`, in file order; empty
/// means the folder loads. Meant for CI and for editors of the articles.
pub fn check(kb_dir: impl AsRef<Path>) -> Vec<Problem> {
    scan(kb_dir.as_ref()).1
}

fn read(path: &Path, problems: &mut Vec<Problem>) -> Option<String> {
    match fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) => {
                problems.push(Problem::new(path, None, format!("not UTF-8: {e}")));
                None
            }
        },
        Err(e) => {
            problems.push(Problem::new(path, None, format!("cannot read: {e}")));
            None
        }
    }
}

fn article_files(dir: &Path, problems: &mut Vec<Problem>) -> Vec<PathBuf> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Problem::new(
                dir,
                None,
                format!("cannot list articles: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| match entry {
            Ok(entry) => Some(entry.path()),
            Err(e) => {
                problems.push(Problem::new(
                    dir,
                    None,
                    format!("cannot list articles: {e}"),
                ));
                None
            }
        })
        // Hidden entries are skipped: a Kubernetes ConfigMap volume keeps its
        // versions in `..data` folders beside the (symlinked) files.
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    if files.is_empty() && problems.is_empty() {
        problems.push(Problem::new(
            dir,
            None,
            "no articles (*.md) found, in articles/ or beside shop.toml",
        ));
    }
    files
}

/// Where the articles are: `articles/` beside `shop.toml`, or, when there is
/// no such folder, beside `shop.toml` itself — the flat layout a Kubernetes
/// ConfigMap volume gives, since a ConfigMap cannot hold a subfolder.
fn articles_dir(kb_dir: &Path) -> PathBuf {
    let nested = kb_dir.join(ARTICLES_DIR);
    if nested.is_dir() {
        nested
    } else {
        kb_dir.to_path_buf()
    }
}

fn scan(kb_dir: &Path) -> (Option<ArticleSet>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut hash = Fnv64::new();

    let shop_path = kb_dir.join(SHOP_FILE);
    let shop = read(&shop_path, &mut problems).and_then(|text| {
        hash.write_field(text.as_bytes());
        match ShopProfile::parse(&text) {
            Ok(shop) => Some(shop),
            Err(errs) => {
                problems.extend(
                    errs.into_iter()
                        .map(|(line, msg)| Problem::new(&shop_path, line, msg)),
                );
                None
            }
        }
    });

    let mut articles = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut links: Vec<(PathBuf, String, usize)> = Vec::new();
    for path in article_files(&articles_dir(kb_dir), &mut problems) {
        let Some(text) = read(&path, &mut problems) else {
            continue;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        hash.write_field(name.as_bytes());
        hash.write_field(text.as_bytes());
        let parsed = parse_article(&text, shop.as_ref());
        problems.extend(
            parsed
                .problems
                .into_iter()
                .map(|(line, msg)| Problem::new(&path, line, msg)),
        );
        if let Some((id, line)) = &parsed.id {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if *id != stem {
                problems.push(Problem::new(
                    &path,
                    Some(*line),
                    format!("id {id:?} must equal the file name {stem:?}"),
                ));
            }
            if let Some(other) = seen.get(id) {
                problems.push(Problem::new(
                    &path,
                    Some(*line),
                    format!("duplicate id {id:?} (also in {})", other.display()),
                ));
            } else {
                seen.insert(id.clone(), path.clone());
            }
            for (target, line) in parsed.related {
                if target == *id {
                    problems.push(Problem::new(
                        &path,
                        Some(line),
                        "`related` lists the article itself",
                    ));
                } else {
                    links.push((path.clone(), target, line));
                }
            }
        }
        if let Some(article) = parsed.article {
            articles.push(article);
        }
    }
    for (path, target, line) in links {
        if !seen.contains_key(&target) {
            problems.push(Problem::new(
                &path,
                Some(line),
                format!("related article {target:?} does not exist"),
            ));
        }
    }

    let set = match shop {
        Some(shop) if problems.is_empty() => Some(ArticleSet {
            articles,
            shop,
            version: hash.hex(),
        }),
        _ => None,
    };
    (set, problems)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lang::Language;
    use std::fs;

    pub(crate) const SHOP: &str =
        "id = \"demo\"\n[profile]\nname_zh = \"小店\"\nname_en = \"Little Shop\"\n";

    /// Writes a minimal valid article; `extra` goes into the front matter.
    pub(crate) fn article_text(
        id: &str,
        title_zh: &str,
        title_en: &str,
        qs_zh: &[&str],
        qs_en: &[&str],
        body_zh: &str,
        body_en: &str,
    ) -> String {
        let list = |qs: &[&str]| {
            qs.iter()
                .map(|q| format!("{q:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "+++\nid = \"{id}\"\ntitle = {{ zh = \"{title_zh}\", en = \"{title_en}\" }}\nintents = [\"product_info\"]\nlast_reviewed = \"2026-01-01\"\n\n[questions]\nzh = [{}]\nen = [{}]\n+++\n\n# zh\n\n{body_zh}\n\n# en\n\n{body_en}\n",
            list(qs_zh),
            list(qs_en)
        )
    }

    pub(crate) fn write_kb(dir: &Path, articles: &[(&str, String)]) {
        fs::create_dir_all(dir.join(ARTICLES_DIR)).expect("mkdir");
        fs::write(dir.join(SHOP_FILE), SHOP).expect("write shop");
        for (id, text) in articles {
            fs::write(dir.join(ARTICLES_DIR).join(format!("{id}.md")), text)
                .expect("write article");
        }
    }

    fn simple(id: &str) -> String {
        article_text(
            id,
            "标题",
            "Title",
            &["问题"],
            &["question"],
            "{{name_zh}}的回答",
            "answer from {{name_en}}",
        )
    }

    #[test]
    fn loads_a_valid_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_kb(dir.path(), &[("a", simple("a")), ("b", simple("b"))]);
        fs::write(dir.path().join(ARTICLES_DIR).join("README.txt"), "ignored").expect("write");
        assert!(check(dir.path()).is_empty(), "{:?}", check(dir.path()));
        let set = ArticleSet::load(dir.path()).expect("load");
        assert_eq!(set.len(), 2);
        assert!(!set.is_empty());
        assert_eq!(
            set.get("b").map(|a| a.answer(Language::Zh)),
            Some("小店的回答")
        );
        assert_eq!(set.shop().name(Language::En), "Little Shop");
        assert_eq!(set.version().len(), 16);
    }

    #[test]
    fn version_changes_with_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_kb(dir.path(), &[("a", simple("a"))]);
        let v1 = ArticleSet::load(dir.path())
            .expect("load")
            .version()
            .to_string();
        assert_eq!(ArticleSet::load(dir.path()).expect("load").version(), v1);
        fs::write(
            dir.path().join(ARTICLES_DIR).join("a.md"),
            simple("a").replace("answer", "reply"),
        )
        .expect("write");
        assert_ne!(ArticleSet::load(dir.path()).expect("load").version(), v1);
    }

    #[test]
    fn reports_cross_file_problems() {
        let dir = tempfile::tempdir().expect("tempdir");
        let linked = simple("a").replace("intents =", "related = [\"nope\", \"a\"]\nintents =");
        write_kb(
            dir.path(),
            &[
                ("a", linked),
                ("b", simple("a")),
                ("c", simple("c").replace("Title", "Title {{hotline}}")),
            ],
        );
        let problems = check(dir.path());
        let msgs: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("b.md:2: id \"a\" must equal the file name \"b\"")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("b.md:2: duplicate id \"a\"")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("a.md:4: related article \"nope\" does not exist")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("a.md:4: `related` lists the article itself")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("c.md:3: unknown placeholder {{hotline}}")),
            "{msgs:?}"
        );
        match ArticleSet::load(dir.path()) {
            Err(KbError::Invalid { problems: p }) => assert_eq!(p, problems),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn reports_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let problems = check(dir.path());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].file.ends_with(SHOP_FILE));
        fs::write(dir.path().join(SHOP_FILE), SHOP).expect("write");
        let problems = check(dir.path());
        assert_eq!(problems.len(), 1, "flat layout, no articles: {problems:?}");
        assert!(problems[0].message.contains("beside shop.toml"));
        fs::create_dir_all(dir.path().join(ARTICLES_DIR)).expect("mkdir");
        fs::write(dir.path().join(SHOP_FILE), SHOP).expect("write");
        let problems = check(dir.path());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("no articles"));
    }

    #[test]
    fn broken_shop_profile_is_reported_and_blocks_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_kb(dir.path(), &[("a", simple("a"))]);
        fs::write(
            dir.path().join(SHOP_FILE),
            "id = \"demo\"\n[profile]\nname_zh = \"x\"\n",
        )
        .expect("write");
        let problems = check(dir.path());
        assert!(
            problems.iter().any(|p| p.message.contains("name_en")),
            "{problems:?}"
        );
        assert!(ArticleSet::load(dir.path()).is_err());
    }
}
