//! Adversarial and virtual adversarial training: the gradient with respect to the word
//! vectors (fused against composed against finite differences), the divergence, tiny models
//! that learn with AT and VAT, and settings refused by name.

use burn::tensor::{Device, Tensor, TensorData};
use burn::train::TrainStep;
use imdb_model::{
    Architecture, Implementation, ModelConfig, ModelInput, Readout, SentimentClassifier,
};
use imdb_train::adversarial::{Adversarial, kl_from_logits};
use imdb_train::step::{TrainBatch, Trainee, classification_loss};
use imdb_train::{
    AdversarialConfig, AdversarialKind, FitSpec, Silent, TrainConfig, TrainError, evaluate, fit,
};

const WORDS: usize = 30;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Two texts of 6 and 3 words, padded before, and their classes.
fn batch(device: &Device) -> (ModelInput, Tensor<2>) {
    let ids: Vec<u32> = vec![3, 9, 4, 17, 22, 5, 0, 0, 0, 12, 7, 28];
    let input = ModelInput::from_padded(&ids, &[6, 3], 6, true, device);
    let labels = Tensor::from_data(TensorData::new(vec![1.0f32, 0.0], [2, 1]), device);
    (input, labels)
}

/// The classification loss when `probe` is added to the vectors the first layer reads.
fn loss_at(model: &SentimentClassifier, probe: Tensor<3>, device: &Device) -> Tensor<1> {
    let (input, labels) = batch(device);
    // A dropout seed puts the model in training mode (the fused lookup and kernels); no
    // dropout rate is set, so the function is deterministic.
    classification_loss(model.forward_perturbed(input, Some(5), probe), labels)
}

/// The gradient of the loss with respect to the vectors the first layer reads.
fn input_gradient(model: &SentimentClassifier, device: &Device) -> Vec<f32> {
    let probe = Tensor::<3>::zeros([2, 6, model.config.embed_dim], device).require_grad();
    let grads = loss_at(model, probe.clone(), device).backward();
    values(probe.grad(&grads).expect("the probe has a gradient"))
}

#[test]
fn the_fused_input_gradient_matches_the_composed_one_and_finite_differences() {
    let device = Device::flex().autodiff();
    for (architecture, bidirectional, readout) in [
        (Architecture::Lstm, false, Readout::Last),
        (Architecture::Gru, true, Readout::Max),
        (Architecture::Lstm, true, Readout::Max),
        (Architecture::Rnn, false, Readout::Mean),
    ] {
        let config = |implementation| ModelConfig {
            architecture,
            bidirectional,
            readout,
            implementation,
            embed_dim: 4,
            units: 5,
            ..ModelConfig::default()
        };
        let fused =
            SentimentClassifier::new(&config(Implementation::Fused), WORDS, 2, 9, &device).unwrap();
        let composed =
            SentimentClassifier::new(&config(Implementation::Composed), WORDS, 2, 9, &device)
                .unwrap();
        let g = input_gradient(&fused, &device);
        let g_composed = input_gradient(&composed, &device);
        let label = format!("{architecture:?} bidirectional={bidirectional} {readout:?}");
        for (a, b) in g.iter().zip(&g_composed) {
            assert!((a - b).abs() < 1e-5, "{label}: fused {a}, composed {b}");
        }
        // The second text's three padded steps (before it) get no gradient; its real ones do.
        let e = 4;
        assert!(g[6 * e..9 * e].iter().all(|&v| v == 0.0), "{label}: {g:?}");
        assert!(g[9 * e..].iter().any(|&v| v != 0.0), "{label}: {g:?}");
        // Central differences of the loss, element by element, on real steps of both texts.
        // Small, so that no max-pooled step changes its winner within ±h.
        let h = 1e-3f32;
        for index in [0, 5, 11, 22, 9 * e + 1, 11 * e + 3] {
            let shifted = |delta: f32| {
                let mut values = vec![0.0f32; 2 * 6 * e];
                values[index] = delta;
                let probe = Tensor::<3>::from_data(TensorData::new(values, [2, 6, e]), &device);
                values_of(loss_at(&fused, probe, &device))
            };
            let (up, here, down) = (shifted(h), shifted(0.0), shifted(-h));
            let analytic = g[index];
            // Where max pooling changes its winner between −h and h, the gradient is one of
            // the one-sided slopes; elsewhere all three agree. The loss is f32: its rounding
            // makes the slopes good to about 1e-4.
            let slopes = [(up - down) / (2.0 * h), (up - here) / h, (here - down) / h];
            assert!(
                slopes
                    .iter()
                    .any(|s| (s - analytic).abs() < 1.5e-4 + 0.03 * analytic.abs()),
                "{label}, element {index}: finite differences {slopes:?}, gradient {analytic}"
            );
        }
    }
}

/// The output weights' gradient of one training step on `batch`, with `adversarial` on or off.
fn step_gradient(
    model: &SentimentClassifier,
    adversarial: Option<(AdversarialKind, f64)>,
    device: &Device,
) -> Vec<f32> {
    let (input, labels) = batch(device);
    let trainee = Trainee {
        model: model.clone(),
        l2: 0.0,
        adversarial: adversarial.map(|(kind, epsilon)| Adversarial {
            config: AdversarialConfig::new(kind, epsilon),
            frequencies: Tensor::full([WORDS, 1], 1.0 / WORDS as f32, device),
        }),
    };
    let out = trainee.step(TrainBatch {
        input,
        labels,
        dropout_seed: 5,
        unlabelled: None,
    });
    values(
        out.grads
            .get::<2>(model.dense_weight.id)
            .expect("a gradient"),
    )
}

/// The adversarial losses reach the step's gradient with their weight: AT's loss at a
/// vanishing push is the clean loss again (twice the plain gradient), VAT's divergence at a
/// vanishing push is zero (the plain gradient), and a push of norm 1 changes both (AT by
/// about a third, VAT, whose divergence is second order in the push, by about 2%).
#[test]
fn the_adversarial_losses_are_in_the_step_gradient() {
    let device = Device::flex().autodiff();
    let config = ModelConfig {
        architecture: Architecture::Gru,
        bidirectional: true,
        readout: Readout::Max,
        embed_dim: 4,
        units: 5,
        ..ModelConfig::default()
    };
    let model = SentimentClassifier::new(&config, WORDS, 2, 9, &device).unwrap();
    let plain = step_gradient(&model, None, &device);
    let distance = |a: &[f32], b: &[f32], scale: f32| {
        let d: f32 = a.iter().zip(b).map(|(x, y)| (x - scale * y).powi(2)).sum();
        let n: f32 = b.iter().map(|y| (scale * y).powi(2)).sum();
        (d / n).sqrt()
    };
    for (kind, copies) in [
        (AdversarialKind::At, 2.0),
        (AdversarialKind::Vat, 1.0),
        (AdversarialKind::Both, 2.0),
    ] {
        let vanishing = step_gradient(&model, Some((kind, 1e-4)), &device);
        let d = distance(&vanishing, &plain, copies);
        assert!(
            d < 1e-4,
            "{kind:?} at ε = 1e-4: {d} from {copies}× the plain gradient"
        );
        let pushed = step_gradient(&model, Some((kind, 1.0)), &device);
        let d = distance(&pushed, &plain, copies);
        assert!(
            d > 1e-3,
            "{kind:?} at ε = 1: only {d} from {copies}× the plain gradient"
        );
    }
}

fn values_of(t: Tensor<1>) -> f32 {
    values(t)[0]
}

/// Eight 400-word texts, the virtual adversarial direction found for them with probe norm
/// `xi` and how many of them it leaves without one, and how much more the prediction changes
/// along it than along the random start it iterates from (both of norm 1 per text).
fn vat_direction(xi: f64) -> (usize, f32) {
    let device = Device::flex().autodiff();
    let config = ModelConfig {
        architecture: Architecture::Gru,
        bidirectional: true,
        readout: Readout::Max,
        embed_dim: 32,
        units: 16,
        dropout: 0.0,
        recurrent_dropout: 0.0,
        ..ModelConfig::default()
    };
    let model = SentimentClassifier::new(&config, WORDS, 2, 4, &device).unwrap();
    let (texts, steps) = (8, 400);
    let ids: Vec<u32> = (0..texts * steps)
        .map(|i| 4 + (i * 7 + i / 13) as u32 % (WORDS as u32 - 4))
        .collect();
    let input = ModelInput::from_padded(&ids, &vec![steps; texts], steps, true, &device);
    let seed = 8;
    let zero = Tensor::<3>::zeros([texts, steps, config.embed_dim], &device);
    let p = model
        .forward_perturbed(input.clone(), Some(seed), zero)
        .detach();
    let direction = |power_iterations| {
        let adversarial = Adversarial {
            config: AdversarialConfig {
                xi,
                power_iterations,
                ..AdversarialConfig::new(AdversarialKind::Vat, 1.0)
            },
            frequencies: Tensor::full([WORDS, 1], 1.0 / WORDS as f32, &device),
        };
        adversarial.virtual_adversarial_direction(&model, &input, p.clone(), seed)
    };
    let divergence = |r: Tensor<3>| {
        values_of(kl_from_logits(
            p.clone(),
            model.forward_perturbed(input.clone(), Some(seed), r),
        ))
    };
    let found = direction(1);
    let norms = values(
        found
            .clone()
            .powi_scalar(2)
            .sum_dim(2)
            .sum_dim(1)
            .reshape([texts]),
    );
    let without = norms.iter().filter(|&&n| n == 0.0).count();
    (without, divergence(found) / divergence(direction(0)))
}

/// One power iteration finds where the prediction changes most: along its direction the
/// divergence is over a hundred times what it is along the random start. With the image
/// paper's probe norm ξ = 1e-6 spread over a 400-word text, the prediction moves by less than
/// float32 can tell: for half of the texts (measured) it does not move at all, and they get no
/// direction, so no virtual adversarial loss. Hence the default of the text paper's code, 0.1.
#[test]
fn the_virtual_adversarial_direction_is_where_the_prediction_changes_most() {
    let default_xi = AdversarialConfig::new(AdversarialKind::Vat, 1.0).xi;
    let (without, gain) = vat_direction(default_xi);
    println!("ξ = {default_xi}: {without} of 8 texts without a direction, gain {gain}");
    assert_eq!(without, 0, "ξ = {default_xi}: texts without a direction");
    assert!(
        gain > 100.0,
        "ξ = {default_xi}: only {gain}× a random direction"
    );
    let (without, gain) = vat_direction(1e-6);
    println!("ξ = 1e-6: {without} of 8 texts without a direction, gain {gain}");
    assert!(without > 0, "ξ = 1e-6: every text moved");
}

#[test]
fn the_divergence_is_zero_without_a_perturbation_and_positive_with_one() {
    let device = Device::flex().autodiff();
    for outputs in [2, 3] {
        let config = ModelConfig {
            embed_dim: 4,
            units: 5,
            ..ModelConfig::default()
        };
        let model = SentimentClassifier::new(&config, WORDS, outputs, 2, &device).unwrap();
        let (input, _) = batch(&device);
        let at = |r: Tensor<3>| model.forward_perturbed(input.clone(), None, r);
        let clean = model.forward(input.clone(), None);
        let zero = Tensor::<3>::zeros([2, 6, 4], &device);
        assert_eq!(values_of(kl_from_logits(clean.clone(), at(zero))), 0.0);
        let push = Tensor::<3>::full([2, 6, 4], 0.5, &device);
        let kl = values_of(kl_from_logits(clean, at(push)));
        assert!(kl > 0.0 && kl.is_finite(), "{outputs} classes: {kl}");
    }
}

mod common;

/// A tiny bidirectional GRU learns the synthetic task with each adversarial loss, its loss
/// falls, and the model it returns scores on validation what training measured at the kept
/// epoch.
#[test]
fn tiny_models_learn_with_adversarial_and_virtual_adversarial_training() {
    let (data, _, _) = common::synthetic();
    let device = Device::flex();
    let model = ModelConfig {
        embed_dim: 8,
        units: 8,
        architecture: Architecture::Gru,
        bidirectional: true,
        readout: Readout::Max,
        dropout: 0.1,
        ..ModelConfig::default()
    };
    for (kind, unlabelled_per_batch) in [
        (AdversarialKind::At, 0),
        (AdversarialKind::Vat, 16),
        (AdversarialKind::Both, 0),
    ] {
        let train = TrainConfig {
            epochs: 4,
            batch_size: 16,
            learning_rate: 0.01,
            adversarial: Some(AdversarialConfig {
                epsilon: 1.0,
                kind,
                unlabelled_per_batch,
                xi: 1e-6,
                power_iterations: 1,
            }),
            ..TrainConfig::default()
        };
        let spec = FitSpec {
            train_set: &data.train,
            val_set: &data.val,
            num_classes: 2,
            num_words: 60,
            model: &model,
            train: &train,
            seed: 11,
            unlabelled: None,
        };
        let out = fit(spec, &device, None, &mut Silent).unwrap();
        let h = &out.history;
        assert!(
            h.epochs.last().unwrap().train.loss < h.epochs[0].train.loss,
            "{kind:?}: {h:?}"
        );
        let test = evaluate(&out.model, &data.test, 64, true, &device).unwrap();
        assert!(test.metrics.accuracy > 0.8, "{kind:?}: {:?}", test.metrics);
        let best = h.best_epoch.unwrap();
        let val = evaluate(&out.model, &data.val, 64, true, &device).unwrap();
        assert!(
            (val.metrics.loss - h.epochs[best - 1].val.loss).abs() < 1e-6,
            "{kind:?}: the returned model scores {} on validation, training saw {}",
            val.metrics.loss,
            h.epochs[best - 1].val.loss
        );
    }
}

#[test]
fn out_of_range_settings_are_refused_by_name() {
    let good = AdversarialConfig {
        epsilon: 5.0,
        kind: AdversarialKind::Vat,
        unlabelled_per_batch: 64,
        xi: 1e-6,
        power_iterations: 1,
    };
    for (bad, key) in [
        (
            AdversarialConfig {
                epsilon: 0.0,
                ..good.clone()
            },
            "adversarial.epsilon",
        ),
        (
            AdversarialConfig {
                epsilon: f64::NAN,
                ..good.clone()
            },
            "adversarial.epsilon",
        ),
        (
            AdversarialConfig {
                epsilon: 1e30,
                ..good.clone()
            },
            "adversarial.epsilon",
        ),
        (
            AdversarialConfig {
                xi: -1.0,
                ..good.clone()
            },
            "adversarial.xi",
        ),
        (
            AdversarialConfig {
                xi: 2.0,
                ..good.clone()
            },
            "adversarial.xi",
        ),
        (
            AdversarialConfig {
                unlabelled_per_batch: 5000,
                ..good.clone()
            },
            "adversarial.unlabelled_per_batch",
        ),
        (
            AdversarialConfig {
                power_iterations: 0,
                ..good.clone()
            },
            "adversarial.power_iterations",
        ),
        (
            AdversarialConfig {
                kind: AdversarialKind::At,
                ..good.clone()
            },
            "adversarial.unlabelled_per_batch",
        ),
    ] {
        let train = TrainConfig {
            adversarial: Some(bad),
            ..TrainConfig::default()
        };
        match train.validate() {
            Err(TrainError::InvalidConfig {
                key: named,
                problem,
            }) => {
                assert_eq!(named, key, "{problem}")
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    TrainConfig {
        adversarial: Some(good),
        ..TrainConfig::default()
    }
    .validate()
    .unwrap();
}
