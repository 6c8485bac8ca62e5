//! The workbench driven like a user would, without a display (egui_kittest): open the sample
//! data, move and relabel with the keyboard, undo, search, train a tiny model and watch the
//! curve and the predictions fill.
#![cfg(feature = "gui")]

mod common;

use std::time::{Duration, Instant};

use egui::Key;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use tweetlab::app::TweetlabApp;

fn harness() -> Harness<'static, TweetlabApp> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        // Tweets carry emoji that egui's bundled fonts lack; the app draws a box for them (egui's
        // default), the harness would panic.
        .allow_missing_glyphs()
        .build_ui_state(
            |ui, app: &mut TweetlabApp| app.show(ui),
            TweetlabApp::new(&egui::Context::default(), None),
        )
}

/// Steps frames until `done` holds (background threads need real time).
fn wait_until(
    h: &mut Harness<'static, TweetlabApp>,
    what: &str,
    done: impl Fn(&TweetlabApp) -> bool,
) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}; error: {:?}",
            h.state().error()
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.run();
}

fn open_sample(h: &mut Harness<'static, TweetlabApp>, dir: &std::path::Path) {
    // Workspaces go to a fresh data dir so that each test starts from the CSV's own labels.
    std::env::set_var("TWEETLAB_DATA_DIR", dir.join("data"));
    let csv = dir.join("train.csv");
    std::fs::copy(common::sample_train_csv(), &csv).unwrap();
    h.state_mut().open(csv);
    wait_until(h, "the CSV to load", |app| app.workspace().is_some());
}

#[test]
fn keyboard_relabel_undo_and_search() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness();
    open_sample(&mut h, tmp.path());
    assert_eq!(h.state().shown_rows(), 203);

    assert_eq!(
        h.state().selected_row(),
        Some(0),
        "the first tweet is selected on load"
    );
    h.key_press(Key::J);
    h.key_press(Key::J);
    h.key_press(Key::K);
    h.run();
    assert_eq!(h.state().selected_row(), Some(1));
    let before = h.state().workspace().unwrap().rows()[1].label;
    let flipped = Some(1 - before.unwrap());
    h.key_press(if flipped == Some(1) {
        Key::Num1
    } else {
        Key::Num0
    });
    h.run();
    assert_eq!(h.state().workspace().unwrap().rows()[1].label, flipped);
    assert_eq!(h.state().workspace().unwrap().edited_rows(), 1);
    h.key_press(Key::X);
    h.run();
    assert_eq!(h.state().workspace().unwrap().rows()[1].label, None);

    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::Z);
    h.run();
    assert_eq!(h.state().workspace().unwrap().rows()[1].label, flipped);
    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::Z);
    h.run();
    assert_eq!(h.state().workspace().unwrap().rows()[1].label, before);
    h.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, Key::Z);
    h.run();
    assert_eq!(h.state().workspace().unwrap().rows()[1].label, flipped);

    // `/` focuses the search box, then typing filters the table.
    h.key_press(Key::Slash);
    h.run();
    h.get_by_label("Search:").type_text("flood");
    h.run();
    let shown = h.state().shown_rows();
    let expected = h
        .state()
        .workspace()
        .unwrap()
        .rows()
        .iter()
        .filter(|t| t.text.to_lowercase().contains("flood") || t.keyword.contains("flood"))
        .count();
    assert!(shown > 0 && shown < 203);
    assert_eq!(shown, expected);
}

#[test]
fn training_from_the_window_fills_curves_and_predictions() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    common::write_tiny_model(&model, 7);
    let mut h = harness();
    {
        let (source, config) = h.state_mut().train_settings();
        *source = model.display().to_string();
        *config = common::tiny_train_config();
    }
    open_sample(&mut h, tmp.path());
    h.get_by_label("Start training").click();
    h.run();
    wait_until(&mut h, "training to start", |app| {
        app.is_training() || app.error().is_some()
    });
    wait_until(&mut h, "predictions", |app| {
        app.predictions().iter().all(Option::is_some) || app.error().is_some()
    });
    assert_eq!(h.state().error(), None);
    assert!(!h.state().training_losses().is_empty());
    assert_eq!(h.state().predictions().len(), 203);
}
