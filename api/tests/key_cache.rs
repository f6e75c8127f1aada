//! The workers' in-memory proving-key cache: within its byte budget, least recently used out
//! first; the newest is kept even alone over budget.

use std::sync::Arc;

use zkinfer_api::worker::KeyCache;
use zkinfer_prover::pipeline::{self, CompileOptions, Prover};

fn prover(name: &str, tmp: &std::path::Path) -> Arc<Prover> {
    let e = zkinfer_model::corpus::example_dir(name);
    let dir = tmp.join(name);
    pipeline::compile(
        &e.join("network.onnx"),
        &e.join("input.json"),
        &dir,
        &CompileOptions::default(),
    )
    .unwrap();
    pipeline::setup(&dir, None).unwrap();
    Arc::new(Prover::load(&dir).unwrap())
}

#[test]
fn least_recently_used_keys_leave_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        prover("1l_linear", tmp.path()),
        prover("1l_relu", tmp.path()),
        prover("2l_relu_fc", tmp.path()),
    );
    // Room for any two of them, not three.
    let sizes = [a.pk_bytes(), b.pk_bytes(), c.pk_bytes()];
    let largest_two = {
        let mut s = sizes;
        s.sort();
        s[1] + s[2]
    };
    let cache = KeyCache::new(largest_two);
    cache.insert("a", a.clone());
    cache.insert("b", b.clone());
    assert_eq!(cache.models(), ["a", "b"]);
    // Using a makes b the least recently used: c pushes b out.
    assert!(Arc::ptr_eq(&cache.get("a").unwrap(), &a));
    cache.insert("c", c.clone());
    assert_eq!(cache.models(), ["a", "c"]);
    assert!(cache.get("b").is_none());
    // Re-inserting replaces, never duplicates.
    cache.insert("c", c.clone());
    assert_eq!(cache.models(), ["a", "c"]);
    // A budget smaller than any one prover still keeps the newest.
    let tiny = KeyCache::new(1);
    tiny.insert("a", a);
    tiny.insert("b", b.clone());
    assert_eq!(tiny.models(), ["b"]);
    assert!(Arc::ptr_eq(&tiny.get("b").unwrap(), &b));
    // The cached prover proves.
    let input = zkinfer_model::parse_input_json(
        &std::fs::read_to_string(zkinfer_model::corpus::example_dir("1l_relu").join("input.json"))
            .unwrap(),
    )
    .unwrap();
    let proof = tiny.get("b").unwrap().prove(&input).unwrap();
    assert_eq!(proof.model_id, b.model_id());
}
