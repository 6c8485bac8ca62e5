//! One picture of the main window, rendered by wgpu on a software adapter (lavapipe in CI), and
//! compared with tests/snapshots/main_window.png. After a deliberate change of the layout:
//! `UPDATE_SNAPSHOTS=1 cargo test --test snapshot`, then look at the new picture before
//! committing it.
#![cfg(feature = "gui")]

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use tweetlab::app::TweetlabApp;

#[test]
fn main_window_with_sample_data() {
    // Its own workspace dir: the first open imports the CSV afresh, as on a new machine.
    let data = tempfile::tempdir().unwrap();
    std::env::set_var("TWEETLAB_DATA_DIR", data.path());
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .allow_missing_glyphs()
        .wgpu()
        .build_ui_state(
            |ui, app: &mut TweetlabApp| app.show(ui),
            // A relative path, so the picture is the same wherever the checkout lives.
            TweetlabApp::new(
                &egui::Context::default(),
                Some("sample-data/train.csv".into()),
            ),
        );
    let start = Instant::now();
    while h.state().workspace().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sample data did not load"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.run();
    assert_eq!(h.state().shown_rows(), 203);
    h.snapshot("main_window");
}
