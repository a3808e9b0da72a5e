//! The progress bar of the long commands (`import`, `tier run`, `verify`, and `replay` as
//! fast as possible), drawn on stderr only when it is a terminal: pipes, logs and tests see
//! no change. The libraries report `progress(done, total)` through a callback and know
//! nothing of the bar.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// What a bar counts.
pub enum Count {
    Bytes,
    /// Things, named (`partitions`, `events`).
    Items(&'static str),
}

/// Runs `f` with the callback of a bar labelled `doing`; the bar is cleared when `f`
/// returns, so that what the command prints next is not mixed with it.
pub fn with_progress<T>(doing: &str, count: Count, f: impl FnOnce(&dyn Fn(u64, u64)) -> T) -> T {
    let bar = Bar::new(doing, count);
    f(&bar.report())
}

/// A bar, cleared when dropped (also when `f` fails or panics).
struct Bar(ProgressBar);

impl Bar {
    fn new(doing: &str, count: Count) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(ProgressBar::hidden());
        }
        let counts = match count {
            Count::Bytes => "{bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)".to_owned(),
            Count::Items(what) => format!("{{human_pos}}/{{human_len}} {what} ({{eta}} left)"),
        };
        let style = ProgressStyle::with_template(&format!("{{msg}} [{{bar:40}}] {counts}"))
            .expect("a valid template")
            .progress_chars("=> ");
        Self(
            ProgressBar::new(0)
                .with_style(style)
                .with_message(doing.to_owned()),
        )
    }

    /// The callback the libraries take: `(done, total)`.
    fn report(&self) -> impl Fn(u64, u64) {
        let bar = self.0.clone();
        move |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
