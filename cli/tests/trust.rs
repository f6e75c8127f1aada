//! What a verifier trusts. Each test is one way a verifier could be made to accept what it
//! should not: an edited folder (settings, SRS points, verifying key), a setup on a secret
//! someone knows, a proof of another input. The model id pins every file a verifier reads,
//! `--srs` checks the SRS points against a ceremony file, `--input` the proven input.

mod common;

use std::path::{Path, PathBuf};

use common::{compile_and_setup, example, expect_failure, expect_success, p};
use serde_json::Value;
use zkinfer_circuits::artifacts::KzgVerifierKey;
use zkinfer_circuits::halo2_base::halo2_proofs::halo2curves::bn256::G2Affine;
use zkinfer_circuits::halo2_base::halo2_proofs::halo2curves::group::Curve;
use zkinfer_circuits::halo2_base::halo2_proofs::halo2curves::serde::SerdeObject;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// The public ceremony file `scripts/fetch-ptau.sh` fetches (the test script runs it).
fn hermez_ptau() -> PathBuf {
    let path = std::env::var_os("ZKINFER_PTAU")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache/zkinfer-ptau/powersOfTau28_hez_final_08.ptau")
        });
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-ptau.sh",
        path.display()
    );
    path
}

/// 1l_mlp (public input) compiled, set up and proven in `tmp/name`; returns the folder, the
/// proof and the model id setup printed.
fn proven(tmp: &Path, name: &str, setup_args: &[&str]) -> (PathBuf, PathBuf, String) {
    let dir = tmp.join(name);
    let e = example("1l_mlp");
    expect_success(&[
        "compile",
        p(&e.join("network.onnx")),
        "--calibration",
        p(&e.join("input.json")),
        "--out",
        p(&dir),
    ]);
    let mut args = vec!["setup", p(&dir)];
    args.extend_from_slice(setup_args);
    let out = expect_success(&args);
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("model id "))
        .unwrap_or_else(|| panic!("setup prints the model id: {out}"))
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{out}");
    assert_eq!(read_json(&dir.join("keys.json"))["model_id"], id.as_str());
    let proof = tmp.join(format!("{name}.proof.json"));
    expect_success(&[
        "prove",
        p(&dir),
        "--input",
        p(&e.join("input.json")),
        "--out",
        p(&proof),
    ]);
    (dir, proof, id)
}

/// A copy of the files a verifier reads.
fn copy_verifier_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["settings.json", "vk.bin", "kzg-verifier.bin", "keys.json"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

/// The model id `verify` recomputes for `dir`, read from its refusal of a proof of `id`.
fn id_of_folder(dir: &Path, proof: &Path) -> String {
    let out = common::zkinfer(&["verify", p(dir), p(proof)]);
    let err = String::from_utf8_lossy(&out.stderr);
    err.split("the folder is model id ")
        .nth(1)
        .unwrap_or_else(|| panic!("no folder id in: {err}"))
        .trim()
        .chars()
        .take(64)
        .collect()
}

#[test]
fn a_pinned_model_id_refuses_edited_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, proof_path, id) = proven(tmp.path(), "mlp", &[]);
    let verified = expect_success(&["verify", p(&dir), p(&proof_path), "--model-id", &id]);
    assert!(
        verified.contains(&format!("model id {id} (pinned)")),
        "{verified}"
    );
    let unpinned = expect_success(&["verify", p(&dir), p(&proof_path)]);
    assert!(
        unpinned.contains(&format!("model id {id} (not pinned")),
        "{unpinned}"
    );
    let inspect = expect_success(&["inspect", p(&dir)]);
    assert!(
        inspect.contains(&format!("model id         {id}")),
        "{inspect}"
    );

    // Each edit changes what a valid proof is said to prove: the scale (outputs read 256×
    // larger, and the proof file's outputs edited to match), the shapes, the visibility.
    type Edit = fn(&mut Value);
    let edits: [(&str, Edit); 4] = [
        ("scale", |s| s["scale"] = 8.into()),
        ("output_shapes", |s| {
            s["output_shapes"] = serde_json::json!([[2, 2]])
        }),
        ("input_shapes", |s| {
            s["input_shapes"] = serde_json::json!([[3, 1]])
        }),
        ("visibility", |s| s["plan"]["visibility"] = "private".into()),
    ];
    let proof = read_json(&proof_path);
    for (what, edit) in edits {
        let edited = tmp.path().join(format!("edited-{what}"));
        copy_verifier_files(&dir, &edited);
        let mut settings = read_json(&edited.join("settings.json"));
        edit(&mut settings);
        write(&edited.join("settings.json"), &settings);
        // The proof names the original id: refused even without a pin.
        expect_failure(
            &["verify", p(&edited), p(&proof_path)],
            "the proof is for model id",
        );
        // The proof file's id (and outputs) edited too: only the pin can object, and does.
        let mut forged = proof.clone();
        forged["model_id"] = id_of_folder(&edited, &proof_path).into();
        if what == "scale" {
            for v in forged["outputs"][0].as_array_mut().unwrap() {
                *v = (v.as_f64().unwrap() * 256.0).into();
            }
        }
        let forged_path = tmp.path().join(format!("forged-{what}.json"));
        write(&forged_path, &forged);
        expect_failure(
            &["verify", p(&edited), p(&forged_path), "--model-id", &id],
            &format!("not the pinned model id {id}"),
        );
    }
    expect_failure(
        &["verify", p(&dir), p(&proof_path), "--model-id", "abc"],
        "64 hex digits",
    );
}

#[test]
fn srs_points_are_pinned_and_checked_against_a_ceremony_file() {
    let tmp = tempfile::tempdir().unwrap();
    let ptau = hermez_ptau();
    // Set up on the public Hermez ceremony file (1l_mlp is k = 7; the file serves k ≤ 8).
    let (dir, proof_path, id) = proven(tmp.path(), "hermez", &["--srs", p(&ptau)]);
    let keys = read_json(&dir.join("keys.json"));
    assert_eq!(keys["srs"]["file"]["format"], "ptau");
    assert!(
        keys["srs"]["file"]["recognised"]
            .as_str()
            .unwrap()
            .starts_with("Hermez powers of tau"),
        "{keys}"
    );
    let checked = expect_success(&["verify", p(&dir), p(&proof_path), "--srs", p(&ptau)]);
    assert!(
        checked.contains(&format!(
            "SRS      matches {} (sha256 f741f2ddee2875915c24db8aae90d021f51181533f1ee3b58baf64b042e91654, recognised as Hermez powers of tau",
            p(&ptau)
        )),
        "{checked}"
    );
    // Without the file, the Hermez s·g2 is still recognised: zkinfer pins its value.
    let known = expect_success(&["verify", p(&dir), p(&proof_path)]);
    assert!(known.contains("(recognised by its s·g2)"), "{known}");

    // A kzg-verifier.bin with another s·g2 (a valid point of G2: s·g2 + g2, as if the
    // secret were s + 1, which whoever wrote it would know).
    let forged = tmp.path().join("forged");
    copy_verifier_files(&dir, &forged);
    let kzg_path = forged.join("kzg-verifier.bin");
    let mut kzg = KzgVerifierKey::read(&kzg_path).unwrap();
    kzg.s_g2 = (kzg.s_g2 + G2Affine::generator()).to_affine();
    kzg.write(&kzg_path).unwrap();
    expect_failure(
        &["verify", p(&forged), p(&proof_path), "--model-id", &id],
        "not the pinned model id",
    );
    // With the proof file's id edited to the forged folder's, the ceremony file refuses
    // the points before any proof is checked.
    let mut proof = read_json(&proof_path);
    proof["model_id"] = id_of_folder(&forged, &proof_path).into();
    let forged_proof = tmp.path().join("forged-proof.json");
    write(&forged_proof, &proof);
    expect_failure(
        &["verify", p(&forged), p(&forged_proof), "--srs", p(&ptau)],
        "the folder's SRS points are not those of",
    );

    // A development setup: said so, and refused against the ceremony file.
    let (dev, dev_proof, _) = proven(tmp.path(), "dev", &[]);
    let said = expect_success(&["verify", p(&dev), p(&dev_proof)]);
    assert!(
        said.contains("development SRS made locally: whoever ran setup can forge proofs"),
        "{said}"
    );
    let inspect = expect_success(&["inspect", p(&dev)]);
    assert!(
        inspect.contains("whoever ran setup can forge proofs"),
        "{inspect}"
    );
    expect_failure(
        &["verify", p(&dev), p(&dev_proof), "--srs", p(&ptau)],
        "the folder's SRS points are not those of",
    );

    // A file in halo2's raw format (gen-srs writes one): read, checked, not recognised.
    let raw = tmp.path().join("local-k8.srs");
    expect_success(&["gen-srs", "--logrows", "8", "--out", p(&raw)]);
    let (local, local_proof, _) = proven(tmp.path(), "local", &["--srs", p(&raw)]);
    let out = expect_success(&["verify", p(&local), p(&local_proof), "--srs", p(&raw)]);
    assert!(out.contains("not a ceremony file zkinfer knows"), "{out}");
    let inspect = expect_success(&["inspect", p(&local)]);
    assert!(inspect.contains("unchecked"), "{inspect}");
}

#[test]
fn points_off_the_curve_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, proof_path, _) = proven(tmp.path(), "mlp", &[]);
    let bad = tmp.path().join("bad");

    // kzg-verifier.bin: y of g moved off the curve (both coordinates still canonical).
    copy_verifier_files(&dir, &bad);
    let mut bytes = std::fs::read(bad.join("kzg-verifier.bin")).unwrap();
    let g = KzgVerifierKey::read(&dir.join("kzg-verifier.bin"))
        .unwrap()
        .g;
    let mut moved = g;
    moved.y += zkinfer_circuits::halo2_base::halo2_proofs::halo2curves::bn256::Fq::from(1u64);
    bytes[4..68].copy_from_slice(&moved.to_raw_bytes());
    std::fs::write(bad.join("kzg-verifier.bin"), &bytes).unwrap();
    expect_failure(
        &["verify", p(&bad), p(&proof_path)],
        "g is not a point of G1",
    );

    // vk.bin: one commitment moved off the curve.
    copy_verifier_files(&dir, &bad);
    let vk = std::fs::read(bad.join("vk.bin")).unwrap();
    let settings: zkinfer_circuits::artifacts::Settings =
        serde_json::from_value(read_json(&dir.join("settings.json"))).unwrap();
    let key = zkinfer_circuits::artifacts::vk_from_bytes(&vk, &settings.plan, &dir).unwrap();
    let c = key.fixed_commitments()[0];
    let at = vk
        .windows(64)
        .position(|w| w == c.to_raw_bytes().as_slice())
        .expect("the commitment's raw bytes are in vk.bin");
    let mut off = c;
    off.y += zkinfer_circuits::halo2_base::halo2_proofs::halo2curves::bn256::Fq::from(1u64);
    let mut vk = vk.clone();
    vk[at..at + 64].copy_from_slice(&off.to_raw_bytes());
    std::fs::write(bad.join("vk.bin"), &vk).unwrap();
    expect_failure(
        &["verify", p(&bad), p(&proof_path)],
        "is not a point of the curve",
    );

    // vk.bin with one more, or one fewer, fixed commitment (the count the file states
    // changed with it): halo2's reader takes the count from the file, so a key of another
    // layout would be read with its selectors shifted, and a short one crash the verifier.
    let vk = std::fs::read(dir.join("vk.bin")).unwrap();
    let count = u32::from_le_bytes(vk[at - 4..at].try_into().unwrap());
    for (what, fixed) in [("more", count + 1), ("fewer", count - 1)] {
        let mut edited = vk[..at - 4].to_vec();
        edited.extend(fixed.to_le_bytes());
        if fixed > count {
            edited.extend_from_slice(&vk[at..at + 64]);
            edited.extend_from_slice(&vk[at..]);
        } else {
            edited.extend_from_slice(&vk[at + 64..]);
        }
        copy_verifier_files(&dir, &bad);
        std::fs::write(bad.join("vk.bin"), &edited).unwrap();
        let out = common::zkinfer(&["verify", p(&bad), p(&proof_path)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        // Either parses and re-encodes canonically: only the count check refuses it.
        assert!(err.contains("fixed commitments"), "{what}: {err}");
    }

    // Another folder's verifying key.
    copy_verifier_files(&dir, &bad);
    let (other, _, _) = proven(tmp.path(), "other", &[]);
    std::fs::copy(other.join("vk.bin"), bad.join("vk.bin")).unwrap();
    expect_failure(
        &["verify", p(&bad), p(&proof_path)],
        "the proof is for model id",
    );
}

#[test]
fn verify_holds_a_proof_to_its_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, proof_path, _) = proven(tmp.path(), "mlp", &[]);
    let input = example("1l_mlp").join("input.json");
    let same = expect_success(&["verify", p(&dir), p(&proof_path), "--input", p(&input)]);
    assert!(
        same.contains(&format!("(those of {})", p(&input))),
        "{same}"
    );
    let proof = read_json(&proof_path);
    let data = read_json(&input)["input_data"].clone();
    // proof.json carries the proven inputs: the input's values at the 2^-16 fixed point.
    let fixed: Vec<f64> = data[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x.as_f64().unwrap() * 65536.0).round() / 65536.0)
        .collect();
    assert_eq!(proof["inputs"], serde_json::json!([fixed]));

    // A proof of this input, checked against another: refused, naming the element.
    let mut other = data.clone();
    let x = other[0][1].as_f64().unwrap();
    other[0][1] = (x + 0.5).into();
    let other_path = tmp.path().join("other.json");
    write(&other_path, &serde_json::json!({ "input_data": other }));
    expect_failure(
        &["verify", p(&dir), p(&proof_path), "--input", p(&other_path)],
        "the proof was made on another input: input 0 element 1",
    );
    // The inputs field edited alone is caught against the instances.
    let mut bad = proof.clone();
    bad["inputs"] = serde_json::json!(other);
    let bad_path = tmp.path().join("bad.json");
    write(&bad_path, &bad);
    expect_failure(
        &["verify", p(&dir), p(&bad_path)],
        "the inputs in the proof file do not match",
    );
    // One instance fewer than the circuit has.
    let mut bad = proof.clone();
    bad["instances"].as_array_mut().unwrap().pop();
    write(&bad_path, &bad);
    expect_failure(
        &["verify", p(&dir), p(&bad_path)],
        "6 instances, the circuit has 7",
    );
}

#[test]
fn setup_refuses_a_tampered_ceremony_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mlp");
    compile_and_setup("1l_mlp", &dir, &[]);
    let raw = tmp.path().join("k8.srs");
    expect_success(&["gen-srs", "--logrows", "8", "--out", p(&raw)]);
    let bytes = std::fs::read(&raw).unwrap();
    // g[3] replaced by g[2]: every point valid, the powers no longer consecutive.
    let mut spliced = bytes.clone();
    let (g2_at, g3_at) = (4 + 2 * 64, 4 + 3 * 64);
    let g2 = spliced[g2_at..g2_at + 64].to_vec();
    spliced[g3_at..g3_at + 64].copy_from_slice(&g2);
    let bad = tmp.path().join("bad.srs");
    std::fs::write(&bad, &spliced).unwrap();
    expect_failure(
        &["setup", p(&dir), "--srs", p(&bad)],
        "not consecutive powers",
    );
    // Truncated, and with a trailing byte.
    std::fs::write(&bad, &bytes[..bytes.len() - 10]).unwrap();
    expect_failure(&["setup", p(&dir), "--srs", p(&bad)], "truncated");
    let mut longer = bytes.clone();
    longer.push(0);
    std::fs::write(&bad, &longer).unwrap();
    expect_failure(&["setup", p(&dir), "--srs", p(&bad)], "trailing bytes");
}

/// A halo2 raw file of the circuit's own k lends its Lagrange basis (checked against its
/// powers in two MSMs) instead of the G1 FFT that recomputes it; `--srs` may name a folder
/// of ceremony files, and setup takes that one from it. The proof verifies against the file
/// and the folder. The same file with two basis points swapped (every point valid) is refused.
#[test]
fn a_ceremony_file_of_the_circuits_k_lends_its_checked_lagrange_basis() {
    let tmp = tempfile::tempdir().unwrap();
    let probe = tmp.path().join("probe");
    compile_and_setup("1l_mlp", &probe, &[]);
    let k = read_json(&probe.join("settings.json"))["plan"]["k"]
        .as_u64()
        .unwrap();
    // A folder of ceremony files, as the perpetual powers of tau come: one per k.
    let ceremony = tmp.path().join("ceremony");
    std::fs::create_dir_all(&ceremony).unwrap();
    let exact = ceremony.join(format!("k{k}.srs"));
    for (logrows, out) in [(k, exact.clone()), (k + 1, ceremony.join("larger.srs"))] {
        expect_success(&[
            "gen-srs",
            "--logrows",
            &logrows.to_string(),
            "--out",
            p(&out),
        ]);
    }
    let (dir, proof, _) = proven(tmp.path(), "exact", &["--srs", p(&ceremony)]);
    let keys = read_json(&dir.join("keys.json"));
    assert_eq!(keys["srs"]["file"]["path"], p(&exact), "{keys}");
    expect_success(&["verify", p(&dir), p(&proof), "--srs", p(&exact)]);
    expect_success(&["verify", p(&dir), p(&proof), "--srs", p(&ceremony)]);
    let mut bytes = std::fs::read(&exact).unwrap();
    let basis = 4 + (64usize << k);
    let (first, rest) = bytes[basis + 64..].split_at_mut(64);
    first.swap_with_slice(&mut rest[..64]);
    let bad = tmp.path().join("swapped.srs");
    std::fs::write(&bad, &bytes).unwrap();
    expect_failure(
        &["setup", p(&dir), "--srs", p(&bad)],
        "its Lagrange basis is not that of its G1 powers",
    );
}

/// Layout 1 did not bind the weights of Freivalds products. A layout-1 folder that carries
/// the Freivalds flag is refused as forgeable from `settings.json` alone, before its
/// verifying key is read (here a damaged one); `inspect` and `prove` say the same. A layout-1
/// folder without Freivalds checks keeps its v1 model id (the preimage opens with
/// "zkinfer model id v1" and has no layout field); layout 2's opens with v2 and the layout.
#[test]
fn layout_1_folders_with_freivalds_checks_are_refused_as_forgeable() {
    use zkinfer_circuits::artifacts::Settings;
    use zkinfer_circuits::identity::{preimage, VerifierFolder, DOMAIN, DOMAIN_V1};
    let tmp = tempfile::tempdir().unwrap();
    let (dir, proof, id) = proven(tmp.path(), "m", &[]);
    let folder = VerifierFolder::open(&dir).unwrap();
    let vk = std::fs::read(dir.join("vk.bin")).unwrap();
    let v2 = preimage(&folder.settings, &vk, &folder.kzg).unwrap();
    assert!(v2.starts_with(DOMAIN));
    assert_eq!(
        &v2[DOMAIN.len()..DOMAIN.len() + 8],
        &[0, 0, 0, 3, 0, 0, 0, 2]
    );

    // Layout 1 without Freivalds checks: still a valid folder, with its v1 id.
    let old = tmp.path().join("old");
    copy_verifier_files(&dir, &old);
    let mut settings = read_json(&old.join("settings.json"));
    settings.as_object_mut().unwrap().remove("layout_version");
    write(&old.join("settings.json"), &settings);
    let s: Settings = serde_json::from_value(settings.clone()).unwrap();
    let v1 = preimage(&s, &vk, &folder.kzg).unwrap();
    assert!(v1.starts_with(DOMAIN_V1));
    assert_eq!(&v1[DOMAIN_V1.len()..DOMAIN_V1.len() + 4], &[0, 0, 0, 3]);
    assert_eq!(&v1[DOMAIN_V1.len() + 4..], &v2[DOMAIN.len() + 8..]);
    let v1_id = id_of_folder(&old, &proof);
    assert_ne!(v1_id, id);
    assert_eq!(
        VerifierFolder::open(&old).unwrap().model_id,
        v1_id,
        "the v1 id is the sha256 of the v1 preimage"
    );

    // Layout 1 with Freivalds checks: refused before vk.bin is parsed, saying why.
    settings["plan"]["params"]["freivalds"] = true.into();
    write(&old.join("settings.json"), &settings);
    std::fs::write(old.join("vk.bin"), b"not a verifying key").unwrap();
    expect_failure(
        &["verify", p(&old), p(&proof)],
        "no proof of this model id can be trusted",
    );
    // `inspect` on a whole folder of that layout says so; `prove` refuses it.
    let full = tmp.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, full.join(f.file_name().unwrap())).unwrap();
    }
    write(&full.join("settings.json"), &settings);
    let out = expect_success(&["inspect", p(&full)]);
    assert!(out.contains("layout           1 (FORGEABLE"), "{out}");
    expect_failure(
        &[
            "prove",
            p(&full),
            "--input",
            p(&example("1l_mlp").join("input.json")),
            "--out",
            p(&tmp.path().join("p.json")),
        ],
        "its old model id must not be trusted",
    );
}
