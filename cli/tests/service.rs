//! `zkinfer keys` and `zkinfer serve` as processes: a key made on the command line is accepted
//! over HTTP, a request without one is refused, a rotated or revoked key stops working while
//! the server runs, and SIGTERM stops the server cleanly.

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
    assert_eq!(lines.len(), 4, "{out}");
    let key_id = lines[2]
        .strip_prefix("key id ")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
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

    // The listing shows the key's id, never the key.
    let list = expect_success(&["keys", "list", "--tenant", "acme", "--data-dir", p(&data)]);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&key_id) && l.contains(" live ")),
        "{list}"
    );
    assert!(!list.contains(&key[3..]), "{list}");
    // Rotation with no grace: the new key works at once, the old one is refused.
    let out = expect_success(&[
        "keys",
        "rotate",
        "--tenant",
        "acme",
        "--grace",
        "0s",
        "--data-dir",
        p(&data),
    ]);
    let new_key = out.split_whitespace().last().unwrap().to_string();
    assert!(out.starts_with("1 older key(s) of acme"), "{out}");
    assert_eq!(http(&addr, "/v1/models", Some(&new_key)).0, 200);
    let (status, body) = http(&addr, "/v1/models", Some(&key));
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("expired"), "{body}");
    // Revocation takes effect on the next request.
    let new_id = out
        .lines()
        .find_map(|l| l.strip_prefix("key id "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    expect_success(&["keys", "revoke", &new_id, "--data-dir", p(&data)]);
    let (status, body) = http(&addr, "/v1/models", Some(&new_key));
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("revoked"), "{body}");
    let list = expect_success(&["keys", "list", "--data-dir", p(&data)]);
    let state = |id: &str| {
        let line = list.lines().find(|l| l.starts_with(id)).unwrap();
        line.split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(
        (state(&key_id), state(&new_id)),
        ("expired".into(), "revoked".into()),
        "{list}"
    );

    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "graceful shutdown: {status:?}");
}
