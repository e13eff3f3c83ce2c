//! Inference as users run it, at the notebook's shapes: 20,000 words, 128-d embeddings, 64
//! units, reviews of up to 200 tokens in batches of hundreds. Here the fast paths are taken
//! (the id lookup with prefetch, the fused AVX-512 LSTM step, the AMX product where the CPU
//! has one), which the small shapes of the other tests never reach. Each case compares fast
//! inference with the f32 pass with a tape (training's arithmetic) on both CPU backends, and
//! prints which kernels ran (`cargo test -- --nocapture`; CI prints it).

// `Device::ndarray()` is deprecated upstream; the design keeps that backend supported.
#![allow(deprecated)]

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use imdb_model::kernels::recurrent::{InferenceKernels, Pass};
use imdb_model::{
    Architecture, CellKind, InferencePrecision, ModelConfig, ModelInput, SentimentClassifier,
};
use imdb_rng::SeededRng;

const WORDS: usize = 20_000;
const MAXLEN: usize = 200;

/// The CPU backends this build has (CI runs these tests with the `ndarray` feature too).
fn cpu_devices() -> Vec<(&'static str, Device)> {
    let devices = imdb_model::ops::cpu_devices();
    if devices.len() == 1 {
        eprintln!("ndarray backend not built: flex only (`--features ndarray` adds it)");
    }
    devices
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// `batch` reviews of 1 to 260 tokens (longer ones truncated), ids drawn like word ranks
/// (frequent words more often), padded like the notebook (`pre`).
fn reviews(batch: usize, seed: u64, device: &Device) -> ModelInput {
    let mut rng = SeededRng::new(seed);
    let mut ids = vec![0u32; batch * MAXLEN];
    let mut lengths = Vec::with_capacity(batch);
    for row in ids.chunks_mut(MAXLEN) {
        let len = (1 + rng.below(260) as usize).min(MAXLEN);
        for id in &mut row[MAXLEN - len..] {
            let u = rng.next_f32();
            *id = 2 + (u * u * (WORDS - 3) as f32) as u32;
        }
        lengths.push(len);
    }
    ModelInput::from_padded(&ids, &lengths, MAXLEN, true, device)
}

fn check(architecture: Architecture, cell: CellKind, batch: usize) {
    let config = ModelConfig {
        architecture,
        ..ModelConfig::default()
    };
    let kernels = InferenceKernels::select(
        cell,
        config.units,
        Pass::Inference(InferencePrecision::Fast),
    );
    // The line CI prints: what this CPU exercised, so a missing kernel is visible.
    println!(
        "kernels exercised by {architecture:?} ({} units, batch {batch}): {kernels}",
        config.units
    );
    for (name, device) in cpu_devices() {
        let trained =
            SentimentClassifier::new(&config, WORDS, 2, 11, &device.clone().autodiff()).unwrap();
        let input = || reviews(batch, 5, &device);
        // Training's arithmetic: the pass with a tape, f32 throughout (no dropout).
        let taped = values(trained.forward(reviews(batch, 5, &device.clone().autodiff()), None));
        let model = trained.valid();
        let fast = values(model.predictor().logits(input()));
        let exact = values(
            model
                .predictor()
                .with_precision(InferencePrecision::F32)
                .logits(input()),
        );
        assert_eq!(fast.len(), batch, "{name}");
        // Split bf16 and the fused step's nonlinearities: about 1e-5 on each state, more
        // after 200 steps and the dense layer (a broken kernel is off by far more: logits
        // here are ~0.1); f32 inference differs from the tape only in the order of the lookup
        // table's sums.
        let fast_tolerance = if kernels.amx_product || kernels.fused_lstm_step {
            1e-3
        } else {
            1e-5
        };
        let mut worst = 0.0f32;
        for (i, ((f, e), t)) in fast.iter().zip(&exact).zip(&taped).enumerate() {
            assert!(
                (e - t).abs() <= 1e-5 * (1.0 + t.abs()),
                "{name} {architecture:?} row {i}: f32 inference {e} vs taped {t}"
            );
            assert!(
                (f - t).abs() <= fast_tolerance * (1.0 + t.abs()),
                "{name} {architecture:?} row {i}: fast inference {f} vs taped {t}"
            );
            worst = worst.max((f - t).abs());
        }
        println!(
            "  {architecture:?} on {name}: largest |fast - taped| logit difference {worst:.2e}"
        );
        // The reviews differ, and so do their verdicts: not a constant output.
        assert!(taped.iter().any(|&t| (t - taped[0]).abs() > 1e-3), "{name}");
    }
}

#[test]
fn notebook_lstm_fast_inference_matches_the_taped_pass() {
    check(Architecture::Lstm, CellKind::Lstm, 300);
}

#[test]
fn notebook_gru_and_rnn_fast_inference_match_the_taped_pass() {
    check(Architecture::Gru, CellKind::Gru, 130);
    check(Architecture::Rnn, CellKind::Rnn, 130);
}

/// Which CPU-specific kernel tests run on this machine and which are skipped, and why: the
/// AVX-512 gate loops' and the AMX product's unit tests return early on CPUs without them,
/// so CI prints this line (`cargo test -- --nocapture kernel_tests_on_this_cpu`) to show it.
#[test]
fn kernel_tests_on_this_cpu() {
    let avx512 = cfg!(target_arch = "x86_64")
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512dq");
    let amx = imdb_model::kernels::amx::available();
    let lstm = InferenceKernels::select(
        CellKind::Lstm,
        64,
        Pass::Inference(InferencePrecision::Fast),
    );
    let said = |ran: bool, what: &str, lacking: &str| {
        if ran {
            format!("{what}: ran")
        } else {
            format!("{what}: skipped ({lacking})")
        }
    };
    println!(
        "kernel tests on this CPU: {}; {}; AVX2 {}",
        said(
            avx512,
            "AVX-512 gate loops and fused LSTM step",
            "no AVX-512F/DQ"
        ),
        said(
            amx,
            "AMX split-bf16 product",
            "no AMX-BF16, or Linux did not grant it"
        ),
        if std::is_x86_feature_detected!("avx2") {
            "yes"
        } else {
            "no"
        },
    );
    // What the notebook model's inference selects agrees with the CPU's features.
    assert_eq!(lstm.fused_lstm_step, avx512, "{lstm}");
    assert_eq!(lstm.amx_product, amx, "{lstm}");
}
