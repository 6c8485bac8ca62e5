//! The data layer as users meet it: exports re-import unchanged, committed edits survive a
//! killed process, workspaces import whole files.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use tweetlab::data::dataset::{Columns, Layout};
use tweetlab::data::export::{write_dataset, write_history};
use tweetlab::data::store::Workspace;
use tweetlab::data::{load_csv, LabelSet, Tweet};

fn kaggle_layout(delimiter: u8) -> Layout {
    Layout {
        header: ["id", "keyword", "location", "text", "target"]
            .map(String::from)
            .to_vec(),
        columns: Columns {
            text: 3,
            label: Some(4),
            id: Some(0),
            keyword: Some(1),
            location: Some(2),
        },
        extra_columns: vec![],
        hidden_columns: vec![],
        delimiter,
        labels: LabelSet::default(),
    }
}

/// Any text without NUL bytes (a NUL marks a file as binary); quotes, delimiters, CR/LF,
/// emoji and leading/trailing spaces included.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\u{0}]{0,40}",
        "[ a-z,\"\t\r\n;#'&]{0,12}",
        Just(String::new()),
        Just("\"".to_string()),
        Just("line one\r\nline two".to_string()),
    ]
}

fn row() -> impl Strategy<Value = (String, String, String, String, Option<u8>)> {
    (
        cell(),
        cell(),
        cell(),
        cell(),
        prop_oneof![Just(None), Just(Some(0u8)), Just(Some(1u8))],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_table_written_by_the_exporter_reimports_equal(rows in prop::collection::vec(row(), 1..30), tsv in any::<bool>()) {
        let tweets: Vec<Tweet> = rows
            .iter()
            .map(|(id, keyword, location, text, label)| Tweet {
                id: id.clone(), keyword: keyword.clone(), location: location.clone(), text: text.clone(), label: *label, ..Default::default()
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let (name, delimiter) = if tsv { ("t.tsv", b'\t') } else { ("t.csv", b',') };
        let path = dir.path().join(name);
        write_dataset(&path, &kaggle_layout(delimiter), &tweets).unwrap();
        let back = load_csv(&path).unwrap();
        prop_assert!(back.problems.is_empty(), "{:?}", back.problems);
        let got: Vec<_> = back.rows.iter().map(|t| (t.id.clone(), t.keyword.clone(), t.location.clone(), t.text.clone(), t.label)).collect();
        prop_assert_eq!(got, rows);
    }
}

const CHILD_ENV: &str = "TWEETLAB_CRASH_CHILD_DB";

/// Child side: edit as fast as possible, printing each edit once `set_labels` has returned.
fn edit_burst(db: &Path) {
    let mut ws = Workspace::open(db).unwrap();
    let n = ws.rows().len();
    for i in 0.. {
        let rows: Vec<usize> = if i % 5 == 0 {
            (0..10).map(|k| (i * 31 + k) % n).collect()
        } else {
            vec![(i * 7919) % n]
        };
        let changes: Vec<(usize, Option<u8>)> = rows
            .iter()
            .map(|&r| (r, Some(1 - ws.rows()[r].label.unwrap_or(0))))
            .collect();
        let group = ws
            .set_labels(&changes, "burst", "burst edit")
            .unwrap()
            .unwrap();
        for (r, l) in changes {
            println!("EDIT {group} {r} {}", l.unwrap());
        }
    }
}

#[test]
fn killing_the_process_mid_burst_loses_no_committed_edit() {
    if let Some(db) = std::env::var_os(CHILD_ENV) {
        edit_burst(Path::new(&db));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ws.sqlite");
    let data =
        load_csv(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/train.csv")).unwrap();
    drop(Workspace::create(&db, Path::new("sample-data/train.csv"), &data).unwrap());

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killing_the_process_mid_burst_loses_no_committed_edit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("EDIT ") {
            let v: Vec<i64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            seen.push((v[0], v[1] as usize, v[2] as u8));
            if seen.len() >= 300 {
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert!(seen.len() >= 300, "child printed only {} edits", seen.len());

    let ws = Workspace::open(&db).unwrap();
    let history = ws.history().unwrap();
    for &(group, row, label) in &seen {
        assert!(
            history
                .iter()
                .any(|e| e.group == group && e.row == row && e.new == Some(label)),
            "edit (group {group}, row {row} -> {label}) reported done but missing after the kill"
        );
    }
    // The rows agree with the last recorded change of each row.
    for (row, tweet) in ws.rows().iter().enumerate() {
        if let Some(last) = history.iter().rev().find(|e| e.row == row) {
            assert_eq!(tweet.label, last.new, "row {row}");
        }
    }
}

#[test]
fn workspace_exports_the_corrected_dataset_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/train.csv");
    let data = load_csv(&source).unwrap();
    let mut ws = Workspace::create(&dir.path().join("ws.sqlite"), &source, &data).unwrap();
    let flipped = 1 - data.rows[5].label.unwrap();
    ws.set_labels(&[(5, Some(flipped))], "tester", "fix row 6")
        .unwrap();
    let out = dir.path().join("corrected.csv");
    write_dataset(&out, ws.layout(), ws.rows()).unwrap();
    let back = load_csv(&out).unwrap();
    assert_eq!(back.rows.len(), data.rows.len());
    assert_eq!(back.rows[5].label, Some(flipped));
    assert_eq!(
        back.rows[4],
        Tweet {
            line: back.rows[4].line,
            ..data.rows[4].clone()
        }
    );
    // The source file is untouched.
    assert_eq!(load_csv(&source).unwrap().rows[5].label, data.rows[5].label);
    let history = dir.path().join("history.csv");
    write_history(&history, &ws.history().unwrap()).unwrap();
    let text = std::fs::read_to_string(&history).unwrap();
    assert!(text.starts_with("seq,step,action,row_id,line,old,new,who,at,description\n"));
    assert!(
        text.contains(&format!(",edit,{},", data.rows[5].id))
            && text.contains("tester")
            && text.contains("fix row 6")
    );
}

/// Parses `bytes` on a thread and fails when that takes longer than `limit`: a guard against
/// quadratic work on crafted files (linear work takes well under a second here).
fn parse_within(bytes: Vec<u8>, limit: std::time::Duration) -> tweetlab::data::Dataset {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let data = tweetlab::data::dataset::parse(
            &bytes,
            false,
            &tweetlab::data::ImportOptions::default(),
            &mut |_, _| {},
        );
        let _ = tx.send(data);
    });
    rx.recv_timeout(limit)
        .expect("the importer took far longer than linear time")
        .unwrap()
}

#[test]
fn a_megabyte_of_bad_rows_imports_in_linear_time_with_a_capped_problem_list() {
    let mut csv = b"id,text,target\n".to_vec();
    let mut i = 0;
    while csv.len() < 1 << 20 {
        // Ragged rows, with an unterminated quote now and then.
        let line = if i % 100 == 7 {
            format!("{i},\"never closed,1\n{i},after,0\n")
        } else {
            format!("{i},a,b,c,0\n")
        };
        csv.extend_from_slice(line.as_bytes());
        i += 1;
    }
    let data = parse_within(csv, std::time::Duration::from_secs(20));
    let cap = tweetlab::data::dataset::MAX_PROBLEMS;
    assert_eq!(data.problems.len(), cap + 1, "the list is capped");
    let last = data.problems.last().unwrap();
    assert!(last.reason.contains("more problem rows"), "{last:?}");
    assert!(data.problems[0].reason.contains("fields"));
}

/// `id,text`, then `n` lines of `a","` (an unquoted field ending in a quote, then a quoted field
/// that runs across lines) and a last `b"`: each line's record runs unclosed to the end.
fn open_quote_lines(n: usize, ending: &str) -> Vec<u8> {
    let mut csv = b"id,text\n".to_vec();
    csv.extend_from_slice(&b"a\",\"\n".repeat(n));
    csv.extend_from_slice(b"b\"");
    csv.extend_from_slice(ending.as_bytes());
    csv
}

/// Seconds to parse `bytes`, on a thread given at most `limit`; None past it.
fn parse_seconds(bytes: Vec<u8>, limit: std::time::Duration) -> Option<f64> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let data = tweetlab::data::dataset::parse(
            &bytes,
            false,
            &tweetlab::data::ImportOptions::default(),
            &mut |_, _| {},
        );
        let _ = tx.send((started.elapsed().as_secs_f64(), data.is_ok()));
    });
    let (seconds, parsed) = rx.recv_timeout(limit).ok()?;
    assert!(parsed, "the file was refused");
    Some(seconds)
}

/// Ten times the lines takes about ten times as long, not a hundred (the importer once read
/// the rest of the file again for every such line).
#[test]
fn lines_of_open_quotes_import_in_linear_time() {
    // A file saved by an editor ends in a line end: the last record then ends on the input's
    // final terminator, which the reader counts as running to the end.
    for ending in ["", "\n", "\r\n"] {
        let n = 20_000;
        let small = (0..3)
            .filter_map(|_| {
                parse_seconds(
                    open_quote_lines(n, ending),
                    std::time::Duration::from_secs(120),
                )
            })
            .fold(f64::INFINITY, f64::min);
        assert!(small.is_finite(), "{n} lines took more than two minutes");
        let max_ratio = 40.0;
        let limit = std::time::Duration::from_secs_f64(small * max_ratio + 0.5);
        let large = parse_seconds(open_quote_lines(10 * n, ending), limit);
        assert!(
            large.is_some(),
            "{} lines ending {ending:?} took more than {max_ratio} times as long as {n} ({small:.3} s)",
            10 * n
        );
    }
}

#[test]
fn a_megabyte_of_ampersands_finds_duplicates_in_linear_time() {
    let text = "&".repeat(1 << 20);
    let (tx, rx) = std::sync::mpsc::channel();
    let t = text.clone();
    std::thread::spawn(move || {
        let _ = tx.send(tweetlab::data::duplicates::decode_entities(&t));
    });
    let decoded = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("decoding entities took far longer than linear time");
    assert_eq!(decoded, text);
}

#[test]
fn a_workspace_keeps_the_absolute_path_of_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let data = load_csv(Path::new("sample-data/train.csv")).unwrap();
    let ws = Workspace::create(
        &dir.path().join("ws.sqlite"),
        Path::new("sample-data/train.csv"),
        &data,
    )
    .unwrap();
    let canonical = std::fs::canonicalize("sample-data/train.csv").unwrap();
    assert_eq!(ws.source(), canonical);
    assert_eq!(
        Workspace::open(ws.path()).unwrap().source(),
        canonical.as_path()
    );
}

/// Two windows (or a window and a CLI command) on one workspace: each sees the other's edits
/// before making its own, so no edit is dropped as a no-op and the history's `old` is right.
#[test]
fn two_workspaces_on_one_file_stay_right() {
    let dir = tempfile::tempdir().unwrap();
    let data = load_csv(Path::new("sample-data/train.csv")).unwrap();
    let db = dir.path().join("ws.sqlite");
    drop(Workspace::create(&db, Path::new("sample-data/train.csv"), &data).unwrap());
    let mut a = Workspace::open(&db).unwrap();
    let mut b = Workspace::open(&db).unwrap();
    let row = 0;
    let before = a.rows()[row].label;
    let flipped = before.map(|l| 1 - l);
    a.set_labels(&[(row, flipped)], "a", "a flips").unwrap();
    // b still holds the old label in memory; setting it back must not be a no-op.
    let group = b
        .set_labels(&[(row, before)], "b", "b sets it back")
        .unwrap();
    assert!(group.is_some(), "b's edit was dropped as a no-op");
    assert_eq!(b.rows()[row].label, before);
    assert_eq!(Workspace::open(&db).unwrap().rows()[row].label, before);
    let history = b.history().unwrap();
    let last = history.last().unwrap();
    assert_eq!((last.old, last.new), (flipped, before));
    // a follows too.
    a.refresh().unwrap();
    assert_eq!(a.rows()[row].label, before);
}

/// The child side of the fault-injection test: one kind of write, over and over, each reported
/// on stdout once it returned.
fn fault_child(mode: &str, dir: &Path) {
    use tweetlab::data::save::{save_to_source, SaveJob};
    use tweetlab::engine::train::record::{RunRecorder, RunSettings};
    use tweetlab::engine::train::{StepRecord, TrainConfig, TrainEvent};
    let csv = dir.join("tweets.csv");
    let db = dir.join("ws.sqlite");
    match mode {
        "save" => {
            let mut ws = Workspace::open(&db).unwrap();
            for i in 0.. {
                let row = (i * 7) % ws.rows().len();
                let label = ws.rows()[row].label.map(|l| 1 - l);
                ws.set_labels(&[(row, label)], "fault", "flip").unwrap();
                println!("EDITED {row} {}", label.unwrap());
                let saved = save_to_source(&SaveJob {
                    source: csv.clone(),
                    layout: ws.layout().clone(),
                    rows: ws.rows().to_vec(),
                    fingerprint: ws.fingerprint().cloned(),
                })
                .unwrap();
                Workspace::store_fingerprint(&db, &saved.fingerprint).unwrap();
                ws.set_fingerprint(saved.fingerprint).unwrap();
                println!("SAVED {i}");
            }
        }
        "export" => {
            let data = load_csv(&csv).unwrap();
            for i in 0.. {
                write_dataset(&dir.join("export.csv"), &data.layout, &data.rows).unwrap();
                println!("EXPORTED {i}");
            }
        }
        "create" => {
            let data = load_csv(&csv).unwrap();
            for i in 0.. {
                let fresh = dir.join(format!("ws-{i}.sqlite"));
                drop(Workspace::create(&fresh, &csv, &data).unwrap());
                println!("CREATED {i}");
            }
        }
        "record" => {
            let settings = RunSettings {
                model: "tiny".into(),
                out_dir: dir.join("run"),
                config: TrainConfig::default(),
                labelled_rows: 1,
            };
            let mut recorder = RunRecorder::start(&db, &settings).unwrap();
            for step in 1.. {
                recorder
                    .record(&TrainEvent::Step(StepRecord {
                        epoch: 1,
                        step,
                        total_steps: 0,
                        loss: 0.5,
                        lr: 1e-4,
                        samples_per_s: 1.0,
                    }))
                    .unwrap();
                println!("RECORDED {step}");
            }
        }
        other => panic!("unknown mode {other}"),
    }
}

/// Kills a process at random points while it saves into the CSV, exports, builds workspaces
/// and records a training run, many times, and checks each time: the CSV is the file it was
/// with label cells changed and nothing else (never cut, never mixed), every export is whole,
/// every workspace that exists opens, and every step reported as recorded is there.
#[test]
fn killing_the_process_at_random_points_never_damages_a_file() {
    const MODE: &str = "TWEETLAB_FAULT_CHILD";
    if let Some(spec) = std::env::var_os(MODE) {
        let spec = spec.to_string_lossy().to_string();
        let (mode, dir) = spec.split_once(':').unwrap();
        fault_child(mode, Path::new(dir));
        return;
    }
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let original = std::fs::read("sample-data/train.csv").unwrap();
    let reference = load_csv(Path::new("sample-data/train.csv")).unwrap();
    for mode in ["save", "export", "create", "record"] {
        for trial in 0..12 {
            let dir = tempfile::tempdir().unwrap();
            let csv = dir.path().join("tweets.csv");
            std::fs::write(&csv, &original).unwrap();
            let data = load_csv(&csv).unwrap();
            drop(Workspace::create(&dir.path().join("ws.sqlite"), &csv, &data).unwrap());
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "killing_the_process_at_random_points_never_damages_a_file",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(MODE, format!("{mode}:{}", dir.path().display()))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Let it get going, then kill it after a random number of reported writes and a
            // random extra delay, so the kill lands anywhere inside a write.
            let reports = rng.random_range(1..6);
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let done = |l: &String| {
                ["SAVED ", "EXPORTED ", "CREATED ", "RECORDED "]
                    .iter()
                    .any(|p| l.starts_with(p))
            };
            let mut seen = Vec::new();
            while seen.iter().filter(|l| done(l)).count() < reports {
                match lines.next() {
                    Some(line) => seen.push(line.unwrap()),
                    None => panic!("{mode} child stopped early: {seen:?}"),
                }
            }
            std::thread::sleep(std::time::Duration::from_micros(
                rng.random_range(0..20_000),
            ));
            child.kill().unwrap();
            child.wait().unwrap();
            seen.extend(lines.map_while(Result::ok));
            let context = format!("{mode}, trial {trial}");
            match mode {
                "save" => {
                    let now = std::fs::read(&csv).unwrap();
                    assert_eq!(now.len(), original.len(), "{context}: the CSV was cut");
                    let parsed = load_csv(&csv).unwrap();
                    assert_eq!(parsed.rows.len(), reference.rows.len(), "{context}");
                    for (i, (a, b)) in now.iter().zip(&original).enumerate() {
                        if a != b {
                            let in_label = parsed
                                .spans
                                .iter()
                                .any(|s| s.label.is_some_and(|(x, y)| x <= i && i < y));
                            assert!(in_label, "{context}: byte {i} changed outside a label");
                        }
                    }
                    // Every edit reported is in the workspace.
                    let ws = Workspace::open(&dir.path().join("ws.sqlite")).unwrap();
                    for line in seen.iter().filter_map(|l| l.strip_prefix("EDITED ")) {
                        let (row, label) = line.split_once(' ').unwrap();
                        let row: usize = row.parse().unwrap();
                        assert!(
                            ws.history()
                                .unwrap()
                                .iter()
                                .any(|e| e.row == row && e.new == label.parse().ok()),
                            "{context}: edit of row {row} lost"
                        );
                    }
                }
                "export" => {
                    let out = dir.path().join("export.csv");
                    let exported = load_csv(&out).unwrap();
                    assert_eq!(exported.rows.len(), reference.rows.len(), "{context}");
                }
                "create" => {
                    for entry in std::fs::read_dir(dir.path()).unwrap() {
                        let path = entry.unwrap().path();
                        let name = path.file_name().unwrap().to_string_lossy().to_string();
                        if name.starts_with("ws-") && name.ends_with(".sqlite") {
                            let ws = Workspace::open(&path)
                                .unwrap_or_else(|e| panic!("{context}: {name}: {e}"));
                            assert_eq!(ws.rows().len(), reference.rows.len(), "{context}");
                        }
                    }
                }
                "record" => {
                    let ws = Workspace::open(&dir.path().join("ws.sqlite")).unwrap();
                    let runs =
                        tweetlab::engine::train::record::recorded_runs(&ws.run_log().unwrap())
                            .unwrap();
                    let steps: Vec<usize> = runs[0].steps.iter().map(|s| s.step).collect();
                    for line in seen.iter().filter_map(|l| l.strip_prefix("RECORDED ")) {
                        let step: usize = line.parse().unwrap();
                        assert!(steps.contains(&step), "{context}: step {step} lost");
                    }
                }
                _ => unreachable!(),
            }
        }
    }
}
