//! Chrono initialization: where each cell's biases go, that Keras' stays the default (written
//! configs and models unchanged), and the settings it refuses.

use burn::tensor::Device;
use imdb_model::{Architecture, CellKind, GateBias, ModelConfig, SentimentClassifier};
use imdb_rng::SeededRng;

fn biases(config: &ModelConfig, seed: u64) -> Vec<Vec<f32>> {
    let model = SentimentClassifier::new(config, 30, 2, seed, &Device::flex()).unwrap();
    model
        .encoder
        .iter()
        .map(|l| l.bias.val().into_data().try_to_vec::<f32>().unwrap())
        .collect()
}

#[test]
fn chrono_biases_give_each_unit_a_time_scale_in_its_gates() {
    let h = 200;
    let steps = 100;
    let scale_limit = ((steps - 1) as f32).ln() + 1e-6;
    // LSTM: gates input, forget, candidate, output.
    let lstm = GateBias::Chrono(steps).values(CellKind::Lstm, h, &mut SeededRng::new(1));
    assert_eq!(lstm.len(), 4 * h);
    let (input, forget) = (&lstm[..h], &lstm[h..2 * h]);
    assert!(
        forget.iter().all(|&b| (0.0..=scale_limit).contains(&b)),
        "{forget:?}"
    );
    assert!(input.iter().zip(forget).all(|(i, f)| *i == -f));
    assert!(lstm[2 * h..].iter().all(|&b| b == 0.0));
    // Spread over the range: ln u for u uniform in [1, 99] has its median near ln 50.
    let mut sorted = forget.to_vec();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[h / 2];
    assert!((median - 50f32.ln()).abs() < 0.3, "median {median}");
    assert!(sorted[0] < 1.5 && sorted[h - 1] > 4.4, "{sorted:?}");

    // GRU: the update gate's input bias, the rest (reset, candidate, recurrent biases) 0.
    let gru = GateBias::Chrono(steps).values(CellKind::Gru, h, &mut SeededRng::new(1));
    assert_eq!(gru.len(), 6 * h);
    assert_eq!(
        &gru[..h],
        forget,
        "the same draws as the LSTM's forget gate"
    );
    assert!(gru[h..].iter().all(|&b| b == 0.0));

    // A vanilla RNN has no gate: zeros, and nothing drawn.
    let mut rng = SeededRng::new(1);
    let rnn = GateBias::Chrono(steps).values(CellKind::Rnn, h, &mut rng);
    assert!(rnn.iter().all(|&b| b == 0.0));
    assert_eq!(rng.next_u64(), SeededRng::new(1).next_u64());

    // Keras: the LSTM's forget gate at 1.
    let keras = GateBias::Keras.values(CellKind::Lstm, 3, &mut SeededRng::new(1));
    assert_eq!(keras, [0., 0., 0., 1., 1., 1., 0., 0., 0., 0., 0., 0.]);
    assert_eq!(GateBias::from_chrono_steps(0), GateBias::Keras);
    assert_eq!(GateBias::from_chrono_steps(7), GateBias::Chrono(7));
}

#[test]
fn the_classifier_takes_chrono_biases_only_when_asked() {
    let keras = ModelConfig {
        units: 4,
        embed_dim: 6,
        ..ModelConfig::default()
    };
    let chrono = ModelConfig {
        chrono_init: 50,
        ..keras.clone()
    };
    // Default: Keras' biases, so every model built before this setting is unchanged.
    assert_eq!(
        biases(&keras, 3)[0],
        [
            0., 0., 0., 0., 1., 1., 1., 1., 0., 0., 0., 0., 0., 0., 0., 0.
        ]
    );
    let b = &biases(&chrono, 3)[0];
    assert!(
        b[4..8].iter().all(|&f| f >= 0.0) && b[4..8].iter().any(|&f| f > 0.5),
        "{b:?}"
    );
    assert!((0..4).all(|k| b[k] == -b[4 + k]));
    // Seeded: the same biases again, others with another seed.
    assert_eq!(biases(&chrono, 3), biases(&chrono, 3));
    assert_ne!(biases(&chrono, 3), biases(&chrono, 4));
    // Bidirectional, stacked: every layer and direction has its own time scales.
    let deep = biases(
        &ModelConfig {
            bidirectional: true,
            layers: 2,
            architecture: Architecture::Gru,
            ..chrono.clone()
        },
        3,
    );
    assert_eq!(deep.len(), 4);
    assert!(deep.iter().all(|b| b[..4].iter().all(|&z| z >= 0.0)));
    assert_ne!(deep[0][..4], deep[1][..4]);

    // A config that leaves it at 0 writes nothing for it (configs saved before it read and
    // compare the same); one that sets it reads back.
    let written = toml::to_string(&keras).unwrap();
    assert!(!written.contains("chrono_init"), "{written}");
    let read: ModelConfig = toml::from_str(&toml::to_string(&chrono).unwrap()).unwrap();
    assert_eq!(read, chrono);
}

#[test]
fn impossible_chrono_settings_are_refused() {
    for steps in [1, 2] {
        let err = ModelConfig {
            chrono_init: steps,
            ..ModelConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("chrono_init") && err.contains("at least 3"),
            "{err}"
        );
    }
    let err = ModelConfig {
        architecture: Architecture::Transformer,
        chrono_init: 100,
        ..ModelConfig::default()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("chrono_init") && err.contains("Transformer"),
        "{err}"
    );
}
