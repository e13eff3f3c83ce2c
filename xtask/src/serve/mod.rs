//! `cargo xtask serve --model RUN_DIR`: a saved model behind HTTP, with a page to try it.
//!
//! axum's router and extractors answer the routes (see [`api`]); hyper serves each connection
//! on tokio with a header-read timeout, so a client that sends half a request holds only its
//! own connection, for a bounded time; the model runs on its own thread, batches the texts
//! of concurrent requests into one forward pass and slices explanations between them
//! ([`worker`]). A connection closed with part of its request unread (a body refused from
//! its length) is closed lingering ([`linger`]), so that the client reads the answer rather
//! than a reset. Ctrl-C (or SIGTERM) stops accepting, lets the requests in flight finish, and
//! exits.

pub mod api;
pub mod bench;
pub mod linger;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::ServeArgs;
use crate::error::XtaskError;
use api::{Access, AppState};
use worker::{Inference, Limits};

/// Runs the command until Ctrl-C or SIGTERM.
pub fn run(args: &ServeArgs) -> Result<(), XtaskError> {
    if args.timeout == 0 {
        return Err(XtaskError::Usage(
            "--timeout must be at least 1 second".into(),
        ));
    }
    if args.queue == 0 {
        return Err(XtaskError::Usage("--queue must be at least 1".into()));
    }
    let precision = crate::precision::from_env()?;
    let limits = Limits {
        queue: args.queue,
        fault_text: args.fault_text.clone(),
        ..Limits::default()
    };
    let (inference, info, _model_thread) =
        Inference::start(&args.model, args.backend, precision, &limits)?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.addr)
            .await
            .map_err(|e| XtaskError::io("cannot listen on", args.addr.to_string(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| XtaskError::io("cannot read the address of", args.addr.to_string(), e))?;
        let state = Arc::new(AppState {
            inference,
            info,
            limits,
            access: Access {
                bound: Some(addr),
                allowed_hosts: args.allowed_hosts.clone(),
                cors_origin: args.cors_origin.clone(),
            },
            timeout: Duration::from_secs(args.timeout),
            log_requests: true,
        });
        eprintln!(
            "serving {} ({}; classes {}) on http://{addr}/ — Ctrl-C stops",
            args.model.display(),
            state.info.architecture,
            state.info.classes.join(", ")
        );
        let (_stop, stopped) = watch::channel(false);
        serve(listener, state, shutdown_signal(stopped)).await;
        eprintln!("stopped");
        Ok(())
    })
}

/// The tokio runtime: two workers, as many as the machine's cores here (the model has its own
/// thread).
pub fn runtime() -> Result<tokio::runtime::Runtime, XtaskError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| XtaskError::io("cannot start the server's runtime for", "serve", e))
}

/// Resolves at Ctrl-C, SIGTERM, or when `stop` turns true (for in-process servers).
pub async fn shutdown_signal(mut stop: watch::Receiver<bool>) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let stopped = async {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
        _ = stopped => {},
    }
}

/// Accepts connections on `listener` until `shutdown` resolves, then waits for the requests
/// in flight (at most the request timeout) and returns.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let timeout = state.timeout;
    let service = TowerToHyperService::new(api::router(state));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    eprintln!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(timeout)
            .serve_connection(
                TokioIo::new(linger::Lingering::new(stream)),
                service.clone(),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await
                && !e.is_incomplete_message()
            {
                eprintln!("connection from {peer} closed: {e}");
            }
        });
    }
    eprintln!("shutting down: no new connections; finishing the requests in flight");
    drop(listener);
    if tokio::time::timeout(timeout, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "requests still running after {} s were cut",
            timeout.as_secs()
        );
    }
}
