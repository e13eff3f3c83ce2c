//! `cargo xtask bench serve`: the server under load from concurrent clients on loopback.
//!
//! The server runs in this process exactly as `serve` runs it (same router, connection
//! handling and batching); each client is a thread with its own keep-alive connection that
//! sends one test review per request, the next as soon as the answer is in. After a second of
//! warm-up, requests per second and latency percentiles are measured for `--seconds`.
//! `--flood` measures fairness instead (see [`flood`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::api::{Access, AppState, MAX_TEXTS};
use super::worker::{Inference, Limits, ModelInfo};
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
    let limits = Limits::default();
    let (inference, info, _model) =
        Inference::start(&args.model, args.backend, precision, &limits)?;
    let runtime = runtime()?;
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| XtaskError::io("cannot listen on", "127.0.0.1", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| XtaskError::io("cannot read the address of", "127.0.0.1", e))?;
    let state = Arc::new(AppState {
        inference,
        info: info.clone(),
        limits: limits.clone(),
        access: Access {
            bound: Some(addr),
            ..Access::default()
        },
        timeout: Duration::from_secs(10),
        // Measured without the per-request log lines (one write to standard error each).
        log_requests: false,
    });
    let (stop, stopped) = watch::channel(false);
    let server = runtime.spawn(serve(listener, state, async move {
        let mut stopped = stopped;
        while !*stopped.borrow_and_update() {
            if stopped.changed().await.is_err() {
                break;
            }
        }
    }));
    let url = format!("http://{addr}/predict");
    let outcome = if args.flood {
        flood(args, &url, &reviews, (&info, &limits))
    } else {
        eprintln!(
            "{} clients, one review per request{}, {} s after {} s of warm-up, on {url}",
            args.clients,
            if args.explain { ", explained" } else { "" },
            args.seconds,
            WARMUP.as_secs()
        );
        report(args, &drive(args, &url, &reviews))
    };
    let _ = stop.send(true);
    let _ = runtime.block_on(server);
    outcome
}

/// Clients of the flood.
const FLOODERS: usize = 4;
/// How long a flooding client waits for an answer before it gives up.
const FLOOD_PATIENCE: Duration = Duration::from_secs(1);

/// The costliest request the server accepts: as many of the longest texts the model reads
/// as [`Limits::request_rows`] and [`MAX_TEXTS`] allow, explained.
fn costliest_request(reviews: &[String], info: &ModelInfo, limits: &Limits) -> String {
    let words: Vec<&str> = reviews.iter().flat_map(|r| r.split(' ')).collect();
    // Each text as long as the model reads (one fewer word for a stack, whose every id
    // counts): maxlen + 1 rows.
    let length = info.preprocessing.maxlen.saturating_sub(1).max(1);
    let text_rows = info.rows(&words[..length.min(words.len())].join(" "), true);
    let count = (limits.request_rows / text_rows).clamp(1, MAX_TEXTS);
    let texts: Vec<String> = (0..count)
        .map(|i| {
            let start = (i * length) % words.len().saturating_sub(length).max(1);
            words[start..(start + length).min(words.len())].join(" ")
        })
        .collect();
    serde_json::json!({ "texts": texts, "explain": true }).to_string()
}

/// The process's resident memory now, in MB (Linux), or 0.
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `--flood`: [`FLOODERS`] clients send the costliest legal explained request again and again,
/// each giving up after [`FLOOD_PATIENCE`] (as impatient clients do), for `--seconds`, while
/// one client sends single plain reviews: its latency percentiles and errors, what became of
/// the flood's requests, the process's peak memory, and the latency of plain requests sent
/// the moment the flood stops.
fn flood(
    args: &ServeBenchArgs,
    url: &str,
    reviews: &[String],
    (info, limits): (&ModelInfo, &Limits),
) -> Result<(), XtaskError> {
    let body = Arc::new(costliest_request(reviews, info, limits));
    let done = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|_| {
            let (done, body, url) = (done.clone(), body.clone(), url.to_string());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(FLOOD_PATIENCE))
                    .build()
                    .into();
                // Answered, refused as busy, given up.
                let mut counts = [0usize; 3];
                while !done.load(Ordering::Relaxed) {
                    let sent = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(body.as_str());
                    match sent.map(|mut r| (r.status().as_u16(), r.body_mut().read_to_string())) {
                        Ok((200, Ok(_))) => counts[0] += 1,
                        Ok((503, _)) => counts[1] += 1,
                        _ => counts[2] += 1,
                    }
                }
                counts
            })
        })
        .collect();
    let plain = |count: Option<usize>, done: Arc<AtomicBool>| {
        let (url, reviews) = (url.to_string(), reviews.to_vec());
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into();
            let (mut latencies, mut errors, mut next) = (Vec::new(), 0usize, 0usize);
            while !done.load(Ordering::Relaxed) && count.is_none_or(|c| latencies.len() < c) {
                let body = serde_json::json!({ "texts": [reviews[next % reviews.len()]] });
                next += 1;
                let started = Instant::now();
                let ok = agent
                    .post(&url)
                    .header("content-type", "application/json")
                    .send(body.to_string())
                    .ok()
                    .and_then(|mut r| {
                        let status = r.status().as_u16();
                        r.body_mut().read_to_string().ok().map(|_| status == 200)
                    })
                    .unwrap_or(false);
                latencies.push(started.elapsed().as_secs_f64());
                errors += usize::from(!ok);
            }
            (latencies, errors)
        })
    };
    eprintln!(
        "{FLOODERS} clients flood {url} with {} bytes of explained texts (giving up after {} s), \
         one client sends plain reviews, for {} s",
        body.len(),
        FLOOD_PATIENCE.as_secs(),
        args.seconds
    );
    std::thread::sleep(Duration::from_millis(300));
    let plain_client = plain(None, done.clone());
    let started = Instant::now();
    let mut peak_rss = rss_mb();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        std::thread::sleep(Duration::from_millis(50));
        peak_rss = peak_rss.max(rss_mb());
    }
    done.store(true, Ordering::Relaxed);
    let (mut latencies, errors) = plain_client
        .join()
        .map_err(|_| XtaskError::Bench("the plain client failed".into()))?;
    let mut flood_counts = [0usize; 3];
    for f in flooders {
        if let Ok(counts) = f.join() {
            for (total, n) in flood_counts.iter_mut().zip(counts) {
                *total += n;
            }
        }
    }
    // Right after the flood, with its last requests abandoned in the queue.
    let (mut after, after_errors) = plain(Some(5), Arc::new(AtomicBool::new(false)))
        .join()
        .map_err(|_| XtaskError::Bench("the plain client failed".into()))?;
    latencies.sort_by(f64::total_cmp);
    after.sort_by(f64::total_cmp);
    let (p50, p99) = (
        1000.0 * quantile(&latencies, 0.5),
        1000.0 * quantile(&latencies, 0.99),
    );
    let after_ms = 1000.0 * after.last().copied().unwrap_or(f64::NAN);
    println!(
        "plain client: {} requests, p50 {p50:.1} ms, p99 {p99:.1} ms, {errors} errors; flood: \
         {} answered, {} refused busy (503), {} given up; peak memory {peak_rss:.0} MB; after \
         the flood, the slowest of 5 plain requests took {after_ms:.1} ms",
        latencies.len(),
        flood_counts[0],
        flood_counts[1],
        flood_counts[2]
    );
    println!(
        "{}",
        serde_json::json!({
            "mode": "flood",
            "plain_requests": latencies.len(),
            "plain_p50_ms": p50,
            "plain_p99_ms": p99,
            "plain_errors": errors + after_errors,
            "flood_answered": flood_counts[0],
            "flood_busy": flood_counts[1],
            "flood_given_up": flood_counts[2],
            "peak_rss_mb": peak_rss,
            "after_flood_max_ms": after_ms,
            "request_rows": limits.request_rows,
            "slice_rows": limits.slice_rows,
            "queue": limits.queue,
        })
    );
    if errors + after_errors > 0 || latencies.is_empty() {
        return Err(XtaskError::Bench(format!(
            "the plain client got {} errors under the flood",
            errors + after_errors
        )));
    }
    Ok(())
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
        "{}",
        serde_json::json!({
            "clients": args.clients,
            "explain": args.explain,
            "seconds": load.seconds,
            "requests": requests,
            "requests_per_second": rate,
            "p50_ms": p50,
            "p99_ms": p99,
            "errors": load.errors,
        })
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
