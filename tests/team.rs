//! Team projects on a real PostgreSQL server (started per test, see tests/pg): import, roles and
//! row level security, K-bounded claims under concurrent clients, expiry, review, export.

mod pg;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pg::Cluster;
use tweetlab::data::team::{Decided, ProjectSettings, Target, TeamDb, TeamError};
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
    assert_eq!(
        b.claim(1).unwrap()[0].row,
        row,
        "K = 2: both get the first row"
    );
    a.label(row, 1).unwrap();
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
    let forged_default = a
        .client()
        .execute("DELETE FROM labels WHERE annotator = 'blind_b'", &[]);
    assert!(forged_default.is_err(), "A may delete labels");
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
