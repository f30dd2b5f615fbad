//! Progress bars on stderr: sealing, each upload of a send, and an open to
//! a file. Hidden when stderr is not a terminal (or `TERM=dumb`) and with
//! `--json`, so pipes, logs and scripts get none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mayfly_node::client::{Progress, ProgressFn};

/// A progress callback drawing one bar per transfer.
pub fn bars(enabled: bool) -> ProgressFn {
    let target = if enabled {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let multi = MultiProgress::with_draw_target(target);
    let bars: Mutex<HashMap<String, ProgressBar>> = Mutex::new(HashMap::new());
    // The bar takes what the terminal's width leaves, so a line never wraps.
    let style = ProgressStyle::with_template(
        "{msg:24} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    Arc::new(move |p| {
        let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            Progress::Start { label, total } => {
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(style.clone());
                bar.set_message(label.clone());
                bars.insert(label, bar);
            }
            Progress::Advance { label, bytes } => {
                if let Some(bar) = bars.get(&label) {
                    bar.inc(bytes);
                }
            }
            Progress::Finish { label } => {
                if let Some(bar) = bars.remove(&label) {
                    bar.finish_and_clear();
                }
            }
            _ => {}
        }
    })
}
