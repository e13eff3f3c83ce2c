//! `cargo xtask bench`: seconds per training step, and reviews per second in prediction.

use std::time::Instant;

use burn::tensor::{Device, Tensor};
use burn::train::TrainStep;
use imdb_data::{DataConfig, SeededRng, Vocabulary};
use imdb_model::{Architecture, Implementation, ModelConfig, ModelInput, SentimentClassifier};
use imdb_train::AdversarialConfig;
use imdb_train::adversarial::Adversarial;
use imdb_train::step::{TrainBatch, Trainee};

use crate::backend::Backend;
use crate::cli::{PredictBenchArgs, TrainStepArgs};
use crate::error::XtaskError;

/// Times `steps` training steps (forward, backward, Adam) after `warmup` untimed ones, with
/// the adversarial loss `adversarial` asks for.
fn time_steps(
    config: &ModelConfig,
    args: &TrainStepArgs,
    adversarial: Option<AdversarialConfig>,
    device: &Device,
) -> Result<f64, XtaskError> {
    let device = device.clone().autodiff();
    // Uniform word frequencies: the timing does not depend on them.
    let frequencies = Tensor::full([args.vocab, 1], 1.0 / args.vocab as f32, &device);
    let mut trainee = Trainee {
        model: SentimentClassifier::new(config, args.vocab, 2, 1, &device)?,
        l2: 0.0,
        adversarial: adversarial.map(|config| Adversarial {
            config,
            frequencies,
        }),
    };
    let mut optim = imdb_train::optimizer(&imdb_train::TrainConfig::default());
    let mut rng = SeededRng::new(7);
    let (batch, steps) = (args.batch, args.seq_len);
    let mut times = Vec::with_capacity(args.steps);
    let mut optimizer = Vec::with_capacity(args.steps);
    let random_input = |rng: &mut SeededRng, rows: usize| {
        let ids: Vec<u32> = (0..rows * steps)
            .map(|_| 4 + rng.below(args.vocab as u64 - 4) as u32)
            .collect();
        ModelInput::from_padded(&ids, &vec![steps; rows], steps, false, &device)
    };
    for i in 0..args.warmup + args.steps {
        let input = random_input(&mut rng, batch);
        let unlabelled = (trainee.adversarial.is_some() && args.unlabelled > 0)
            .then(|| random_input(&mut rng, args.unlabelled));
        let labels: Vec<f32> = (0..batch).map(|_| rng.below(2) as f32).collect();
        let labels = Tensor::from_data(burn::tensor::TensorData::new(labels, [batch, 1]), &device);
        let start = Instant::now();
        let out = TrainStep::step(
            &trainee,
            TrainBatch {
                input,
                labels,
                dropout_seed: i as u64,
                unlabelled,
            },
        );
        let stepped = start.elapsed().as_secs_f64();
        trainee = TrainStep::optimize(trainee, &mut optim, 1e-3.into(), out.grads);
        if i >= args.warmup {
            let total = start.elapsed().as_secs_f64();
            times.push(total);
            optimizer.push(total - stepped);
        }
    }
    let (min, max) = (
        times.iter().copied().fold(f64::INFINITY, f64::min),
        times.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "{:>10}  min {min:.4} s, max {max:.4} s, of which the optimizer {:.4} s (medians)",
        "",
        median(&mut optimizer)
    );
    Ok(median(&mut times))
}

/// The median: robust to the noise of a shared machine.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// `bench train-step`.
pub fn train_step(args: &TrainStepArgs) -> Result<(), XtaskError> {
    if args.steps == 0 || args.batch == 0 || args.seq_len == 0 || args.vocab < 5 {
        return Err(XtaskError::Usage(
            "--steps, --batch and --seq-len must be at least 1 and --vocab at least 5".into(),
        ));
    }
    // The libraries' own bounds: beyond them a run fails on allocation, not with a message.
    for (flag, value, most) in [
        ("--batch", args.batch, imdb_train::MAX_BATCH_SIZE),
        ("--embed", args.embed, imdb_model::MAX_WIDTH),
        ("--units", args.units, imdb_model::MAX_WIDTH),
        ("--seq-len", args.seq_len, imdb_data::MAX_MAXLEN),
    ] {
        if value > most {
            return Err(XtaskError::Usage(format!(
                "{flag} {value} is too large: use at most {most}"
            )));
        }
    }
    let adversarial = args
        .adversarial
        .map(|kind| {
            let settings = AdversarialConfig {
                unlabelled_per_batch: args.unlabelled,
                ..AdversarialConfig::new(kind, 1.0)
            };
            settings
                .validate()
                .map(|()| settings)
                .map_err(|e| XtaskError::Usage(format!("--unlabelled: {e}")))
        })
        .transpose()?;
    if adversarial.is_none() && args.unlabelled > 0 {
        return Err(XtaskError::Usage(
            "--unlabelled needs --adversarial vat or both".into(),
        ));
    }
    let base = ModelConfig {
        architecture: args.cell,
        embed_dim: args.embed,
        units: args.units,
        dropout: args.dropout,
        recurrent_dropout: args.recurrent_dropout,
        ..ModelConfig::default()
    };
    base.check_vocabulary(args.vocab)
        .map_err(|e| XtaskError::Usage(format!("--vocab: {e}")))?;
    let device = args.backend.device()?;
    println!(
        "train step: backend {}, {:?}, batch {}, {} steps, embed {}, units {}, dropout {}, \
         recurrent dropout {}, vocab {}; {} timed steps after {} warm-up",
        args.backend.name(),
        args.cell,
        args.batch,
        args.seq_len,
        args.embed,
        args.units,
        args.dropout,
        args.recurrent_dropout,
        args.vocab,
        args.steps,
        args.warmup
    );
    let mut results = Vec::new();
    let mut adversarial_ratios = Vec::new();
    for &implementation in &args.implementation {
        let mut config = ModelConfig {
            implementation,
            ..base.clone()
        };
        let mut note = "";
        if implementation == Implementation::Burn {
            if args.cell != Architecture::Lstm {
                println!("{:>10}: skipped (Burn's stock layer is an LSTM)", "burn");
                continue;
            }
            // Burn's stock layer has no recurrent dropout.
            config.recurrent_dropout = 0.0;
            note = " (stock nn::Lstm, no recurrent dropout)";
        }
        let seconds = time_steps(&config, args, None, &device)?;
        println!(
            "{:>10}: {seconds:.4} s/step (median){note}",
            name(implementation)
        );
        results.push((implementation, seconds));
        if let Some(settings) = &adversarial {
            let kind = settings.kind;
            let adversarial = time_steps(&config, args, Some(settings.clone()), &device)?;
            // Plain steps again after it, so that a drift of the machine's speed shows.
            let plain = time_steps(&config, args, None, &device)?;
            let ratio = adversarial / ((seconds + plain) / 2.0);
            println!(
                "{:>10}: {adversarial:.4} s/step with {kind:?}, {ratio:.2}× a plain step \
                 (plain again: {plain:.4} s)",
                name(implementation)
            );
            adversarial_ratios.push((implementation, ratio));
        }
    }
    let Some(&(_, first)) = results.first() else {
        return Err(XtaskError::Usage("no implementation ran".into()));
    };
    println!(
        "{}",
        serde_json::json!({
            "backend": args.backend.name(),
            "batch": args.batch,
            "seq_len": args.seq_len,
            "embed": args.embed,
            "units": args.units,
            "seconds_per_step": first,
            "by_implementation": by_implementation(&results),
            "adversarial": args.adversarial,
            "adversarial_cost": by_implementation(&adversarial_ratios),
        })
    );
    Ok(())
}

/// The JSON lines' `by_implementation` object: `{"fused": 0.0338, ...}`.
fn by_implementation(results: &[(Implementation, f64)]) -> serde_json::Value {
    results
        .iter()
        .map(|(i, seconds)| (name(*i).to_string(), serde_json::json!(seconds)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn name(implementation: Implementation) -> &'static str {
    match implementation {
        Implementation::Fused => "fused",
        Implementation::Composed => "composed",
        Implementation::Burn => "burn",
    }
}

/// `bench predict`: classifies the test set with a saved model — its network and, for a
/// stacked model, its n-gram part — or a fresh notebook model.
pub fn predict(args: &PredictBenchArgs) -> Result<(), XtaskError> {
    if let Some(input) = &args.input {
        let Some(model) = &args.model else {
            return Err(XtaskError::Usage("--input needs --model".into()));
        };
        return crate::predict::bench_file(model, input, args);
    }
    let precision = crate::precision::from_env()?;
    let device = args.backend.device()?;
    let mut data_config = DataConfig::default();
    let mut seed = 42;
    let (corpus, _) = crate::data::load(false)?;
    let saved = match &args.model {
        Some(dir) => {
            let saved = imdb_train::SavedModel::load(dir, &device)?;
            // The run's own test set (a `test_limit` it sampled included), encoded as the
            // model was trained.
            let pre = saved.manifest.preprocessing;
            let run = crate::data::run_config(dir)?;
            data_config = run.data.with_preprocessing(&pre);
            seed = run.seed;
            if data_config.source != imdb_data::SourceKind::Imdb
                || data_config.rating_bands.is_some()
                || saved.classes() != corpus.classes
                || pre.tokenizer != corpus.tokenizer
                || !corpus.ranks_agree_with(&saved.vocab)
            {
                return Err(XtaskError::Usage(format!(
                    "bench predict times IMDB's negative/positive test set with the default \
                     tokenizer; {} was trained on other classes, texts or tokenizer settings",
                    dir.display()
                )));
            }
            saved
        }
        None => {
            let model = SentimentClassifier::new(
                &ModelConfig::default(),
                data_config.num_words,
                2,
                1,
                &device,
            )?;
            let pre = data_config.preprocessing();
            imdb_train::SavedModel::new(model, pre, &corpus.vocab, &corpus.classes)?
        }
    };
    let saved = saved.with_precision(precision);
    let data = imdb_data::prepare(&corpus, &data_config, seed)?;
    // Every id of each test review: the network reads its `maxlen`, a stack's n-grams all.
    let ids: Vec<Vec<u32>> = data
        .test
        .source
        .iter()
        .map(|&i| Vocabulary::encode_ranks(&corpus.test[i].ranks, data_config.num_words))
        .collect();
    let model = &saved.model;
    let mut results = Vec::new();
    for &implementation in &args.implementation {
        if implementation == Implementation::Burn && model.config.architecture != Architecture::Lstm
        {
            println!("{:>10}: skipped (Burn's stock layer is an LSTM)", "burn");
            continue;
        }
        let mut timed = saved.clone();
        timed.model.config.implementation = implementation;
        let mut best = f64::INFINITY;
        for _ in 0..args.repeat.max(1) {
            let start = Instant::now();
            let evaluation = timed.evaluate_ids(&ids, &data.test.labels, (args.batch, true))?;
            let seconds = start.elapsed().as_secs_f64();
            best = best.min(seconds);
            println!(
                "{:>10}: classified {} test reviews in {seconds:.3} s ({:.0} reviews/s), \
                 accuracy {:.4}",
                name(implementation),
                evaluation.labels.len(),
                evaluation.labels.len() as f64 / seconds,
                evaluation.metrics.accuracy
            );
        }
        results.push((implementation, best));
    }
    let Some(&(_, first)) = results.first() else {
        return Err(XtaskError::Usage("no implementation ran".into()));
    };
    println!(
        "{}",
        serde_json::json!({
            "backend": Backend::name(args.backend),
            "reviews": data.test.len(),
            "seconds": first,
            "reviews_per_second": data.test.len() as f64 / first,
            "by_implementation": by_implementation(&results),
        })
    );
    Ok(())
}
