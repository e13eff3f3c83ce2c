//! The kernels against f64 references and finite differences.

use super::super::amx;
use super::*;
use imdb_rng::SeededRng;

const CELLS: [CellKind; 3] = [CellKind::Lstm, CellKind::Gru, CellKind::Rnn];

fn random(rng: &mut SeededRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
        .collect()
}

struct Case {
    cell: CellKind,
    dims: RecurrentDims,
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    bias: Vec<f32>,
    x: Vec<f32>,
    mask: Vec<f32>,
    rec: Option<Vec<f32>>,
    reverse: bool,
}

impl Case {
    /// `hidden` 16 takes the AVX-512 gate loops where the CPU has them; 3 the portable ones.
    fn new(cell: CellKind, seed: u64, reverse: bool, with_rec: bool, hidden: usize) -> Self {
        let dims = RecurrentDims {
            batch: 3,
            steps: 5,
            input: 4,
            hidden,
        };
        let mut rng = SeededRng::new(seed);
        let (b, t, e, h) = (dims.batch, dims.steps, dims.input, dims.hidden);
        let g = cell.gates() * h;
        // Row 0 full, row 1 post-padded (3 real), row 2 pre-padded (2 real).
        let mut mask = vec![1.0; b * t];
        mask[t + 3] = 0.0;
        mask[t + 4] = 0.0;
        for s in 0..3 {
            mask[2 * t + s] = 0.0;
        }
        Self {
            cell,
            dims,
            w_ih: random(&mut rng, e * g, 0.6),
            w_hh: random(&mut rng, h * g, 0.6),
            bias: random(&mut rng, cell.bias_len(h), 0.3),
            x: random(&mut rng, b * t * e, 1.0),
            mask,
            rec: with_rec.then(|| {
                (0..b * h)
                    .map(|i| if i % 4 == 1 { 0.0 } else { 1.25 })
                    .collect()
            }),
            reverse,
        }
    }

    fn direction(&self) -> Direction {
        if self.reverse {
            Direction::Reverse
        } else {
            Direction::Forward
        }
    }

    fn weights(&self) -> RecurrentWeights<'_> {
        RecurrentWeights {
            w_ih: &self.w_ih,
            w_hh: &self.w_hh,
            bias: &self.bias,
        }
    }

    fn inputs(&self) -> RecurrentInputs<'_> {
        RecurrentInputs {
            x: &self.x,
            form: InputForm::Features,
            step_mask: &self.mask,
            recurrent_mask: self.rec.as_deref(),
            direction: self.direction(),
            output: StateOutput::EveryStep,
        }
    }

    /// Forward with a tape, then backward from `d_out`: the output and the gradients.
    fn run(&self, inputs: RecurrentInputs<'_>, d_out: &[f32]) -> (Vec<f32>, RecurrentGrads) {
        let (out, tape) =
            recurrent_forward(self.cell, self.dims, self.weights(), inputs, Pass::Training);
        let grads = recurrent_backward(
            self.cell,
            self.dims,
            self.weights(),
            inputs,
            &tape.unwrap(),
            d_out,
        );
        (out, grads)
    }

    /// Straightforward f64 forward pass of the cell's textbook equations, the reference.
    fn naive_forward(&self, w_ih: &[f32], w_hh: &[f32], bias: &[f32], x: &[f32]) -> Vec<f64> {
        let RecurrentDims {
            batch: b,
            steps: t_len,
            input: e,
            hidden: h,
        } = self.dims;
        let g = self.cell.gates() * h;
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let mut out = vec![0.0; b * t_len * h];
        for i in 0..b {
            let (mut hs, mut cs) = (vec![0.0f64; h], vec![0.0f64; h]);
            for t in self.direction().order(t_len) {
                if self.mask[i * t_len + t] != 0.0 {
                    let hm: Vec<f64> = (0..h)
                        .map(|k| hs[k] * self.rec.as_ref().map_or(1.0, |m| m[i * h + k] as f64))
                        .collect();
                    let xp: Vec<f64> = (0..g)
                        .map(|j| {
                            bias[j] as f64
                                + (0..e)
                                    .map(|k| {
                                        x[(i * t_len + t) * e + k] as f64 * w_ih[k * g + j] as f64
                                    })
                                    .sum::<f64>()
                        })
                        .collect();
                    let hp: Vec<f64> = (0..g)
                        .map(|j| (0..h).map(|k| hm[k] * w_hh[k * g + j] as f64).sum::<f64>())
                        .collect();
                    match self.cell {
                        CellKind::Lstm => {
                            for j in 0..h {
                                let a = |q: usize| xp[q * h + j] + hp[q * h + j];
                                let (ig, fg, cg, og) =
                                    (sig(a(0)), sig(a(1)), a(2).tanh(), sig(a(3)));
                                cs[j] = fg * cs[j] + ig * cg;
                                hs[j] = og * cs[j].tanh();
                            }
                        }
                        CellKind::Gru => {
                            let rb = |j: usize| bias[g + j] as f64;
                            let new: Vec<f64> = (0..h)
                                .map(|j| {
                                    let z = sig(xp[j] + hp[j] + rb(j));
                                    let r = sig(xp[h + j] + hp[h + j] + rb(h + j));
                                    let n = (xp[2 * h + j] + r * (hp[2 * h + j] + rb(2 * h + j)))
                                        .tanh();
                                    z * hs[j] + (1.0 - z) * n
                                })
                                .collect();
                            hs = new;
                        }
                        CellKind::Rnn => {
                            for j in 0..h {
                                hs[j] = (xp[j] + hp[j]).tanh();
                            }
                        }
                    }
                }
                for j in 0..h {
                    out[(i * t_len + t) * h + j] = hs[j];
                }
            }
        }
        out
    }
}

#[test]
fn forward_matches_reference() {
    for (cell, hidden) in CELLS.into_iter().flat_map(|c| [(c, 3), (c, 16)]) {
        for (reverse, rec) in [(false, false), (true, false), (false, true), (true, true)] {
            let case = Case::new(cell, 11, reverse, rec, hidden);
            let expected = case.naive_forward(&case.w_ih, &case.w_hh, &case.bias, &case.x);
            // Inference takes the split bf16 product where AMX is available.
            let split = amx::supports(cell.gates() * hidden);
            let run =
                |pass| recurrent_forward(cell, case.dims, case.weights(), case.inputs(), pass).0;
            let with_tape = run(Pass::Training);
            let fast = run(Pass::Inference(InferencePrecision::Fast));
            for (out, tolerance) in [(&with_tape, 1e-5), (&fast, if split { 5e-5 } else { 1e-5 })] {
                for (a, b) in out.iter().zip(&expected) {
                    assert!(
                        (*a as f64 - b).abs() < tolerance,
                        "{cell:?} reverse {reverse} rec {rec}: {a} vs {b}"
                    );
                }
            }
            // Exact inference is the taped pass's arithmetic, bit for bit.
            assert_eq!(
                run(Pass::Inference(InferencePrecision::F32)),
                with_tape,
                "{cell:?} f32"
            );
        }
    }
}

#[test]
fn backward_matches_finite_differences() {
    for (cell, hidden) in CELLS.into_iter().flat_map(|c| [(c, 3), (c, 16)]) {
        for (reverse, rec) in [(false, false), (true, true)] {
            let case = Case::new(cell, 5, reverse, rec, hidden);
            let mut rng = SeededRng::new(99);
            let d_out = random(
                &mut rng,
                case.x.len() / case.dims.input * case.dims.hidden,
                1.0,
            );
            let (_, grads) = case.run(case.inputs(), &d_out);
            let loss = |w_ih: &[f32], w_hh: &[f32], bias: &[f32], x: &[f32]| -> f64 {
                case.naive_forward(w_ih, w_hh, bias, x)
                    .iter()
                    .zip(&d_out)
                    .map(|(o, d)| o * *d as f64)
                    .sum()
            };
            let eps = 1e-3f32;
            let check = |name: &str, analytic: &[f32], perturb: &dyn Fn(usize, f32) -> f64| {
                for (i, &a) in analytic.iter().enumerate() {
                    let numeric = (perturb(i, eps) - perturb(i, -eps)) / (2.0 * eps as f64);
                    assert!(
                        (a as f64 - numeric).abs() < 2e-3 * (1.0 + numeric.abs()),
                        "{cell:?} {name}[{i}] reverse {reverse}: analytic {a} numeric {numeric}"
                    );
                }
            };
            let bump = |v: &[f32], i: usize, d: f32| {
                let mut v = v.to_vec();
                v[i] += d;
                v
            };
            check("x", &grads.dx, &|i, d| {
                loss(&case.w_ih, &case.w_hh, &case.bias, &bump(&case.x, i, d))
            });
            check("w_ih", &grads.dw_ih, &|i, d| {
                loss(&bump(&case.w_ih, i, d), &case.w_hh, &case.bias, &case.x)
            });
            check("w_hh", &grads.dw_hh, &|i, d| {
                loss(&case.w_ih, &bump(&case.w_hh, i, d), &case.bias, &case.x)
            });
            check("bias", &grads.dbias, &|i, d| {
                loss(&case.w_ih, &case.w_hh, &bump(&case.bias, i, d), &case.x)
            });
            assert_eq!(grads.dbias.len(), cell.bias_len(case.dims.hidden));
        }
    }
}

/// A final-state readout's gradient equals the full one with `d_out` zero at every step
/// but the last processed, padding at that step included.
#[test]
fn final_only_takes_the_final_states_gradient() {
    for (cell, hidden) in CELLS.into_iter().flat_map(|c| [(c, 3), (c, 16)]) {
        for reverse in [false, true] {
            let case = Case::new(cell, 12, reverse, true, hidden);
            let RecurrentDims { batch, steps, .. } = case.dims;
            let last_step = if reverse { 0 } else { steps - 1 };
            let finals_only = RecurrentInputs {
                output: StateOutput::FinalOnly,
                ..case.inputs()
            };
            let mut rng = SeededRng::new(4);
            let d_final = random(&mut rng, batch * hidden, 1.0);
            let mut d_out = vec![0.0f32; batch * steps * hidden];
            let at = |b: usize| (b * steps + last_step) * hidden;
            for b in 0..batch {
                d_out[at(b)..at(b) + hidden]
                    .copy_from_slice(&d_final[b * hidden..(b + 1) * hidden]);
            }
            let (out, full) = case.run(case.inputs(), &d_out);
            let (finals, last) = case.run(finals_only, &d_final);
            for b in 0..batch {
                assert_eq!(
                    finals[b * hidden..(b + 1) * hidden],
                    out[at(b)..at(b) + hidden]
                );
            }
            assert_eq!(last, full, "{cell:?} reverse {reverse}");
            assert!(last.dw_hh.iter().any(|&v| v != 0.0));
        }
    }
}

#[test]
fn projected_input_gives_the_same_outputs() {
    for cell in CELLS {
        let case = Case::new(cell, 8, true, true, 3);
        let RecurrentDims {
            batch,
            steps,
            input,
            hidden,
        } = case.dims;
        let g = cell.gates() * hidden;
        // xp = x·w_ih + input bias, computed naively.
        let mut xp = vec![0.0f32; batch * steps * g];
        for row in 0..batch * steps {
            for j in 0..g {
                xp[row * g + j] = case.bias[j]
                    + (0..input)
                        .map(|k| case.x[row * input + k] * case.w_ih[k * g + j])
                        .sum::<f32>();
            }
        }
        let projected_dims = RecurrentDims {
            input: g,
            ..case.dims
        };
        let weights = RecurrentWeights {
            w_ih: &[],
            w_hh: &case.w_hh,
            bias: &case.bias,
        };
        let inputs = RecurrentInputs {
            x: &xp,
            form: InputForm::Projected,
            ..case.inputs()
        };
        let (out, _) = recurrent_forward(
            cell,
            case.dims,
            case.weights(),
            case.inputs(),
            Pass::Inference(InferencePrecision::Fast),
        );
        // Read in place, or looked up from a table (here the rows of `xp` in reverse
        // order), the projection gives the same outputs.
        let n = batch * steps;
        let table: Vec<f32> = (0..n)
            .rev()
            .flat_map(|row| xp[row * g..(row + 1) * g].to_vec())
            .collect();
        let ids: Vec<u32> = (0..n).map(|row| (n - 1 - row) as u32).collect();
        let lookup = RecurrentInputs {
            x: &table,
            form: InputForm::Lookup(&ids),
            ..inputs
        };
        for inputs in [inputs, lookup] {
            let (out_i, tape_i) = recurrent_forward(
                cell,
                projected_dims,
                weights,
                inputs,
                Pass::Inference(InferencePrecision::Fast),
            );
            assert!(tape_i.is_none());
            for (a, b) in out_i.iter().zip(&out) {
                assert!((a - b).abs() < 1e-5, "{cell:?} inference");
            }
            // Only the final state: the output at the last step processed.
            let last = RecurrentInputs {
                output: StateOutput::FinalOnly,
                ..inputs
            };
            let (finals, _) = recurrent_forward(
                cell,
                projected_dims,
                weights,
                last,
                Pass::Inference(InferencePrecision::Fast),
            );
            let t = if case.reverse { 0 } else { steps - 1 };
            for b in 0..batch {
                let at = (b * steps + t) * hidden;
                assert_eq!(
                    finals[b * hidden..(b + 1) * hidden],
                    out_i[at..at + hidden],
                    "{cell:?} final state"
                );
            }
        }
    }
}

#[test]
#[should_panic(expected = "a projected input is forward only")]
fn a_projected_input_keeps_no_tape() {
    let case = Case::new(CellKind::Lstm, 1, false, false, 3);
    let g = 4 * case.dims.hidden;
    let xp = vec![0.0; case.dims.batch * case.dims.steps * g];
    let inputs = RecurrentInputs {
        x: &xp,
        form: InputForm::Projected,
        ..case.inputs()
    };
    let weights = RecurrentWeights {
        w_ih: &[],
        ..case.weights()
    };
    let dims = RecurrentDims {
        input: g,
        ..case.dims
    };
    recurrent_forward(CellKind::Lstm, dims, weights, inputs, Pass::Training);
}

#[test]
fn padding_does_not_change_the_final_state() {
    for cell in CELLS {
        // The same review with and without padding ends in the same state.
        let dims = RecurrentDims {
            batch: 2,
            steps: 4,
            input: 2,
            hidden: 2,
        };
        let g = cell.gates() * 2;
        let mut rng = SeededRng::new(3);
        let w_ih = random(&mut rng, 2 * g, 0.5);
        let w_hh = random(&mut rng, 2 * g, 0.5);
        let bias = random(&mut rng, cell.bias_len(2), 0.5);
        let real = random(&mut rng, 2 * 2, 1.0);
        // Row 0: two real steps then padding; row 1: padding then the same two steps.
        let mut x = vec![0.0; 2 * 4 * 2];
        x[..4].copy_from_slice(&real);
        x[12..16].copy_from_slice(&real);
        let mask = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0];
        let weights = RecurrentWeights {
            w_ih: &w_ih,
            w_hh: &w_hh,
            bias: &bias,
        };
        let inputs = RecurrentInputs {
            x: &x,
            form: InputForm::Features,
            step_mask: &mask,
            recurrent_mask: None,
            direction: Direction::Forward,
            output: StateOutput::EveryStep,
        };
        let (out, _) = recurrent_forward(
            cell,
            dims,
            weights,
            inputs,
            Pass::Inference(InferencePrecision::Fast),
        );
        let last = |row: usize| &out[(row * 4 + 3) * 2..(row * 4 + 4) * 2];
        assert_eq!(last(0), last(1), "{cell:?}");
        assert!(last(0).iter().any(|v| v.abs() > 1e-3), "{cell:?}");
    }
}

/// The backward pass takes the batch split the forward pass recorded: a tape made on one
/// thread and differentiated on three gives the gradients of a pass made on three threads
/// throughout (the split only decides which rows share a chunk).
#[test]
fn backward_uses_the_split_recorded_on_the_tape() {
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    for cell in CELLS {
        let case = Case::new(cell, 21, false, true, 16);
        let mut rng = SeededRng::new(7);
        let d_out = random(
            &mut rng,
            case.x.len() / case.dims.input * case.dims.hidden,
            1.0,
        );
        let forward = || {
            recurrent_forward(
                cell,
                case.dims,
                case.weights(),
                case.inputs(),
                Pass::Training,
            )
        };
        let backward = |tape: &RecurrentTape| {
            recurrent_backward(cell, case.dims, case.weights(), case.inputs(), tape, &d_out)
        };
        let (out_1, tape_1) = pool(1).install(forward);
        let tape_1 = tape_1.unwrap();
        assert_eq!(tape_1.chunks.len(), 1);
        let mixed = pool(3).install(|| backward(&tape_1));
        let (out_3, tape_3) = pool(3).install(forward);
        let tape_3 = tape_3.unwrap();
        assert_eq!(tape_3.chunks.len(), 3);
        let three = pool(3).install(|| backward(&tape_3));
        assert_eq!(out_1, out_3, "{cell:?} outputs");
        // Equal up to the order of sums (weight gradients are summed per chunk).
        for (name, a, b) in [
            ("dx", &mixed.dx, &three.dx),
            ("dw_hh", &mixed.dw_hh, &three.dw_hh),
        ] {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "{cell:?} {name} {x} vs {y}"
                );
            }
        }
        assert!(
            mixed.dx.iter().rev().take(4).any(|&v| v != 0.0),
            "{cell:?} last row"
        );
    }
}

/// Sizes whose product wraps around are refused, not checked modulo 2⁶⁴.
#[test]
#[should_panic(expected = "overflow usize")]
fn overflowing_sizes_are_refused() {
    let dims = RecurrentDims {
        batch: 1 << 33,
        steps: 1 << 31,
        input: 1,
        hidden: 1,
    };
    let weights = RecurrentWeights {
        w_ih: &[0.0; 4],
        w_hh: &[0.0; 4],
        bias: &[0.0; 4],
    };
    let inputs = RecurrentInputs {
        x: &[],
        form: InputForm::Features,
        step_mask: &[],
        recurrent_mask: None,
        direction: Direction::Forward,
        output: StateOutput::EveryStep,
    };
    recurrent_forward(CellKind::Lstm, dims, weights, inputs, Pass::Training);
}
