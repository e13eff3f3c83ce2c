//! Timing of the fused CPU kernels alone (no Burn): `cargo bench -p imdb-model --bench kernels`.
//! The notebook's layer: batch 64, 200 steps, input 128, 64 units, recurrent dropout 0.2.

use std::time::Instant;

use imdb_model::kernels::amx::{self, SplitLhs, SplitRhs};
use imdb_model::kernels::gemm::{Layout, matmul};
use imdb_model::kernels::recurrent::{
    CellKind, Direction, InferencePrecision, InputForm, Pass, RecurrentDims, RecurrentInputs,
    RecurrentWeights, StateOutput, recurrent_backward, recurrent_forward,
};
use imdb_rng::SeededRng;

fn main() {
    let dims = RecurrentDims {
        batch: 64,
        steps: 200,
        input: 128,
        hidden: 64,
    };
    let mut rng = SeededRng::new(1);
    let mut random =
        |n: usize, s: f32| -> Vec<f32> { (0..n).map(|_| (rng.next_f32() - 0.5) * s).collect() };
    let g = 4 * dims.hidden;
    let (w_ih, w_hh, bias) = (
        random(dims.input * g, 0.2),
        random(dims.hidden * g, 0.2),
        random(g, 0.1),
    );
    let x = random(dims.batch * dims.steps * dims.input, 2.0);
    let rec: Vec<f32> = (0..dims.batch * dims.hidden)
        .map(|i| if i % 5 == 0 { 0.0 } else { 1.25 })
        .collect();
    let mask = vec![1.0f32; dims.batch * dims.steps];
    let d_out = random(dims.batch * dims.steps * dims.hidden, 1.0);
    let weights = RecurrentWeights {
        w_ih: &w_ih,
        w_hh: &w_hh,
        bias: &bias,
    };
    let inputs = RecurrentInputs {
        x: &x,
        form: InputForm::Features,
        step_mask: &mask,
        recurrent_mask: Some(&rec),
        direction: Direction::Forward,
        output: StateOutput::EveryStep,
    };
    let runs = 10;
    // Minimum over the runs: the machine is shared, and noise only ever adds time.
    let (mut fwd, mut bwd, mut infer) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for i in 0..runs + 2 {
        let t = Instant::now();
        let (_, tape) = recurrent_forward(CellKind::Lstm, dims, weights, inputs, Pass::Training);
        let f = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let grads = recurrent_backward(
            CellKind::Lstm,
            dims,
            weights,
            inputs,
            tape.as_ref().unwrap(),
            &d_out,
        );
        let b = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _ = recurrent_forward(
            CellKind::Lstm,
            dims,
            weights,
            inputs,
            Pass::Inference(InferencePrecision::Fast),
        );
        let n = t.elapsed().as_secs_f64();
        assert!(grads.dw_hh.iter().all(|v| v.is_finite()));
        if i >= 2 {
            fwd = fwd.min(f);
            bwd = bwd.min(b);
            infer = infer.min(n);
        }
    }
    println!(
        "lstm forward (tape) {fwd:.4} s, backward {bwd:.4} s, forward (inference) {infer:.4} s (best of {runs})"
    );
    println!("{{\"forward_s\":{fwd:.5},\"backward_s\":{bwd:.5},\"inference_s\":{infer:.5}}}");
    step_products();
}

/// One inference step's recurrent product per thread (256 of a 512-review batch, 64 units):
/// f32 `gemm` against the split bf16 AMX product.
fn step_products() {
    let (m, k, n) = (256, 64, 256);
    let mut rng = SeededRng::new(2);
    let a: Vec<f32> = (0..m * k).map(|_| rng.next_f32() - 0.5).collect();
    let b: Vec<f32> = (0..k * n).map(|_| rng.next_f32() - 0.5).collect();
    let calls = 2000;
    let time = |f: &mut dyn FnMut()| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..calls {
                    f();
                }
                t.elapsed().as_secs_f64() / calls as f64
            })
            .fold(f64::INFINITY, f64::min)
    };
    let mut c = vec![0.0f32; m * n];
    let f32_product = time(&mut || {
        matmul(
            &mut c,
            &a,
            Layout::Normal,
            &b,
            Layout::Normal,
            m,
            k,
            n,
            false,
        )
    });
    print!(
        "step product {m}×{k}×{n}: f32 gemm {:.1} µs",
        f32_product * 1e6
    );
    if amx::supports(n) {
        let (mut lhs, rhs) = (SplitLhs::new(m, k), SplitRhs::new(&b, k, n));
        let mut c = vec![0.0f32; lhs.padded_rows() * n];
        let split = time(&mut || {
            lhs.fill(&a);
            amx::matmul(&mut c, &lhs, &rhs)
        });
        let product_only = time(&mut || amx::matmul(&mut c, &lhs, &rhs));
        print!(
            ", split bf16 on AMX {:.1} µs ({:.1} µs without splitting the state)",
            split * 1e6,
            product_only * 1e6
        );
    }
    println!();
}
