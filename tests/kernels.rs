//! The fused CPU kernels against the composed reference ops: same outputs, same gradients
//! (within 1e-4), on random inputs; the fused AdamW against candle-nn's; and the whole tiny
//! encoder run both ways.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tweetlab::engine::kernels::{self, fused, plain, with_dense, with_kernels, Kernels, Mode};
use tweetlab::engine::model::source::inspect_dir;
use tweetlab::engine::model::tokenize::{Batch, Encoded};
use tweetlab::engine::model::LoadedModel;
use tweetlab::engine::train::Optimisers;

use common::*;

const TOL: f32 = 1e-4;

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Largest |a - b| / max(1, |b|).
fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    values(a)
        .iter()
        .zip(values(b))
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

fn random(shape: &[usize], scale: f64, seed: u64) -> Tensor {
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| (rng.random::<f64>() * 2.0 - 1.0) as f32 * scale as f32)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Output and gradients of `f` with respect to `inputs`, under a fixed random upstream gradient
/// (the loss is `sum(f(inputs) * r)`).
fn output_and_grads(
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> candle_core::Result<Tensor>,
) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&ts).unwrap();
    let r = random(out.dims(), 1.0, 99);
    let grads = (&out * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let gs = ts
        .iter()
        .map(|t| {
            grads
                .get(t)
                .cloned()
                .unwrap_or_else(|| t.zeros_like().unwrap())
        })
        .collect();
    (out.detach(), gs)
}

fn assert_same(
    what: &str,
    (out_a, grads_a): &(Tensor, Vec<Tensor>),
    (out_b, grads_b): &(Tensor, Vec<Tensor>),
    with_grad: &[bool],
) {
    let d = max_diff(out_a, out_b);
    assert!(d < TOL, "{what}: outputs differ by {d}");
    for (i, ((a, b), check)) in grads_a.iter().zip(grads_b).zip(with_grad).enumerate() {
        if *check {
            let d = max_diff(a, b);
            assert!(d < TOL, "{what}: gradient of input {i} differs by {d}");
            assert!(
                values(b).iter().any(|v| *v != 0.0),
                "{what}: reference gradient {i} is all zero"
            );
        }
    }
}

#[test]
fn layer_norm_matches_the_composed_ops() {
    // Rows not a multiple of the kernel's chunk, shifted and scaled inputs.
    let x = (random(&[3, 70, 24], 3.0, 1) + 0.5).unwrap();
    let inputs = [x, random(&[24], 1.0, 2), random(&[24], 1.0, 3)];
    let fused_out = output_and_grads(&inputs, |t| fused::layer_norm(&t[0], &t[1], &t[2], 1e-12));
    let plain_out = output_and_grads(&inputs, |t| plain::layer_norm(&t[0], &t[1], &t[2], 1e-12));
    assert_same("layer norm", &fused_out, &plain_out, &[true, true, true]);
}

#[test]
fn bias_gelu_matches_the_composed_ops() {
    let inputs = [random(&[2, 33, 40], 4.0, 5), random(&[40], 1.0, 6)];
    let fused_out = output_and_grads(&inputs, |t| fused::bias_gelu(&t[0], &t[1]));
    let plain_out = output_and_grads(&inputs, |t| plain::bias_gelu(&t[0], &t[1]));
    assert_same("bias gelu", &fused_out, &plain_out, &[true, true]);
}

#[test]
fn linear_matches_matmul_and_bias_add() {
    fp32_dense_layers();
    // Odd sizes, so no dimension is a multiple of a gemm block.
    let inputs = [
        random(&[3, 23, 37], 1.0, 9),
        random(&[29, 37], 1.0, 10),
        random(&[29], 1.0, 11),
    ];
    let fused_out = output_and_grads(&inputs, |t| fused::linear(&t[0], &t[1], Some(&t[2])));
    let plain_out = output_and_grads(&inputs, |t| plain::linear(&t[0], &t[1], Some(&t[2])));
    assert_same("linear", &fused_out, &plain_out, &[true, true, true]);
    let fused_out = output_and_grads(&inputs[..2], |t| fused::linear(&t[0], &t[1], None));
    let plain_out = output_and_grads(&inputs[..2], |t| plain::linear(&t[0], &t[1], None));
    assert_same("linear without bias", &fused_out, &plain_out, &[true, true]);
}

fn attention_inputs(b: usize, l: usize, h: usize, lengths: &[u32]) -> [Tensor; 4] {
    let mask: Vec<u32> = lengths
        .iter()
        .flat_map(|&n| (0..l as u32).map(move |i| (i < n) as u32))
        .collect();
    let mask = Tensor::from_vec(mask, (b, l), &Device::Cpu).unwrap();
    [
        random(&[b, l, h], 2.0, 12),
        random(&[b, l, h], 2.0, 13),
        random(&[b, l, h], 2.0, 14),
        kernels::additive_attention_mask(&mask).unwrap(),
    ]
}

#[test]
fn attention_matches_the_composed_ops() {
    // 3 items (one without padding), 11 positions, 4 heads of 6.
    let inputs = attention_inputs(3, 11, 24, &[11, 8, 3]);
    let scale = 1.0 / 6f64.sqrt();
    let fused_out = output_and_grads(&inputs, |t| {
        fused::attention(&t[0], &t[1], &t[2], &t[3], None, 4, scale, None)
    });
    let plain_out = output_and_grads(&inputs, |t| {
        plain::attention(&t[0], &t[1], &t[2], &t[3], 4, scale, 0.0, &mut Mode::Eval)
    });
    assert_same(
        "attention",
        &fused_out,
        &plain_out,
        &[true, true, true, false],
    );
    // Padded keys get no weight: changing the values at item 2's padded positions (3 onwards)
    // leaves its context unchanged, while the same change at real positions moves item 1's.
    let bump = |item: usize, from: usize| {
        let mut v = inputs[2].to_vec3::<f32>().unwrap();
        for row in &mut v[item][from..] {
            row.iter_mut().for_each(|x| *x += 5.0);
        }
        let v = Tensor::new(v, &Device::Cpu).unwrap();
        fused::attention(&inputs[0], &inputs[1], &v, &inputs[3], None, 4, scale, None).unwrap()
    };
    let item = |t: &Tensor, i: usize| t.narrow(0, i, 1).unwrap();
    assert!(max_diff(&item(&bump(2, 3), 2), &item(&fused_out.0, 2)) < 1e-6);
    assert!(max_diff(&item(&bump(1, 3), 1), &item(&fused_out.0, 1)) > 1.0);
}

/// MPNet's position bias `[heads, L, L]`, added to the scaled scores: the fused op (which takes
/// it as an input and sums its gradient over the sequences) against the composed ops with the
/// bias folded into the mask.
#[test]
fn attention_with_a_position_bias_matches_the_composed_ops() {
    let [q, k, v, mask] = attention_inputs(3, 11, 24, &[11, 8, 3]);
    let inputs = [q, k, v, mask, random(&[4, 11, 11], 2.0, 15)];
    let scale = 1.0 / 6f64.sqrt();
    let fused_out = output_and_grads(&inputs, |t| {
        fused::attention(&t[0], &t[1], &t[2], &t[3], Some(&t[4]), 4, scale, None)
    });
    let plain_out = output_and_grads(&inputs, |t| {
        let mask = t[3].broadcast_add(&t[4].unsqueeze(0)?)?;
        plain::attention(&t[0], &t[1], &t[2], &mask, 4, scale, 0.0, &mut Mode::Eval)
    });
    assert_same(
        "biased attention",
        &fused_out,
        &plain_out,
        &[true, true, true, false, true],
    );
    // The bias moves the output (the comparison above is not blind to it).
    let unbiased = fused::attention(
        &inputs[0], &inputs[1], &inputs[2], &inputs[3], None, 4, scale, None,
    )
    .unwrap();
    assert!(max_diff(&unbiased, &fused_out.0) > 1e-2);
}

/// Attention on the real tokens alone (packed one sequence after another, no grid, no mask)
/// gives the grid's outputs and gradients at the real positions, with and without a position
/// bias (each sequence's positions count from 0 in both layouts).
#[test]
fn packed_attention_equals_the_grid_at_real_tokens() {
    let lengths = [11usize, 8, 3];
    let [q, k, v, mask] = attention_inputs(3, 11, 24, &[11, 8, 3]);
    let scale = 1.0 / 6f64.sqrt();
    let real: Vec<u32> = lengths
        .iter()
        .enumerate()
        .flat_map(|(b, &n)| (0..n as u32).map(move |i| b as u32 * 11 + i))
        .collect();
    let real = Tensor::new(real.as_slice(), &Device::Cpu).unwrap();
    let pack = |t: &Tensor| t.reshape((33, 24)).unwrap().index_select(&real, 0).unwrap();
    let loss_grads = |xs: &[Tensor], f: &dyn Fn(&[Tensor]) -> Tensor| {
        let vars: Vec<Var> = xs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let out = f(&ts);
        let g = out.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let grads = ts
            .iter()
            .map(|t| g.get(t).unwrap().clone())
            .collect::<Vec<_>>();
        (out, grads)
    };
    for bias in [None, Some(random(&[4, 11, 11], 2.0, 16))] {
        let with_bias = |mut xs: Vec<Tensor>| {
            xs.extend(bias.clone());
            xs
        };
        // The loss reads the real tokens only, so the gradients compare in both layouts.
        let (grid, grid_grads) =
            loss_grads(&with_bias(vec![q.clone(), k.clone(), v.clone()]), &|t| {
                let out = fused::attention(&t[0], &t[1], &t[2], &mask, t.get(3), 4, scale, None);
                pack(&out.unwrap())
            });
        let (packed, packed_grads) =
            loss_grads(&with_bias(vec![pack(&q), pack(&k), pack(&v)]), &|t| {
                fused::attention_packed(&t[0], &t[1], &t[2], t.get(3), &lengths, 4, scale, None)
                    .unwrap()
            });
        let biased = bias.is_some();
        let d = max_diff(&packed, &grid);
        assert!(d < TOL, "biased={biased}: outputs differ by {d}");
        for (name, (g, p)) in ["dq", "dk", "dv"]
            .iter()
            .zip(grid_grads.iter().zip(&packed_grads))
        {
            let d = max_diff(p, &pack(g));
            assert!(d < TOL, "biased={biased}: {name}: {d}");
        }
        if biased {
            let d = max_diff(&packed_grads[3], &grid_grads[3]);
            assert!(d < TOL, "d(bias): {d}");
            assert!(values(&grid_grads[3]).iter().any(|v| *v != 0.0));
        }
    }
}

/// With dropout on, the mask is fixed by the seed, so the gradient must match finite differences
/// of the forward pass, the position bias's included.
#[test]
fn attention_with_dropout_has_the_gradient_of_its_forward_pass() {
    let [q, k, v, mask] = attention_inputs(2, 7, 8, &[7, 5]);
    let bias = random(&[2, 7, 7], 1.0, 17);
    for biased in [false, true] {
        let inputs = [q.clone(), k.clone(), v.clone(), bias.clone()];
        let f = |t: &[Tensor]| {
            let bias = biased.then_some(&t[3]);
            fused::attention(&t[0], &t[1], &t[2], &mask, bias, 2, 0.5, Some((0.3, 5)))
        };
        let (out, grads) = output_and_grads(&inputs, f);
        // Dropout really dropped something: the output differs from the no-dropout one.
        let bias_in = biased.then_some(&bias);
        let undropped = fused::attention(&q, &k, &v, &mask, bias_in, 2, 0.5, None).unwrap();
        assert!(max_diff(&out, &undropped) > 1e-3);
        let r = random(out.dims(), 1.0, 99);
        let loss = |t: &[Tensor]| -> f64 {
            (f(t).unwrap() * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let eps = 1e-2f32;
        let checked = if biased { 4 } else { 3 };
        for (which, grad) in grads.iter().enumerate().take(checked) {
            let g = values(grad);
            for idx in [0usize, 9, 30, 61, 90] {
                let nudge = |delta: f32| {
                    let mut v = values(&inputs[which]);
                    v[idx] += delta;
                    let mut t = inputs.clone();
                    t[which] = Tensor::from_vec(v, inputs[which].dims(), &Device::Cpu).unwrap();
                    loss(&t)
                };
                let numeric = (nudge(eps) - nudge(-eps)) / (2.0 * eps as f64);
                let diff = (numeric - g[idx] as f64).abs();
                assert!(
                    diff < 2e-2 * numeric.abs().max(1.0),
                    "biased={biased}: input {which}[{idx}]: analytic {} numeric {numeric}",
                    g[idx]
                );
            }
        }
    }
}

#[test]
fn fused_dropout_drops_at_the_rate_asked_and_its_gradient_uses_the_same_mask() {
    let x = Var::from_tensor(&Tensor::ones((200, 500), DType::F32, &Device::Cpu).unwrap()).unwrap();
    let y = fused::dropout(x.as_tensor(), 0.1, 42).unwrap();
    let v = values(&y);
    let dropped = v.iter().filter(|v| **v == 0.0).count() as f64 / v.len() as f64;
    assert!((dropped - 0.1).abs() < 0.005, "dropped {dropped}");
    let kept_scale = 1.0 / 0.9f32;
    assert!(v
        .iter()
        .all(|v| *v == 0.0 || (*v - kept_scale).abs() < 1e-6));
    // d(sum y)/dx is the mask times the scale: equal to y itself for x = 1.
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(values(g.get(x.as_tensor()).unwrap()), v);
    // Same seed, same mask; another seed, another mask.
    assert_eq!(values(&fused::dropout(x.as_tensor(), 0.1, 42).unwrap()), v);
    assert_ne!(values(&fused::dropout(x.as_tensor(), 0.1, 43).unwrap()), v);
}

/// Three clipped AdamW steps with random gradients, fused and candle-nn's, from the same start;
/// again with a per-parameter share of the learning rate (layer-wise decay).
#[test]
fn fused_adamw_matches_candle_nn() {
    let full = adamw_both_ways(|_| 1.0);
    let scaled = adamw_both_ways(|n| if n.ends_with("bias") { 0.3 } else { 0.7 });
    // The scales took effect: every parameter ends elsewhere than at the full rate.
    for (f, s) in full.iter().zip(&scaled) {
        assert!(max_diff(f, s) > 1e-4);
    }
}

/// Runs the steps with each kernel set, checks they agree, returns the fused result.
fn adamw_both_ways(scale: fn(&str) -> f64) -> Vec<Tensor> {
    let run = |k: Kernels| {
        with_kernels(k, || {
            let mut vars = std::collections::BTreeMap::new();
            vars.insert(
                "layer.weight".to_string(),
                Var::from_tensor(&random(&[37, 19], 1.0, 7)).unwrap(),
            );
            vars.insert(
                "layer.bias".to_string(),
                Var::from_tensor(&random(&[19], 1.0, 8)).unwrap(),
            );
            let mut opt = Optimisers::with_lr_scales(&vars, 1e-2, 0.1, scale).unwrap();
            assert_eq!(opt.implementation(), k.name());
            for step in 0..3u64 {
                let loss = vars
                    .values()
                    .enumerate()
                    .map(|(i, v)| {
                        let r = random(v.dims(), 3.0, 100 + step * 10 + i as u64);
                        (v.as_tensor() * r).unwrap().sum_all().unwrap()
                    })
                    .reduce(|a, b| (a + b).unwrap())
                    .unwrap();
                let mut grads = loss.backward().unwrap();
                // The random gradients' norm is far above 1: clipping is exercised.
                let norm = opt.clip_and_step(&mut grads, 1.0).unwrap();
                assert!(norm > 1.0);
            }
            vars.values()
                .map(|v| v.as_tensor().copy().unwrap())
                .collect::<Vec<_>>()
        })
    };
    let fused = run(Kernels::Fused);
    let plain = run(Kernels::Plain);
    for (f, p) in fused.iter().zip(&plain) {
        let d = max_diff(f, p);
        assert!(d < 1e-6, "parameters differ by {d}");
    }
    fused
}

/// A tiny model of every family: BERT (written here, kept alive by the returned folder) and the
/// checked-in RoBERTa, DistilBERT, XLM-R and MPNet fixtures.
fn every_family() -> (tempfile::TempDir, Vec<std::path::PathBuf>) {
    let (tmp, tiny) = tiny_model();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs = vec![tiny];
    dirs.extend(
        [
            "tiny-roberta",
            "tiny-distilbert",
            "tiny-xlm-roberta",
            "tiny-mpnet",
        ]
        .map(|f| fixtures.join(f)),
    );
    (tmp, dirs)
}

/// The tiny encoders end to end, every family (MPNet's trained position bias included): logits
/// and every parameter's gradient agree between the two implementations (eval mode, so no
/// dropout stream is involved).
#[test]
fn whole_encoder_gives_the_same_logits_and_gradients_both_ways() {
    fp32_dense_layers();
    let (_tmp, dirs) = every_family();
    let (texts, labels) = sample_rows();
    for dir in &dirs {
        let files = inspect_dir(dir, "test").unwrap();
        let model = LoadedModel::load(&files, &Device::Cpu, None, 3).unwrap();
        let refs: Vec<&str> = texts[..12].iter().map(String::as_str).collect();
        let enc = model.tokenizer.encode_all(&refs, 48).unwrap();
        let items: Vec<&Encoded> = enc.iter().collect();
        let batch =
            Batch::from_encoded(&items, model.tokenizer.pad_id, None, &Device::Cpu).unwrap();
        assert!(
            enc.iter()
                .any(|e| e.len() < batch.input_ids.dim(1).unwrap()),
            "the batch should include padding"
        );
        let y: Vec<u32> = labels[..12].iter().map(|&l| l as u32).collect();
        let y = Tensor::new(y.as_slice(), &Device::Cpu).unwrap();
        let run = |k: Kernels, dense: bool| {
            with_kernels(k, || {
                with_dense(dense, || {
                    let logits = model.net.forward(&batch, &mut Mode::Eval).unwrap();
                    let loss = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
                    let grads = loss.backward().unwrap();
                    let g: Vec<(String, Tensor)> = model
                        .net
                        .vars
                        .iter()
                        .filter_map(|(n, v)| {
                            grads.get(v.as_tensor()).map(|g| (n.clone(), g.clone()))
                        })
                        .collect();
                    (logits, g)
                })
            })
        };
        let dir = dir.display();
        let (logits_p, grads_p) = run(Kernels::Plain, true);
        // Fused kernels computing every padded position, and skipping padding (the default).
        for dense in [true, false] {
            let (logits_f, grads_f) = run(Kernels::Fused, dense);
            let d = max_diff(&logits_f, &logits_p);
            assert!(d < TOL, "{dir}, dense={dense}: logits differ by {d}");
            assert_eq!(
                grads_f.len(),
                model.net.vars.len(),
                "{dir}: a parameter got no gradient"
            );
            assert_eq!(grads_f.len(), grads_p.len());
            for ((name, f), (_, p)) in grads_f.iter().zip(&grads_p) {
                let d = max_diff(f, p);
                assert!(
                    d < TOL,
                    "{dir}, dense={dense}: gradient of {name} differs by {d}"
                );
            }
        }
    }
}

/// Skipping padding leaves the real tokens' hidden states as they were, and gives zeros at
/// padding; a batch padded far past its longest text (as the benchmark pads) included.
#[test]
fn skipping_padding_keeps_the_real_tokens_hidden_states() {
    let (_tmp, dir) = tiny_model();
    let files = inspect_dir(&dir, "test").unwrap();
    let model = LoadedModel::load(&files, &Device::Cpu, None, 3).unwrap();
    let (texts, _) = sample_rows();
    let refs: Vec<&str> = texts[20..29].iter().map(String::as_str).collect();
    let enc = model.tokenizer.encode_all(&refs, 48).unwrap();
    let items: Vec<&Encoded> = enc.iter().collect();
    let batch =
        Batch::from_encoded(&items, model.tokenizer.pad_id, Some(64), &Device::Cpu).unwrap();
    let hidden = |dense: bool| {
        with_kernels(Kernels::Fused, || {
            with_dense(dense, || {
                model
                    .net
                    .encoder
                    .forward(
                        &batch.input_ids,
                        &batch.type_ids,
                        &batch.attention_mask,
                        &mut Mode::Eval,
                    )
                    .unwrap()
            })
        })
    };
    let (dense, unpadded) = (hidden(true), hidden(false));
    assert_eq!(dense.dims(), unpadded.dims());
    let (dense, unpadded) = (
        dense.to_vec3::<f32>().unwrap(),
        unpadded.to_vec3::<f32>().unwrap(),
    );
    for (i, e) in enc.iter().enumerate() {
        for pos in 0..64 {
            let (d, u) = (&dense[i][pos], &unpadded[i][pos]);
            if pos < e.len() {
                let diff = d
                    .iter()
                    .zip(u)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(diff < 1e-4, "text {i} token {pos} differs by {diff}");
            } else {
                assert!(
                    u.iter().all(|v| *v == 0.0),
                    "text {i} padding {pos} not zero"
                );
            }
        }
    }
}

/// CLS pooling reads the first token only, and when padding is skipped the last layer computes
/// that token alone: its state must equal the full pass's first row, for every family, through
/// packed and unpacked batches and both kernels, a row whose first position is padding included.
#[test]
fn the_first_token_alone_equals_the_full_pass() {
    let (_tmp, dirs) = every_family();
    let (texts, _) = sample_rows();
    for dir in &dirs {
        let files = inspect_dir(dir, "test").unwrap();
        let model = LoadedModel::load(&files, &Device::Cpu, None, 3).unwrap();
        let mut refs: Vec<&str> = texts[30..38].iter().map(String::as_str).collect();
        refs.push("Fire!");
        let positions = model.net.encoder.config.max_tokens();
        let enc = model
            .tokenizer
            .encode_all(&refs, positions * 3 / 4)
            .unwrap();
        let items: Vec<&Encoded> = enc.iter().collect();
        let pad = model.tokenizer.pad_id;
        let batch = |items: &[&Encoded], pad_to| {
            let b = Batch::from_encoded(items, pad, pad_to, &Device::Cpu).unwrap();
            (b.input_ids, b.type_ids, b.attention_mask)
        };
        // Padded to the longest text (packed), past it (trimmed, then packed), one text alone
        // (nothing to pack), and the first with its first position masked (no packed row
        // stands for that position).
        let mut inputs = vec![
            batch(&items, None),
            batch(&items, Some(positions)),
            batch(&items[..1], None),
        ];
        let (ids, types, mask) = inputs[0].clone();
        assert!(enc.iter().any(|e| e.len() < ids.dim(1).unwrap()));
        let mut rows = mask.to_vec2::<f32>().unwrap();
        rows[0][0] = 0.0;
        inputs.push((ids, types, Tensor::new(rows, &Device::Cpu).unwrap()));
        let encoder = &model.net.encoder;
        for (ids, types, mask) in &inputs {
            for k in [Kernels::Fused, Kernels::Plain] {
                with_kernels(k, || {
                    let full = encoder.forward(ids, types, mask, &mut Mode::Eval).unwrap();
                    let full = full.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
                    let first = encoder
                        .forward_first_token(ids, types, mask, &mut Mode::Eval)
                        .unwrap();
                    assert_eq!(first.dims(), full.dims());
                    let d = max_diff(&first, &full);
                    assert!(
                        d < 1e-5,
                        "{}, {k:?}, batch {:?}: first token differs by {d}",
                        dir.display(),
                        ids.dims()
                    );
                });
            }
        }
    }
}

#[test]
fn the_switch_picks_the_implementation_and_names_it() {
    assert_eq!(Kernels::parse("Plain"), Some(Kernels::Plain));
    assert_eq!(Kernels::parse("fused"), Some(Kernels::Fused));
    assert_eq!(Kernels::parse("fast"), None);
    with_kernels(Kernels::Plain, || {
        assert_eq!(kernels::kernels_in_use(&Device::Cpu), Kernels::Plain)
    });
    with_kernels(Kernels::Fused, || {
        assert_eq!(kernels::kernels_in_use(&Device::Cpu), Kernels::Fused)
    });
}
