//! The model's own thread and how it shares itself between requests.
//!
//! - A bounded queue: at most [`Limits::queue`] requests whose clients wait for them; past it
//!   a request is refused at once (the API answers 503 with `Retry-After`) instead of waiting
//!   behind work nobody may want any more. A request's place is freed by the asking side as
//!   soon as its answer is in or its client is gone, so a client that has its answer, or one
//!   that gives up, never keeps the next request out.
//! - A request whose client is gone (it timed out with 408, or left) is dropped before any
//!   (more) of its work is done; an explanation slice already running finishes first.
//! - Plain requests never queue behind explanations: every plain text waiting is classified
//!   in one forward pass, then one slice of explanation work runs (whole texts, at most
//!   [`Limits::slice_rows`] rows, at least one text), then the plain texts that came in
//!   meanwhile, and so on.
//! - A panic while computing answers the requests being computed with a 500 that says why,
//!   and the thread goes on with a fresh session (the loaded weights are not touched by
//!   inference); `/health` counts the restarts.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use imdb_data::Preprocessing;
use imdb_model::InferencePrecision;
use imdb_train::{Prediction, SavedModel, Session, TokenWeight, explanation_rows};
use tokio::sync::oneshot;

use crate::error::XtaskError;

/// Most texts in one plain forward pass (a request is never split: one over this is its own
/// pass).
const MAX_BATCH_TEXTS: usize = 256;

/// What the server allows, and how it slices its work.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests waiting or running at once, past which a request is refused (503).
    pub queue: usize,
    /// The most rows of the fast inference path one request may cost: a plain text costs
    /// one, an explained text [`explanation_rows`].
    pub request_rows: usize,
    /// The most rows of explanation work between two plain passes (about 50 ms here).
    pub slice_rows: usize,
    /// A text that makes the model's thread panic, for testing its restart (hidden flag).
    pub fault_text: Option<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            queue: 64,
            request_rows: 8192,
            slice_rows: 1024,
            fault_text: None,
        }
    }
}

/// One text's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The verdict.
    pub prediction: Prediction,
    /// The words the model read with their weights, and how many it did not read, when
    /// explained.
    pub tokens: Option<(Vec<TokenWeight>, usize)>,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The queue is full: try again shortly.
    Busy,
    /// The model failed on it, or is not running: the message says which.
    Failed(String),
}

/// Counts a request as pending while its client waits for it (held by [`Inference::ask`]).
struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A request for the model: texts, whether to explain them, and where the answers go.
struct Job {
    texts: Vec<String>,
    explain: bool,
    reply: oneshot::Sender<Result<Vec<Answer>, Refusal>>,
}

impl Job {
    fn answer(self, answer: Result<Vec<Answer>, Refusal>) {
        // A client that went away no longer waits for its answer.
        let _ = self.reply.send(answer);
    }

    /// True if nobody waits for the answer any more.
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }
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
    /// How the model encodes text (to price explanations).
    pub preprocessing: Preprocessing,
}

impl ModelInfo {
    /// The rows one text costs: 1 plain, [`explanation_rows`] explained.
    pub fn rows(&self, text: &str, explain: bool) -> usize {
        if explain {
            explanation_rows(&self.preprocessing, self.stacked, text)
        } else {
            1
        }
    }
}

/// The model thread's state, for `/health`.
#[derive(Debug, Default)]
pub struct WorkerStatus {
    /// False once the thread has ended.
    pub alive: AtomicBool,
    /// Panics survived.
    pub restarts: AtomicUsize,
    /// Requests dropped unanswered because their client had gone (timed out or left).
    pub dropped: AtomicUsize,
    /// The last panic's message.
    pub last_failure: Mutex<Option<String>>,
}

/// A handle on the model's thread; clones share it.
#[derive(Clone)]
pub struct Inference {
    jobs: mpsc::Sender<Job>,
    pending: Arc<AtomicUsize>,
    queue: usize,
    /// The thread's state.
    pub status: Arc<WorkerStatus>,
}

impl Inference {
    /// Loads the model in `dir` on its own thread (which keeps its inference tables for every
    /// request) and returns the handle once it is ready, or the loading error.
    pub fn start(
        dir: &Path,
        backend: crate::backend::Backend,
        precision: InferencePrecision,
        limits: &Limits,
    ) -> Result<(Self, ModelInfo, JoinHandle<()>), XtaskError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<ModelInfo, XtaskError>>();
        let dir = dir.to_path_buf();
        let status = Arc::new(WorkerStatus::default());
        status.alive.store(true, Ordering::SeqCst);
        let thread_status = status.clone();
        let thread_limits = limits.clone();
        let thread = std::thread::Builder::new()
            .name("model".into())
            .spawn(move || {
                let loaded = backend.device().and_then(|device| {
                    Ok(SavedModel::load(&dir, &device)?.with_precision(precision))
                });
                let model = match loaded {
                    Ok(model) => model,
                    Err(e) => {
                        thread_status.alive.store(false, Ordering::SeqCst);
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(ModelInfo {
                    classes: model.classes().to_vec(),
                    architecture: serde_json::to_value(model.model.config.architecture)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    stacked: model.stack.is_some(),
                    preprocessing: model.manifest.preprocessing,
                }));
                supervise(&model, &queue, &thread_limits, &thread_status);
                thread_status.alive.store(false, Ordering::SeqCst);
            })
            .map_err(|e| XtaskError::io("cannot start the model's thread for", "serve", e))?;
        let info = ready_rx.recv().map_err(|_| {
            XtaskError::Usage("the model's thread ended before the model was loaded".into())
        })??;
        let handle = Self {
            jobs,
            pending: Arc::new(AtomicUsize::new(0)),
            queue: limits.queue,
            status,
        };
        Ok((handle, info, thread))
    }

    /// Requests whose clients wait for them now.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Classifies (and explains, if asked) `texts`; refused at once when the queue is full.
    pub async fn ask(&self, texts: Vec<String>, explain: bool) -> Result<Vec<Answer>, Refusal> {
        if self.pending.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::Busy);
        }
        // Dropped when this returns or when the client's future is dropped (it left or timed
        // out), whatever the model's thread is doing with the request then.
        let _ticket = Ticket(self.pending.clone());
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                texts,
                explain,
                reply,
            })
            .map_err(|_| Refusal::Failed("the model is not running".to_string()))?;
        answer
            .await
            .map_err(|_| Refusal::Failed("the model stopped before answering".to_string()))?
    }
}

/// An explained request part done: its answers so far.
struct Explaining {
    job: Job,
    answers: Vec<Answer>,
}

/// The work the thread holds: plain requests, explained ones (the first partly done), and
/// those being computed now (answered with the reason if the computation panics).
#[derive(Default)]
struct Work {
    plain: VecDeque<Job>,
    explained: VecDeque<Explaining>,
    running: Vec<Job>,
    running_explained: Option<Explaining>,
}

impl Work {
    fn add(&mut self, job: Job) {
        if job.explain {
            self.explained.push_back(Explaining {
                job,
                answers: Vec::new(),
            });
        } else {
            self.plain.push_back(job);
        }
    }

    fn is_idle(&self) -> bool {
        self.plain.is_empty() && self.explained.is_empty()
    }

    /// Drops the requests nobody waits for any more, before doing any (more) of their work;
    /// how many.
    fn drop_abandoned(&mut self) -> usize {
        let before = self.plain.len() + self.explained.len();
        self.plain.retain(|j| !j.abandoned());
        self.explained.retain(|e| !e.job.abandoned());
        before - self.plain.len() - self.explained.len()
    }

    /// Answers the requests being computed with `message` (after a panic).
    fn fail_running(&mut self, message: &str) {
        let running = std::mem::take(&mut self.running);
        let explained = self.running_explained.take();
        for job in running.into_iter().chain(explained.map(|e| e.job)) {
            job.answer(Err(Refusal::Failed(message.to_string())));
        }
    }
}

/// Serves jobs until every handle is gone, surviving panics: the requests being computed are
/// answered with the panic's message, the others keep their place.
fn supervise(
    model: &SavedModel,
    queue: &mpsc::Receiver<Job>,
    limits: &Limits,
    status: &WorkerStatus,
) {
    let mut work = Work::default();
    loop {
        let session = model.session();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            serve_jobs(&session, queue, &mut work, (limits, status))
        }));
        let Err(panic) = outcome else { return };
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        status.restarts.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut last) = status.last_failure.lock() {
            *last = Some(reason.clone());
        }
        eprintln!("the model's thread failed ({reason}): answering its requests 500, restarting");
        work.fail_running(&format!(
            "the model failed while computing this request ({reason}); it was restarted: \
             send the request again, or report it if it fails again"
        ));
    }
}

/// The scheduling loop (see the module docs); returns when every handle is gone.
fn serve_jobs(
    session: &Session<'_>,
    queue: &mpsc::Receiver<Job>,
    work: &mut Work,
    (limits, status): (&Limits, &WorkerStatus),
) {
    loop {
        if work.is_idle() {
            match queue.recv() {
                Ok(job) => work.add(job),
                Err(_) => return,
            }
        }
        while let Ok(job) = queue.try_recv() {
            work.add(job);
        }
        let dropped = work.drop_abandoned();
        status.dropped.fetch_add(dropped, Ordering::SeqCst);
        if !work.plain.is_empty() {
            run_plain(session, work, limits);
        } else if let Some(explaining) = work.explained.pop_front() {
            work.running_explained = Some(explaining);
            run_slice(session, work, limits);
        }
    }
}

/// Panics on the fault-injection text (tests of the restart).
fn check_fault(texts: &[String], limits: &Limits) {
    if let Some(fault) = &limits.fault_text
        && texts.iter().any(|t| t == fault)
    {
        panic!("fault injected by --fault-text");
    }
}

/// Classifies every waiting plain text (up to [`MAX_BATCH_TEXTS`], whole requests) in one pass.
fn run_plain(session: &Session<'_>, work: &mut Work, limits: &Limits) {
    let mut count = 0;
    while let Some(job) = work.plain.front() {
        if count > 0 && count + job.texts.len() > MAX_BATCH_TEXTS {
            break;
        }
        count += job.texts.len();
        let job = work.plain.pop_front().expect("a job");
        work.running.push(job);
    }
    let texts: Vec<&str> = work
        .running
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    for job in &work.running {
        check_fault(&job.texts, limits);
    }
    let answers = session.predict(&texts, MAX_BATCH_TEXTS.max(texts.len()));
    let mut answers = answers.map(|p| {
        p.into_iter().map(|prediction| Answer {
            prediction,
            tokens: None,
        })
    });
    for job in std::mem::take(&mut work.running) {
        let reply = match &mut answers {
            Ok(all) => Ok(all.by_ref().take(job.texts.len()).collect()),
            Err(e) => Err(Refusal::Failed(e.to_string())),
        };
        job.answer(reply);
    }
}

/// One slice of the explanation being computed: its next whole texts, at most
/// `slice_rows` rows (at least one text); answers the request when its last text is done,
/// else puts it back at the front.
fn run_slice(session: &Session<'_>, work: &mut Work, limits: &Limits) {
    let Some(explaining) = work.running_explained.as_mut() else {
        return;
    };
    let start = explaining.answers.len();
    let texts = &explaining.job.texts;
    check_fault(&texts[start..], limits);
    let (mut end, mut rows) = (start, 0);
    let pre = &session.saved().manifest.preprocessing;
    let stacked = session.saved().stack.is_some();
    while end < texts.len() {
        let cost = explanation_rows(pre, stacked, &texts[end]);
        if end > start && rows + cost > limits.slice_rows {
            break;
        }
        rows += cost;
        end += 1;
    }
    let refs: Vec<&str> = texts[start..end].iter().map(String::as_str).collect();
    match session.explain(&refs) {
        Ok(explained) => {
            explaining.answers.extend(explained.into_iter().map(|e| {
                let unread = e.tokens.len() - e.read.len();
                Answer {
                    prediction: e.prediction,
                    tokens: Some((e.tokens[e.read].to_vec(), unread)),
                }
            }));
            let explaining = work
                .running_explained
                .take()
                .expect("a running explanation");
            if explaining.answers.len() == explaining.job.texts.len() {
                let Explaining { job, answers } = explaining;
                job.answer(Ok(answers));
            } else {
                work.explained.push_front(explaining);
            }
        }
        Err(e) => {
            let explaining = work
                .running_explained
                .take()
                .expect("a running explanation");
            explaining.job.answer(Err(Refusal::Failed(e.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// A handle with a queue of `queue` whose requests arrive at the returned receiver, which
    /// stands in for the model's thread.
    fn handle(queue: usize) -> (Inference, mpsc::Receiver<Job>) {
        let (jobs, received) = mpsc::channel();
        let inference = Inference {
            jobs,
            pending: Arc::new(AtomicUsize::new(0)),
            queue,
            status: Arc::default(),
        };
        (inference, received)
    }

    /// Lets a client's request make what progress it can without waiting.
    fn poll<F: Future>(request: Pin<&mut F>) -> Poll<F::Output> {
        request.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_place_is_freed_when_its_client_leaves_while_the_model_still_holds_its_request() {
        let (inference, model) = handle(1);
        let mut first = Box::pin(inference.ask(vec!["fine".into()], true));
        assert!(poll(first.as_mut()).is_pending());
        // The model's thread has taken the request and is computing it.
        let running = model.try_recv().expect("the request reached the model");
        assert_eq!(inference.pending(), 1);
        let mut second = Box::pin(inference.ask(vec!["fine".into()], false));
        assert!(matches!(
            poll(second.as_mut()),
            Poll::Ready(Err(Refusal::Busy))
        ));
        // The first client leaves (it timed out, or closed its connection) in the middle of
        // the computation: its place is free at once, not when the model drops the request.
        drop(first);
        assert_eq!(
            inference.pending(),
            0,
            "a client that left still holds its place while the model computes its request"
        );
        assert!(running.abandoned());
        let mut third = Box::pin(inference.ask(vec!["fine".into()], false));
        assert!(poll(third.as_mut()).is_pending());
        assert_eq!(inference.pending(), 1);
        // Answered: the place is free as soon as the answer is in.
        model.try_recv().unwrap().answer(Ok(Vec::new()));
        assert!(matches!(poll(third.as_mut()), Poll::Ready(Ok(answers)) if answers.is_empty()));
        assert_eq!(inference.pending(), 0);
        drop(running);
    }
}
