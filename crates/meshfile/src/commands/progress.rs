//! Progress as it happens: traces of the requests to CAS (`-v`), bars of the sessions
//! written and the image bytes copied (on a terminal only).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use meshfile_app::connection::{Observer, Outcome};
use meshfile_plan::ImagePlan;
use meshfile_plan::delivery::Step;
use meshfile_registry::copy::{BlobTransfer, Progress};

use crate::commands::steps::written;
use crate::render;

/// Traces requests with `-v`; a progress bar of the writes on a terminal.
pub struct Trace {
    verbose: bool,
    quiet: bool,
    /// How the target is named in errors.
    target: String,
    progress: Option<indicatif::ProgressBar>,
}

impl Trace {
    pub fn new(target: String, verbose: bool, writes: usize, quiet: bool) -> Trace {
        use std::io::IsTerminal;
        let progress = (!quiet && writes >= 2 && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(writes as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "writing sessions {bar:30} {pos}/{len} {elapsed}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Trace {
            verbose,
            quiet,
            target,
            progress,
        }
    }

    fn say(&self, text: String) {
        match &self.progress {
            Some(bar) => bar.println(text.trim_end()),
            None => render::eprint(&text),
        }
    }
}

impl Observer for Trace {
    fn request(&self, what: &str, session: &str, outcome: &str, elapsed: Duration) {
        if self.verbose {
            self.say(format!(
                "  {what} {session} -> {outcome} ({} ms)\n",
                elapsed.as_millis()
            ));
        }
    }

    fn written(&self, _step: &Step, _outcome: &Outcome) {
        if let Some(bar) = &self.progress {
            bar.inc(1);
        }
    }

    fn level(&self, done: &[(&Step, &Outcome)]) {
        let text: String = (done.iter())
            .map(|(step, outcome)| written(&self.target, step, outcome, self.quiet))
            .collect();
        if !text.is_empty() {
            self.say(text);
        }
    }

    fn finished(&self) {
        if let Some(bar) = &self.progress {
            bar.finish_and_clear();
        }
    }
}

/// A bar of the bytes copied (blobs found at the destination or mounted count as done), on a
/// terminal; nothing otherwise (a line per image follows).
#[derive(Clone)]
pub struct ImageBar {
    bar: Option<indicatif::ProgressBar>,
    blobs: Arc<AtomicUsize>,
}

impl ImageBar {
    pub fn new(plan: &ImagePlan, quiet: bool) -> ImageBar {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            let template = format!(
                "copying {} image(s) {{wide_bar}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} {{msg}}",
                plan.copies.len()
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            bar
        });
        ImageBar {
            bar,
            blobs: Arc::default(),
        }
    }
}

impl Progress for ImageBar {
    fn planned(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc_length(bytes);
        }
    }

    fn advanced(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn blob(&self, _image: &str, _digest: &str, _size: u64, _transfer: BlobTransfer) {
        let done = self.blobs.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{done} blob{}", render::plural(done)));
        }
    }

    fn finished(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
