//! The workbench driven like a user would, without a display (egui_kittest): open the sample
//! data, move and relabel with the keyboard, undo, filter, sort, search, bulk relabel, save;
//! train a tiny model and watch the curves, predictions and word contributions fill; export
//! and read the files back; reopen and find the run and its predictions again.
#![cfg(feature = "gui")]

mod common;
mod pg;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::Settle;
use egui::accesskit::Role;
use egui::Key;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use tweetlab::app::{
    CurveView, DuplicateFilter, LabelFilter, NextToLabelView, ReviewView, SortColumn, TweetlabApp,
};
use tweetlab::data::duplicates::find_duplicates;
use tweetlab::data::load_csv;
use tweetlab::engine::kernels::{MatmulPath, Precision};

fn harness() -> Harness<'static, TweetlabApp> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        // The bundled Noto Emoji (egui's monochrome_emoji_fonts) lacks newer emoji such as 🧠 and
        // U+FFFD, which the sample data and the messy-file tests carry: those draw as boxes.
        .allow_missing_glyphs()
        .build_ui_state(
            |ui, app: &mut TweetlabApp| app.show(ui),
            TweetlabApp::new(&egui::Context::default(), None),
        )
}

/// One data dir for the whole test binary (the variable is process-wide and tests run in
/// parallel); workspaces are keyed by CSV path, and each test opens its own copy of the CSV.
fn data_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap()).path();
    std::env::set_var("TWEETLAB_DATA_DIR", dir);
    dir
}

/// Every run record under `dir`.
fn run_records(dir: &Path) -> Vec<tweetlab::engine::train::RunRecord> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(run_records(&path));
            if let Ok(Some(r)) = tweetlab::engine::train::RunRecord::read(&path) {
                out.push(r);
            }
        }
    }
    out
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
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}; error: {:?}; status: {}; team: {:?}",
            h.state().error(),
            h.state().status(),
            h.state().team_view()
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.settle();
}

/// Copies the sample data into `dir` and opens it.
fn open_sample(h: &mut Harness<'static, TweetlabApp>, dir: &Path) -> PathBuf {
    data_dir();
    let csv = dir.join("train.csv");
    if !csv.exists() {
        std::fs::copy(common::sample_train_csv(), &csv).unwrap();
    }
    h.state_mut().open(csv.clone());
    wait_until(h, "the CSV to load", |app| {
        app.workspace().is_some() && !app.is_loading()
    });
    csv
}

fn label_of(h: &Harness<'static, TweetlabApp>, row: usize) -> Option<u8> {
    h.state().workspace().unwrap().rows()[row].label
}

#[test]
fn keyboard_relabel_undo_and_search() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness();
    open_sample(&mut h, tmp.path());
    assert_eq!(h.state().shown_rows(), 203);
    // Labelling in place: advancing is tested below.
    h.state_mut().set_advance_after_labelling(false);

    assert_eq!(
        h.state().selected_row(),
        Some(0),
        "the first tweet is selected on load"
    );
    h.key_press(Key::J);
    h.key_press(Key::J);
    h.key_press(Key::K);
    h.settle();
    assert_eq!(h.state().selected_row(), Some(1));
    let before = label_of(&h, 1);
    let flipped = Some(1 - before.unwrap());
    h.key_press(if flipped == Some(1) {
        Key::Num1
    } else {
        Key::Num0
    });
    h.settle();
    assert_eq!(label_of(&h, 1), flipped);
    assert_eq!(h.state().workspace().unwrap().edited_rows(), 1);
    h.key_press(Key::X);
    h.settle();
    assert_eq!(label_of(&h, 1), None);

    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::Z);
    h.settle();
    assert_eq!(label_of(&h, 1), flipped);
    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::Z);
    h.settle();
    assert_eq!(label_of(&h, 1), before);
    h.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, Key::Z);
    h.settle();
    assert_eq!(label_of(&h, 1), flipped);

    // A click on a row moves the cursor there.
    let third = h.state().workspace().unwrap().rows()[2].text.clone();
    h.get_all_by_label(&third).next().unwrap().click();
    h.settle();
    assert_eq!(h.state().selected_row(), Some(2), "click selects the row");
    h.key_press(Key::K);
    h.settle();

    // The detail panel shows the selected tweet; enter hides and shows it.
    let text = h.state().workspace().unwrap().rows()[1].text.clone();
    // Once in the table, once in the detail panel.
    assert_eq!(
        h.query_all_by_label(&text).count(),
        2,
        "detail shows the tweet"
    );
    h.key_press(Key::Enter);
    h.settle();
    assert!(!h.state().settings().show_detail);
    assert_eq!(h.query_all_by_label(&text).count(), 1);
    h.key_press(Key::Enter);
    h.settle();
    assert!(h.state().settings().show_detail);

    // `/` focuses the search box, then typing filters the table.
    h.key_press(Key::Slash);
    h.settle();
    h.get_by_label("Search:").type_text("flood");
    h.settle();
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
fn filters_sort_bulk_relabel_and_save() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness();
    let csv = open_sample(&mut h, tmp.path());
    let rows = h.state().workspace().unwrap().rows().to_vec();

    // Conflicting duplicates: exactly the rows of groups that carry both labels.
    let dups = find_duplicates(&rows);
    let conflicting: usize = dups.conflicting().map(|g| g.rows.len()).sum();
    assert!(
        conflicting > 0,
        "the sample data has conflicting duplicates"
    );
    h.state_mut().filters_mut().duplicates = DuplicateFilter::Conflicts;
    h.settle();
    assert_eq!(h.state().shown_rows(), conflicting);
    assert!(
        h.query_all_by_label_contains("conflict").count() >= conflicting.min(10),
        "flags column"
    );
    h.state_mut().filters_mut().duplicates = DuplicateFilter::Any;

    // Sort by id, descending: the header click cycles ascending, descending, file order.
    h.get_by_label("id").click();
    h.settle();
    h.get_by_label("id ⏶").click();
    h.settle();
    let ids: Vec<i64> = h
        .state()
        .shown()
        .iter()
        .map(|&i| rows[i].id.parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 203);
    assert!(ids.windows(2).all(|w| w[0] >= w[1]), "descending ids");
    *h.state_mut().sort_mut() = Some((SortColumn::Id, true));
    h.settle();
    assert_eq!(rows[h.state().shown()[0]].id, "1");

    // Label filter, then "Label all shown" as one undo step.
    h.state_mut().filters_mut().label = LabelFilter::Is(0);
    h.settle();
    let zeros: Vec<usize> = h.state().shown().to_vec();
    assert_eq!(
        zeros.len(),
        rows.iter().filter(|t| t.label == Some(0)).count()
    );
    h.state_mut().filters_mut().label = LabelFilter::Any;
    h.state_mut().filters_mut().keyword = Some(rows[zeros[0]].keyword.clone());
    h.settle();
    let keyword_rows: Vec<usize> = h.state().shown().to_vec();
    assert!(keyword_rows
        .iter()
        .all(|&i| rows[i].keyword == rows[zeros[0]].keyword));
    h.get_by_label("Label all shown").click();
    h.settle();
    h.get_by_label("as 1 (disaster)").click();
    h.settle();
    assert!(keyword_rows.iter().all(|&i| label_of(&h, i) == Some(1)));
    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::Z);
    h.settle();
    assert!(
        keyword_rows
            .iter()
            .all(|&i| label_of(&h, i) == rows[i].label),
        "one undo restores the whole bulk edit"
    );

    // Relabel one row, then Save writes it into the CSV after asking.
    h.state_mut().filters_mut().keyword = None;
    h.settle();
    let row = h.state().selected_row().unwrap();
    let flipped = 1 - rows[row].label.unwrap();
    h.key_press(if flipped == 1 { Key::Num1 } else { Key::Num0 });
    h.settle();
    let untouched = std::fs::read(&csv).unwrap();
    h.get_by_label("Save").click();
    h.settle();
    assert_eq!(
        std::fs::read(&csv).unwrap(),
        untouched,
        "nothing written before the user confirms"
    );
    h.get_by_label("Overwrite the CSV").click();
    h.settle();
    wait_until(&mut h, "the save", |app| !app.is_exporting());
    assert_eq!(h.state().error(), None);
    let saved = load_csv(&csv).unwrap();
    assert_eq!(saved.rows.len(), 203);
    assert_eq!(saved.rows[row].label, Some(flipped));
    let others_same = saved
        .rows
        .iter()
        .zip(&rows)
        .enumerate()
        .all(|(i, (s, r))| i == row || (s.label == r.label && s.text == r.text));
    assert!(others_same);
}

#[test]
fn train_explain_export_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    common::write_tiny_model(&model, 7);
    let mut h = harness();
    {
        let settings = h.state_mut().train_settings();
        settings.model = model.display().to_string();
        settings.config = common::tiny_train_config();
    }
    let csv = open_sample(&mut h, tmp.path());
    // The Precision menu names what auto runs here; bf16 is picked for this run.
    let auto = format!("auto ({} on this CPU)", MatmulPath::auto_here().name());
    h.get_by_role_and_label(Role::ComboBox, "Precision").click();
    h.run();
    assert!(h.query_by_label(&auto).is_some(), "{auto}");
    h.get_by_label("bf16").click();
    h.run();
    assert_eq!(
        h.state_mut().train_settings().config.precision,
        Precision::Bf16
    );
    h.get_by_label("Start training").click();
    h.step();
    wait_until(&mut h, "training to start", |app| {
        app.is_training() || app.error().is_some()
    });
    wait_until(&mut h, "predictions", |app| {
        app.predictions().iter().all(Option::is_some) || app.error().is_some()
    });
    assert_eq!(h.state().error(), None);
    let record = run_records(data_dir())
        .into_iter()
        .find(|r| r.base_model.contains(&model.display().to_string()))
        .expect("the run's record");
    assert!(record.precision.starts_with("bf16"), "{}", record.precision);
    assert!(!h.state().training_losses().is_empty());
    assert_eq!(
        h.state().validation_f1().len(),
        common::tiny_train_config().epochs
    );
    assert!(
        h.query_by_label_contains("Validation: F1").is_some(),
        "confusion matrix and metrics"
    );
    assert_eq!(h.state().predictions().len(), 203);

    // The fast baseline goes on the same validation plot.
    h.get_by_label("Fast baseline").click();
    h.settle();
    wait_until(&mut h, "the baseline", |app| {
        app.baseline().is_some() || app.error().is_some()
    });
    assert_eq!(h.state().error(), None);
    let baseline = h.state().baseline().unwrap();
    let (f1, accuracy) = (baseline.f1, baseline.accuracy);
    assert!((0.0..=1.0).contains(&f1) && accuracy > 0.0);
    assert!(h.query_by_label_contains("Fast baseline (frozen").is_some());

    // Word contributions of the selected tweet, computed on the explainer thread.
    let row = h.state().selected_row().unwrap();
    wait_until(&mut h, "word contributions", |app| {
        app.explanation(row).is_some()
    });
    let explanation = h.state().explanation(row).unwrap().clone().unwrap();
    let text = &h.state().workspace().unwrap().rows()[row].text;
    assert_eq!(&explanation.text, text);
    assert!(!explanation.words.is_empty());
    assert!(explanation
        .words
        .iter()
        .all(|w| text.get(w.start..w.end) == Some(w.word.as_str())));
    assert!(
        h.query_by_label("contribution").is_some(),
        "legend and top words"
    );

    // Export: the Kaggle submission, through the dialog, to the suggested path.
    h.get_by_label("Export…").click();
    h.settle();
    h.get_by_role_and_label(Role::Button, "Export").click();
    h.settle();
    wait_until(&mut h, "the export", |app| !app.is_exporting());
    assert_eq!(h.state().error(), None);
    let submission = std::fs::read_to_string(tmp.path().join("submission.csv")).unwrap();
    let lines: Vec<&str> = submission.lines().collect();
    assert_eq!(lines[0], "id,target");
    assert_eq!(lines.len(), 204);
    let rows = h.state().workspace().unwrap().rows().to_vec();
    let p = h.state().predictions().to_vec();
    for (i, line) in lines[1..].iter().enumerate() {
        let predicted = u8::from(p[i].as_ref().unwrap()[1] >= 0.5);
        assert_eq!(*line, format!("{},{predicted}", rows[i].id));
    }
    // Full predictions: probabilities as the table shows them.
    h.get_by_label("Export…").click();
    h.settle();
    h.get_by_label("Full predictions with probabilities")
        .click();
    h.settle();
    h.get_by_role_and_label(Role::Button, "Export").click();
    h.settle();
    wait_until(&mut h, "the export", |app| !app.is_exporting());
    let full = std::fs::read_to_string(tmp.path().join("train-predictions.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(full.as_bytes());
    let header = reader.headers().unwrap().clone();
    let p_col = header.iter().position(|c| c == "p_disaster").unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 203);
    for (i, r) in records.iter().enumerate() {
        let written: f32 = r[p_col].parse().unwrap();
        assert!((written - p[i].as_ref().unwrap()[1]).abs() < 1e-5);
    }

    // Reopening the workspace brings back the run's curves and its predictions.
    drop(h);
    let mut h = harness();
    h.state_mut().open(csv);
    wait_until(&mut h, "reopen", |app| app.workspace().is_some());
    assert_eq!(h.state().past_runs(), 1);
    let restored = h.state().predictions().to_vec();
    assert_eq!(restored.len(), 203);
    for (a, b) in restored.iter().zip(&p) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        assert_eq!(a.len(), 2);
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6));
    }
}

/// The review window on the sample data: suspects found by the fast model (MiniLM, fetched
/// like the app does), `a` accepts a suggestion, `s` keeps a label (both in the history), and
/// on the conflicts tab `1` labels a whole conflicting group.
#[test]
fn review_queue_accepts_keeps_and_resolves_conflicts() {
    use tweetlab::data::store::Action;

    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness();
    open_sample(&mut h, tmp.path());
    h.get_by_label("Review…").click();
    h.settle();
    h.get_by_label("Find suspect labels").click();
    h.settle();
    wait_until(&mut h, "suspects", |app| {
        app.review_state().found.is_some() || app.error().is_some()
    });
    assert_eq!(h.state().error(), None);
    let ReviewView {
        found, position, ..
    } = h.state().review_state();
    assert!(found.unwrap() > 0);
    assert_eq!(position, 0);
    // The cursor follows the queue; accept the first suggestion.
    let first = h.state().selected_row().unwrap();
    let given = h.state().workspace().unwrap().rows()[first].label.unwrap();
    h.key_press(Key::A);
    h.settle();
    assert_eq!(label_of(&h, first), Some(1 - given));
    // Keep the second: label unchanged, the review recorded.
    let second = h.state().selected_row().unwrap();
    assert_ne!(second, first);
    let kept = label_of(&h, second);
    h.key_press(Key::S);
    h.settle();
    assert_eq!(label_of(&h, second), kept);
    assert_eq!(h.state().review_state().position, 2);
    let history = h.state().workspace().unwrap().history().unwrap();
    assert_eq!(history.len(), 2, "{history:?} {:?}", h.state().error());
    assert_eq!((history[0].action, history[0].row), (Action::Edit, first));
    assert_eq!(
        (history[1].action, history[1].row),
        (Action::Review, second)
    );
    assert!(history[0].description.contains("suggestion accepted"));

    // Conflicts: `1` labels the whole group, and one fewer group conflicts.
    let rows = h.state().workspace().unwrap().rows().to_vec();
    let before = find_duplicates(&rows).conflicting().count();
    h.get_by_label_contains("Conflicts (").click();
    h.settle();
    let row = h.state().selected_row().unwrap();
    h.key_press(Key::Num1);
    h.settle();
    let rows = h.state().workspace().unwrap().rows().to_vec();
    let dups = find_duplicates(&rows);
    assert_eq!(dups.conflicting().count(), before - 1);
    let group = &dups.groups[dups.group_of[row].unwrap()];
    assert!(group.rows.iter().all(|&r| rows[r].label == Some(1)));
}

/// The next-to-label queue: unlabelled rows ranked by the fast model; `1` / `0` label them and
/// after 20 labels the queue is re-ranked on the larger labelled set.
#[test]
fn label_next_queue_labels_unlabelled_rows_and_reranks() {
    let tmp = tempfile::tempdir().unwrap();
    data_dir();
    // The sample data with every third label removed.
    let data = tweetlab::data::load_csv(&common::sample_train_csv()).unwrap();
    let csv = tmp.path().join("partly.csv");
    let mut out = String::from("id,keyword,location,text,target\n");
    let mut w = csv::Writer::from_writer(Vec::new());
    for (i, t) in data.rows.iter().enumerate() {
        let label = if i % 3 == 0 {
            String::new()
        } else {
            t.label.unwrap().to_string()
        };
        w.write_record([&t.id, &t.keyword, &t.location, &t.text, &label])
            .unwrap();
    }
    out.push_str(&String::from_utf8(w.into_inner().unwrap()).unwrap());
    std::fs::write(&csv, out).unwrap();

    let mut h = harness();
    h.state_mut().open(csv);
    wait_until(&mut h, "the CSV to load", |app| app.workspace().is_some());
    let unlabelled = |h: &Harness<'static, TweetlabApp>| {
        h.state()
            .workspace()
            .unwrap()
            .rows()
            .iter()
            .filter(|t| t.label.is_none())
            .count()
    };
    let before = unlabelled(&h);
    assert_eq!(before, 68);
    h.get_by_label("Review…").click();
    h.settle();
    h.get_by_label("Label next").click();
    h.settle();
    h.get_by_label("Rank unlabelled rows").click();
    h.settle();
    wait_until(&mut h, "the ranking", |app| {
        app.next_to_label_state().ranked.is_some() || app.error().is_some()
    });
    assert_eq!(h.state().error(), None);
    assert_eq!(h.state().next_to_label_state().ranked, Some(before));
    let first = h.state().selected_row().unwrap();
    assert_eq!(label_of(&h, first), None, "the queue holds unlabelled rows");
    h.key_press(Key::Num1);
    h.settle();
    assert_eq!(label_of(&h, first), Some(1));
    for _ in 1..20 {
        h.key_press(Key::Num0);
        h.settle();
    }
    assert_eq!(unlabelled(&h), before - 20);
    wait_until(&mut h, "the re-ranking", |app| {
        let NextToLabelView {
            ranked,
            position,
            ranking,
        } = app.next_to_label_state();
        !ranking && position == 0 && ranked == Some(before - 20)
    });
    let head = h.state().selected_row().unwrap();
    assert_eq!(label_of(&h, head), None);

    // The simulated learning curve, drawn in the window.
    h.get_by_label("Queue against random order (simulated on the labelled rows)")
        .click();
    h.settle();
    h.get_by_label("Simulate a learning curve").click();
    h.settle();
    wait_until(&mut h, "the learning curve", |app| {
        app.learning_curve().is_some() || app.error().is_some()
    });
    assert_eq!(h.state().error(), None);
    // 155 labelled rows now: 124 in the pool, labelled 20 at a time from 20.
    assert_eq!(
        h.state().learning_curve(),
        Some(CurveView {
            queue: 7,
            random: 7
        })
    );
}

/// Full mode from the review window: the Train panel's model (the tiny one) is fine-tuned once
/// per fold on a worker, and the suspects it finds fill the same queue.
#[test]
fn review_full_mode_fine_tunes_per_fold() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    common::write_tiny_model(&model, 7);
    let mut h = harness();
    {
        let settings = h.state_mut().train_settings();
        settings.model = model.display().to_string();
        settings.config = common::tiny_train_config();
    }
    open_sample(&mut h, tmp.path());
    h.get_by_label("Review…").click();
    h.settle();
    h.get_by_label_contains("Full mode:").click();
    h.settle();
    h.get_by_label("Find suspect labels").click();
    h.settle();
    wait_until(&mut h, "suspects by fine-tuning", |app| {
        app.review_state().found.is_some() || app.error().is_some()
    });
    assert_eq!(h.state().error(), None);
    let ReviewView {
        found,
        searching: running,
        ..
    } = h.state().review_state();
    assert!(!running);
    assert!(found.unwrap() > 0 && found.unwrap() < 203);
}

/// A file with what the importer cannot use: a ragged row (line 3), invalid UTF-8 (line 5) and a
/// quote never closed (line 6).
const MESSY: &[u8] =
    b"id,text,target\n1,ok,1\n2,a,b,c,0\n3,fine,0\n4,caf\xe9 latin-1,1\n5,\"open quote,0\n6,last,1\n";

/// Opens `csv` and waits until it is open or has failed.
fn open_and_wait(h: &mut Harness<'static, TweetlabApp>, csv: &Path) {
    data_dir();
    h.state_mut().open(csv.to_path_buf());
    wait_until(h, "the CSV to load or fail", |app| !app.is_loading());
}

/// Clicks Save, confirms, and waits for the write.
fn save(h: &mut Harness<'static, TweetlabApp>) {
    h.get_by_label("Save").click();
    h.settle();
    h.get_by_label("Overwrite the CSV").click();
    // One frame starts the job; its event may arrive at any frame after, so step, not run.
    h.step();
    wait_until(h, "the save", |app| !app.is_exporting());
}

#[test]
fn save_changes_label_cells_only_and_keeps_every_line_it_did_not_understand() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("messy.csv");
    std::fs::write(&csv, MESSY).unwrap();
    // The analyst reaches the file through a link: Save writes the file, the link stays one.
    let link = tmp.path().join("link.csv");
    std::os::unix::fs::symlink(&csv, &link).unwrap();
    let mut h = harness();
    open_and_wait(&mut h, &link);
    assert_eq!(h.state().workspace().unwrap().rows().len(), 4);
    assert!(
        h.state().status().contains("3 problem rows"),
        "{}",
        h.state().status()
    );
    assert_eq!(h.state().selected_row(), Some(0));
    h.key_press(Key::Num0);
    h.settle();
    save(&mut h);
    assert_eq!(h.state().error(), None);
    let mut expected = String::from_utf8_lossy(MESSY)
        .replace("1,ok,1", "1,ok,0")
        .into_bytes();
    // The lossy view above replaced the invalid byte; the file must keep the byte itself.
    let at = MESSY.iter().position(|&b| b == 0xe9).unwrap();
    expected.splice(at..at + 3, [0xe9]);
    assert_eq!(std::fs::read(&csv).unwrap(), expected);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // Reopened, the problems found at import are listed again.
    let mut h = harness();
    open_and_wait(&mut h, &link);
    assert!(
        h.state().status().contains("3 problem rows"),
        "{}",
        h.state().status()
    );
}

#[test]
fn a_csv_changed_elsewhere_is_never_overwritten_and_opens_again_with_the_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness();
    let csv = open_sample(&mut h, tmp.path());
    let first = h.state().workspace().unwrap().rows()[0].label.unwrap();
    h.key_press(if first == 1 { Key::Num0 } else { Key::Num1 });
    h.settle();
    // A spreadsheet appends a row while the window is open.
    let mut changed = std::fs::read(&csv).unwrap();
    changed.extend_from_slice(b"99999,,,a row added elsewhere,1\n");
    std::fs::write(&csv, &changed).unwrap();
    save(&mut h);
    let error = h.state().error().unwrap_or_default().to_string();
    assert!(error.contains("changed since it was imported"), "{error}");
    assert_eq!(
        std::fs::read(&csv).unwrap(),
        changed,
        "the new content is kept"
    );
    // Opened again: the new rows, with the edit carried over.
    drop(h);
    let mut h = harness();
    open_and_wait(&mut h, &csv);
    let ws = h.state().workspace().unwrap();
    assert_eq!(ws.rows().len(), 204);
    assert_eq!(ws.rows()[0].label, Some(1 - first));
    let error = h.state().error().unwrap_or_default();
    assert!(
        error.contains("1 of your label edits were carried over"),
        "{error}"
    );
}

#[test]
fn a_workspace_left_half_made_by_a_crash_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    data_dir();
    let csv = tmp.path().join("train.csv");
    std::fs::copy(common::sample_train_csv(), &csv).unwrap();
    // What a kill during the first import left before the fix: an empty database file.
    let db = tweetlab::data::store::Workspace::default_path(&csv);
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&db, b"").unwrap();
    let mut h = harness();
    open_and_wait(&mut h, &csv);
    assert_eq!(
        h.state().workspace().map(|w| w.rows().len()),
        Some(203),
        "{:?}",
        h.state().error()
    );
}

/// A label column of three named values: digit keys 1…3 label with the classes in order, 0 and
/// 4 do nothing, the table and its label filter show the names, and Save writes the values.
#[test]
fn digit_keys_label_with_named_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("urgency.csv");
    std::fs::write(
        &csv,
        "id;Tweet Text;label\n1;bridge down;high\n2;power back;low\n3;nice day;none\n4;road closed;\n",
    )
    .unwrap();
    let mut h = harness();
    open_and_wait(&mut h, &csv);
    let labels = h.state().workspace().unwrap().layout().labels.clone();
    assert_eq!(labels.names(), vec!["high", "low", "none"]);
    // Row 3 (unlabelled) under the cursor.
    for _ in 0..3 {
        h.key_press(Key::J);
    }
    h.settle();
    assert_eq!(h.state().selected_row(), Some(3));
    h.key_press(Key::Num0);
    h.key_press(Key::Num4);
    h.settle();
    assert_eq!(label_of(&h, 3), None, "no class has key 0 or 4");
    h.key_press(Key::Num3);
    h.settle();
    assert_eq!(label_of(&h, 3), Some(2));
    h.key_press(Key::Num1);
    h.settle();
    assert_eq!(label_of(&h, 3), Some(0));
    assert!(
        h.query_all_by_label("high").count() >= 2,
        "the table shows names"
    );
    h.state_mut().filters_mut().label = LabelFilter::Is(0);
    h.settle();
    assert_eq!(h.state().shown(), &[0, 3]);
    save(&mut h);
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "id;Tweet Text;label\n1;bridge down;high\n2;power back;low\n3;nice day;none\n4;road closed;high\n"
    );
}

/// The walk through a crisis-style file: semicolons, spaced capitalised headers and a
/// four-value `Informativeness` column. The import dialog opens by itself; the label column is
/// chosen in it and its values mapped to three classes and "unlabelled"; keys 1-3 label (and
/// move on); a tiny model trains from the Start button with three outputs, a 3 x 3 matrix and
/// per-class F1; the full export has one probability column per class; reopening finds the
/// mapping in the workspace, and another file with the same header opens with it remembered.
#[test]
fn a_crisis_file_through_the_import_dialog_to_three_classes() {
    let tmp = tempfile::tempdir().unwrap();
    data_dir();
    let (texts, labels) = common::sample_rows();
    let write = |path: &Path| {
        let mut w = csv::WriterBuilder::new()
            .delimiter(b';')
            .from_path(path)
            .unwrap();
        w.write_record([
            "Tweet ID",
            " Tweet Text ",
            "Information Source",
            "Informativeness",
        ])
        .unwrap();
        for (i, (text, label)) in texts.iter().zip(&labels).enumerate() {
            let value = match (label, i % 2, i % 10) {
                (_, _, 9) => "Not applicable",
                (1, _, _) => "Related and informative",
                (_, 0, _) => "Related - but not informative",
                _ => "Not related",
            };
            let source = ["Eyewitness", "Media", "Outsiders"][i % 3];
            w.write_record([&format!("{}", 1000 + i), text.as_str(), source, value])
                .unwrap();
        }
    };
    let csv = tmp.path().join("crisis.csv");
    write(&csv);
    let model = tmp.path().join("tiny");
    common::write_tiny_model(&model, 7);
    let mut h = harness();
    {
        let settings = h.state_mut().train_settings();
        settings.model = model.display().to_string();
        settings.config = common::tiny_train_config();
    }
    h.state_mut().open(csv.clone());
    wait_until(&mut h, "the import dialog", |app| {
        app.import_dialog_open() || app.error().is_some()
    });
    assert!(h.state().workspace().is_none(), "nothing imported yet");
    assert!(h
        .query_by_label_contains("choose the label column")
        .is_some());
    // The label column, chosen in the dialog.
    h.get_by_label("Label column:").click();
    h.settle();
    h.get_by_role_and_label(Role::Button, "Informativeness")
        .click();
    h.settle();
    {
        let draft = h.state_mut().import_draft().unwrap();
        assert_eq!(draft.preview.delimiter, b';');
        assert_eq!(draft.preview.header[draft.text], "Tweet Text");
        assert_eq!(draft.targets.len(), 4);
        for t in &mut draft.targets {
            match t.value.as_str() {
                "Related and informative" => t.class = "informative".into(),
                "Related - but not informative" => t.class = "not informative".into(),
                "Not related" => t.class = "unrelated".into(),
                _ => t.unlabelled = true,
            }
        }
    }
    h.settle();
    assert!(h
        .query_by_label_contains("3 classes, keys: 1 unrelated · 2 not informative · 3 informative")
        .is_some());
    h.get_by_role_and_label(Role::Button, "Import").click();
    h.settle();
    wait_until(&mut h, "the import", |app| {
        app.workspace().is_some() && !app.is_loading()
    });
    let set = h.state().workspace().unwrap().layout().labels.clone();
    assert_eq!(
        set.names(),
        vec!["unrelated", "not informative", "informative"]
    );
    let rows = h.state().workspace().unwrap().rows().to_vec();
    assert_eq!(rows[9].label, None, "Not applicable is unlabelled");
    assert_eq!(rows[0].text, texts[0]);
    assert!(
        h.query_by_label("Information Source: Eyewitness").is_some(),
        "kept columns show in the detail panel"
    );

    // Keys 1-3 label with the classes in order and move on to the next tweet.
    assert_eq!(h.state().selected_row(), Some(0));
    for key in [Key::Num3, Key::Num1, Key::Num2] {
        h.key_press(key);
        h.settle();
    }
    let label_of_row = |h: &Harness<'static, TweetlabApp>, row: usize| label_of(h, row);
    assert_eq!(
        (0..3).map(|r| label_of_row(&h, r)).collect::<Vec<_>>(),
        vec![Some(2), Some(0), Some(1)]
    );
    assert_eq!(h.state().selected_row(), Some(3));

    // Train from the Start button: three classes all the way to the predictions.
    h.get_by_label("Start training").click();
    h.step();
    wait_until(&mut h, "training to start", |app| {
        app.is_training() || app.error().is_some()
    });
    wait_until(&mut h, "predictions", |app| {
        app.predictions().iter().all(Option::is_some) || app.error().is_some()
    });
    assert_eq!(h.state().error(), None);
    assert!(h
        .state()
        .predictions()
        .iter()
        .all(|p| p.as_ref().unwrap().len() == 3));
    let m = h.state().last_validation().unwrap();
    assert_eq!(m.confusion.matrix.len(), 3);
    assert!(m.confusion.matrix.iter().all(|r| r.len() == 3));
    assert_eq!(m.per_class.len(), 3);
    assert!(h.query_by_label_contains("Validation: macro-F1").is_some());
    // Words for the predicted class, then for another class on request.
    let row = h.state().selected_row().unwrap();
    wait_until(&mut h, "word contributions", |app| {
        app.explanation(row).is_some()
    });
    let e = h.state().explanation(row).unwrap().clone().unwrap();
    assert_eq!(e.probabilities.len(), 3);
    let other = (e.class + 1) % 3;
    h.get_by_label("Words for:").click();
    h.settle();
    h.get_by_role_and_label(Role::Button, &set.name(other))
        .click();
    h.settle();
    wait_until(&mut h, "words for another class", |app| {
        app.explanation(row)
            .is_some_and(|e| e.as_ref().is_ok_and(|e| e.class == other))
    });
    let config_path = find_config(h.state().workspace().unwrap().path());
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(config_path).unwrap()).unwrap();
    assert_eq!(config["id2label"]["2"], "informative");

    // Serve this model: the window's model on a free loopback port, the same answers.
    #[cfg(feature = "serve")]
    {
        h.get_by_label("Serve this model").click();
        h.settle();
        let url = h.state().serving_url().expect("serving");
        let start = Instant::now();
        while ureq::get(&format!("{url}/ping")).call().is_err() {
            assert!(start.elapsed() < Duration::from_secs(60), "never ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        let body = serde_json::json!({"inputs": rows[0].text}).to_string();
        let answer: serde_json::Value = serde_json::from_str(
            &ureq::post(&format!("{url}/invocations"))
                .send_string(&body)
                .unwrap()
                .into_string()
                .unwrap(),
        )
        .unwrap();
        let want = h.state().predictions()[0].clone().unwrap();
        for item in answer.as_array().unwrap() {
            let c = set.index_of(item["label"].as_str().unwrap()).unwrap() as usize;
            assert!((item["score"].as_f64().unwrap() as f32 - want[c]).abs() < 1e-5);
        }
        assert!(
            h.query_by_label("Try it:").is_some(),
            "the curl line to copy"
        );
        h.get_by_label("Stop serving").click();
        h.settle();
        assert_eq!(h.state().serving_url(), None);
    }

    // The full export: one probability column per class, read back.
    h.get_by_label("Export…").click();
    h.settle();
    h.get_by_label("Full predictions with probabilities")
        .click();
    h.settle();
    h.get_by_role_and_label(Role::Button, "Export").click();
    h.settle();
    wait_until(&mut h, "the export", |app| !app.is_exporting());
    assert_eq!(h.state().error(), None);
    let mut reader = csv::Reader::from_path(tmp.path().join("crisis-predictions.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[5..8],
        ["p_unrelated", "p_not informative", "p_informative"]
    );
    let p = h.state().predictions().to_vec();
    for (i, r) in reader.records().map(Result::unwrap).enumerate() {
        for c in 0..3 {
            let written: f32 = r[5 + c].parse().unwrap();
            assert!((written - p[i].as_ref().unwrap()[c]).abs() < 1e-5);
        }
    }

    // Reopening: no dialog, the same classes and labels.
    drop(h);
    let mut h = harness();
    h.state_mut().open(csv.clone());
    wait_until(&mut h, "reopen", |app| {
        app.workspace().is_some() || app.import_dialog_open()
    });
    assert!(!h.state().import_dialog_open());
    assert_eq!(h.state().workspace().unwrap().layout().labels, set);
    assert_eq!(label_of(&h, 0), Some(2));
    // Another file with the same header: the remembered mapping, no dialog.
    let other = tmp.path().join("crisis-2.csv");
    write(&other);
    h.state_mut().open(other);
    wait_until(&mut h, "the second file", |app| {
        app.workspace()
            .is_some_and(|w| w.source().ends_with("crisis-2.csv"))
            || app.import_dialog_open()
    });
    assert!(!h.state().import_dialog_open());
    assert_eq!(h.state().workspace().unwrap().layout().labels, set);
}

/// The config.json of the newest run of the workspace at `db`.
fn find_config(db: &Path) -> PathBuf {
    let runs = db.with_extension("runs");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("{}: {e}", runs.display()))
        .filter_map(Result::ok)
        .map(|e| e.path().join("config.json"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop().expect("a run with a config.json")
}

/// The native-window basics: a label key moves on to the next tweet (View menu: off keeps the
/// cursor), the theme follows the View menu, and the menu's shortcuts work: ctrl+shift+O opens
/// the import dialog for the open file, which Cancel closes without touching it.
#[test]
fn menu_bar_advance_after_labelling_theme_and_shortcuts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness();
    open_sample(&mut h, tmp.path());
    assert!(h.state().advance_after_labelling(), "on by default");
    assert_eq!(h.state().selected_row(), Some(0));
    let before = label_of(&h, 0);
    h.key_press(Key::X);
    h.settle();
    assert_eq!(label_of(&h, 0), None);
    assert_eq!(h.state().selected_row(), Some(1), "moved on");
    h.key_press(Key::K);
    h.settle();
    h.key_press(if before == Some(1) {
        Key::Num1
    } else {
        Key::Num0
    });
    h.settle();
    assert_eq!(label_of(&h, 0), before);
    assert_eq!(h.state().selected_row(), Some(1));
    // Off from the View menu: the cursor stays.
    h.get_by_label("View").click();
    h.settle();
    h.get_by_label("Advance after labelling").click();
    h.settle();
    assert!(!h.state().advance_after_labelling());
    h.key_press(Key::X);
    h.settle();
    assert_eq!(label_of(&h, 1), None);
    assert_eq!(h.state().selected_row(), Some(1));

    h.get_by_label("View").click();
    h.settle();
    h.get_by_label("Theme: dark").click();
    h.settle();
    assert_eq!(h.ctx.theme(), egui::Theme::Dark);
    h.get_by_label("View").click();
    h.settle();
    h.get_by_label("Theme: light").click();
    h.settle();
    assert_eq!(h.ctx.theme(), egui::Theme::Light);
    assert_eq!(h.state().theme(), tweetlab::app::settings::Theme::Light);

    h.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, Key::O);
    h.settle();
    wait_until(&mut h, "the import dialog", |app| {
        app.import_dialog_open() || app.error().is_some()
    });
    let rows = h.state().workspace().unwrap().rows().len();
    h.get_by_role_and_label(Role::Button, "Cancel").click();
    h.settle();
    assert!(!h.state().import_dialog_open());
    assert_eq!(h.state().workspace().unwrap().rows().len(), rows);
}

/// A file that cannot be opened as remembered (here a remembered choice names a column the file
/// no longer has): the error offers the import dialog instead of a command-line flag.
#[test]
fn a_load_error_offers_the_import_dialog() {
    let tmp = tempfile::tempdir().unwrap();
    data_dir();
    let csv = tmp.path().join("renamed.csv");
    std::fs::write(&csv, "Post Body,Verdict,Extra\nhello,yes,1\nworld,no,2\n").unwrap();
    let header: Vec<String> = ["Post Body", "Verdict", "Extra"].map(String::from).to_vec();
    tweetlab::data::import::ImportMemory::user()
        .remember(
            &header,
            &tweetlab::data::ImportOptions {
                text_column: Some("Message".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let mut h = harness();
    open_and_wait(&mut h, &csv);
    let error = h.state().error().unwrap().to_string();
    assert!(error.contains("no text column named `Message`"), "{error}");
    h.get_by_label("Choose how to read it…").click();
    h.settle();
    wait_until(&mut h, "the import dialog", |app| app.import_dialog_open());
    assert_eq!(h.state().error(), None);
    {
        let draft = h.state_mut().import_draft().unwrap();
        assert_eq!(draft.preview.header[draft.text], "Post Body");
        draft.set_label(Some(1));
    }
    h.settle();
    h.get_by_role_and_label(Role::Button, "Import").click();
    h.settle();
    wait_until(&mut h, "the import", |app| app.workspace().is_some());
    let ws = h.state().workspace().unwrap();
    assert_eq!(ws.layout().labels.names(), vec!["no", "yes"]);
    assert_eq!(ws.rows()[0].label, Some(1));
}

/// The Known models menu fills the Model field; a RoBERTa-family checkpoint (an XLM-R made by
/// transformers, with another head) trains from the Start button like a BERT.
#[test]
fn known_models_menu_a_roberta_family_model_trained_from_the_window_and_distilled() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness();
    let _csv = open_sample(&mut h, tmp.path());
    h.get_by_role_and_label(Role::ComboBox, "Known models")
        .click();
    h.settle();
    h.get_by_label_contains("distilroberta-base").click();
    h.settle();
    assert_eq!(h.state_mut().train_settings().model, "distilroberta-base");

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-xlm-roberta");
    {
        let settings = h.state_mut().train_settings();
        settings.model = fixture.display().to_string();
        settings.config = common::tiny_train_config();
        settings.config.max_len = 40;
    }
    h.get_by_label("Start training").click();
    h.step();
    wait_until(&mut h, "predictions", |app| {
        app.predictions().iter().all(Option::is_some) || app.error().is_some()
    });
    assert_eq!(h.state().error(), None);
    assert_eq!(
        h.state().validation_f1().len(),
        common::tiny_train_config().epochs
    );
    // The sample's two classes replaced the fixture's three-class head.
    assert!(h
        .state()
        .predictions()
        .iter()
        .flatten()
        .all(|p| p.len() == 2));

    // Its first steps measured its speed on this machine, kept for the Known models menu.
    let measured = h.state_mut().train_settings().measured_speed.clone();
    assert!(
        measured
            .get(&fixture.display().to_string())
            .is_some_and(|s| *s > 0.0),
        "{measured:?}"
    );

    // A run of another model than the fast one is offered as a teacher.
    let teacher = h.state().predicted_by().unwrap().to_path_buf();
    h.state_mut().train_settings().fast_model = fixture.display().to_string();
    h.settle();
    assert!(
        h.query_by_label("Distil into the fast model").is_none(),
        "a run of the fast model itself teaches nothing"
    );
    let fast = tmp.path().join("fast");
    common::write_tiny_model(&fast, 7);
    h.state_mut().train_settings().fast_model = fast.display().to_string();
    h.settle();
    h.get_by_label("Distil into the fast model").click();
    h.step();
    wait_until(&mut h, "the distilled run's predictions", |app| {
        app.predicted_by().is_some_and(|d| d != teacher) || app.error().is_some()
    });
    assert_eq!(h.state().error(), None);
    let student = h.state().predicted_by().unwrap();
    let record = tweetlab::engine::train::RunRecord::read(student)
        .unwrap()
        .unwrap();
    assert_eq!(record.base_model, fast.display().to_string());
    assert_eq!(
        record.distilled.unwrap().teacher,
        teacher.display().to_string()
    );
}

/// A file set up in the import dialog (columns no name gives away, values mapped to classes)
/// and relabelled in the window reads the same on the command line: the same rows, labels and
/// classes, without repeating the choice as flags.
#[test]
fn the_command_line_reads_a_file_as_the_import_dialog_set_it_up() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = data_dir();
    let (texts, labels) = common::sample_rows();
    let csv = tmp.path().join("reports.csv");
    let mut w = csv::Writer::from_path(&csv).unwrap();
    w.write_record(["ref", "words", "verdict"]).unwrap();
    for (i, (text, label)) in texts.iter().zip(&labels).enumerate() {
        let verdict = if *label == 1 { "yes" } else { "no" };
        w.write_record([&format!("r{i}"), text.as_str(), verdict])
            .unwrap();
    }
    w.flush().unwrap();
    drop(w);

    let mut h = harness();
    h.state_mut().open(csv.clone());
    wait_until(&mut h, "the import dialog", |app| {
        app.import_dialog_open() || app.error().is_some()
    });
    {
        let draft = h.state_mut().import_draft().unwrap();
        draft.text = draft
            .preview
            .header
            .iter()
            .position(|c| c == "words")
            .unwrap();
        let verdict = draft.preview.header.iter().position(|c| c == "verdict");
        draft.set_label(verdict);
    }
    h.settle();
    {
        let draft = h.state_mut().import_draft().unwrap();
        for t in &mut draft.targets {
            t.class = match t.value.as_str() {
                "yes" => "urgent".into(),
                _ => "routine".into(),
            };
        }
    }
    h.settle();
    h.get_by_role_and_label(Role::Button, "Import").click();
    h.settle();
    wait_until(&mut h, "the import", |app| {
        app.workspace().is_some() && !app.is_loading()
    });
    // One relabel in the window, not saved to the file.
    let before = label_of(&h, 0);
    h.key_press(if before == Some(0) {
        Key::Num2
    } else {
        Key::Num1
    });
    h.settle();
    assert_ne!(label_of(&h, 0), before);

    let ws = h.state().workspace().unwrap();
    let set = ws.layout().labels.clone();
    let mut expected = serde_json::Map::new();
    for c in 0..set.len() as u8 {
        let n = ws.rows().iter().filter(|r| r.label == Some(c)).count();
        expected.insert(set.short(c), n.into());
    }
    let rows = ws.rows().len();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args(["stats", "--json", csv.to_str().unwrap()])
        .env("TWEETLAB_DATA_DIR", data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["rows"], rows);
    assert_eq!(
        stats["per_class"],
        serde_json::Value::Object(expected),
        "the command line's classes and labels are the window's"
    );
}

/// Team mode on a real PostgreSQL server: an annotator connects through File > Connect, labels
/// their queue with the keys (undo takes a label back on the server too), keeps labelling while
/// the server is down (the status says offline and how many labels wait; they are sent when it
/// is back), and a reviewer settles a disagreement from the team review window with one key.
#[test]
fn a_team_project_labelled_and_settled_from_the_window() {
    use tweetlab::data::team::{ProjectSettings, Target, TeamDb};
    data_dir();
    let cluster = pg::Cluster::start();
    let url = cluster.create_db("window_team");
    let mut owner = TeamDb::connect(&Target::parse(&url).unwrap()).unwrap();
    let mut data = load_csv(&common::sample_train_csv()).unwrap();
    data.rows.truncate(30);
    let settings = ProjectSettings {
        name: "flood-watch".into(),
        overlap: 2,
        blind: false,
        claim_ttl: Duration::from_secs(600),
    };
    owner.init(&settings, &data, "sample").unwrap();
    let pw_a = owner.add_annotator("win_a", false).unwrap();
    let pw_b = owner.add_annotator("win_b", false).unwrap();
    let pw_rev = owner.add_annotator("win_rev", true).unwrap();
    let label_on_server = |owner: &mut TeamDb, who: &str, row: i64| -> Option<u8> {
        owner
            .labels()
            .unwrap()
            .into_iter()
            .find(|l| l.annotator == who && l.row == row)
            .map(|l| l.label)
    };

    let mut h = harness();
    h.state_mut().set_advance_after_labelling(false);
    h.get_by_label("File").click();
    h.settle();
    h.get_by_label("Connect to team project…").click();
    h.settle();
    h.get_by_label("Connection:").focus();
    h.settle();
    h.get_by_label("Connection:")
        .type_text(&owner.target().connection_line("win_a"));
    h.settle();
    h.get_by_label("Password:").focus();
    h.settle();
    h.get_by_label("Password:").type_text(&pw_a);
    h.settle();
    h.get_by_role_and_label(Role::Button, "Connect").click();
    wait_until(&mut h, "the project to open", |app| {
        app.team_view()
            .is_some_and(|t| t.opened && t.queue == 10 && t.progress.is_some())
            && app.workspace().is_some()
            && !app.is_loading()
    });
    // The table shows the annotator's queue, the project's first rows.
    assert_eq!(h.state().shown_rows(), 10);
    assert_eq!(h.state().workspace().unwrap().rows().len(), 30);
    let team = h.state().team_view().unwrap();
    assert_eq!((team.me.as_str(), team.may_settle), ("win_a", false));
    assert!(team.line.contains("0 of 60 labels"), "{}", team.line);
    assert_eq!(h.state().selected_row(), Some(0));

    h.key_press(Key::Num1);
    h.settle();
    assert_eq!(label_of(&h, 0), Some(1));
    let start = Instant::now();
    while label_on_server(&mut owner, "win_a", 0) != Some(1) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the label never reached the server"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    // Undo takes the label back on the server as well.
    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::Z);
    h.settle();
    assert_eq!(label_of(&h, 0), None);
    let start = Instant::now();
    while label_on_server(&mut owner, "win_a", 0).is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the undo never reached the server"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.key_press(Key::Num1);
    h.settle();
    wait_until(&mut h, "the live progress", |app| {
        app.team_view().unwrap().progress.is_some_and(|p| p.0 == 1)
    });
    // The server goes down: a label still saves, the window says it is offline and waiting,
    // and it reaches the server once the server is back.
    cluster.crash();
    h.key_press(Key::J);
    h.key_press(Key::Num0);
    h.settle();
    assert_eq!(label_of(&h, 1), Some(0));
    wait_until(&mut h, "the window to say it is offline", |app| {
        let t = app.team_view().unwrap();
        t.offline && t.waiting == 1
    });
    assert!(
        h.state()
            .team_view()
            .unwrap()
            .line
            .contains("OFFLINE, 1 label(s) waiting"),
        "{}",
        h.state().team_view().unwrap().line
    );
    cluster.up();
    wait_until(&mut h, "the waiting label to be sent", |app| {
        let t = app.team_view().unwrap();
        !t.offline && t.waiting == 0
    });
    let mut owner = TeamDb::connect(owner.target()).unwrap();
    assert_eq!(label_on_server(&mut owner, "win_a", 1), Some(0));
    // Another annotator disagrees on row 0: the progress updates live.
    let mut b = TeamDb::connect(&owner.target().as_role("win_b", &pw_b)).unwrap();
    assert_eq!(b.claim(1).unwrap()[0].row, 0);
    b.label(0, 0).unwrap();
    wait_until(&mut h, "the other annotator's label", |app| {
        app.team_view().unwrap().progress.is_some_and(|p| p.0 == 3)
    });
    assert_eq!(h.state().team_view().unwrap().disagreements, 1);

    // The reviewer joins, opens the team review window and settles row 0 with a key.
    h.get_by_label("File").click();
    h.settle();
    h.get_by_label("Leave team project").click();
    h.settle();
    assert!(h.state().team_view().is_none());
    h.state_mut()
        .join_team(&owner.target().connection_line("win_rev"), &pw_rev);
    wait_until(&mut h, "the reviewer's project", |app| {
        app.team_view()
            .is_some_and(|t| t.me == "win_rev" && t.opened && t.disagreements == 1)
            && !app.is_loading()
    });
    h.get_by_label("View").click();
    h.settle();
    h.get_by_label("Team review").click();
    h.settle();
    assert_eq!(h.state().team_view().unwrap().current_disagreement, Some(0));
    assert!(h.query_by_label("win_a").is_some() && h.query_by_label("win_b").is_some());
    h.key_press(Key::Num1);
    h.settle();
    wait_until(&mut h, "the settled row", |app| {
        app.team_view().unwrap().disagreements == 0
    });
    let fin = owner.rows().unwrap()[0].fin;
    assert_eq!(fin, Some((1, tweetlab::data::team::Decided::Reviewer)));
}
