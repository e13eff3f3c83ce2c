//! Explanations on a tiny trained model: the word that decides the class gets the largest
//! weight, for every architecture; words cut by truncation weigh nothing; the verdict is the
//! one `predict` gives.

use burn::tensor::Device;
use imdb_data::{DataConfig, EncodedSet, SeededRng, Truncating, Vocabulary};
use imdb_model::{Architecture, ModelConfig};
use imdb_train::{FitSpec, SavedModel, Silent, TrainConfig, fit};

const FILLER: [&str; 12] = [
    "the", "film", "was", "a", "story", "of", "people", "and", "it", "had", "some", "scenes",
];

/// Texts of 6 to 14 filler words with one deciding word planted at a random place: "superb"
/// for class 1, "dreadful" for class 0. With `unplanted`, one text in three has no deciding
/// word and a random label, so that a model cannot read "no dreadful" as "superb": both
/// words then decide.
fn planted(count: usize, seed: u64, unplanted: bool) -> (Vec<String>, Vec<u32>) {
    let mut rng = SeededRng::new(seed);
    let mut texts = Vec::new();
    let mut labels = Vec::new();
    for i in 0..count {
        let label = (i % 2) as u32;
        let len = 6 + rng.below(9) as usize;
        let mut words: Vec<&str> = (0..len)
            .map(|_| FILLER[rng.below(FILLER.len() as u64) as usize])
            .collect();
        let at = rng.below(len as u64 + 1) as usize;
        if !(unplanted && i % 3 == 2) {
            words.insert(at, if label == 1 { "superb" } else { "dreadful" });
        }
        texts.push(words.join(" "));
        labels.push(label);
    }
    (texts, labels)
}

fn trained(architecture: Architecture) -> SavedModel {
    let (texts, labels) = planted(600, 3, true);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let config = DataConfig {
        maxlen: 16,
        num_words: 40,
        ..DataConfig::default()
    };
    let preprocessing = config.preprocessing();
    let vocab = Vocabulary::build(refs.iter().copied());
    let set = EncodedSet {
        sequences: preprocessing.encode(&vocab, &refs).unwrap(),
        labels,
        source: (0..refs.len()).collect(),
    };
    let model = ModelConfig {
        architecture,
        embed_dim: 8,
        units: 8,
        dropout: 0.0,
        recurrent_dropout: 0.0,
        heads: 2,
        ff_dim: 16,
        ..ModelConfig::default()
    };
    let train = TrainConfig {
        epochs: 12,
        batch_size: 32,
        learning_rate: 0.02,
        ..TrainConfig::default()
    };
    let spec = FitSpec {
        train_set: &set,
        val_set: &set,
        num_classes: 2,
        num_words: 40,
        model: &model,
        train: &train,
        seed: 1,
        unlabelled: None,
    };
    let outcome = fit(spec, &Device::flex(), None, &mut Silent).unwrap();
    let classes = ["neg", "pos"].map(String::from);
    SavedModel::new(outcome.model, preprocessing, &vocab, &classes).unwrap()
}

#[test]
fn the_planted_word_weighs_most_for_every_architecture() {
    let (texts, labels) = planted(40, 99, false);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for architecture in [
        Architecture::Lstm,
        Architecture::Gru,
        Architecture::Rnn,
        Architecture::Transformer,
    ] {
        let saved = trained(architecture);
        let session = saved.session();
        let explanations = session.explain(&refs).unwrap();
        let predictions = session.predict(&refs, 64).unwrap();
        assert_eq!(explanations.len(), refs.len());
        let mut top = 0;
        for ((e, p), (text, &label)) in explanations
            .iter()
            .zip(&predictions)
            .zip(texts.iter().zip(&labels))
        {
            assert_eq!(e.prediction.class, p.class, "{architecture:?}: {text}");
            assert!((e.prediction.probability - p.probability).abs() < 1e-4);
            let words: Vec<&str> = e.tokens.iter().map(|t| t.token.as_str()).collect();
            assert_eq!(words.join(" "), *text, "every word, in order");
            let best = e
                .tokens
                .iter()
                .max_by(|a, b| a.weight.total_cmp(&b.weight))
                .unwrap();
            let planted = if label == 1 { "superb" } else { "dreadful" };
            if e.prediction.class == label && best.token == planted {
                assert!(best.weight > 0.0);
                top += 1;
            }
        }
        // The model learnt the task, and the planted word explains its verdicts.
        assert!(
            top >= 36,
            "{architecture:?}: planted word on top in {top} of 40"
        );
    }
}

#[test]
fn words_cut_by_truncation_weigh_nothing() {
    let saved = trained(Architecture::Lstm);
    let text = "superb the film was a story of people and it had some scenes the film was a \
                story of people and it had some scenes";
    let words = text.split(' ').count();
    assert!(words > 16);
    let keep_end = saved.session().explain(&[text]).unwrap().remove(0);
    // maxlen 16 keeps the start token and the first 15 words (truncating "post").
    assert_eq!(keep_end.tokens.len(), words);
    assert!(keep_end.tokens[15..].iter().all(|t| t.weight == 0.0));
    assert!(keep_end.tokens[0].weight > 0.0, "{:?}", keep_end.tokens[0]);
    let mut pre = saved.clone();
    pre.manifest.preprocessing.truncating = Truncating::Pre;
    let kept = pre.session().explain(&[text]).unwrap().remove(0);
    // Keeping the end: "superb", the first word, is not read.
    assert_eq!(kept.tokens[0].weight, 0.0);
    assert!(kept.tokens[words - 16..].iter().any(|t| t.weight != 0.0));
    // An empty text: a verdict and no word.
    let empty = saved.session().explain(&[""]).unwrap().remove(0);
    assert!(empty.tokens.is_empty());
    assert_eq!(empty.prediction.probabilities.len(), 2);
}
