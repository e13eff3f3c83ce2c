//! A run's pretrained start (`pretrain = { … }` in a config): a language model trained on the
//! corpus' unlabelled and training texts (never the test texts, no labels), cached beside the
//! corpus, whose layers start the classifier.
//!
//! The cache is a folder `lm2-<hash>` of everything that shapes the model but the number of
//! epochs (corpus hash, vocabulary size, tokenizer, model, pretraining settings, seed, texts):
//! `epoch-<n>.bpk` holds the weights after each epoch, `optimizer-<n>.bpk` Adam's state after
//! the last one, and `record.json` the epochs done (written last, so it names only complete
//! files). A run asking for more epochs than the folder has resumes after its last, exactly as
//! if it had never stopped; one asking for fewer takes that epoch's weights.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use imdb_data::TokenizedCorpus;
use imdb_train::pretrain::{PretrainEpoch, PretrainObserver, PretrainState, resume_pretraining};
use imdb_train::records::{load_module, load_optimizer, save_module, save_optimizer};
use imdb_train::{PretrainedStart, Recipe, TrainError};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::error::XtaskError;
use crate::fingerprint::fnv1a_text;

/// What a cached language model was trained with and how it went (`record.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainRecord {
    /// Everything that shapes the model but its epochs; a folder whose record says otherwise
    /// is not used.
    pub fingerprint: String,
    /// Texts trained on.
    pub texts: usize,
    /// Texts held out for perplexity.
    pub held_out: usize,
    /// Each epoch's loss, perplexity and seconds.
    pub epochs: Vec<PretrainEpoch>,
}

/// The classifier `recipe` starts from when it asks for pretraining (else `None`), its
/// language model pretrained on `device` (an autodiff device) or taken from the cache; the
/// pretraining's record goes to `run_dir/pretrain.json`, its epochs are returned for the
/// report.
pub fn pretrained_start(
    recipe: &Recipe,
    device: &burn::tensor::Device,
    corpus: &TokenizedCorpus,
    num_classes: usize,
    run_dir: &Path,
    stop: &Arc<AtomicBool>,
) -> Result<Option<(PretrainedStart, Vec<PretrainEpoch>)>, XtaskError> {
    let Some(settings) = &recipe.pretrain else {
        return Ok(None);
    };
    let num_words = recipe.data.num_words;
    let (texts, held_out) = recipe.pretraining_texts(settings, corpus);
    let lm_config = recipe.language_model_config();
    let seed = recipe.pretraining_seed(settings);
    // Every setting but the epochs: more epochs continue the same folder.
    let fingerprint = serde_json::json!({
        "corpus": corpus.archive_sha256,
        "num_words": num_words,
        "tokenizer": recipe.data.tokenizer(),
        "model": lm_config,
        "pretrain": imdb_train::pretrain::PretrainConfig {
            epochs: 0,
            seed: None,
            ..settings.clone()
        },
        "seed": seed,
        "texts": [texts.len(), held_out.len()],
    })
    .to_string();
    let key = format!("lm2-{:016x}", fnv1a_text(&fingerprint));
    let data_dir = imdb_data::default_data_dir()?;
    let folder = imdb_data::load::archive_dir(&data_dir, &corpus.archive_sha256).join(&key);
    let cache = LanguageModelCache {
        folder: folder.clone(),
    };
    // One command trains a language model at a time; the others (shards of a grid) wait,
    // then read it from the cache.
    let _building = imdb_data::lock_exclusive(&folder.with_extension("lock"), || {
        eprintln!("language model {key}: waiting for another command that is training it")
    })?;
    // Epoch files a killed pretraining left half-written: none is being written now.
    imdb_data::sweep_temporaries(&folder, std::time::Duration::ZERO, false)?;
    let template = recipe.language_model(settings, device)?;
    let record = cache.record(&fingerprint);
    let wanted = settings.epochs;
    let (model, epochs) = match record {
        Some(record) if record.epochs.len() >= wanted && cache.weights(wanted).is_file() => {
            eprintln!("language model {key}: {wanted} epochs from the cache");
            let model = load_module(
                template,
                &cache.weights(wanted),
                "pretrained language model",
            )?;
            (model, record.epochs[..wanted].to_vec())
        }
        record => {
            let mut state = PretrainState::new(template, settings);
            let history = record.map(|r| r.epochs).unwrap_or_default();
            let done = history.len();
            if (1..wanted).contains(&done)
                && cache.weights(done).is_file()
                && cache.optimizer(done).is_file()
            {
                eprintln!("language model {key}: resuming after epoch {done} of {wanted}");
                state.model = load_module(
                    state.model,
                    &cache.weights(done),
                    "pretrained language model",
                )?;
                state.optimizer = load_optimizer(state.optimizer, &cache.optimizer(done))?;
                state.history = history;
            }
            std::fs::create_dir_all(&folder)
                .map_err(|e| XtaskError::io("cannot create", &folder, e))?;
            eprintln!(
                "pretraining language model {key} on {} texts ({} held out), epochs {} to {wanted}…",
                texts.len(),
                held_out.len(),
                state.history.len() + 1,
            );
            let mut progress =
                Progress::new(stop.clone(), cache, fingerprint.clone(), &texts, &held_out);
            let done = resume_pretraining(
                state,
                (&texts, &held_out),
                settings,
                seed,
                device,
                &mut progress,
            );
            progress.finish();
            let done = done?;
            (done.model, done.history)
        }
    };
    let record = PretrainRecord {
        fingerprint,
        texts: texts.len(),
        held_out: held_out.len(),
        epochs: epochs.clone(),
    };
    imdb_train::records::save_json(&record, &run_dir.join("pretrain.json"))?;
    let start = recipe.pretrained_start(model, num_classes, format!("{key}/epoch-{wanted}"))?;
    Ok(Some((start, epochs)))
}

/// One cache folder's files.
struct LanguageModelCache {
    folder: PathBuf,
}

impl LanguageModelCache {
    fn weights(&self, epoch: usize) -> PathBuf {
        self.folder.join(format!("epoch-{epoch}.bpk"))
    }

    fn optimizer(&self, epoch: usize) -> PathBuf {
        self.folder.join(format!("optimizer-{epoch}.bpk"))
    }

    fn record_path(&self) -> PathBuf {
        self.folder.join("record.json")
    }

    /// The folder's record if it was made with `fingerprint`; a record made otherwise (or
    /// unreadable) is refused with a message, and the folder is trained again from scratch.
    fn record(&self, fingerprint: &str) -> Option<PretrainRecord> {
        let text = std::fs::read_to_string(self.record_path()).ok()?;
        match serde_json::from_str::<PretrainRecord>(&text) {
            Ok(record) if record.fingerprint == fingerprint => Some(record),
            Ok(_) => {
                eprintln!(
                    "{}: made with other settings than this run's; not used",
                    self.record_path().display()
                );
                None
            }
            Err(e) => {
                eprintln!(
                    "{}: unreadable ({e}); not used",
                    self.record_path().display()
                );
                None
            }
        }
    }

    /// Saves the state after an epoch: weights and optimizer first, then the record that
    /// names them, then the previous optimizer state, no longer needed.
    fn save(&self, state: &PretrainState, record: &PretrainRecord) -> Result<(), TrainError> {
        let epoch = state.history.len();
        save_module(state.model.clone(), &self.weights(epoch))?;
        save_optimizer(&state.optimizer, &self.optimizer(epoch))?;
        imdb_train::records::save_json(record, &self.record_path())?;
        if epoch > 1 {
            // A leftover costs disk, not correctness: ignore a failure.
            let _ = std::fs::remove_file(self.optimizer(epoch - 1));
        }
        Ok(())
    }
}

/// A progress bar with an ETA on a terminal, a line per epoch otherwise; stops on Ctrl-C.
/// Saves each epoch to the cache.
struct Progress {
    bar: Option<ProgressBar>,
    stop: Arc<AtomicBool>,
    started: Instant,
    epoch_started: Instant,
    cache: LanguageModelCache,
    fingerprint: String,
    sizes: (usize, usize),
}

impl Progress {
    fn new(
        stop: Arc<AtomicBool>,
        cache: LanguageModelCache,
        fingerprint: String,
        texts: &[Vec<u32>],
        held_out: &[Vec<u32>],
    ) -> Self {
        Self {
            bar: None,
            stop,
            started: Instant::now(),
            epoch_started: Instant::now(),
            cache,
            fingerprint,
            sizes: (texts.len(), held_out.len()),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl PretrainObserver for Progress {
    fn batch_end(&mut self, epoch: usize, batch: usize, batches: usize, loss: f64) {
        if !std::io::stderr().is_terminal() {
            // A line at each tenth of an epoch, with its ETA.
            let tenth = |b: usize| (b * 10).checked_div(batches).unwrap_or(10);
            if tenth(batch + 1) > tenth(batch) {
                let seconds = self.epoch_started.elapsed().as_secs_f64();
                let left = seconds * (batches - batch - 1) as f64 / (batch + 1) as f64;
                eprintln!(
                    "pretraining epoch {epoch}: {}% - loss {loss:.4} - {seconds:.0} s, about \
                     {left:.0} s left in the epoch",
                    tenth(batch + 1) * 10
                );
            }
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(batches as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "pretraining {msg} {bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}]",
            ) {
                bar.set_style(style);
            }
            bar
        });
        bar.set_length(batches as u64);
        bar.set_position(batch as u64 + 1);
        bar.set_message(format!("epoch {epoch} loss {loss:.3}"));
    }

    fn epoch_end(&mut self, record: &PretrainEpoch) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.epoch_started = Instant::now();
        eprintln!(
            "pretraining epoch {}: {:.0} s - loss {:.4} - held-out perplexity {:.1} ({:.0} s in all)",
            record.epoch,
            record.seconds,
            record.train_loss,
            record.held_out_perplexity,
            self.started.elapsed().as_secs_f64()
        );
    }

    fn should_stop(&mut self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn checkpoint(&mut self, state: &PretrainState) -> Result<(), TrainError> {
        let record = PretrainRecord {
            fingerprint: self.fingerprint.clone(),
            texts: self.sizes.0,
            held_out: self.sizes.1,
            epochs: state.history.clone(),
        };
        self.cache.save(state, &record)
    }
}
