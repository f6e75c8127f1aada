//! The tensor commitment against an implementation outside the circuit code: Python written
//! from the README's description (`tests/outside/commitment.py`), its own Grain constants and
//! textbook permutation.

use std::io::Write;
use std::process::{Command, Stdio};

use zkinfer_circuits::commit::{commit, commitment_hex, parse_salt, TensorLayout};
use zkinfer_circuits::Fr;

fn outside(cases: &serde_json::Value) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/outside/commitment.py");
    let mut child = Command::new("python3")
        .args([script, "raw"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cases.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the Python commitment failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn python_from_the_readme_reproduces_every_commitment() {
    // Lengths around the limb and rate boundaries (preimage lengths odd and even), extreme
    // values, several widths, a salt.
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    let mut seed = 7u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as i64
    };
    for (shape, bits, salt) in [
        (vec![0usize], 16u32, "0"),
        (vec![1], 16, "0"),
        (vec![15], 16, "0"),
        (vec![16], 16, "0"),
        (vec![17], 16, "0"),
        (vec![2, 3, 5], 9, "1"),
        (vec![1, 1, 28, 28], 22, "0"),
        (vec![10], 32, "2a"),
        (vec![3], 2, "0"),
        (
            vec![4, 4],
            18,
            "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000000",
        ),
    ] {
        let n: usize = shape.iter().product();
        let half = 1i64 << (bits - 1);
        let mut values: Vec<i64> = (0..n).map(|_| next() % (2 * half) - half).collect();
        if n >= 2 {
            values[0] = -half;
            values[n - 1] = half - 1;
        }
        let layout = TensorLayout {
            shape: shape.clone(),
            scale: 7,
            slot_bits: bits,
        };
        let c = commit(&layout, &values, parse_salt(salt).unwrap()).unwrap();
        ours.push(commitment_hex(&c));
        cases.push(serde_json::json!({
            "shape": shape, "scale": 7, "bits": bits, "values": values, "salt": salt,
        }));
    }
    assert_eq!(outside(&serde_json::Value::Array(cases)), ours);
    // Not a constant: the zero commitment is no one's.
    assert_ne!(ours[0], commitment_hex(&Fr::zero()));
}
