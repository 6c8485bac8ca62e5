//! One picture of the main window, rendered by wgpu on a software adapter (lavapipe in CI), and
//! compared with tests/snapshots/main_window.png. After a deliberate change of the layout:
//! `UPDATE_SNAPSHOTS=1 cargo test --test snapshot`, then look at the new picture before
//! committing it. No missing glyph is allowed: the tweet under the cursor carries emoji, which
//! the window draws with egui's bundled emoji font (a box would fail the test).
#![cfg(feature = "gui")]

use std::time::{Duration, Instant};

mod common;

use common::Settle;
use egui_kittest::Harness;
use tweetlab::app::TweetlabApp;

#[test]
fn main_window_with_sample_data() {
    // Its own workspace dir: the first open imports the CSV afresh, as on a new machine.
    let data = tempfile::tempdir().unwrap();
    std::env::set_var("TWEETLAB_DATA_DIR", data.path());
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
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
    h.settle();
    assert_eq!(h.state().shown_rows(), 203);
    // Row 22: "This new album is fire 🔥🔥 every track slaps", in the table and the detail panel.
    for _ in 0..22 {
        h.key_press(egui::Key::J);
    }
    h.settle();
    let row = h.state().selected_row().unwrap();
    assert!(
        h.state().workspace().unwrap().rows()[row]
            .text
            .contains('🔥'),
        "row {row}"
    );
    h.snapshot("main_window");
}
