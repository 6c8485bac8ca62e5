//! `tweetlab bench`: training and inference throughput (bench_torch.py's fields), or the time to
//! import a CSV and build its workspace.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::spinner;
use crate::data::store::Workspace;
use crate::data::{load_csv_with, ImportOptions};
use crate::engine::bench::{self, BenchConfig};
use crate::engine::device::{self, DeviceChoice};
use crate::engine::model::classifier::Pooling;
use crate::engine::model::{source, LoadedModel};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Pretrained model: a local directory or a Hub id.
    #[arg(long, default_value = source::DEFAULT_MODEL)]
    pub model: String,
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    #[arg(long, default_value_t = BenchConfig::default().steps)]
    pub steps: usize,
    #[arg(long, default_value_t = BenchConfig::default().warmup)]
    pub warmup: usize,
    #[arg(long, default_value_t = BenchConfig::default().seq)]
    pub seq: usize,
    #[arg(long)]
    pub json: bool,
    /// Instead of the model: time importing this CSV and building a workspace from it.
    #[arg(long, value_name = "CSV")]
    pub load: Option<PathBuf>,
}

/// Peak resident memory of this process so far, in MiB (Linux; NaN elsewhere).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn bench_load(csv: &Path, json: bool) -> Result<ExitCode> {
    let bytes = std::fs::metadata(csv)
        .with_context(|| format!("reading {}", csv.display()))?
        .len();
    let t = std::time::Instant::now();
    let data = load_csv_with(csv, &ImportOptions::default(), &mut |_, _| {})?;
    let parse_s = t.elapsed().as_secs_f64();
    let rss_after_parse = peak_rss_mib();
    let text_mib = data.rows.iter().map(|r| r.text.len()).sum::<usize>() as f64 / 1048576.0;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.sqlite");
    let t = std::time::Instant::now();
    drop(Workspace::create(&db, csv, &data)?);
    let import_s = t.elapsed().as_secs_f64();
    drop(data);
    let t = std::time::Instant::now();
    let ws = Workspace::open(&db)?;
    let open_s = t.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "csv": csv, "bytes": bytes, "rows": ws.rows().len(), "text_mib": (text_mib * 10.0).round() / 10.0,
        "parse_s": (parse_s * 1000.0).round() / 1000.0,
        "rows_per_s": (ws.rows().len() as f64 / parse_s).round(),
        "peak_rss_mib_after_parse": rss_after_parse.round(),
        "workspace_import_s": (import_s * 1000.0).round() / 1000.0,
        "workspace_open_s": (open_s * 1000.0).round() / 1000.0,
        "peak_rss_mib": peak_rss_mib().round(),
    });
    if json {
        println!("{report}");
    } else {
        println!(
            "{} rows ({:.0} MiB of text) parsed in {parse_s:.2} s, peak memory {rss_after_parse:.0} MiB; workspace built in {import_s:.2} s, reopened in {open_s:.2} s",
            ws.rows().len(),
            text_mib
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn bench_cmd(a: BenchArgs) -> Result<ExitCode> {
    if let Some(csv) = &a.load {
        return bench_load(csv, a.json);
    }
    let files = source::resolve(Some(&a.model), &|m| eprintln!("{m}"))?;
    let device = device::select(a.device)?;
    let model = LoadedModel::load(&files, &device, Some(Pooling::Cls), 0)?;
    let cfg = BenchConfig {
        seq: a.seq,
        steps: a.steps,
        warmup: a.warmup,
        ..BenchConfig::default()
    };
    let s = spinner("benchmarking");
    let report = bench::run(&model, &cfg, &mut |m| s.set_message(m.to_string()))?;
    s.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} on {}: training {:.2} samples/s ({:.1} ms/step, batch {}), inference {:.2} samples/s ({:.1} ms/batch, batch {}), length {}, {} kernels, {}, {} dense layers",
            report.model,
            report.device,
            report.train_samples_per_s,
            report.train_ms_per_step,
            report.train_bs,
            report.infer_samples_per_s,
            report.infer_ms_per_batch,
            report.infer_bs,
            report.seq,
            report.kernels,
            if report.unpadded {
                "padding skipped"
            } else {
                "padding computed"
            },
            report.precision
        );
    }
    Ok(ExitCode::SUCCESS)
}
