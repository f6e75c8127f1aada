//! `zkinfer keys create` and `zkinfer serve` as processes: a key made on the command line is
//! accepted over HTTP, a request without one is refused, and SIGTERM stops the server cleanly.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::{expect_success, p};

/// One HTTP/1.1 request; returns the status code and the body.
fn http(addr: &str, path: &str, key: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split(' ').nth(1).unwrap().parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn keys_create_then_serve_answers_with_that_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = expect_success(&["keys", "create", "--tenant", "acme", "--data-dir", p(&data)]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with("callback secret ") && lines[1].len() == 16 + 64,
        "{out}"
    );
    let key = out.split_whitespace().last().unwrap().to_string();
    assert!(key.starts_with("zk_"), "{out}");

    let mut server = Command::new(env!("CARGO_BIN_EXE_zkinfer"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            p(&data),
            "--workers",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .strip_prefix("listening on http://")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();

    assert_eq!(http(&addr, "/healthz", None).0, 200);
    let (status, body) = http(&addr, "/v1/models", Some(&key));
    assert_eq!((status, body.as_str()), (200, r#"{"models":[]}"#));
    let (status, body) = http(&addr, "/v1/models", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains(r#""code":"unauthorized""#), "{body}");
    let (status, _) = http(&addr, "/v1/models", Some("zk_not_a_key"));
    assert_eq!(status, 401);

    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "graceful shutdown: {status:?}");
}
