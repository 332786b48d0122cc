//! Progress bars on stderr, only for a person watching a terminal: piped or
//! CI output stays clean and line-oriented.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps labelled `what`, hidden unless stderr is a terminal.
pub(crate) fn bar(len: u64, what: &str, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}

/// A spinner with a message for work of unknown length (reading a large
/// store), hidden unless stderr is a terminal.
pub fn spinner(what: &str) -> ProgressBar {
    let spinner = bar(0, what, "{prefix} {spinner} {msg} ({elapsed})");
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}
