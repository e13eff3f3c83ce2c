//! `cargo xtask serve` end to end on loopback: every route and every refusal with its status,
//! concurrent requests, clients that send half a request, the page in headless Chromium, and
//! a clean stop on Ctrl-C.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{command, headless_chromium, trained_model};

/// A running server: the child, its address, and its standard error lines as they come.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `serve` on a free port with a `timeout`-second request timeout and waits for
    /// the line that gives its address.
    fn start(model: &std::path::Path, data: &std::path::Path, timeout: u64) -> Self {
        Self::start_with(model, data, timeout, &[])
    }

    /// [`start`](Self::start) with more flags.
    fn start_with(
        model: &std::path::Path,
        data: &std::path::Path,
        timeout: u64,
        flags: &[&str],
    ) -> Self {
        let mut child = command(data)
            .args(["serve", "--addr", "127.0.0.1:0", "--timeout"])
            .arg(timeout.to_string())
            .arg("--model")
            .arg(model)
            .args(flags)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = log
            .recv_timeout(Duration::from_secs(60))
            .expect("serve prints its address");
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        Server { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP/1.1 exchange (the request as given, with `Connection: close`): the status and
/// body.
fn exchange(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // A server that refuses a body may answer before reading all of it: what it answered
    // is read whatever became of the rest.
    let _ = stream.write_all(request.as_bytes());
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    let response = String::from_utf8_lossy(&bytes).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

fn request(method: &str, path: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn the_api_answers_every_request_with_its_status() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = trained_model(tmp.path());
    let server = Server::start(&model, &data, 2);
    let addr = server.addr;

    let (status, body) = exchange(addr, &request("GET", "/health", ""));
    assert_eq!(status, 200);
    let health = json(&body);
    assert_eq!(health["status"], "ready");
    assert_eq!(
        health["classes"],
        serde_json::json!(["negative", "positive"])
    );

    // Predictions, explained or not.
    let (status, body) = exchange(
        addr,
        &request(
            "POST",
            "/predict",
            r#"{"texts": ["A wonderful, moving film.", "Dull. Awful!", ""], "explain": true}"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    let predictions = json(&body)["predictions"].as_array().unwrap().clone();
    assert_eq!(predictions.len(), 3);
    for p in &predictions {
        let label = p["label"].as_str().unwrap();
        let probability = p["probability"].as_f64().unwrap();
        assert_eq!(p["probabilities"][label].as_f64().unwrap(), probability);
        let sum: f64 = ["negative", "positive"]
            .iter()
            .map(|c| p["probabilities"][c].as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-5, "{p}");
    }
    let words: Vec<&str> = predictions[0]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap())
        .collect();
    assert_eq!(words, ["a", "wonderful", "moving", "film"]);
    assert_eq!(predictions[2]["tokens"].as_array().unwrap().len(), 0);
    let (status, body) = exchange(addr, &request("POST", "/predict", r#"{"texts": ["fine"]}"#));
    assert_eq!(status, 200);
    assert!(json(&body)["predictions"][0].get("tokens").is_none());

    // Refusals: each status with a message that says what to fix.
    let too_big = format!(r#"{{"texts": ["{}"]}}"#, "a ".repeat(600_000));
    let too_many = serde_json::json!({ "texts": vec!["a"; 65] }).to_string();
    for (method, path, body, expected, says) in [
        ("POST", "/predict", "{\"texts\": [", 400, "must be JSON"),
        (
            "POST",
            "/predict",
            r#"{"text": ["a"]}"#,
            400,
            "unknown field `text`",
        ),
        ("POST", "/predict", r#"{"texts": "a"}"#, 400, "must be JSON"),
        ("POST", "/predict", r#"{"texts": [1]}"#, 400, "must be JSON"),
        (
            "POST",
            "/predict",
            r#"{"texts": []}"#,
            400,
            "at least one text",
        ),
        ("POST", "/predict", too_many.as_str(), 413, "at most 64"),
        (
            "POST",
            "/predict",
            too_big.as_str(),
            413,
            "over 1048576 bytes",
        ),
        ("GET", "/predict", "", 405, "use POST"),
        ("POST", "/", "", 405, "use GET"),
        ("DELETE", "/health", "", 405, "use GET"),
        ("GET", "/nope", "", 404, "no such route"),
        ("GET", "/../Cargo.toml", "", 404, "no such route"),
        ("GET", "/page.html", "", 404, "no such route"),
    ] {
        let (status, answer) = exchange(addr, &request(method, path, body));
        assert_eq!(status, expected, "{method} {path}: {answer}");
        let error = json(&answer)["error"].as_str().unwrap().to_string();
        assert!(error.contains(says), "{method} {path}: {error}");
    }

    // The page, self-contained.
    let (status, page) = exchange(addr, &request("GET", "/", ""));
    assert_eq!(status, 200);
    assert!(page.contains("<textarea") && page.contains("fetch(\"/predict\""));
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));

    // One log line per request.
    let mut lines = Vec::new();
    while let Ok(line) = server.log.recv_timeout(Duration::from_millis(300)) {
        lines.push(line);
    }
    assert!(
        lines.iter().any(|l| l.starts_with("GET /health 200 ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("POST /predict 413 ")),
        "{lines:?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("GET /nope 404 "))
            .count(),
        1,
        "{lines:?}"
    );
}

#[test]
fn concurrent_and_slow_clients_do_not_hold_up_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = trained_model(tmp.path());
    let server = Server::start(&model, &data, 2);
    let addr = server.addr;

    // Half a request's headers, and a body shorter than it announced, left hanging.
    let mut half_headers = TcpStream::connect(addr).unwrap();
    half_headers
        .write_all(b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Le")
        .unwrap();
    let mut half_body = TcpStream::connect(addr).unwrap();
    half_body
        .write_all(
            b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"texts\": [",
        )
        .unwrap();

    // Meanwhile 8 clients at once, 5 requests each: all answered, quickly.
    let started = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|c| {
            std::thread::spawn(move || {
                (0..5)
                    .map(|i| {
                        let body = format!(r#"{{"texts": ["review {c} {i}: a fine film"]}}"#);
                        exchange(addr, &request("POST", "/predict", &body)).0
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap(), [200; 5]);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "40 requests took {:?} beside two hanging clients",
        started.elapsed()
    );

    // After the 2-second timeout: the half-sent body is answered 408, the half-sent headers'
    // connection is closed.
    half_body
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    let _ = half_body.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    half_headers
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let closed_at = Instant::now();
    let mut rest = Vec::new();
    let read = half_headers.read_to_end(&mut rest);
    assert!(
        read.is_ok() && closed_at.elapsed() < Duration::from_secs(8),
        "the half-sent headers' connection stayed open: {read:?}"
    );
}

#[test]
fn the_page_classifies_the_text_of_its_link_and_ctrl_c_stops_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = trained_model(tmp.path());
    let mut server = Server::start(&model, &data, 5);
    let url = server.url("/?text=A%20wonderful%2C%20moving%20film.");
    if let Some((mut browser, _profile)) = headless_chromium("page check", &url) {
        let out = browser
            .args(["--virtual-time-budget=10000", "--dump-dom"])
            .arg(&url)
            .stderr(Stdio::null())
            .output()
            .expect("chromium starts");
        let dom = String::from_utf8_lossy(&out.stdout);
        // The verdict of the link's text is shown, its words coloured, and the page links
        // back to the same example.
        assert!(
            dom.contains("?text=A+wonderful%2C+moving+film.\">Link to this example"),
            "{dom}"
        );
        let label = dom
            .split("<b id=\"label\">")
            .nth(1)
            .and_then(|rest| rest.split("</b>").next())
            .unwrap_or_else(|| panic!("no verdict in {dom}"));
        assert!(["negative", "positive"].contains(&label), "{label}");
        for word in ["a", "wonderful", "moving", "film"] {
            assert!(
                dom.contains(&format!(">{word}</span>")),
                "{word} is not shown: {dom}"
            );
        }
        assert!(dom.contains("class=\"word\" title=\""), "{dom}");
    }

    // Ctrl-C: the server stops accepting, finishes, and exits cleanly.
    let status = std::process::Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let mut lines = Vec::new();
    while let Ok(line) = server.log.recv_timeout(Duration::from_millis(500)) {
        lines.push(line);
    }
    assert!(lines.iter().any(|l| l == "stopped"), "{lines:?}");
    assert!(TcpStream::connect(server.addr).is_err(), "still listening");
}

/// One raw exchange: the status line and headers, and the body.
fn exchange_with_headers(addr: SocketAddr, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = stream.write_all(request.as_bytes());
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let response = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_string(), body.to_string())
}

#[test]
fn what_a_request_may_cost_and_who_may_send_it_is_checked_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = trained_model(tmp.path());
    let server = Server::start(&model, &data, 5);
    let addr = server.addr;

    // A body announced over the limit is refused from its header, at once, and the client
    // reads the answer even though it has sent only part of the body.
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(
            b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 50000000\r\n\r\n{\"texts\": [\"",
        )
        .unwrap();
    stream.write_all(&vec![b'a'; 200_000]).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(answer.contains("50000000 bytes"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Only JSON, only for this host, no cross-origin reader.
    let form = "POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n\
                Content-Length: 16\r\nConnection: close\r\n\r\n{\"texts\": [\"a\"]}";
    assert_eq!(exchange(addr, form).0, 415);
    let rebound = request("GET", "/health", "").replace("Host: localhost", "Host: evil.example");
    let (status, body) = exchange(addr, &rebound);
    assert_eq!(status, 403, "{body}");
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("--allowed-host")
    );
    let with_origin = request("POST", "/predict", r#"{"texts": ["fine"]}"#).replace(
        "Connection: close",
        "Origin: https://evil.example\r\nConnection: close",
    );
    let (head, _) = exchange_with_headers(addr, &with_origin);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{head}"
    );
    let preflight = "OPTIONS /predict HTTP/1.1\r\nHost: localhost\r\nOrigin: https://evil.example\r\n\
                     Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n";
    assert_eq!(exchange(addr, preflight).0, 403);

    // A long explained text echoes only the words the model read, and counts the rest.
    let long = "fine film ".repeat(40);
    let one = serde_json::json!({ "texts": [long], "explain": true });
    let (status, body) = exchange(addr, &request("POST", "/predict", &one.to_string()));
    assert_eq!(status, 200, "{body}");
    let p = &json(&body)["predictions"][0];
    // maxlen 60: the start id and 59 words are read, of 80.
    assert_eq!(p["tokens"].as_array().unwrap().len(), 59, "{p}");
    assert_eq!(p["words_not_read"], 21, "{p}");
    let health = json(&exchange(addr, &request("GET", "/health", "")).1);
    assert_eq!(health["limits"]["max_request_rows"], 8192, "{health}");
    assert_eq!(health["limits"]["queue"], 64, "{health}");
}

#[test]
fn cors_is_for_the_named_origin_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = trained_model(tmp.path());
    let server = Server::start_with(
        &model,
        &data,
        5,
        &[
            "--cors-origin",
            "https://reviews.example",
            "--allowed-host",
            "api.example",
        ],
    );
    let preflight = "OPTIONS /predict HTTP/1.1\r\nHost: api.example\r\nOrigin: https://reviews.example\r\n\
                     Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n";
    let (head, _) = exchange_with_headers(server.addr, preflight);
    assert!(head.starts_with("HTTP/1.1 204"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("access-control-allow-origin: https://reviews.example"),
        "{head}"
    );
    let other = preflight.replace("reviews.example", "evil.example");
    assert_eq!(exchange(server.addr, &other).0, 403);
}

#[test]
fn a_full_queue_is_503_and_a_panic_is_survived() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, data) = trained_model(tmp.path());
    let server = Server::start_with(&model, &data, 10, &["--queue", "1", "--fault-text", "boom"]);
    let addr = server.addr;
    // Many explained requests at once through a queue of one: some wait their turn, the rest
    // are told to come back.
    let text = "fine film ".repeat(29);
    let body = serde_json::json!({ "texts": vec![text.as_str(); 64], "explain": true }).to_string();
    let clients: Vec<_> = (0..12)
        .map(|_| {
            let request = request("POST", "/predict", &body);
            std::thread::spawn(move || exchange_with_headers(addr, &request))
        })
        .collect();
    let heads: Vec<String> = clients.into_iter().map(|c| c.join().unwrap().0).collect();
    let busy: Vec<&String> = heads
        .iter()
        .filter(|h| h.starts_with("HTTP/1.1 503"))
        .collect();
    assert!(!busy.is_empty(), "{heads:?}");
    assert!(
        busy[0].to_ascii_lowercase().contains("retry-after: 1"),
        "{}",
        busy[0]
    );
    assert!(
        heads
            .iter()
            .all(|h| h.starts_with("HTTP/1.1 503") || h.starts_with("HTTP/1.1 200")),
        "{heads:?}"
    );

    // A request that makes the model's thread panic is answered 500 with why; the server
    // goes on, and says it restarted.
    let (status, body) = exchange(addr, &request("POST", "/predict", r#"{"texts": ["boom"]}"#));
    assert_eq!(status, 500, "{body}");
    assert!(
        json(&body)["error"].as_str().unwrap().contains("restarted"),
        "{body}"
    );
    let (status, body) = exchange(addr, &request("GET", "/health", ""));
    assert_eq!(status, 200);
    let health = json(&body);
    assert_eq!(
        (health["status"].as_str(), health["restarts"].as_u64()),
        (Some("ready"), Some(1))
    );
    // Every client above has its answer, so the queue of one is free: the next request gets
    // in at once (its place is freed before an answer is sent, not when the model's thread
    // drops the request).
    let (status, body) = exchange(addr, &request("POST", "/predict", r#"{"texts": ["fine"]}"#));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn abandoned_explanations_are_dropped_and_plain_requests_do_not_wait_behind_them() {
    let tmp = tempfile::tempdir().unwrap();
    // A model that reads 500 words: an explained text is 501 rows of a 500-step pass.
    let smoke = std::fs::read_to_string(common::repo().join("configs/smoke.toml")).unwrap();
    let config = tmp.path().join("long.toml");
    std::fs::write(
        &config,
        smoke
            .replace("maxlen = 60", "maxlen = 500")
            .replace("epochs = 2", "epochs = 1")
            .replace("units = 8", "units = 32"),
    )
    .unwrap();
    let data = tmp.path().join("data");
    common::run(
        command(&data)
            .arg("experiment")
            .arg(&config)
            .args(["--only", "lstm", "--out"])
            .arg(tmp.path().join("runs")),
    );
    let model = tmp.path().join("runs/smoke/lstm");
    let server = Server::start(&model, &data, 30);
    let addr = server.addr;
    let text = "fine film ".repeat(250);
    // Explained texts cost their rows: 17 of 501 are over the 8192 a request may cost, the
    // same texts plain are fine.
    let costly = serde_json::json!({ "texts": vec![text.as_str(); 17], "explain": true });
    let (status, answer) = exchange(addr, &request("POST", "/predict", &costly.to_string()));
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("8517 rows"), "{answer}");
    let plain = serde_json::json!({ "texts": vec![text.as_str(); 17] });
    assert_eq!(
        exchange(addr, &request("POST", "/predict", &plain.to_string())).0,
        200
    );
    let body = serde_json::json!({ "texts": vec![text.as_str(); 16], "explain": true }).to_string();
    // Clients that send costly explanations and leave at once.
    for _ in 0..6 {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(request("POST", "/predict", &body).as_bytes())
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(stream);
    }
    // A plain request meanwhile waits for one slice of their work at most, not all of it.
    let started = Instant::now();
    let (status, _) = exchange(addr, &request("POST", "/predict", r#"{"texts": ["fine"]}"#));
    let waited = started.elapsed();
    assert_eq!(status, 200);
    // Their work once the plain request is answered: the abandoned ones are dropped.
    std::thread::sleep(Duration::from_millis(500));
    let health = json(&exchange(addr, &request("GET", "/health", "")).1);
    assert!(health["dropped"].as_u64().unwrap() >= 4, "{health}");
    // One explained request alone, timed, to compare with.
    let started = Instant::now();
    assert_eq!(exchange(addr, &request("POST", "/predict", &body)).0, 200);
    let one = started.elapsed();
    assert!(
        waited < one * 2,
        "a plain request waited {waited:?} behind abandoned work; one explained request \
         takes {one:?}"
    );
}
