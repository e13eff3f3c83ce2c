//! The implementations agree: fused kernel, composed tensor ops and Burn's stock `nn::Lstm`,
//! forward and backward, on the CPU backends built (`flex`; `ndarray` with its feature).

// `Device::ndarray()` is deprecated upstream; the design keeps that backend supported.
#![allow(deprecated)]

use burn::tensor::{Device, Tensor, TensorData};
use imdb_model::{
    Architecture, CellKind, Direction, GateBias, Implementation, InferencePrecision, ModelConfig,
    ModelInput, Readout, RecurrentLayer, SentimentClassifier,
};
use imdb_rng::SeededRng;

/// The CPU backends this build has (CI runs these tests with the `ndarray` feature too).
fn cpu_devices() -> Vec<(&'static str, Device)> {
    let devices = imdb_model::ops::cpu_devices();
    if devices.len() == 1 {
        eprintln!("ndarray backend not built: flex only (`--features ndarray` adds it)");
    }
    devices
}

fn values(t: Tensor<3>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

fn random_input(batch: usize, steps: usize, features: usize, device: &Device) -> Tensor<3> {
    let mut rng = SeededRng::new(17);
    let v: Vec<f32> = (0..batch * steps * features)
        .map(|_| rng.next_f32() * 2.0 - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(v, [batch, steps, features]), device)
}

fn mask(lengths: &[usize], steps: usize, device: &Device) -> Tensor<2> {
    let mut m = vec![0.0f32; lengths.len() * steps];
    for (row, &len) in m.chunks_mut(steps).zip(lengths) {
        row[..len].fill(1.0);
    }
    Tensor::from_data(TensorData::new(m, [lengths.len(), steps]), device)
}

#[test]
fn notebook_model_has_2_609_473_parameters() {
    let model =
        SentimentClassifier::new(&ModelConfig::default(), 20_000, 2, 1, &Device::flex()).unwrap();
    let summary = model.summary(200);
    assert_eq!(summary.total_params, 2_609_473);
    assert_eq!(summary.rows_total(), 2_609_473);
    let params: Vec<usize> = summary.layers.iter().map(|l| l.params).collect();
    assert_eq!(params, [2_560_000, 49_408, 65]);
    let text = summary.to_string();
    assert!(
        text.contains("lstm (LSTM)") && text.contains("(None, 64)") && text.contains("2,609,473"),
        "{text}"
    );
}

#[test]
fn summary_counts_match_the_module_for_every_shape() {
    for (arch, layers, bidirectional) in [
        (Architecture::Gru, 1, false),
        (Architecture::Rnn, 2, false),
        (Architecture::Lstm, 2, true),
    ] {
        let config = ModelConfig {
            architecture: arch,
            readout: if layers == 2 {
                Readout::Max
            } else {
                Readout::Last
            },
            layers,
            bidirectional,
            units: 8,
            embed_dim: 6,
            ..ModelConfig::default()
        };
        let model = SentimentClassifier::new(&config, 50, 2, 1, &Device::flex()).unwrap();
        let summary = model.summary(10);
        assert_eq!(summary.rows_total(), summary.total_params, "{arch:?}");
    }
}

#[test]
fn fused_composed_and_burn_lstm_agree_without_padding() {
    for (name, device) in cpu_devices() {
        let mut rng = SeededRng::new(3);
        let layer = RecurrentLayer::init(
            CellKind::Lstm,
            (5, 4),
            Direction::Forward,
            GateBias::Keras,
            &mut rng,
            &device,
        );
        let x = random_input(3, 7, 5, &device);
        let ones = Tensor::ones([3, 7], &device);
        let fused = values(layer.forward(
            x.clone(),
            ones.clone(),
            None,
            Implementation::Fused,
            InferencePrecision::Fast,
        ));
        let composed = values(layer.forward(
            x.clone(),
            ones.clone(),
            None,
            Implementation::Composed,
            InferencePrecision::Fast,
        ));
        let stock = values(layer.forward(
            x,
            ones,
            None,
            Implementation::Burn,
            InferencePrecision::Fast,
        ));
        assert_close(
            &fused,
            &composed,
            1e-5,
            &format!("{name} fused vs composed"),
        );
        assert_close(&stock, &composed, 1e-5, &format!("{name} burn vs composed"));
    }
}

#[test]
fn fused_and_composed_agree_with_masks_dropout_and_reverse() {
    for (name, device) in cpu_devices() {
        for (cell, reverse) in [CellKind::Lstm, CellKind::Gru, CellKind::Rnn]
            .into_iter()
            .flat_map(|c| [(c, Direction::Forward), (c, Direction::Reverse)])
        {
            let mut rng = SeededRng::new(5);
            let layer =
                RecurrentLayer::init(cell, (4, 3), reverse, GateBias::Keras, &mut rng, &device);
            let x = random_input(3, 6, 4, &device);
            let m = mask(&[6, 2, 4], 6, &device);
            let rec: Tensor<2> = Tensor::from_data(
                TensorData::new(
                    vec![1.25f32, 0.0, 1.25, 0.0, 1.25, 1.25, 1.25, 1.25, 0.0],
                    [3, 3],
                ),
                &device,
            );
            let fused = values(layer.forward(
                x.clone(),
                m.clone(),
                Some(rec.clone()),
                Implementation::Fused,
                InferencePrecision::Fast,
            ));
            let composed = values(layer.forward(
                x,
                m,
                Some(rec),
                Implementation::Composed,
                InferencePrecision::Fast,
            ));
            assert_close(&fused, &composed, 1e-5, &format!("{name} {reverse:?}"));
        }
    }
}

fn toy_input(device: &Device) -> ModelInput {
    // Two reviews, post-padded to 6 steps.
    let ids = [1u32, 5, 9, 7, 0, 0, 1, 8, 6, 5, 4, 9];
    ModelInput::from_padded(&ids, &[4, 6], 6, false, device)
}

/// Through the whole model, dropout on: the fused lookup with its input mask, and the fused
/// layers read out by their final state alone (forward and reverse, the first of two layers
/// by every step).
#[test]
fn fused_gradients_equal_composed_gradients() {
    let small = ModelConfig {
        embed_dim: 5,
        units: 4,
        ..ModelConfig::default()
    };
    let stacked_bidirectional_gru = ModelConfig {
        architecture: Architecture::Gru,
        bidirectional: true,
        layers: 2,
        ..small.clone()
    };
    for ((name, device), config) in cpu_devices().into_iter().flat_map(|d| {
        [
            (d.clone(), small.clone()),
            (d, stacked_bidirectional_gru.clone()),
        ]
    }) {
        let name = format!("{name} {:?} layers {}", config.architecture, config.layers);
        let device = device.autodiff();
        let mut grads_by_impl = Vec::new();
        for implementation in [Implementation::Fused, Implementation::Composed] {
            let config = ModelConfig {
                implementation,
                ..config.clone()
            };
            let model = SentimentClassifier::new(&config, 12, 2, 9, &device).unwrap();
            let logits = model.forward(toy_input(&device), Some(77));
            let grads = logits.sum().backward();
            let g = |p: &burn::module::Param<Tensor<2>>| -> Vec<f32> {
                p.val()
                    .grad(&grads)
                    .unwrap()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
            };
            let layer = &model.encoder[0];
            grads_by_impl.push((
                g(&model.embedding),
                g(&layer.w_ih),
                g(&layer.w_hh),
                g(&model.dense_weight),
            ));
        }
        let (a, b) = (&grads_by_impl[0], &grads_by_impl[1]);
        assert_close(&a.0, &b.0, 1e-4, &format!("{name} embedding grad"));
        assert_close(&a.1, &b.1, 1e-4, &format!("{name} w_ih grad"));
        assert_close(&a.2, &b.2, 1e-4, &format!("{name} w_hh grad"));
        assert_close(&a.3, &b.3, 1e-4, &format!("{name} dense grad"));
        assert!(
            a.2.iter().any(|v| v.abs() > 1e-6),
            "{name}: gradients are all zero"
        );
    }
}

#[test]
fn masking_makes_padding_irrelevant_and_its_absence_does_not() {
    let device = Device::flex();
    let review = [1u32, 5, 9, 7];
    let post = ModelInput::from_padded(&[1, 5, 9, 7, 0, 0, 0, 0], &[4], 8, false, &device);
    let pre = ModelInput::from_padded(&[0, 0, 0, 0, 1, 5, 9, 7], &[4], 8, true, &device);
    let bare = ModelInput::from_padded(&review, &[4], 4, false, &device);
    let logit = |config: &ModelConfig, input: ModelInput| -> f32 {
        let model = SentimentClassifier::new(config, 12, 2, 4, &device).unwrap();
        model
            .forward(input, None)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[0]
    };
    for readout in [Readout::Last, Readout::Max, Readout::Mean] {
        for bidirectional in [false, true] {
            let masked = ModelConfig {
                embed_dim: 6,
                units: 5,
                readout,
                bidirectional,
                ..ModelConfig::default()
            };
            let what = format!("{readout:?} bidirectional {bidirectional}");
            let a = logit(&masked, post.clone());
            assert!((a - logit(&masked, pre.clone())).abs() < 1e-5, "{what}");
            assert!((a - logit(&masked, bare.clone())).abs() < 1e-5, "{what}");
            let unmasked = ModelConfig {
                mask_padding: false,
                ..masked
            };
            let gap = (logit(&unmasked, post.clone()) - logit(&unmasked, bare.clone())).abs();
            assert!(gap > 1e-4, "{what}");
        }
    }
}

#[test]
fn pooled_readouts_equal_the_final_state_for_one_token_and_differ_for_more() {
    let device = Device::flex();
    let logit = |readout: Readout, ids: &[u32], steps: usize| -> f32 {
        let config = ModelConfig {
            embed_dim: 6,
            units: 5,
            readout,
            ..ModelConfig::default()
        };
        let len = ids.iter().filter(|&&id| id != 0).count();
        let input = ModelInput::from_padded(ids, &[len], steps, false, &device);
        let model = SentimentClassifier::new(&config, 12, 2, 4, &device).unwrap();
        model
            .forward(input, None)
            .into_data()
            .to_vec::<f32>()
            .unwrap()[0]
    };
    let single = logit(Readout::Last, &[7, 0, 0], 3);
    for readout in [Readout::Max, Readout::Mean] {
        assert!(
            (logit(readout, &[7, 0, 0], 3) - single).abs() < 1e-6,
            "{readout:?}"
        );
        let longer = logit(Readout::Last, &[7, 3, 9], 3);
        assert!(
            (logit(readout, &[7, 3, 9], 3) - longer).abs() > 1e-5,
            "{readout:?}"
        );
    }
    let transformer = ModelConfig {
        architecture: Architecture::Transformer,
        readout: Readout::Max,
        ..ModelConfig::default()
    };
    let err = transformer.validate().unwrap_err().to_string();
    assert!(err.contains("readout") && err.contains("pooling"), "{err}");
}

#[test]
fn dropout_is_seeded_and_off_in_evaluation() {
    let device = Device::flex();
    let model = SentimentClassifier::new(
        &ModelConfig {
            embed_dim: 6,
            units: 5,
            ..ModelConfig::default()
        },
        12,
        2,
        4,
        &device,
    )
    .unwrap();
    let run = |seed: Option<u64>| {
        model
            .forward(toy_input(&device), seed)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(run(Some(1)), run(Some(1)));
    assert_ne!(run(Some(1)), run(Some(2)));
    assert_eq!(run(None), run(None));
    assert_ne!(run(None), run(Some(1)));
}

#[test]
fn gru_and_rnn_run_and_learn_something_different() {
    let device = Device::flex();
    for arch in [Architecture::Gru, Architecture::Rnn] {
        let config = ModelConfig {
            architecture: arch,
            embed_dim: 6,
            units: 5,
            bidirectional: true,
            layers: 2,
            ..ModelConfig::default()
        };
        let model = SentimentClassifier::new(&config, 12, 2, 4, &device).unwrap();
        let out = model
            .forward(toy_input(&device), Some(3))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn bad_settings_are_refused() {
    let device = Device::flex();
    let bad = ModelConfig {
        dropout: 1.0,
        ..ModelConfig::default()
    };
    let err = SentimentClassifier::new(&bad, 10, 2, 1, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dropout") && err.contains("[0, 1)"), "{err}");
    let bad = ModelConfig {
        units: 0,
        ..ModelConfig::default()
    };
    assert!(
        SentimentClassifier::new(&bad, 10, 2, 1, &device)
            .unwrap_err()
            .to_string()
            .contains("units")
    );
    let bad = ModelConfig {
        implementation: Implementation::Burn,
        ..ModelConfig::default()
    };
    assert!(
        bad.validate()
            .unwrap_err()
            .to_string()
            .contains("recurrent dropout")
    );
}

#[test]
fn predictor_tables_give_the_same_logits() {
    for (name, device) in cpu_devices() {
        for bidirectional in [false, true] {
            let config = ModelConfig {
                embed_dim: 6,
                units: 5,
                bidirectional,
                layers: 2,
                ..ModelConfig::default()
            };
            let model = SentimentClassifier::new(&config, 12, 2, 4, &device).unwrap();
            let direct = model
                .forward(toy_input(&device), None)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let viewed = model
                .predictor()
                .logits(toy_input(&device))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert_close(
                &viewed,
                &direct,
                1e-5,
                &format!("{name} bidirectional {bidirectional}"),
            );
        }
    }
}

#[test]
fn transformer_ignores_trailing_padding_and_counts_its_parameters() {
    let device = Device::flex();
    let config = ModelConfig {
        architecture: Architecture::Transformer,
        embed_dim: 8,
        heads: 2,
        ff_dim: 16,
        layers: 2,
        ..ModelConfig::default()
    };
    let model = SentimentClassifier::new(&config, 12, 2, 4, &device).unwrap();
    let summary = model.summary(8);
    assert_eq!(summary.rows_total(), summary.total_params);
    assert!(summary.to_string().contains("TransformerEncoder"));
    let logit = |input: ModelInput| {
        model
            .forward(input, None)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[0]
    };
    let bare = logit(ModelInput::from_padded(
        &[1, 5, 9, 7],
        &[4],
        4,
        false,
        &device,
    ));
    let padded = logit(ModelInput::from_padded(
        &[1, 5, 9, 7, 0, 0, 0, 0],
        &[4],
        8,
        false,
        &device,
    ));
    assert!((bare - padded).abs() < 1e-5, "{bare} vs {padded}");
    let first = ModelConfig {
        pooling: imdb_model::config::Pooling::First,
        ..config.clone()
    };
    let model = SentimentClassifier::new(&first, 12, 2, 4, &device).unwrap();
    assert!(
        model
            .forward(toy_input(&device), None)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.is_finite())
    );
    let bad = ModelConfig { heads: 3, ..config };
    assert!(bad.validate().unwrap_err().to_string().contains("heads"));
}
