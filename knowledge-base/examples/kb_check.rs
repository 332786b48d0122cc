//! Lints a knowledge-base folder and prints every problem as `file:line: message`.
//!
//! `cargo run -p xiaoer-kb --example kb_check -- [KB_DIR]` (default: this crate's folder).
//! Exits 1 when there are problems, so CI and editors can use it directly.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let problems = xiaoer_kb::check(&dir);
    for p in &problems {
        println!("{p}");
    }
    if problems.is_empty() {
        match xiaoer_kb::ArticleSet::load(&dir) {
            Ok(set) => {
                println!(
                    "{}: {} articles, version {}",
                    dir.display(),
                    set.len(),
                    set.version()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{e}");
                ExitCode::FAILURE
            }
        }
    } else {
        println!("{} problem(s)", problems.len());
        ExitCode::FAILURE
    }
}
