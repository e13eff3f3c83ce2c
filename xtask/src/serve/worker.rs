//! The model's own thread: requests queue up while a batch runs, and the next batch takes
//! every queued text at once, so concurrent requests share one forward pass.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use imdb_model::InferencePrecision;
use imdb_train::{Prediction, SavedModel, TokenWeight};
use tokio::sync::oneshot;

use crate::error::XtaskError;

/// Most texts in one forward pass (requests are never split: one over this is its own pass).
const MAX_BATCH_TEXTS: usize = 256;

/// One text's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The verdict.
    pub prediction: Prediction,
    /// Every word with its weight, when explained.
    pub tokens: Option<Vec<TokenWeight>>,
}

/// A request for the model: texts, whether to explain them, and where the answers go.
struct Job {
    texts: Vec<String>,
    explain: bool,
    reply: oneshot::Sender<Result<Vec<Answer>, String>>,
}

/// What a loaded model says about itself.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Class names by class id.
    pub classes: Vec<String>,
    /// The architecture, as configs spell it.
    pub architecture: String,
    /// Whether the network is stacked with an n-gram model (its verdicts are the stack's).
    pub stacked: bool,
}

/// A handle on the model's thread; clones share it.
#[derive(Clone)]
pub struct Inference {
    jobs: mpsc::Sender<Job>,
}

impl Inference {
    /// Loads the model in `dir` on its own thread (which keeps its inference tables for every
    /// request) and returns the handle once it is ready, or the loading error.
    pub fn start(
        dir: &Path,
        backend: crate::backend::Backend,
        precision: InferencePrecision,
    ) -> Result<(Self, ModelInfo, JoinHandle<()>), XtaskError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<ModelInfo, XtaskError>>();
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("model".into())
            .spawn(move || {
                let loaded = backend.device().and_then(|device| {
                    Ok(SavedModel::load(&dir, &device)?.with_precision(precision))
                });
                let model = match loaded {
                    Ok(model) => model,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let session = model.session();
                let _ = ready_tx.send(Ok(ModelInfo {
                    classes: model.classes().to_vec(),
                    architecture: serde_json::to_value(model.model.config.architecture)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    stacked: model.stack.is_some(),
                }));
                serve_jobs(&session, &queue);
            })
            .map_err(|e| XtaskError::io("cannot start the model's thread for", "serve", e))?;
        let info = ready_rx.recv().map_err(|_| {
            XtaskError::Usage("the model's thread ended before the model was loaded".into())
        })??;
        Ok((Self { jobs }, info, thread))
    }

    /// Classifies (and explains, if asked) `texts`; an error is a message for the client.
    pub async fn ask(&self, texts: Vec<String>, explain: bool) -> Result<Vec<Answer>, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                texts,
                explain,
                reply,
            })
            .map_err(|_| "the model is not running".to_string())?;
        answer
            .await
            .map_err(|_| "the model stopped before answering".to_string())?
    }
}

/// Answers jobs until every handle is gone: each pass takes all queued jobs (up to
/// [`MAX_BATCH_TEXTS`] texts), the plain ones in one forward pass, the explained ones in
/// another.
fn serve_jobs(session: &imdb_train::Session<'_>, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut count = first.texts.len();
        let mut jobs = vec![first];
        while count < MAX_BATCH_TEXTS {
            match queue.try_recv() {
                Ok(job) => {
                    count += job.texts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        for explain in [false, true] {
            let (batch, rest): (Vec<Job>, Vec<Job>) =
                jobs.into_iter().partition(|j| j.explain == explain);
            jobs = rest;
            if batch.is_empty() {
                continue;
            }
            let texts: Vec<&str> = batch
                .iter()
                .flat_map(|j| j.texts.iter().map(String::as_str))
                .collect();
            let answers: Result<Vec<Answer>, String> = if explain {
                session.explain(&texts).map(|e| {
                    e.into_iter()
                        .map(|e| Answer {
                            prediction: e.prediction,
                            tokens: Some(e.tokens),
                        })
                        .collect()
                })
            } else {
                session.predict(&texts, MAX_BATCH_TEXTS).map(|p| {
                    p.into_iter()
                        .map(|prediction| Answer {
                            prediction,
                            tokens: None,
                        })
                        .collect()
                })
            }
            .map_err(|e| e.to_string());
            let mut answers = answers.map(Vec::into_iter);
            for job in batch {
                let reply = match &mut answers {
                    Ok(all) => Ok(all.by_ref().take(job.texts.len()).collect()),
                    Err(e) => Err(e.clone()),
                };
                // A client that went away no longer waits for its answer.
                let _ = job.reply.send(reply);
            }
        }
    }
}
