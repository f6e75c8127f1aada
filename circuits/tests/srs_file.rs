//! Ceremony files: the public Hermez `.ptau` (fetched by `scripts/fetch-ptau.sh`) and halo2's
//! raw format read back point for point, and every kind of damage refused.

use std::path::{Path, PathBuf};

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fq, Fq2, Fr, G1Affine, G2Affine};
use halo2_base::halo2_proofs::halo2curves::group::Curve;
use halo2_base::halo2_proofs::halo2curves::serde::SerdeObject;
use halo2_base::halo2_proofs::poly::commitment::ParamsProver;
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::halo2_proofs::SerdeFormat;
use zkinfer_circuits::artifacts::ArtifactError;
use zkinfer_circuits::srs_file::{self, SrsFormat, HERMEZ, HERMEZ_08_SHA256};

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

fn message(r: Result<impl std::fmt::Debug, ArtifactError>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn the_hermez_ptau_is_read_checked_and_recognised() {
    let path = hermez_ptau();
    let (info, points) = srs_file::read(&path, Some(8)).unwrap();
    assert_eq!(info.sha256, HERMEZ_08_SHA256);
    assert_eq!(info.format, SrsFormat::Ptau);
    assert_eq!(info.max_k, 8);
    assert_eq!(
        info.recognised.as_deref(),
        Some(format!("{HERMEZ}, power 8").as_str())
    );
    assert_eq!(points.g.len(), 256);
    assert_eq!(points.g[0], G1Affine::generator());
    assert!(srs_file::check_powers(&points));
    assert_eq!(srs_file::recognise_s_g2(&points.s_g2), Some(HERMEZ));
    // Asking for only g[0] reads the same points.
    let (_, first) = srs_file::read(&path, None).unwrap();
    assert_eq!((first.g, first.s_g2), (vec![points.g[0]], points.s_g2));
    assert!(message(srs_file::read(&path, Some(9))).contains("up to k=8, this one needs k=9"));
}

#[test]
fn damaged_ptau_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(hermez_ptau()).unwrap();
    // Layout: "ptau", version, sections; section 1 (12-byte head) holds n8 then q.
    let q_at = 12 + 12 + 4;
    let mut other_curve = bytes.clone();
    other_curve[q_at] ^= 1;
    let p = write(tmp.path(), "q.ptau", &other_curve);
    assert!(message(srs_file::read(&p, Some(4))).contains("another curve than BN254"));
    let p = write(tmp.path(), "short.ptau", &bytes[..bytes.len() / 2]);
    assert!(message(srs_file::read(&p, Some(4))).contains("truncated"));
    let mut longer = bytes.clone();
    longer.push(7);
    let p = write(tmp.path(), "long.ptau", &longer);
    assert!(message(srs_file::read(&p, Some(4))).contains("after the last section"));
    // τ^5·g moved off the curve (y + 1 in Montgomery form is still canonical here).
    let header = 12 + 12 + 4 + 32 + 4 + 4; // sections' start, section 1, then section 2's head
    let g5 = header + 12 + 5 * 64;
    let mut off = bytes.clone();
    let y = Fq::from_raw_bytes(&off[g5 + 32..g5 + 64]).unwrap() + Fq::from(1u64);
    off[g5 + 32..g5 + 64].copy_from_slice(&y.to_raw_bytes());
    let p = write(tmp.path(), "off.ptau", &off);
    assert!(message(srs_file::read(&p, Some(4))).contains("G1 point 5 is not a point"));
    // Beyond the powers asked for, a point is not read, so not refused.
    assert!(srs_file::read(&p, Some(2)).is_ok());
}

/// halo2's raw format of a fresh SRS at `k`.
fn raw(k: u32) -> (ParamsKZG<Bn256>, Vec<u8>) {
    let params = ParamsKZG::<Bn256>::setup(k, rand::rngs::OsRng);
    let mut bytes = Vec::new();
    params
        .write_custom(&mut bytes, SerdeFormat::RawBytes)
        .unwrap();
    (params, bytes)
}

#[test]
fn halo2_raw_files_are_read_point_for_point() {
    let tmp = tempfile::tempdir().unwrap();
    let (params, bytes) = raw(4);
    let p = write(tmp.path(), "k4.srs", &bytes);
    let (info, points) = srs_file::read(&p, Some(3)).unwrap();
    assert_eq!(
        (info.format, info.max_k, info.recognised),
        (SrsFormat::Halo2Raw, 4, None)
    );
    assert_eq!(points.g, params.get_g()[..8].to_vec());
    assert_eq!((points.g2, points.s_g2), (params.g2(), params.s_g2()));
    assert!(srs_file::check_powers(&points));
    assert_eq!(srs_file::recognise_s_g2(&points.s_g2), None);
}

#[test]
fn damaged_halo2_raw_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (params, bytes) = raw(4);
    let n = 16;
    let s_g2_at = 4 + 2 * n * 64 + 128;
    // g[0] replaced by 2·g: a valid point, but not the generator a ceremony starts from.
    let mut b = bytes.clone();
    let two_g = (G1Affine::generator() * Fr::from(2u64)).to_affine();
    b[4..68].copy_from_slice(&two_g.to_raw_bytes());
    let p = write(tmp.path(), "g.srs", &b);
    assert!(message(srs_file::read(&p, Some(4))).contains("standard generators"));
    // s·g2 replaced by a point of the twist outside the prime-order subgroup.
    let mut x = Fq2 {
        c0: Fq::from(5u64),
        c1: Fq::from(1u64),
    };
    let outside = loop {
        use halo2_base::halo2_proofs::halo2curves::ff::Field;
        use halo2_base::halo2_proofs::halo2curves::CurveAffine;
        let rhs = x.square() * x + G2Affine::b();
        if let Some(y) = Option::<Fq2>::from(rhs.sqrt()) {
            break G2Affine { x, y };
        }
        x.c0 += Fq::from(1u64);
    };
    let mut b = bytes.clone();
    b[s_g2_at..s_g2_at + 128].copy_from_slice(&outside.to_raw_bytes());
    let p = write(tmp.path(), "sub.srs", &b);
    assert!(message(srs_file::read(&p, Some(4))).contains("s·g2 is not a point of the prime-order"));
    // The powers out of order: every point valid, the pairing check fails.
    let mut b = bytes.clone();
    b[4 + 64..4 + 128].copy_from_slice(&params.get_g()[2].to_raw_bytes());
    let p = write(tmp.path(), "order.srs", &b);
    let (_, points) = srs_file::read(&p, Some(4)).unwrap();
    assert!(!srs_file::check_powers(&points));
    // Neither format.
    let p = write(tmp.path(), "junk.srs", b"\xff\xff\xff\xffjunk");
    assert!(message(srs_file::read(&p, Some(4))).contains("neither a .ptau file"));
}

/// An SRS whose secret is known (`s·g2` the identity or `±g2`: `s ∈ {0, 1, −1}`) lets anyone
/// open any commitment: refused in a ceremony file and in a verifier folder's
/// `kzg-verifier.bin`, where it was accepted before. A real ceremony's point is kept (control).
#[test]
fn an_srs_whose_secret_is_known_is_refused() {
    use halo2_base::halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
    use zkinfer_circuits::artifacts::KzgVerifierKey;
    let tmp = tempfile::tempdir().unwrap();
    let (params, bytes) = raw(4);
    let s_g2_at = 4 + 2 * 16 * 64 + 128;
    let g2 = G2Affine::generator();
    let kzg = KzgVerifierKey::of(&params);
    let path = tmp.path().join("kzg-verifier.bin");
    assert_eq!(
        KzgVerifierKey::from_bytes(&kzg.to_bytes(), &path).unwrap(),
        kzg
    );
    for (name, trivial) in [("identity", G2Affine::identity()), ("g2", g2), ("-g2", -g2)] {
        let mut b = bytes.clone();
        b[s_g2_at..s_g2_at + 128].copy_from_slice(&trivial.to_raw_bytes());
        let p = write(tmp.path(), &format!("{name}.srs"), &b);
        assert!(
            message(srs_file::read(&p, Some(4))).contains("the secret is known"),
            "{name}"
        );
        let folder = KzgVerifierKey {
            s_g2: trivial,
            ..kzg
        };
        assert!(
            message(KzgVerifierKey::from_bytes(&folder.to_bytes(), &path))
                .contains("its secret is known"),
            "{name}"
        );
    }
}

/// A halo2 raw file of exactly the k asked for hands on its Lagrange basis (the prover then
/// skips a G1 FFT of minutes), checked in two MSMs against the powers: any other basis, even
/// of valid points, is refused. Another k reads none.
#[test]
fn a_raw_files_lagrange_basis_is_read_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, bytes) = raw(4);
    let n = 16;
    let p = write(tmp.path(), "k4.srs", &bytes);
    let (_, points) = srs_file::read(&p, Some(4)).unwrap();
    let basis = points
        .g_lagrange
        .clone()
        .expect("a k = 4 file read at k = 4");
    assert_eq!(basis.len(), n);
    assert!(srs_file::check_lagrange(&points.g, &basis));
    assert_eq!(srs_file::read(&p, Some(3)).unwrap().1.g_lagrange, None);
    // Two basis points swapped; one doubled; the powers in its place; one point short.
    let mut swapped = basis.clone();
    swapped.swap(1, 2);
    assert!(!srs_file::check_lagrange(&points.g, &swapped));
    let mut doubled = basis.clone();
    doubled[7] = (doubled[7] * Fr::from(2u64)).to_affine();
    assert!(!srs_file::check_lagrange(&points.g, &doubled));
    assert!(!srs_file::check_lagrange(&points.g, &points.g));
    assert!(!srs_file::check_lagrange(&points.g, &basis[1..]));
    // A basis point off the curve is refused while reading, by name.
    let at = 4 + n * 64 + 5 * 64;
    let mut off = bytes.clone();
    let y = Fq::from_raw_bytes(&off[at + 32..at + 64]).unwrap() + Fq::from(1u64);
    off[at + 32..at + 64].copy_from_slice(&y.to_raw_bytes());
    let p = write(tmp.path(), "off.srs", &off);
    assert!(message(srs_file::read(&p, Some(4))).contains("Lagrange point 5 is not a point"));
    assert!(srs_file::read(&p, Some(3)).is_ok());
    // The identity (all-zero raw bytes, on the curve to halo2curves) is refused where it is
    // read, among the powers and in the basis: the MSMs would mistake it for a point.
    for (at, needle) in [
        (4 + 3 * 64, "G1 point 3 is the identity"),
        (4 + n * 64 + 2 * 64, "Lagrange point 2 is the identity"),
    ] {
        let mut zero = bytes.clone();
        zero[at..at + 64].fill(0);
        let p = write(tmp.path(), "zero.srs", &zero);
        assert!(
            message(srs_file::read(&p, Some(4))).contains(needle),
            "{needle}"
        );
    }
}

/// In a folder of ceremony files, setup takes the raw file of exactly the circuit's k (its
/// Lagrange basis is read, not computed), else the one serving the least k at least it;
/// files of other kinds are passed over. A file is taken as given.
#[test]
fn a_folder_of_ceremony_files_lends_the_one_for_k() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ceremony");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let k4 = write(&dir, "raw-4", &raw(4).1);
    let k6 = write(&dir, "raw-6", &raw(6).1);
    let ptau = dir.join("hermez-8.ptau");
    std::fs::copy(hermez_ptau(), &ptau).unwrap();
    write(&dir, "README", b"the perpetual powers of tau");
    assert_eq!(srs_file::header(&k4).unwrap(), (SrsFormat::Halo2Raw, 4));
    assert_eq!(srs_file::header(&ptau).unwrap(), (SrsFormat::Ptau, 8));
    assert_eq!(srs_file::choose(&dir, 4).unwrap(), k4);
    assert_eq!(srs_file::choose(&dir, 3).unwrap(), k4);
    assert_eq!(srs_file::choose(&dir, 5).unwrap(), k6);
    assert_eq!(srs_file::choose(&dir, 7).unwrap(), ptau);
    assert!(
        message(srs_file::choose(&dir, 9)).contains("no ceremony file in this folder serves k=9")
    );
    assert_eq!(srs_file::choose(&k6, 2).unwrap(), k6);
}
