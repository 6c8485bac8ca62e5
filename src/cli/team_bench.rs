//! `tweetlab team bench`: simulated annotators labelling one project as fast as they can, each
//! through its own session and outbox (as the window does), then the team invariants checked
//! in SQL. Run it across a server restart (tests/bench/team_fault.sh) to see the outboxes drain.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ImportArgs;
use crate::data::team::session::TeamSession;
use crate::data::team::{ProjectSettings, Target, TeamDb};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The CSV to label (an empty database gets a project made from it).
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 20)]
    annotators: usize,
    #[arg(long, default_value_t = 3)]
    overlap: u8,
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Chance that a simulated annotator gives the file's own label (else a random class).
    #[arg(long, default_value_t = 0.8)]
    agree: f64,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    import: ImportArgs,
}

/// What one simulated annotator did.
#[derive(Default)]
struct Worker {
    ops: Vec<String>,
    write_ms: Vec<f64>,
    next_ms: Vec<f64>,
    refused: usize,
    already_there: usize,
    offline_waits: usize,
    max_waiting: usize,
    /// Labels still in the outbox when the drain gave up.
    left_waiting: usize,
    error: Option<String>,
}

pub fn bench(owner: &mut TeamDb, a: BenchArgs) -> Result<ExitCode> {
    if owner.project().is_ok() {
        bail!("the bench makes its own project: give it an empty database");
    }
    let data = super::load_data(&a.data, &a.import)?;
    let settings = ProjectSettings {
        name: "bench".into(),
        overlap: a.overlap,
        blind: true,
        claim_ttl: Duration::from_secs(60),
    };
    owner.init(&settings, &data, &a.data.display().to_string())?;
    let imported: Arc<Vec<Option<u8>>> = Arc::new(data.rows.iter().map(|t| t.label).collect());
    let classes = data.layout.labels.len() as u8;
    let outboxes = tempfile::tempdir()?;
    let mut targets = Vec::new();
    for i in 0..a.annotators {
        let name = format!("bench_{i:02}");
        let password = owner.add_annotator(&name, false)?;
        targets.push(owner.target().as_role(&name, &password));
    }
    eprintln!(
        "{} rows, K = {}, {} annotators, {} s",
        data.rows.len(),
        a.overlap,
        a.annotators,
        a.seconds
    );
    let start = Arc::new(Barrier::new(a.annotators + 1));
    let run_for = Duration::from_secs_f64(a.seconds);
    let handles: Vec<_> = targets
        .into_iter()
        .enumerate()
        .map(|(i, target)| {
            let outbox = outboxes.path().join(format!("{i}.sqlite"));
            let start = start.clone();
            let imported = imported.clone();
            let agree = a.agree;
            std::thread::spawn(move || {
                let mut w = Worker::default();
                if let Err(e) = annotate(
                    &target, &outbox, &start, run_for, &imported, classes, agree, i, &mut w,
                ) {
                    w.error = Some(format!("{e:#}"));
                }
                w
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let workers: Vec<Worker> = handles
        .into_iter()
        .map(|h| h.join().expect("an annotator thread panicked"))
        .collect();
    let elapsed = began.elapsed().as_secs_f64();
    for (i, w) in workers.iter().enumerate() {
        if let Some(e) = &w.error {
            eprintln!("annotator {i}: {e}");
        }
    }
    let report = measure(owner, &workers, a.overlap, elapsed)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    let clean =
        report["violations"].as_u64() == Some(0) && workers.iter().all(|w| w.error.is_none());
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One annotator: claim a row, label it, repeat until the time is up; then drain the outbox
/// and give back what it still holds.
#[allow(clippy::too_many_arguments)]
fn annotate(
    target: &Target,
    outbox: &std::path::Path,
    start: &Barrier,
    run_for: Duration,
    imported: &[Option<u8>],
    classes: u8,
    agree: f64,
    seed: usize,
    w: &mut Worker,
) -> Result<()> {
    let mut session = TeamSession::open(target, outbox);
    start.wait();
    let session = session.as_mut().map_err(|e| anyhow::anyhow!("{e}"))?;
    session.set_retry_pause(Duration::from_millis(100));
    let mut rng = StdRng::seed_from_u64(seed as u64);
    let end = Instant::now() + run_for;
    while Instant::now() < end {
        // A label still waiting goes first: its row's claim is still held, and asking for the
        // next row would hand that row back.
        if session.waiting()? > 0 {
            let flushed = session.flush()?;
            w.refused += flushed.refused.len();
            w.already_there += flushed.already_there;
            if flushed.waiting > 0 {
                w.offline_waits += 1;
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        let t = Instant::now();
        let claimed = match session.call(|db| db.claim(1)) {
            Ok(c) => c,
            Err(e) if e.is_offline() => {
                w.offline_waits += 1;
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        w.next_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let Some(row) = claimed.first() else {
            break; // nothing left for this annotator
        };
        let label = match imported.get(row.row as usize).copied().flatten() {
            Some(l) if rng.random_bool(agree) => l,
            _ => rng.random_range(0..classes),
        };
        let t = Instant::now();
        w.ops.push(session.save(row.row, Some(label))?);
        let flushed = session.flush()?;
        w.refused += flushed.refused.len();
        w.already_there += flushed.already_there;
        w.max_waiting = w.max_waiting.max(flushed.waiting);
        if flushed.offline.is_none() {
            w.write_ms.push(t.elapsed().as_secs_f64() * 1e3);
        } else {
            w.offline_waits += 1;
        }
    }
    // Drain: the server may be coming back.
    let drain_end = Instant::now() + Duration::from_secs(60);
    loop {
        let flushed = session.flush()?;
        w.refused += flushed.refused.len();
        w.already_there += flushed.already_there;
        w.left_waiting = flushed.waiting;
        if flushed.waiting == 0 || Instant::now() > drain_end {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    session
        .call(|db| db.release())
        .context("releasing claims")?;
    Ok(())
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}

/// Throughput, latencies and the invariants, read back in SQL as the owner.
fn measure(
    owner: &mut TeamDb,
    workers: &[Worker],
    overlap: u8,
    elapsed: f64,
) -> Result<serde_json::Value> {
    let mut write: Vec<f64> = workers.iter().flat_map(|w| w.write_ms.clone()).collect();
    let mut next: Vec<f64> = workers.iter().flat_map(|w| w.next_ms.clone()).collect();
    let ops: Vec<String> = workers.iter().flat_map(|w| w.ops.clone()).collect();
    let refused: usize = workers.iter().map(|w| w.refused).sum();
    let left: usize = workers.iter().map(|w| w.left_waiting).sum();
    // The owner's connection may have seen the server go down and come back.
    let target = owner.target().clone();
    *owner = TeamDb::connect(&target)?;
    let c = owner.client();
    let one = |c: &mut postgres::Client, sql: &str| -> Result<i64> {
        Ok(c.query_one(sql, &[])?.get::<_, i64>(0))
    };
    let over_k: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT row_id FROM labels GROUP BY row_id
                                   HAVING count(*) > $1) o",
            &[&(overlap as i64)],
        )?
        .get(0);
    let ops_stored = one(c, "SELECT count(*) FROM label_ops")?;
    let ops_found: i64 = c
        .query_one(
            "SELECT count(*) FROM label_ops WHERE op_id = ANY($1)",
            &[&ops],
        )?
        .get(0);
    let history = one(c, "SELECT count(*) FROM label_history")?;
    let labels = one(c, "SELECT count(*) FROM labels")?;
    let live_claims = one(
        c,
        "SELECT count(*) FROM claims WHERE expires_at > clock_timestamp()",
    )?;
    let used_claims = one(
        c,
        "SELECT count(*) FROM claims c JOIN labels l
             ON l.row_id = c.row_id AND l.annotator = c.annotator",
    )?;
    let rows_full = one(
        c,
        &format!(
            "SELECT count(*) FROM (SELECT row_id FROM labels GROUP BY row_id
                                   HAVING count(*) = {overlap}) f"
        ),
    )?;
    let made = ops.len() as i64;
    // Every label a client saved is on the server once: none lost (made = found + refused +
    // still waiting), none doubled (one op row and one history row each, one label each).
    let lost = made - ops_found - refused as i64 - left as i64;
    let doubled = (ops_stored - ops_found) + (history - ops_stored) + (ops_stored - labels);
    let violations = over_k + lost.abs() + doubled.abs() + live_claims + used_claims;
    Ok(serde_json::json!({
        "annotators": workers.len(),
        "seconds": elapsed,
        "labels": made,
        "labels_per_s": made as f64 / elapsed,
        "label_write_ms": {"p50": percentile(&mut write, 0.5), "p99": percentile(&mut write, 0.99),
                           "max": percentile(&mut write, 1.0), "n": write.len()},
        "next_row_ms": {"p50": percentile(&mut next, 0.5), "p99": percentile(&mut next, 0.99),
                        "max": percentile(&mut next, 1.0), "n": next.len()},
        "rows_with_k_labels": rows_full,
        "offline_waits": workers.iter().map(|w| w.offline_waits).sum::<usize>(),
        "resends_already_applied": workers.iter().map(|w| w.already_there).sum::<usize>(),
        "most_waiting_in_one_outbox": workers.iter().map(|w| w.max_waiting).max().unwrap_or(0),
        "refused": refused,
        "left_in_outboxes": left,
        "checks": {
            "rows_over_k": over_k,
            "labels_lost": lost,
            "labels_doubled": doubled,
            "live_claims_after_release": live_claims,
            "claims_on_labelled_rows": used_claims,
        },
        "violations": violations,
    }))
}

fn print_report(r: &serde_json::Value) {
    let ms = |k: &str, q: &str| r[k][q].as_f64().unwrap_or(f64::NAN);
    println!(
        "{} annotators, {:.1} s: {} labels, {:.0} labels/s, {} rows at K",
        r["annotators"],
        r["seconds"].as_f64().unwrap_or(0.0),
        r["labels"],
        r["labels_per_s"].as_f64().unwrap_or(0.0),
        r["rows_with_k_labels"]
    );
    println!(
        "label write: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms("label_write_ms", "p50"),
        ms("label_write_ms", "p99"),
        ms("label_write_ms", "max")
    );
    println!(
        "next row:    p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms("next_row_ms", "p50"),
        ms("next_row_ms", "p99"),
        ms("next_row_ms", "max")
    );
    println!(
        "offline waits {}, resends already applied {}, most waiting in one outbox {}, refused {}",
        r["offline_waits"],
        r["resends_already_applied"],
        r["most_waiting_in_one_outbox"],
        r["refused"]
    );
    println!("checks: {}", r["checks"]);
    println!("violations: {}", r["violations"]);
}
