//! `cargo xtask bench serve`: the server under load from concurrent clients on loopback.
//!
//! The server runs in this process exactly as `serve` runs it (same router, connection
//! handling and batching); each client is a thread with its own keep-alive connection that
//! sends one test review per request, the next as soon as the answer is in. After a second of
//! warm-up, requests per second and latency percentiles are measured for `--seconds`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::api::AppState;
use super::worker::Inference;
use super::{runtime, serve};
use crate::cli::ServeBenchArgs;
use crate::error::XtaskError;

/// Untimed start of every run.
const WARMUP: Duration = Duration::from_secs(1);
/// Reviews the clients cycle through.
const REVIEWS: usize = 2000;

/// What the clients measured.
struct Load {
    latencies: Vec<f64>,
    errors: usize,
    seconds: f64,
}

/// Runs the command.
pub fn run(args: &ServeBenchArgs) -> Result<(), XtaskError> {
    if args.clients == 0 || args.seconds == 0 {
        return Err(XtaskError::Usage(
            "give --clients and --seconds of at least 1".into(),
        ));
    }
    let precision = crate::precision::from_env()?;
    let reviews = test_reviews(args)?;
    let (inference, info, _model) = Inference::start(&args.model, args.backend, precision)?;
    let runtime = runtime()?;
    let state = Arc::new(AppState {
        inference,
        info,
        timeout: Duration::from_secs(10),
        // Measured without the per-request log lines (one write to standard error each).
        log_requests: false,
    });
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| XtaskError::io("cannot listen on", "127.0.0.1", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| XtaskError::io("cannot read the address of", "127.0.0.1", e))?;
    let (stop, stopped) = watch::channel(false);
    let server = runtime.spawn(serve(listener, state, async move {
        let mut stopped = stopped;
        while !*stopped.borrow_and_update() {
            if stopped.changed().await.is_err() {
                break;
            }
        }
    }));
    eprintln!(
        "{} clients, one review per request{}, {} s after {} s of warm-up, on http://{addr}/",
        args.clients,
        if args.explain { ", explained" } else { "" },
        args.seconds,
        WARMUP.as_secs()
    );
    let load = drive(args, &format!("http://{addr}/predict"), &reviews);
    let _ = stop.send(true);
    let _ = runtime.block_on(server);
    report(args, &load)
}

/// Texts of the model's own test reviews: each review's words, as the model's tokenizer split
/// them, joined by spaces (the same words, so the same ids).
fn test_reviews(args: &ServeBenchArgs) -> Result<Vec<String>, XtaskError> {
    // The texts are rebuilt from the corpus' words, ranked as the model ranks them.
    let saved = imdb_train::SavedModel::load(&args.model, &args.backend.device()?)?;
    let (_, corpus, data) = crate::data::trained_data(&args.model, &saved)?;
    let words = corpus.vocab.words();
    Ok(data
        .test
        .source
        .iter()
        .take(REVIEWS)
        .map(|&i| {
            corpus.test[i]
                .ranks
                .iter()
                // A word the vocabulary never saw stays unknown to the model.
                .map(|&r| words.get(r as usize).map_or("qzxunseen", String::as_str))
                .collect::<Vec<&str>>()
                .join(" ")
        })
        .collect())
}

/// The clients: each sends requests until the end, timing those after the warm-up.
fn drive(args: &ServeBenchArgs, url: &str, reviews: &[String]) -> Load {
    let measuring = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let bodies: Arc<Vec<String>> = Arc::new(
        reviews
            .iter()
            .map(|text| serde_json::json!({ "texts": [text], "explain": args.explain }).to_string())
            .collect(),
    );
    let clients: Vec<_> = (0..args.clients)
        .map(|client| {
            let (measuring, done, bodies) = (measuring.clone(), done.clone(), bodies.clone());
            let url = url.to_string();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .into();
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                let mut next = client;
                while !done.load(Ordering::Relaxed) {
                    let body = &bodies[next % bodies.len()];
                    next += 7;
                    let started = Instant::now();
                    let ok = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(body.as_str())
                        .ok()
                        .and_then(|mut r| {
                            let status = r.status().as_u16();
                            r.body_mut().read_to_string().ok().map(|_| status == 200)
                        })
                        .unwrap_or(false);
                    if measuring.load(Ordering::Relaxed) {
                        latencies.push(started.elapsed().as_secs_f64());
                        errors += usize::from(!ok);
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    std::thread::sleep(WARMUP);
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(args.seconds));
    measuring.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let mut load = Load {
        latencies: Vec::new(),
        errors: 0,
        seconds,
    };
    for client in clients {
        if let Ok((latencies, errors)) = client.join() {
            load.latencies.extend(latencies);
            load.errors += errors;
        }
    }
    load
}

/// The `q`-quantile of sorted `values` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn report(args: &ServeBenchArgs, load: &Load) -> Result<(), XtaskError> {
    let mut sorted = load.latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let requests = sorted.len();
    if requests == 0 {
        return Err(XtaskError::Usage(
            "no request finished while measuring: give more --seconds".into(),
        ));
    }
    let rate = requests as f64 / load.seconds;
    let (p50, p99) = (
        1000.0 * quantile(&sorted, 0.5),
        1000.0 * quantile(&sorted, 0.99),
    );
    println!(
        "{requests} requests in {:.1} s: {rate:.0} requests/s, latency p50 {p50:.2} ms, p99 \
         {p99:.2} ms, {} errors",
        load.seconds, load.errors
    );
    println!(
        "{{\"clients\":{},\"explain\":{},\"seconds\":{:.2},\"requests\":{requests},\
         \"requests_per_second\":{rate:.1},\"p50_ms\":{p50:.3},\"p99_ms\":{p99:.3},\"errors\":{}}}",
        args.clients, args.explain, load.seconds, load.errors
    );
    if load.errors > 0 {
        return Err(XtaskError::Bench(format!(
            "{} requests failed under load: see the server's log above",
            load.errors
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_by_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), 50.0);
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&values, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
