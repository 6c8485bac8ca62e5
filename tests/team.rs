//! Team projects on a real PostgreSQL server (started per test, see tests/pg): import, roles and
//! row level security, K-bounded claims under concurrent clients, expiry, review, export.

mod common;
mod pg;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pg::Cluster;
use tweetlab::data::team::listen::{Listener, Notice};
use tweetlab::data::team::session::TeamSession;
use tweetlab::data::team::{Decided, ProjectSettings, Target, TeamDb, TeamError, Unsettled};
use tweetlab::data::Dataset;

fn sample() -> Dataset {
    tweetlab::data::load_csv(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/train.csv"))
        .unwrap()
}

/// A project of the first `rows` sample rows in a new database `db` of `cluster`, as the owner.
fn project(
    cluster: &Cluster,
    db: &str,
    rows: usize,
    overlap: u8,
    blind: bool,
    claim_ttl: Duration,
) -> TeamDb {
    let mut data = sample();
    data.rows.truncate(rows);
    let settings = ProjectSettings {
        name: "test".into(),
        overlap,
        blind,
        claim_ttl,
    };
    let url = cluster.create_db(db);
    let mut owner = TeamDb::connect(&Target::parse(&url).unwrap()).unwrap();
    owner.init(&settings, &data, "sample").unwrap();
    owner
}

/// Adds annotator `name` and connects as them, with the password the owner got.
fn member(owner: &mut TeamDb, name: &str, reviewer: bool) -> TeamDb {
    let password = owner.add_annotator(name, reviewer).unwrap();
    let target = owner.target().as_role(name, &password);
    TeamDb::connect(&target).unwrap()
}

fn tweetlab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TWEETLAB_DATA_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap()
}

#[test]
fn init_from_the_command_line_imports_every_row_and_the_label_set() {
    let cluster = Cluster::start();
    let url = cluster.create_db("init_cli");
    let out = tweetlab(&[
        "team",
        "init",
        "--db",
        &url,
        "--data",
        "sample-data/train.csv",
        "--overlap",
        "3",
        "--blind",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut owner = TeamDb::connect(&Target::parse(&url).unwrap()).unwrap();
    let data = sample();
    let p = owner.project().unwrap();
    assert_eq!((p.overlap, p.blind), (3, true));
    assert_eq!(p.labels, data.layout.labels);
    let rows = owner.rows().unwrap();
    assert_eq!(rows.len(), data.rows.len());
    assert!(rows
        .iter()
        .zip(&data.rows)
        .all(|(r, t)| r.text == t.text && r.source_id == t.id));
    // A second init into the same database is refused, and the first project stays.
    let again = tweetlab(&[
        "team",
        "init",
        "--db",
        &url,
        "--data",
        "sample-data/train.csv",
        "--overlap",
        "2",
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a team project"));
    assert_eq!(owner.project().unwrap().overlap, 3);
}

#[test]
fn blind_annotators_can_neither_read_nor_write_each_others_labels() {
    let cluster = Cluster::start();
    let mut owner = project(&cluster, "blind", 10, 2, true, Duration::from_secs(600));
    let mut a = member(&mut owner, "blind_a", false);
    let mut b = member(&mut owner, "blind_b", false);
    let mut r = member(&mut owner, "blind_rev", true);

    let row = a.claim(1).unwrap()[0].row;
    assert_eq!(b.claim(1).unwrap()[0].row, row + 1, "A holds the first row");
    a.label(row, 1).unwrap();
    b.release().unwrap();
    assert_eq!(
        b.claim(1).unwrap()[0].row,
        row,
        "K = 2: labelled once and held by nobody, the first row is B's next"
    );
    b.label(row, 0).unwrap();

    // A sees only A's label; B's cannot be changed or written in B's name.
    let seen = a.labels().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].annotator, "blind_a");
    let changed = a
        .client()
        .execute(
            "UPDATE labels SET label = 1 WHERE annotator = 'blind_b'",
            &[],
        )
        .unwrap();
    assert_eq!(changed, 0);
    let forged = a.client().execute(
        "INSERT INTO labels (row_id, annotator, label) VALUES ($1, 'blind_b', 1)",
        &[&(row + 1)],
    );
    assert!(forged.is_err(), "A wrote a label in B's name");
    let deleted = a
        .client()
        .execute("DELETE FROM labels WHERE annotator = 'blind_b'", &[])
        .unwrap();
    assert_eq!(deleted, 0, "A took back B's label");
    let forged_op = a.client().execute(
        "INSERT INTO label_ops (annotator, op_id, row_id, label) VALUES ('blind_b', 'abcdefgh12', $1, 1)",
        &[&row],
    );
    assert!(forged_op.is_err(), "A wrote an op in B's name");
    // Only reviewers write final labels, and the queue's tables only change through it.
    assert!(matches!(a.settle(row, 1), Err(TeamError::Denied(_))));
    assert!(a
        .client()
        .execute(
            "INSERT INTO claims (row_id, annotator, expires_at) VALUES (5, 'blind_a', now() + interval '1 day')",
            &[]
        )
        .is_err());
    // The two disagree: no final label until the reviewer settles it, then A sees B's label.
    assert_eq!(owner.rows().unwrap()[row as usize].fin, None);
    assert_eq!(r.labels().unwrap().len(), 2, "a reviewer sees every label");
    // The server refuses a final label that is no class, however it is written.
    assert!(matches!(r.settle(row, 9), Err(TeamError::Refused(_))));
    assert!(r
        .client()
        .execute(
            "INSERT INTO final_labels (row_id, label, how, decided_by)
             VALUES ($1, 9, 'reviewer', current_user)",
            &[&row],
        )
        .is_err());
    r.settle(row, 1).unwrap();
    assert_eq!(
        owner.rows().unwrap()[row as usize].fin,
        Some((1, Decided::Reviewer))
    );
    assert_eq!(a.labels().unwrap().len(), 2);
    // A label that is no class is refused by the server.
    let next = a.claim(1).unwrap()[0].row;
    assert!(matches!(a.label(next, 7), Err(TeamError::Refused(_))));
}

/// Twenty annotators claim and label as fast as they can: no row ever gets more than K labels,
/// every row gets exactly K, no label is lost or doubled, no claim is left.
#[test]
fn claims_keep_every_row_at_k_labels_under_twenty_concurrent_annotators() {
    let cluster = Cluster::start();
    let rows = 40;
    let k = 3;
    let mut owner = project(&cluster, "race", rows, k, false, Duration::from_secs(600));
    let members: Vec<TeamDb> = (0..20)
        .map(|i| member(&mut owner, &format!("race_{i}"), false))
        .collect();
    let threads: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(i, mut m)| {
            std::thread::spawn(move || {
                let mut given = 0;
                loop {
                    let claimed = m.claim(2).unwrap();
                    if claimed.is_empty() {
                        return given;
                    }
                    for c in claimed {
                        m.label(c.row, ((c.row as usize + i) % 2) as u8).unwrap();
                        given += 1;
                    }
                }
            })
        })
        .collect();
    let given: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(given, rows * k as usize);
    let c = owner.client();
    let over: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT row_id FROM labels GROUP BY row_id HAVING count(*) <> $1) x",
            &[&(k as i64)],
        )
        .unwrap()
        .get(0);
    assert_eq!(over, 0, "rows without exactly K labels");
    let (labels, history, claims): (i64, i64, i64) = {
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM labels), (SELECT count(*) FROM label_history),
                        (SELECT count(*) FROM claims)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(
        (labels, history, claims),
        ((rows * k as usize) as i64, labels, 0)
    );
    let progress = owner.progress().unwrap();
    assert_eq!(
        progress.rows_by_labels,
        vec![(k as i64, rows as i64, rows as i64)]
    );
}

#[test]
fn an_expired_claim_goes_to_the_next_annotator() {
    let cluster = Cluster::start();
    let mut owner = project(&cluster, "expiry", 5, 1, false, Duration::from_millis(1500));
    let mut a = member(&mut owner, "expiry_a", false);
    let mut b = member(&mut owner, "expiry_b", false);
    assert_eq!(a.claim(1).unwrap()[0].row, 0);
    assert_eq!(
        b.claim(1).unwrap()[0].row,
        1,
        "row 0 is A's while A's claim lives"
    );
    // The heartbeat: A asking again renews the claim it holds rather than taking another row.
    let renewed = a.claim(1).unwrap();
    assert_eq!(renewed.iter().map(|c| c.row).collect::<Vec<_>>(), vec![0]);
    std::thread::sleep(Duration::from_millis(1700));
    let got: Vec<i64> = b.claim(2).unwrap().iter().map(|c| c.row).collect();
    assert_eq!(got, vec![0, 1], "A's expired claim went to B");
    // A labels too late: the row's one slot is B's now.
    assert!(matches!(a.label(0, 1), Err(TeamError::Refused(_))));
    b.label(0, 1).unwrap();
    assert_eq!(owner.rows().unwrap()[0].fin, Some((1, Decided::Agreement)));
    // Without a claim (one that expired offline, say) a label is still taken where there is room.
    a.label(2, 0).unwrap();
    assert_eq!(owner.rows().unwrap()[2].fin, Some((0, Decided::Agreement)));
}

#[test]
fn majorities_settle_rows_and_export_writes_every_label() {
    let cluster = Cluster::start();
    let mut owner = project(&cluster, "export", 3, 3, false, Duration::from_secs(600));
    let mut m: Vec<TeamDb> = ["exp_a", "exp_b", "exp_c"]
        .iter()
        .map(|n| member(&mut owner, n, false))
        .collect();
    for (i, who) in m.iter_mut().enumerate() {
        let rows: Vec<i64> = who.claim(3).unwrap().iter().map(|c| c.row).collect();
        assert_eq!(rows, vec![0, 1, 2]);
        who.label(0, 1).unwrap();
        who.label(1, (i == 2) as u8).unwrap();
    }
    let rows = owner.rows().unwrap();
    assert_eq!(rows[0].fin, Some((1, Decided::Agreement)));
    assert_eq!(rows[1].fin, Some((0, Decided::Majority)));
    assert_eq!(rows[2].fin, None);

    let url = owner.target().connection_line("postgres");
    let tmp = tempfile::tempdir().unwrap();
    let out_csv = tmp.path().join("team.csv");
    let out = tweetlab(&[
        "team",
        "--db",
        &url,
        "export",
        "--out",
        out_csv.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = csv::Reader::from_path(&out_csv).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        ["row", "id", "text", "exp_a", "exp_b", "exp_c", "final", "how"]
    );
    let records: Vec<BTreeMap<String, String>> = r
        .records()
        .map(|rec| {
            header
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(String::from))
                .collect()
        })
        .collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[1]["exp_c"], "disaster");
    assert_eq!(
        (records[1]["final"].as_str(), records[1]["how"].as_str()),
        ("not_disaster", "majority")
    );
    assert_eq!(records[2]["final"], "");

    let status = tweetlab(&["team", "--db", &url, "status", "--json"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["pairs"].as_array().unwrap().len(), 3);
    assert_eq!(s["fleiss_rows"], 2);
    assert_eq!(
        s["confusion_against_final"]["exp_c"],
        serde_json::json!([[0, 1], [0, 1]])
    );
}

/// Labels made while the server is down wait in the outbox and reach it once when it is back,
/// including one whose reply was lost (applied, but not known to be).
#[test]
fn the_outbox_sends_each_label_once_after_the_server_restarts() {
    let cluster = Cluster::start();
    let mut owner = project(&cluster, "outbox", 6, 2, true, Duration::from_secs(600));
    let password = owner.add_annotator("out_a", false).unwrap();
    let target = owner.target().as_role("out_a", &password);
    let tmp = tempfile::tempdir().unwrap();
    let outbox = tmp.path().join("outbox.sqlite");
    let mut a = TeamSession::open(&target, &outbox).unwrap();
    a.set_retry_pause(Duration::from_millis(50));
    let rows: Vec<i64> = a
        .call(|db| db.claim(4))
        .unwrap()
        .iter()
        .map(|c| c.row)
        .collect();
    assert_eq!(rows, vec![0, 1, 2, 3]);
    a.save(0, Some(1)).unwrap();
    let f = a.flush().unwrap();
    assert_eq!((f.sent, f.waiting, f.offline.is_none()), (1, 0, true));

    // A reply lost: the server applied the op, the outbox still holds it.
    let op = a.save(1, Some(0)).unwrap();
    let mut direct = TeamDb::connect(&target).unwrap();
    assert!(direct.apply(1, Some(0), &op).unwrap());

    cluster.crash();
    a.save(2, Some(1)).unwrap();
    a.save(3, Some(0)).unwrap();
    a.save(3, None).unwrap(); // taken back while offline
    let f = a.flush().unwrap();
    assert!(f.offline.is_some(), "the server is down: {f:?}");
    assert_eq!((f.sent, f.waiting), (0, 4));
    assert!(a.offline().is_some());
    // Another session of the same annotator (the app started again) finds the labels kept.
    drop(a);
    cluster.up();
    let mut a = TeamSession::open(&target, &outbox).unwrap();
    assert_eq!(a.waiting().unwrap(), 4);
    let f = a.flush().unwrap();
    assert_eq!(
        (f.sent, f.already_there, f.waiting, f.refused.len()),
        (3, 1, 0, 0),
        "{f:?}"
    );
    assert!(
        a.flush().unwrap() == Default::default(),
        "nothing sent twice"
    );

    let mut owner = TeamDb::connect(owner.target()).unwrap();
    let mine: Vec<(i64, u8)> = owner
        .labels()
        .unwrap()
        .iter()
        .map(|l| (l.row, l.label))
        .collect();
    assert_eq!(mine, vec![(0, 1), (1, 0), (2, 1)]);
    let c = owner.client();
    let (ops, history, taken_back): (i64, i64, i64) = {
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM label_ops), (SELECT count(*) FROM label_history),
                        (SELECT count(*) FROM label_history WHERE label IS NULL)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!((ops, history, taken_back), (5, 5, 1));

    // A label for a row settled meanwhile is refused on arrival: kept with why, not resent.
    owner.settle(4, 0).unwrap();
    a.save(4, Some(1)).unwrap();
    let f = a.flush().unwrap();
    assert_eq!((f.sent, f.refused.len(), f.waiting), (0, 1, 0), "{f:?}");
    let kept = a.refused().unwrap();
    assert_eq!((kept.len(), kept[0].row, kept[0].label), (1, 4, Some(1)));
    assert!(kept[0].reason.contains("final label"), "{}", kept[0].reason);
}

/// A second client hears each committed label as it happens, and hears again after the server
/// restarts (so it knows to read the state anew).
#[test]
fn a_second_client_hears_labels_live_and_after_a_restart() {
    let cluster = Cluster::start();
    let mut owner = project(&cluster, "listen", 4, 2, false, Duration::from_secs(600));
    let mut a = member(&mut owner, "live_a", false);
    let password = owner.add_annotator("live_b", false).unwrap();
    let b = owner.target().as_role("live_b", &password);
    let (tx, rx) = crossbeam_channel::unbounded();
    let _listener = Listener::spawn(&b, move |n| tx.send(n).is_ok());
    let wait = |want: &dyn Fn(&Notice) -> bool| loop {
        let n = rx.recv_timeout(Duration::from_secs(20)).expect("a notice");
        if want(&n) {
            return n;
        }
    };
    wait(&|n| *n == Notice::Connected);
    let row = a.claim(1).unwrap()[0].row;
    a.label(row, 1).unwrap();
    assert_eq!(
        wait(&|n| matches!(n, Notice::Changed { .. })),
        Notice::Changed { rows: vec![row] }
    );
    cluster.crash();
    wait(&|n| matches!(n, Notice::Lost(_)));
    cluster.up();
    wait(&|n| *n == Notice::Connected);
    let mut a = TeamDb::connect(a.target()).unwrap();
    a.label(row + 1, 0).unwrap();
    assert_eq!(
        wait(&|n| matches!(n, Notice::Changed { .. })),
        Notice::Changed {
            rows: vec![row + 1]
        }
    );
}

/// `train --db` learns from the final labels only by default, says what it left out, and
/// records the run in the project; `majority` and `imported` fill the unsettled rows.
#[test]
fn train_on_a_team_project_uses_final_labels() {
    let cluster = Cluster::start();
    let mut owner = project(&cluster, "train", 12, 2, false, Duration::from_secs(600));
    let mut a = member(&mut owner, "tr_a", false);
    let mut b = member(&mut owner, "tr_b", false);
    for row in 0..8 {
        a.label(row, (row % 2) as u8).unwrap();
        // Rows 6 and 7: B disagrees, so they stay unsettled.
        b.label(row, ((row % 2) as u8) ^ (row >= 6) as u8).unwrap();
    }
    let skip = owner.training_set(Unsettled::Skip).unwrap();
    assert_eq!((skip.texts.len(), skip.settled, skip.left_out), (6, 6, 6));
    assert_eq!(skip.labels, vec![0, 1, 0, 1, 0, 1]);
    let majority = owner.training_set(Unsettled::Majority).unwrap();
    assert_eq!(
        (majority.texts.len(), majority.from_majority),
        (6, 0),
        "2 votes, 1 each: a tie"
    );
    let imported = owner.training_set(Unsettled::Imported).unwrap();
    let file_labels = sample().rows[6..12]
        .iter()
        .filter(|t| t.label.is_some())
        .count();
    assert_eq!(imported.from_imported, file_labels);

    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    common::write_tiny_model(&model, 7);
    let out_dir = dir.path().join("run");
    let url = owner.target().connection_line("postgres");
    let out = tweetlab(&[
        "train",
        "--db",
        &url,
        "--out",
        out_dir.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--max-len",
        "32",
        "--val-split",
        "0",
        "--device",
        "cpu",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("6 rows from the team project"), "{stderr}");
    assert!(stderr.contains("6 left out"), "{stderr}");
    let (runs, unsettled): (i64, String) = {
        let r = owner
            .client()
            .query_one(
                "SELECT count(*), max(settings->>'unsettled') FROM runs",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((runs, unsettled.as_str()), (1, "skip"));
    // A CSV and a project at once is refused.
    let both = tweetlab(&[
        "train",
        "--db",
        &url,
        "--data",
        "sample-data/train.csv",
        "--out",
        "x",
    ]);
    assert!(!both.status.success());
}

/// `sslmode` as libpq reads it, against a server that takes TCP only over TLS: `require` and
/// the default `prefer` encrypt, `disable` is refused by the server, `verify-full` connects
/// with the server's certificate as the root and refuses another.
#[test]
fn sslmode_is_honoured() {
    let cluster = Cluster::start_tls();
    cluster.create_db("tls");
    let tcp = |host: &str, extra: &str| {
        format!(
            "host={host} port={} user=postgres dbname=tls {extra}",
            cluster.tcp_port()
        )
    };
    let encrypted = |line: &str| -> bool {
        let mut db = TeamDb::connect(&Target::parse(line).unwrap()).unwrap();
        db.client()
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0)
    };
    assert!(encrypted(&tcp("127.0.0.1", "sslmode=require")));
    assert!(
        encrypted(&tcp("127.0.0.1", "")),
        "prefer uses TLS where offered"
    );
    let plain = TeamDb::connect(&Target::parse(&tcp("127.0.0.1", "sslmode=disable")).unwrap());
    assert!(
        matches!(plain, Err(TeamError::Connect { .. })),
        "the server takes TCP only over TLS: {:?}",
        plain.err()
    );
    let server = cluster.certificate("server");
    let verified = format!("sslmode=verify-full sslrootcert={}", server.display());
    assert!(encrypted(&tcp("localhost", &verified)));
    let target = Target::parse(&tcp("localhost", &verified)).unwrap();
    assert!(
        target.to_string().contains("sslmode=verify-full"),
        "{target}"
    );
    let other = cluster.certificate("other");
    let wrong = format!("sslmode=verify-full sslrootcert={}", other.display());
    let refused = TeamDb::connect(&Target::parse(&tcp("localhost", &wrong)).unwrap());
    let message = refused
        .err()
        .expect("a certificate from another root")
        .to_string();
    assert!(message.contains("certificate"), "{message}");
}

/// A project made under schema version 1 (the one that landed first) upgrades when its owner
/// connects: rows with their K labels are closed for the queue, and the annotators' group gets
/// what version 2 added (sending labels by op id), so an annotator added before labels as before.
#[test]
fn a_version_1_project_upgrades_on_connect() {
    let cluster = Cluster::start();
    let url = cluster.create_db("upgrade");
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(
        "CREATE TABLE tweetlab_schema (
             version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .unwrap();
    c.batch_execute(include_str!("../src/data/team/v1.sql"))
        .unwrap();
    c.batch_execute("INSERT INTO tweetlab_schema (version) VALUES (1)")
        .unwrap();
    let labels = serde_json::to_string(&sample().layout.labels).unwrap();
    c.execute(
        "INSERT INTO project (name, label_set, class_count, overlap, blind, claim_ttl, source,
                              annotator_role, reviewer_role)
         VALUES ('old', $1::text::jsonb, 2, 1, false, interval '10 minutes', 'sample',
                 'tweetlab_upgrade_annotators', 'tweetlab_upgrade_reviewers')",
        &[&labels],
    )
    .unwrap();
    c.batch_execute(
        "INSERT INTO rows (id, source_id, keyword, location, text, line)
         SELECT i, i::text, '', '', 'tweet ' || i, i + 2 FROM generate_series(0, 3) i;
         SELECT tweetlab_grant('tweetlab_upgrade_annotators', 'tweetlab_upgrade_reviewers');
         INSERT INTO labels (row_id, label) VALUES (0, 1);",
    )
    .unwrap();
    let verifier = postgres_protocol::password::scram_sha_256(b"old-password");
    c.execute(
        "SELECT tweetlab_add_annotator('up_a', $1, false)",
        &[&verifier],
    )
    .unwrap();

    let mut owner = TeamDb::connect(&Target::parse(&url).unwrap()).unwrap();
    let closed: Vec<bool> = owner
        .client()
        .query("SELECT closed FROM rows ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(closed, vec![true, false, false, false]);
    let mut a = TeamDb::connect(&owner.target().as_role("up_a", "old-password")).unwrap();
    assert_eq!(a.claim(1).unwrap()[0].row, 1);
    a.label(1, 0).unwrap();
    assert_eq!(owner.rows().unwrap()[1].fin, Some((0, Decided::Agreement)));
}
