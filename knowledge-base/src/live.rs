//! The live knowledge base the service searches: an `Arc<KnowledgeIndex>`
//! that a reload replaces in one pointer swap. Searches clone the `Arc` and
//! keep using the snapshot they started with, so a reload never blocks them
//! and never shows them a half-built index; a broken article set is rejected
//! before the swap, so the old index stays live.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use xiaoer_models::Encoder;

use crate::cache::{KnownVectors, Remembering, VectorCache};
use crate::error::KbError;
use crate::index::{KnowledgeIndex, RetrievalConfig};
use crate::set::ArticleSet;

/// What a reload did, for logs and the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// Number of articles now live.
    pub articles: usize,
    /// Content hash now live.
    pub version: String,
    /// Whether the content differed from what was live (unchanged content is
    /// not re-embedded or swapped).
    pub changed: bool,
}

/// The reloadable knowledge base of one folder.
#[derive(Debug)]
pub struct KnowledgeBase {
    dir: PathBuf,
    config: RetrievalConfig,
    current: RwLock<Arc<KnowledgeIndex>>,
    /// Where the vectors are kept between runs, if anywhere.
    cache: Option<VectorCache>,
    /// Serialises reloads so a slow older build can never overwrite a newer one.
    reloading: Mutex<()>,
}

impl KnowledgeBase {
    /// Loads and indexes `kb_dir` with the default [`RetrievalConfig`]; fails
    /// if the folder has any problem (see [`crate::check`]).
    pub fn open(
        kb_dir: impl Into<PathBuf>,
        encoder: &dyn Encoder,
    ) -> Result<KnowledgeBase, KbError> {
        KnowledgeBase::open_with_config(kb_dir, encoder, RetrievalConfig::default())
    }

    /// Like [`KnowledgeBase::open`], reusing the vectors `cache` holds for
    /// unchanged texts and keeping it up to date after every (re)load.
    pub fn open_cached(
        kb_dir: impl Into<PathBuf>,
        encoder: &dyn Encoder,
        cache: VectorCache,
    ) -> Result<KnowledgeBase, KbError> {
        KnowledgeBase::open_inner(
            kb_dir.into(),
            encoder,
            RetrievalConfig::default(),
            Some(cache),
        )
    }

    /// Like [`KnowledgeBase::open`] with explicit tunables, kept across reloads.
    pub fn open_with_config(
        kb_dir: impl Into<PathBuf>,
        encoder: &dyn Encoder,
        config: RetrievalConfig,
    ) -> Result<KnowledgeBase, KbError> {
        KnowledgeBase::open_inner(kb_dir.into(), encoder, config, None)
    }

    fn open_inner(
        dir: PathBuf,
        encoder: &dyn Encoder,
        config: RetrievalConfig,
        cache: Option<VectorCache>,
    ) -> Result<KnowledgeBase, KbError> {
        let remembering = Remembering::new(
            encoder,
            cache.as_ref().map(VectorCache::load).unwrap_or_default(),
        );
        let index =
            KnowledgeIndex::build_with_config(ArticleSet::load(&dir)?, &remembering, config)?;
        if let Some(cache) = &cache {
            cache.save(&index.embedded_texts());
        }
        Ok(KnowledgeBase {
            dir,
            config,
            current: RwLock::new(Arc::new(index)),
            cache,
            reloading: Mutex::new(()),
        })
    }

    /// The index to search now. Hold the `Arc` for the whole request so every
    /// step of it sees the same articles.
    pub fn current(&self) -> Arc<KnowledgeIndex> {
        // The lock only guards a pointer swap, so a poisoned lock still holds a valid Arc.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The folder this knowledge base loads from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-reads the folder and, if its content changed, builds a new index and
    /// swaps it in. On any error the live index is untouched. `encoder` must be
    /// the one the service embeds queries with.
    pub fn reload(&self, encoder: &dyn Encoder) -> Result<ReloadOutcome, KbError> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let set = ArticleSet::load(&self.dir)?;
        let live = self.current();
        if set.version() == live.version() && encoder.name() == live.encoder_name() {
            return Ok(ReloadOutcome {
                articles: live.len(),
                version: live.version().to_string(),
                changed: false,
            });
        }
        // Unchanged titles, questions and answers keep their vectors: an edit
        // of one article re-encodes that article only.
        let remembering = Remembering::new(
            encoder,
            if live.encoder_name() == encoder.name() {
                live.embedded_texts()
            } else {
                KnownVectors::new()
            },
        );
        let index = Arc::new(KnowledgeIndex::build_with_config(
            set,
            &remembering,
            self.config,
        )?);
        if let Some(cache) = &self.cache {
            cache.save(&index.embedded_texts());
        }
        let outcome = ReloadOutcome {
            articles: index.len(),
            version: index.version().to_string(),
            changed: true,
        };
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = index;
        tracing::info!(articles = outcome.articles, version = %outcome.version, "knowledge base reloaded");
        Ok(outcome)
    }
}

/// Keeps a folder watch alive; dropping it stops watching (and waits for a
/// reload in progress to finish).
pub struct KbWatcher {
    watcher: Option<RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for KbWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KbWatcher")
            .field("active", &self.watcher.is_some())
            .finish()
    }
}

impl Drop for KbWatcher {
    fn drop(&mut self) {
        // Dropping the watcher closes the event channel, which ends the thread.
        self.watcher.take();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("knowledge-base watch thread panicked");
            }
        }
    }
}

/// Reloads `kb` whenever files under its folder change, once the changes have
/// been quiet for `debounce` (editors write several events per save).
/// `on_reload` gets every outcome, e.g. to update metrics; failures are also
/// logged, and the previous index stays live.
pub fn watch<F>(
    kb: Arc<KnowledgeBase>,
    encoder: Arc<dyn Encoder>,
    debounce: Duration,
    mut on_reload: F,
) -> Result<KbWatcher, KbError>
where
    F: FnMut(Result<ReloadOutcome, KbError>) + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let watch_error = |source| KbError::Watch {
        path: kb.dir().to_path_buf(),
        source,
    };
    let mut watcher = notify::recommended_watcher(tx).map_err(watch_error)?;
    watcher
        .watch(kb.dir(), RecursiveMode::Recursive)
        .map_err(watch_error)?;
    let dir = kb.dir().to_path_buf();
    let thread = std::thread::Builder::new()
        .name("kb-watch".into())
        .spawn(move || {
            while let Ok(event) = rx.recv() {
                if !is_content_change(&event) {
                    continue;
                }
                loop {
                    match rx.recv_timeout(debounce) {
                        Ok(_) => continue,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                let outcome = kb.reload(encoder.as_ref());
                if let Err(e) = &outcome {
                    tracing::warn!(error = %e, "knowledge-base reload failed; previous index stays live");
                }
                on_reload(outcome);
            }
        })
        .map_err(|source| KbError::Io { path: dir, source })?;
    Ok(KbWatcher {
        watcher: Some(watcher),
        thread: Some(thread),
    })
}

/// Whether a watch event can change content (reads and metadata-only changes
/// cannot; reloads themselves open files, which must not trigger reloads).
fn is_content_change(event: &notify::Result<notify::Event>) -> bool {
    match event {
        Ok(e) => !matches!(
            e.kind,
            EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))
        ),
        Err(e) => {
            tracing::warn!(error = %e, "knowledge-base watch error");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{RetrievalMode, SearchQuery};
    use crate::lang::Language;
    use crate::set::tests::{article_text, write_kb};
    use crate::set::ARTICLES_DIR;
    use crate::test_support::HashEncoder;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;
    use xiaoer_models::{ModelError, TextRole};

    /// An article whose every text carries `generation`, so a search result
    /// tells which index answered it.
    fn gen_article(id: &str, generation: usize) -> String {
        article_text(
            id,
            &format!("退货{generation}"),
            &format!("returns gen{generation}"),
            &["可以退货吗"],
            &["can i return it"],
            &format!("第{generation}版：可以退货。"),
            &format!("version gen{generation}: returns are accepted."),
        )
    }

    fn write_generation(dir: &Path, generation: usize, articles: usize) {
        let ids: Vec<String> = (0..articles).map(|i| format!("a{i}")).collect();
        let files: Vec<(&str, String)> = ids
            .iter()
            .map(|id| (id.as_str(), gen_article(id, generation)))
            .collect();
        write_kb(dir, &files);
    }

    #[test]
    fn reload_swaps_and_skips_unchanged_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let enc = HashEncoder::new();
        write_generation(dir.path(), 1, 2);
        let kb = KnowledgeBase::open(dir.path(), &enc).expect("open");
        let v1 = kb.current().version().to_string();
        let same = kb.reload(&enc).expect("reload");
        assert!(!same.changed);
        assert_eq!(same.version, v1);
        write_generation(dir.path(), 2, 3);
        let out = kb.reload(&enc).expect("reload");
        assert!(out.changed);
        assert_eq!(out.articles, 3);
        assert_ne!(out.version, v1);
        assert_eq!(kb.current().version(), out.version);
        assert_eq!(kb.dir(), dir.path());
    }

    /// Counts the texts each call asks the wrapped encoder for.
    struct Counting {
        inner: HashEncoder,
        texts: Mutex<usize>,
    }

    impl Encoder for Counting {
        fn dim(&self) -> usize {
            self.inner.dim()
        }
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn encode_batch(
            &self,
            texts: &[&str],
            role: TextRole,
        ) -> Result<Vec<Vec<f32>>, ModelError> {
            *self.texts.lock().unwrap() += texts.len();
            self.inner.encode_batch(texts, role)
        }
    }

    #[test]
    fn a_reload_encodes_only_what_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let enc = Counting {
            inner: HashEncoder::new(),
            texts: Mutex::new(0),
        };
        write_generation(dir.path(), 1, 3);
        let kb = KnowledgeBase::open(dir.path(), &enc).expect("open");
        let at_open = std::mem::take(&mut *enc.texts.lock().unwrap());
        assert!(
            at_open >= 3 * 4,
            "titles and questions of 3 articles in 2 languages: {at_open}"
        );
        // One article edited: its title and a question change, in both languages.
        std::fs::write(
            dir.path().join(ARTICLES_DIR).join("a1.md"),
            gen_article("a1", 2),
        )
        .expect("write");
        let out = kb.reload(&enc).expect("reload");
        assert!(out.changed);
        let at_reload = *enc.texts.lock().unwrap();
        assert!(
            at_reload > 0 && at_reload <= at_open / 3,
            "only the edited article's changed texts: {at_reload} of {at_open}"
        );
        // The reused vectors are the ones a fresh build computes.
        let fresh =
            KnowledgeIndex::build(ArticleSet::load(dir.path()).unwrap(), &enc.inner).unwrap();
        assert_eq!(fresh.embedded_texts(), kb.current().embedded_texts());
    }

    #[test]
    fn a_restart_with_a_warm_cache_encodes_only_the_probe() {
        let kb_dir = tempfile::tempdir().expect("tempdir");
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let enc = Counting {
            inner: HashEncoder::new(),
            texts: Mutex::new(0),
        };
        write_generation(kb_dir.path(), 1, 3);
        let cache = || VectorCache::for_encoder(cache_dir.path(), &enc).unwrap();
        let cold = KnowledgeBase::open_cached(kb_dir.path(), &enc, cache()).expect("open");
        let cold_texts = std::mem::take(&mut *enc.texts.lock().unwrap());
        let warm = KnowledgeBase::open_cached(kb_dir.path(), &enc, cache()).expect("open");
        assert_eq!(
            *enc.texts.lock().unwrap(),
            1,
            "the fingerprint probe, nothing else"
        );
        assert!(cold_texts > 2);
        assert_eq!(
            cold.current().embedded_texts(),
            warm.current().embedded_texts()
        );
        // An edit while stopped: only the edited article's new texts.
        *enc.texts.lock().unwrap() = 0;
        std::fs::write(
            kb_dir.path().join(ARTICLES_DIR).join("a2.md"),
            gen_article("a2", 5),
        )
        .expect("write");
        KnowledgeBase::open_cached(kb_dir.path(), &enc, cache()).expect("open");
        assert_eq!(
            *enc.texts.lock().unwrap(),
            1 + 2,
            "probe + the two new titles"
        );
    }

    #[test]
    fn broken_set_keeps_old_index_live() {
        let dir = tempfile::tempdir().expect("tempdir");
        let enc = HashEncoder::new();
        write_generation(dir.path(), 1, 2);
        let kb = KnowledgeBase::open(dir.path(), &enc).expect("open");
        let before = kb.current();
        std::fs::write(
            dir.path().join(ARTICLES_DIR).join("a0.md"),
            "+++\nid = \n+++\n",
        )
        .expect("write");
        assert!(matches!(kb.reload(&enc), Err(KbError::Invalid { .. })));
        assert!(Arc::ptr_eq(&before, &kb.current()));
    }

    #[test]
    fn reload_is_atomic_under_concurrent_searches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let enc = Arc::new(HashEncoder::new());
        write_generation(dir.path(), 0, 4);
        let kb = Arc::new(KnowledgeBase::open(dir.path(), enc.as_ref()).expect("open"));
        let stop = Arc::new(AtomicBool::new(false));
        let searchers: Vec<_> = (0..3)
            .map(|_| {
                let (kb, stop, enc) = (Arc::clone(&kb), Arc::clone(&stop), Arc::clone(&enc));
                std::thread::spawn(move || {
                    let embedding = enc.embed("can i return it");
                    let mut seen = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let index = kb.current();
                        let hits = index.search(&SearchQuery {
                            text: "can i return it",
                            embedding: Some(&embedding),
                            language: Language::En,
                            limit: 10,
                            mode: RetrievalMode::Hybrid,
                        });
                        // A complete index of generation g has g+4 articles, all from generation g.
                        assert_eq!(hits.len(), index.len());
                        let generation = index.articles()[0]
                            .title(Language::En)
                            .trim_start_matches("returns gen")
                            .to_string();
                        let g: usize = generation.parse().expect("generation number");
                        assert_eq!(index.len(), g + 4);
                        for hit in &hits {
                            assert_eq!(
                                hit.title,
                                format!("returns gen{g}"),
                                "mixed generations in one index"
                            );
                            assert!(hit.snippet.contains(&format!("gen{g}")), "{hit:?}");
                        }
                        seen += 1;
                    }
                    seen
                })
            })
            .collect();
        let started = Instant::now();
        for generation in 1..=6 {
            write_generation(dir.path(), generation, generation + 4);
            let out = kb.reload(enc.as_ref()).expect("reload");
            assert_eq!(out.articles, generation + 4);
        }
        stop.store(true, Ordering::Relaxed);
        let searches: usize = searchers
            .into_iter()
            .map(|t| t.join().expect("searcher panicked"))
            .sum();
        assert!(searches > 0, "no searches ran in {:?}", started.elapsed());
        assert_eq!(kb.current().len(), 10);
    }

    /// Lays out generation 1 (2 articles) with `lay_out`, opens and watches
    /// it, lays out generation 2 (3 articles) and expects the watcher to
    /// reload it on its own.
    fn watch_sees_the_next_generation(lay_out: fn(&Path, usize, usize)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let enc: Arc<dyn Encoder> = Arc::new(HashEncoder::new());
        lay_out(dir.path(), 1, 2);
        let kb = Arc::new(KnowledgeBase::open(dir.path(), enc.as_ref()).expect("open"));
        assert_eq!(kb.current().len(), 2);
        let (tx, rx) = mpsc::channel();
        let watcher = watch(
            Arc::clone(&kb),
            enc,
            Duration::from_millis(100),
            move |outcome| {
                let _ = tx.send(outcome.map(|o| o.articles));
            },
        )
        .expect("watch");
        lay_out(dir.path(), 2, 3);
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a reload within 10 s");
        assert_eq!(got.expect("reload ok"), 3);
        assert_eq!(kb.current().len(), 3);
        drop(watcher);
    }

    #[test]
    fn watch_reloads_after_a_quiet_period() {
        watch_sees_the_next_generation(write_generation);
    }

    /// Lays out generation `generation` the way a Kubernetes ConfigMap
    /// volume does: files in a hidden timestamped folder, `..data` pointing
    /// at it (swapped by an atomic rename), and a symlink per key.
    #[cfg(unix)]
    fn configmap_generation(dir: &Path, generation: usize, articles: usize) {
        use crate::set::SHOP_FILE;
        use std::os::unix::fs::symlink;
        let versioned = dir.join(format!("..2026_12_07_{generation}"));
        std::fs::create_dir_all(&versioned).expect("mkdir");
        std::fs::write(versioned.join(SHOP_FILE), crate::set::tests::SHOP).expect("shop");
        let mut keys = vec![SHOP_FILE.to_string()];
        for i in 0..articles {
            let name = format!("a{i}.md");
            std::fs::write(
                versioned.join(&name),
                gen_article(&format!("a{i}"), generation),
            )
            .expect("article");
            keys.push(name);
        }
        let tmp = dir.join("..data_tmp");
        symlink(versioned.file_name().unwrap(), &tmp).expect("symlink");
        std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
        for key in keys {
            let link = dir.join(&key);
            if link.symlink_metadata().is_err() {
                symlink(Path::new("..data").join(&key), &link).expect("key link");
            }
        }
    }

    /// The folder holds no `articles/` and hidden `..data` entries; the swap
    /// of `..data` is one rename in the watched folder.
    #[cfg(unix)]
    #[test]
    fn a_configmap_volume_loads_flat_and_hot_reloads_on_its_swap() {
        watch_sees_the_next_generation(configmap_generation);
    }
}
