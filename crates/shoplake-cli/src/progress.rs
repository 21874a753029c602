//! Progress bars on a terminal (rows/s, ETA), plain log lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shoplake_lake::Progress;

/// Draws library progress for a person, or logs it for a machine.
pub struct Bars {
    enabled: bool,
    quiet: bool,
    current: Mutex<Option<(ProgressBar, String, Instant)>>,
}

impl Bars {
    /// Bars when stderr is a terminal and not quiet; log lines otherwise.
    pub fn new(quiet: bool) -> Self {
        Bars {
            enabled: !quiet && std::io::stderr().is_terminal(),
            quiet,
            current: Mutex::new(None),
        }
    }

    fn style(unit: &str, known_total: bool) -> ProgressStyle {
        let template = match (unit, known_total) {
            ("bytes", true) => {
                "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
            }
            (_, true) => "{msg:24} [{bar:30}] {human_pos}/{human_len} {per_sec} ETA {eta}",
            (_, false) => "{spinner} {msg:24} {human_pos} {per_sec}",
        };
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }
}

impl Progress for Bars {
    fn start(&self, step: &str, total: Option<u64>, unit: &str) {
        let bar = if self.enabled {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_style(Self::style(unit, total.is_some()));
            bar.set_message(step.to_string());
            bar
        } else {
            if !self.quiet {
                tracing::info!("{step}: started");
            }
            ProgressBar::hidden()
        };
        if let Ok(mut current) = self.current.lock() {
            *current = Some((bar, step.to_string(), Instant::now()));
        }
    }

    fn advance(&self, done: u64) {
        if let Ok(current) = self.current.lock()
            && let Some((bar, _, _)) = current.as_ref()
        {
            bar.inc(done);
        }
    }

    fn finish(&self, summary: &str) {
        if let Ok(mut current) = self.current.lock()
            && let Some((bar, step, started)) = current.take()
        {
            bar.finish_and_clear();
            if !self.quiet {
                tracing::info!(
                    "{step}: {summary} ({:.1}s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
}
