//! Shared helpers for the end-to-end tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub use zkinfer_model::corpus::example_dir as example;

/// Runs the `zkinfer` binary.
pub fn zkinfer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkinfer"))
        .args(args)
        .output()
        .expect("zkinfer runs")
}

/// Runs `zkinfer` and expects exit 1 with a one-line error containing `needle`, never a panic.
pub fn expect_failure(args: &[&str], needle: &str) {
    let out = zkinfer(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should fail; stderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "{args:?} panicked: {stderr}"
    );
    let last = stderr
        .lines()
        .rfind(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        last.contains(needle),
        "{args:?}: expected an error containing {needle:?}, got: {stderr}"
    );
}

/// Runs `zkinfer` and expects success; returns stdout.
pub fn expect_success(args: &[&str]) -> String {
    let out = zkinfer(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Compiles example `name` into `dir` with the CLI, on its own input as calibration.
pub fn compile_example(name: &str, dir: &Path, extra: &[&str]) {
    let e = example(name);
    let (model, input) = (e.join("network.onnx"), e.join("input.json"));
    let mut args = vec![
        "compile",
        p(&model),
        "--calibration",
        p(&input),
        "--out",
        p(dir),
    ];
    args.extend_from_slice(extra);
    expect_success(&args);
}

/// Compiles and sets up `name` into `dir` with the CLI.
pub fn compile_and_setup(name: &str, dir: &Path, extra: &[&str]) {
    compile_example(name, dir, extra);
    expect_success(&["setup", p(dir)]);
}

/// A path as &str (test paths are UTF-8).
pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The lines the commitment's outside implementation (`circuits/tests/outside/commitment.py`)
/// prints for `args`.
pub fn outside(args: &[&str]) -> Vec<String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../circuits/tests/outside/commitment.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}
