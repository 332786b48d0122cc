//! Where the public data sets come from — one rule for `xiaoer train`,
//! `xiaoer eval bench`, the examples and the tests: an explicit folder
//! (`--datasets-dir` or `XIAOER_DATASETS_DIR`), else `datasets/` in the
//! workspace once `scripts/fetch-datasets.sh` has filled it, else
//! `../shared/datasets` beside the workspace when present (machines with
//! no internet carry the converted sets there). docs/datasets.md has the
//! sets, their origins and licences.

use std::path::{Path, PathBuf};

use crate::ModelError;

/// The environment variable that names the data sets folder.
pub const DATASETS_ENV: &str = "XIAOER_DATASETS_DIR";

/// The folder `scripts/fetch-datasets.sh` fills, relative to the workspace.
pub const FETCHED_DIR: &str = "datasets";

/// The folder beside the workspace that machines without internet carry.
pub const SHARED_DIR: &str = "../shared/datasets";

/// The data sets folder: `explicit` when given, else the fetched folder if
/// it exists, else the shared one if it exists, else the fetched folder
/// (so a missing set is reported where fetching would put it).
pub fn resolve_datasets_dir(explicit: Option<&Path>, workspace: &Path) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    let fetched = workspace.join(FETCHED_DIR);
    let shared = workspace.join(SHARED_DIR);
    if !fetched.is_dir() && shared.is_dir() {
        shared
    } else {
        fetched
    }
}

/// The error for a public set that is not in `datasets_dir`: names the
/// places looked at and the command that fetches it.
pub fn missing_set(datasets_dir: &Path, dataset: &str) -> ModelError {
    ModelError::Data {
        path: datasets_dir.join(dataset).display().to_string(),
        reason: format!(
            "public data set {dataset:?} not found; fetch it with `scripts/fetch-datasets.sh {dataset}` \
             (into {FETCHED_DIR}/), or point --datasets-dir / {DATASETS_ENV} at a folder that has it \
             (without either, {FETCHED_DIR}/ and then {SHARED_DIR} are used)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_beats_fetched_beats_shared() {
        let root = tempfile::tempdir().unwrap();
        let workspace = root.path().join("main");
        std::fs::create_dir_all(&workspace).unwrap();
        let explicit = root.path().join("mine");
        assert_eq!(resolve_datasets_dir(Some(&explicit), &workspace), explicit);
        // Neither exists: the fetched folder, where fetching would put them.
        assert_eq!(
            resolve_datasets_dir(None, &workspace),
            workspace.join(FETCHED_DIR)
        );
        std::fs::create_dir_all(root.path().join("shared/datasets")).unwrap();
        assert_eq!(
            resolve_datasets_dir(None, &workspace),
            workspace.join(SHARED_DIR)
        );
        std::fs::create_dir_all(workspace.join(FETCHED_DIR)).unwrap();
        assert_eq!(
            resolve_datasets_dir(None, &workspace),
            workspace.join(FETCHED_DIR)
        );
    }

    #[test]
    fn the_missing_set_error_says_how_to_get_it() {
        let message = missing_set(Path::new("/nowhere"), "banking77").to_string();
        for needed in [
            "banking77",
            "scripts/fetch-datasets.sh banking77",
            DATASETS_ENV,
            SHARED_DIR,
        ] {
            assert!(message.contains(needed), "{needed} missing from: {message}");
        }
    }
}
