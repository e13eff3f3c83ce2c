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
        let mut child = command(data)
            .args(["serve", "--addr", "127.0.0.1:0", "--timeout"])
            .arg(timeout.to_string())
            .arg("--model")
            .arg(model)
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
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
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
        .write_all(b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Le")
        .unwrap();
    let mut half_body = TcpStream::connect(addr).unwrap();
    half_body
        .write_all(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{\"texts\": [",
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
