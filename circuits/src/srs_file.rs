//! Ceremony files: BN254 KZG structured reference strings in halo2's raw `ParamsKZG` format
//! (the perpetual powers of tau files, `perpetual-powers-of-tau-raw-<k>`) and in snarkjs's
//! `.ptau` format (the Hermez ceremony and its descendants), read with every point checked.
//!
//! halo2's own reader does not check that points are on the curve and needs the whole file in
//! memory (8.6 GB at k = 26); this one streams the file once, hashing it (a verifier recognises
//! public ceremony files by their sha256), keeps only the powers it is asked for, and refuses
//! anything but a well-formed file that starts from the standard generators.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use halo2_base::halo2_proofs::arithmetic::best_multiexp;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine, G2Affine};
use halo2_base::halo2_proofs::halo2curves::ff::{BatchInvert, Field, PrimeField};
use halo2_base::halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_base::halo2_proofs::halo2curves::group::Curve;
use halo2_base::halo2_proofs::halo2curves::pairing::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::artifacts::ArtifactError;
use crate::curve::{g1_from_raw, g2_evm, g2_from_raw, standard_generators, G1_RAW, G2_RAW};

/// The largest k zkinfer reads from a ceremony file.
pub const MAX_K: u32 = 28;

/// The two formats a ceremony file may come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SrsFormat {
    /// halo2's raw `ParamsKZG` serialization: `k`, `g[2^k]`, `g_lagrange[2^k]`, `g2`, `s·g2`.
    Halo2Raw,
    /// snarkjs's `.ptau`: sections of a header, τ powers in G1 and G2, and more.
    Ptau,
}

/// What a ceremony file is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrsFileInfo {
    /// sha256 of the whole file, hex.
    pub sha256: String,
    /// Its format.
    pub format: SrsFormat,
    /// The largest circuit k it serves.
    pub max_k: u32,
    /// The public ceremony file it is, recognised by its sha256.
    pub recognised: Option<String>,
}

/// The points read from a ceremony file.
#[derive(Clone, Debug)]
pub struct SrsPoints {
    /// `g, s·g, s²·g, …`: as many as asked for.
    pub g: Vec<G1Affine>,
    /// The G2 generator.
    pub g2: G2Affine,
    /// `s·g2`: with `g2`, all a KZG verifier needs besides `g`.
    pub s_g2: G2Affine,
    /// The file's Lagrange basis of the `2^k` domain, where it holds one of that size (a
    /// halo2 raw file of exactly the k asked for). Each point is on the curve; that they are
    /// the basis of `g` is for [`check_lagrange`] to say.
    pub g_lagrange: Option<Vec<G1Affine>>,
}

/// sha256 of the perpetual powers of tau raw files, `perpetual-powers-of-tau-raw-<k>` for
/// k = 1…26, as EZKL pins them (`src/srs_sha.rs`; `../shared/PPOT-SRS.md`).
const PPOT_RAW_SHA256: [&str; 26] = [
    "cafb2aa72c200ddc4e28aacabb8066e829207e2484b8d17059a566232f8a297b",
    "8194ec51da5d332d2e17283ade34920644774452c2fadf33742e8c739e275d8e",
    "0729e815bce2ac4dfad7819982c6479c3b22c32b71f64dca05e8fdd90e8535ef",
    "2c0785da20217fcafd3b12cc363a95eb2529037cc8a9bddf8fb15025cbc8cdc9",
    "5b950e3b76e7a9923d69f6d6585ce6b5f9458e5ec57a71c9de5005d32d544692",
    "85030b2924111fc60acaf4fb8a7bad89531fbe0271aeab0c21e545f71eee273d",
    "e65f95150519fe01c2bedf8f832f5249822ef84c9c017307419e10374ff9eeb1",
    "446092fd1d6030e5bb2f2a8368267d5ed0fbdb6a766f6c5e4a4841827ad3106f",
    "493d088951882ad81af11e08c791a38a37c0ffff14578cf2c7fb9b7bca654d8b",
    "9705d450e5dfd06adb673705f7bc34418ec86339203198beceb2ae7f1ffefedb",
    "257fa566ed9bc0767d3e63e92b5e966829fa3347d320a32055dc31ee7d33f8a4",
    "28b151069f41abc121baa6d2eaa8f9e4c4d8326ddbefee2bd9c0776b80ac6fad",
    "d5d94bb25bdc024f649213593027d861042ee807cafd94b49b54f1663f8f267d",
    "c09129f064c08ecb07ea3689a2247dcc177de6837e7d2f5f946e30453abbccef",
    "90807800a1c3b248a452e1732c45ee5099f38b737356f5542c0584ec9c3ebb45",
    "2a1a494630e71bc026dd5c0eab4c1b9a5dbc656228c1f0d48f5dbd3909b161d3",
    "41509f380362a8d14401c5ae92073154922fe23e45459ce6f696f58607655db7",
    "d0148475717a2ba269784a178cb0ab617bc77f16c58d4a3cbdfe785b591c7034",
    "d1a1655b4366a766d1578beb257849a92bf91cb1358c1a2c37ab180c5d3a204d",
    "54ef75911da76d7a6b7ea341998aaf66cb06c679c53e0a88a4fe070dd3add963",
    "486e044cf98704e07f41137d2b89698dc03d1fbf34d13b60902fea19a6013b4b",
    "1ee9b4396db3e4e2516ac5016626ab6ba967f091d5d23afbdb7df122a0bb9d0c",
    "748e48b9b6d06f9c82d26bf551d0af43ee2e801e4be56d7ccb20312e267fd1d6",
    "f94fa4afa2f5147680f907d4dd96a8826206c26bd3328cd379feaed614b234de",
    "dec49a69893fbcd66cd06296b2d936a6aceb431c130b2e52675fe4274b504f57",
    "b198a51d48b88181508d8e4ea9dea39db285e4585663b29b7e4ded0c22a94875",
];

/// The Hermez ceremony: the perpetual powers of tau up to contribution 54, then a random
/// beacon. Every file of it shares one s·g2.
pub const HERMEZ: &str = "Hermez powers of tau (perpetual powers of tau contribution 54 + beacon)";

/// sha256 of `powersOfTau28_hez_final_08.ptau` (as the crate ppot-rs 0.1.1 ships it; its
/// BLAKE2b-512 is the one the snarkjs README publishes). `scripts/fetch-ptau.sh` fetches it.
pub const HERMEZ_08_SHA256: &str =
    "f741f2ddee2875915c24db8aae90d021f51181533f1ee3b58baf64b042e91654";

/// s·g2 of the Hermez ceremony (EVM encoding, hex), read from the power-8 file above.
const HERMEZ_S_G2: &str = concat!(
    "26186a2d65ee4d2f9c9a5b91f86597d35f192cd120caf7e935d8443d1938e23d",
    "30441fd1b5d3370482c42152a8899027716989a6996c2535bc9f7fee8aaef79e",
    "1970ea81dd6992adfbc571effb03503adbbb6a857f578403c6c40e22d65b3c02",
    "054793348f12c0cf5622c340573cb277586319de359ab9389778f689786b1e48",
);

/// The public ceremony file with this sha256, if zkinfer knows it.
pub fn recognise_file(sha256: &str) -> Option<String> {
    if let Some(i) = PPOT_RAW_SHA256.iter().position(|h| *h == sha256) {
        return Some(format!("perpetual powers of tau, k={}", i + 1));
    }
    (sha256 == HERMEZ_08_SHA256).then(|| format!("{HERMEZ}, power 8"))
}

/// The public ceremony whose s·g2 this is, if zkinfer knows its value (it can then recognise
/// a verifier's SRS points without the file).
pub fn recognise_s_g2(s_g2: &G2Affine) -> Option<&'static str> {
    (hex::encode(g2_evm(s_g2)) == HERMEZ_S_G2).then_some(HERMEZ)
}

fn invalid(path: &Path, message: impl Into<String>) -> ArtifactError {
    ArtifactError::Invalid {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: Read> Hashing<R> {
    fn array<const N: usize>(&mut self) -> std::io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.read_exact(&mut b)?;
        Ok(b)
    }

    fn u32(&mut self) -> std::io::Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> std::io::Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        let copied = std::io::copy(&mut self.by_ref().take(n), &mut std::io::sink())?;
        if copied != n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Reads the rest, returning how many bytes there were.
    fn rest(&mut self) -> std::io::Result<u64> {
        std::io::copy(self, &mut std::io::sink())
    }
}

/// Reads a ceremony file, keeping `g[0 .. 2^k]` (only `g[0]` when `k` is `None`), with every
/// point kept checked and the generators required to be the standard ones.
pub fn read(path: &Path, k: Option<u32>) -> Result<(SrsFileInfo, SrsPoints), ArtifactError> {
    let file = File::open(path).map_err(|source| ArtifactError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut r = Hashing {
        inner: BufReader::with_capacity(1 << 20, file),
        hash: Sha256::new(),
        read: 0,
    };
    let truncated = |_| invalid(path, "truncated ceremony file");
    let magic: [u8; 4] = r.array().map_err(truncated)?;
    let (format, max_k, points) = if &magic == b"ptau" {
        read_ptau(&mut r, path, k)?
    } else {
        read_halo2_raw(&mut r, path, u32::from_le_bytes(magic), k)?
    };
    if !standard_generators(&points.g[0], &points.g2) {
        return Err(invalid(
            path,
            "not a BN254 ceremony file: its first points are not the standard generators",
        ));
    }
    if crate::curve::trivial_secret(&points.g2, &points.s_g2) {
        return Err(invalid(
            path,
            "its s·g2 is the identity or ±g2: the secret is known, so anyone could forge proofs",
        ));
    }
    let sha256 = hex::encode(r.hash.finalize());
    let recognised = recognise_file(&sha256);
    Ok((
        SrsFileInfo {
            sha256,
            format,
            max_k,
            recognised,
        },
        points,
    ))
}

/// A ceremony file's format and the largest k it serves, from its header alone (to choose
/// among files; [`read`] checks the one chosen).
pub fn header(path: &Path) -> Result<(SrsFormat, u32), ArtifactError> {
    use std::io::{Seek, SeekFrom};
    let io = |source| ArtifactError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = BufReader::new(File::open(path).map_err(io)?);
    let mut word = [0u8; 4];
    let mut u32_at = |f: &mut BufReader<File>| -> Result<u32, ArtifactError> {
        f.read_exact(&mut word)
            .map_err(|_| invalid(path, "truncated ceremony file"))?;
        Ok(u32::from_le_bytes(word))
    };
    let first = u32_at(&mut f)?;
    if first.to_le_bytes() != *b"ptau" {
        if !(1..=MAX_K).contains(&first) {
            return Err(invalid(
                path,
                "neither a .ptau file nor halo2's raw SRS format (k out of range)",
            ));
        }
        return Ok((SrsFormat::Halo2Raw, first));
    }
    let _version = u32_at(&mut f)?;
    for _ in 0..u32_at(&mut f)? {
        let kind = u32_at(&mut f)?;
        let low = u64::from(u32_at(&mut f)?);
        let size = low | u64::from(u32_at(&mut f)?) << 32;
        if kind == 1 {
            // n8 and q, then the power.
            f.seek(SeekFrom::Current(36)).map_err(io)?;
            let p = u32_at(&mut f)?;
            if !(1..=MAX_K).contains(&p) {
                return Err(invalid(path, format!("power {p} out of range")));
            }
            return Ok((SrsFormat::Ptau, p));
        }
        let size = i64::try_from(size).map_err(|_| invalid(path, "a section past 2^63 bytes"))?;
        f.seek(SeekFrom::Current(size)).map_err(io)?;
    }
    Err(invalid(path, "a .ptau file without its header"))
}

/// The ceremony file for a circuit of `2^k` rows: `path` itself, or in a folder of ceremony
/// files (the perpetual powers of tau come one file per k), the halo2 raw file of exactly k,
/// whose Lagrange basis is then read instead of computed, else the file serving the least k
/// at least k (a raw file before a `.ptau`, then by name). Other files in it are passed over.
pub fn choose(path: &Path, k: u32) -> Result<std::path::PathBuf, ArtifactError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let entries = std::fs::read_dir(path).map_err(|source| ArtifactError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut best = None;
    for entry in entries.flatten() {
        let file = entry.path();
        if !file.is_file() {
            continue;
        }
        let Ok((format, max_k)) = header(&file) else {
            continue;
        };
        if max_k < k {
            continue;
        }
        let raw = format == SrsFormat::Halo2Raw;
        let rank = (!(raw && max_k == k), max_k, !raw, file);
        if best.as_ref().is_none_or(|b| rank < *b) {
            best = Some(rank);
        }
    }
    best.map(|(.., file)| file).ok_or_else(|| {
        invalid(
            path,
            format!("no ceremony file in this folder serves k={k}"),
        )
    })
}

fn wanted(path: &Path, k: Option<u32>, max_k: u32) -> Result<usize, ArtifactError> {
    match k {
        None => Ok(1),
        Some(k) if k <= max_k => Ok(1 << k),
        Some(k) => Err(invalid(
            path,
            format!("the file serves circuits up to k={max_k}, this one needs k={k}"),
        )),
    }
}

fn read_g1s<R: Read>(
    r: &mut Hashing<R>,
    path: &Path,
    n: usize,
    what: &str,
) -> Result<Vec<G1Affine>, ArtifactError> {
    let mut buf = [0u8; G1_RAW];
    (0..n)
        .map(|i| {
            r.read_exact(&mut buf)
                .map_err(|_| invalid(path, "truncated ceremony file"))?;
            let point = g1_from_raw(&buf)
                .ok_or_else(|| invalid(path, format!("{what} {i} is not a point of the curve")))?;
            // No ceremony point is the identity (s^i·g and L_j(s)·g, for a secret s that is
            // not 0 nor a root of unity), and the MSMs' batch-affine additions mistake it
            // for an ordinary point.
            if bool::from(point.is_identity()) {
                return Err(invalid(path, format!("{what} {i} is the identity")));
            }
            Ok(point)
        })
        .collect()
}

fn read_g2<R: Read>(
    r: &mut Hashing<R>,
    path: &Path,
    what: &str,
) -> Result<G2Affine, ArtifactError> {
    let mut buf = [0u8; G2_RAW];
    r.read_exact(&mut buf)
        .map_err(|_| invalid(path, "truncated ceremony file"))?;
    g2_from_raw(&buf).ok_or_else(|| {
        invalid(
            path,
            format!("{what} is not a point of the prime-order subgroup of G2"),
        )
    })
}

fn read_halo2_raw<R: Read>(
    r: &mut Hashing<R>,
    path: &Path,
    file_k: u32,
    k: Option<u32>,
) -> Result<(SrsFormat, u32, SrsPoints), ArtifactError> {
    if !(1..=MAX_K).contains(&file_k) {
        return Err(invalid(
            path,
            "neither a .ptau file nor halo2's raw SRS format (k out of range)",
        ));
    }
    let n = wanted(path, k, file_k)?;
    let g = read_g1s(r, path, n, "G1 point")?;
    let truncated = |_| invalid(path, "truncated ceremony file");
    r.skip(((1u64 << file_k) - n as u64) * G1_RAW as u64)
        .map_err(truncated)?;
    // Its g_lagrange is of the file's own domain: of use only to a circuit of that k (for
    // another k the prover recomputes one from g).
    let g_lagrange = if k == Some(file_k) {
        Some(read_g1s(r, path, n, "Lagrange point")?)
    } else {
        r.skip((1u64 << file_k) * G1_RAW as u64)
            .map_err(truncated)?;
        None
    };
    let g2 = read_g2(r, path, "g2")?;
    let s_g2 = read_g2(r, path, "s·g2")?;
    let rest = r
        .rest()
        .map_err(|e| invalid(path, format!("read error: {e}")))?;
    if rest != 0 {
        return Err(invalid(path, format!("{rest} trailing bytes")));
    }
    Ok((
        SrsFormat::Halo2Raw,
        file_k,
        SrsPoints {
            g,
            g2,
            s_g2,
            g_lagrange,
        },
    ))
}

/// BN254's base field modulus, little-endian, as a .ptau header holds it.
const BN254_Q_LE: [u8; 32] = [
    0x47, 0xfd, 0x7c, 0xd8, 0x16, 0x8c, 0x20, 0x3c, 0x8d, 0xca, 0x71, 0x68, 0x91, 0x6a, 0x81, 0x97,
    0x5d, 0x58, 0x81, 0x81, 0xb6, 0x45, 0x50, 0xb8, 0x29, 0xa0, 0x31, 0xe1, 0x72, 0x4e, 0x64, 0x30,
];

/// snarkjs's `.ptau` (binfileutils: "ptau", version, section count, then sections of
/// `(type u32, size u64, data)`): section 1 is the header (n8, q, power, ceremony power),
/// 2 the τ powers in G1 (`2^(power+1) − 1` points), 3 those in G2 (`2^power`). Coordinates are
/// in Montgomery form, little-endian: halo2's raw format, point by point.
fn read_ptau<R: Read>(
    r: &mut Hashing<R>,
    path: &Path,
    k: Option<u32>,
) -> Result<(SrsFormat, u32, SrsPoints), ArtifactError> {
    let trunc = |_| invalid(path, "truncated .ptau file");
    let _version = r.u32().map_err(trunc)?;
    let sections = r.u32().map_err(trunc)?;
    let mut power = None;
    let mut g = None;
    let mut g2s = None;
    for _ in 0..sections {
        let kind = r.u32().map_err(trunc)?;
        let size = r.u64().map_err(trunc)?;
        let start = r.read;
        match kind {
            1 => {
                let n8 = r.u32().map_err(trunc)?;
                let q: [u8; 32] = r.array().map_err(trunc)?;
                if n8 != 32 || q != BN254_Q_LE {
                    return Err(invalid(path, "a .ptau file of another curve than BN254"));
                }
                let p = r.u32().map_err(trunc)?;
                if !(1..=MAX_K).contains(&p) {
                    return Err(invalid(path, format!("power {p} out of range")));
                }
                power = Some(p);
            }
            2 | 3 => {
                let p = power.ok_or_else(|| invalid(path, "τ powers before the header"))?;
                if kind == 2 {
                    let n = wanted(path, k, p)?;
                    g = Some(read_g1s(r, path, n, "G1 point")?);
                } else {
                    g2s = Some((read_g2(r, path, "g2")?, read_g2(r, path, "s·g2")?));
                }
            }
            _ => {}
        }
        let used = r.read - start;
        let left = size
            .checked_sub(used)
            .ok_or_else(|| invalid(path, format!("section {kind} is shorter than its contents")))?;
        r.skip(left).map_err(trunc)?;
    }
    let rest = r
        .rest()
        .map_err(|e| invalid(path, format!("read error: {e}")))?;
    if rest != 0 {
        return Err(invalid(
            path,
            format!("{rest} bytes after the last section"),
        ));
    }
    let (Some(p), Some(g), Some((g2, s_g2))) = (power, g, g2s) else {
        return Err(invalid(path, "a .ptau file without its header or τ powers"));
    };
    Ok((
        SrsFormat::Ptau,
        p,
        SrsPoints {
            g,
            g2,
            s_g2,
            g_lagrange: None,
        },
    ))
}

/// Checks that `g` holds consecutive powers `s^i·g` for the `s` of `s·g2`: with random
/// weights `ρ_i`, `e(Σ ρ_i·g[i+1], g2) = e(Σ ρ_i·g[i], s·g2)`. A file whose powers do not
/// line up (corrupted, or spliced from two ceremonies) would make keys no proof can satisfy.
pub fn check_powers(points: &SrsPoints) -> bool {
    let g = &points.g;
    if g.len() < 2 {
        return true;
    }
    let rho: Vec<Fr> = (1..g.len())
        .map(|_| Fr::random(rand::rngs::OsRng))
        .collect();
    let shifted = best_multiexp(&rho, &g[1..]).to_affine();
    let base = best_multiexp(&rho, &g[..g.len() - 1]).to_affine();
    Bn256::pairing(&shifted, &points.g2) == Bn256::pairing(&base, &points.s_g2)
}

/// Checks that `g_lagrange` is the Lagrange basis of `g`'s domain: `g_lagrange[j] = L_j(s)·g`.
/// Recomputing it is an FFT over G1 with a scalar multiplication per butterfly (minutes at
/// k = 20, hours past k = 24), so the file's copy is checked instead, in two MSMs. For every
/// polynomial `p` of degree < n, `Σ_j p(ω^j)·g_lagrange[j] = p(s)·g = Σ_i p_i·g[i]`. With
/// `p_i = z^i` for a random `z`, `p(ω^j) = (z^n − 1)/(z·ω^j − 1)`: both sides in O(n) field
/// work. A wrong basis (difference `δ ≠ 0`) passes only if `z` is a root of the nonzero
/// rational function `Σ_j δ_j/(z·ω^j − 1)`: at most n − 1 of the field's ~2^254 values.
pub fn check_lagrange(g: &[G1Affine], g_lagrange: &[G1Affine]) -> bool {
    let n = g.len();
    if n != g_lagrange.len() || !n.is_power_of_two() || n < 2 {
        return false;
    }
    let k = n.trailing_zeros();
    let mut omega = Fr::ROOT_OF_UNITY;
    for _ in k..Fr::S {
        omega = omega.square();
    }
    let z = loop {
        let z = Fr::random(rand::rngs::OsRng);
        // z·ω^j = 1 for some j exactly when z^n = 1.
        if z.pow_vartime([n as u64]) != Fr::ONE {
            break z;
        }
    };
    let mut coeffs = Vec::with_capacity(n);
    let mut denominators = Vec::with_capacity(n);
    let (mut zi, mut zw) = (Fr::ONE, z);
    for _ in 0..n {
        coeffs.push(zi);
        denominators.push(zw - Fr::ONE);
        zi *= z;
        zw *= omega;
    }
    // zi is now z^n.
    let numerator = zi - Fr::ONE;
    denominators.iter_mut().batch_invert();
    let values: Vec<Fr> = denominators.iter().map(|d| numerator * d).collect();
    best_multiexp(&coeffs, g).to_affine() == best_multiexp(&values, g_lagrange).to_affine()
}
