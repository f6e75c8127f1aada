//! Keys, encryption, the encrypted run and decryption (tfhe-rs shortint).
//!
//! The client keeps [`ClientSide`] (the secret key and the program's [`Interface`]); the server
//! holds [`ServerSide`] (the evaluation key and the whole program). Every file is an envelope
//! (`envelope.rs`) naming the program hash and the key set id, checked before use.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bincode::Options;
use rayon::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tfhe::core_crypto::prelude::{LweCiphertextOwned, LweSize};
use tfhe::shortint::ciphertext::{Degree, NoiseLevel};
use tfhe::shortint::parameters::{CarryModulus, MessageModulus};
use tfhe::shortint::server_key::LookupTableOwned;
use tfhe::shortint::{
    AtomicPatternKind, Ciphertext, ClientKey, CompressedCiphertext, CompressedServerKey, PBSOrder,
    ServerKey,
};

use crate::envelope::{self, Header, Kind};
use crate::error::{FheError, Result};
use crate::params::{ParamSet, SECURITY_BITS};
use crate::program::{FheProgram, Interface, ValueDef};

/// Version of `keyset.json`.
pub const KEYSET_VERSION: u32 = 1;

/// File names in a key set folder.
pub mod files {
    /// The secret key: stays with the client.
    pub const CLIENT_KEY: &str = "client.key";
    /// The evaluation key (compressed): uploaded to the server.
    pub const SERVER_KEY: &str = "server.key";
    /// What encrypt and decrypt need of the model.
    pub const KEYSET: &str = "keyset.json";
}

/// Largest serialized key accepted (a compressed m3c3 server key is well under this).
const MAX_KEY_BYTES: u64 = 1 << 31;
/// Largest serialized ciphertext accepted (an uncompressed m3c3 one is 64 KiB).
const MAX_CT_BYTES: u64 = 1 << 20;
/// Most ciphertexts in one file.
const MAX_CTS: usize = 1 << 20;

/// Checks that `bytes` are a whole file of `kind` (framing and size limits, not the keys or
/// ciphertexts inside) and returns its header: what a server checks of an upload before it
/// stores it, with the number of items (ciphertexts) it holds. `what` names the file in errors.
pub fn check_file(bytes: &[u8], kind: Kind, what: &str) -> Result<(Header, usize)> {
    let (items, item) = match kind {
        Kind::ClientKey | Kind::ServerKey => (1, MAX_KEY_BYTES),
        Kind::Inputs | Kind::Results => (MAX_CTS, MAX_CT_BYTES),
    };
    let (header, found) = envelope::open(bytes, kind, what, items, item)?;
    if found.is_empty() {
        return Err(tfhe_err(what)("the file holds nothing".into()));
    }
    Ok((header, found.len()))
}

/// `keyset.json`: the public description of a key set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeySetInfo {
    /// [`KEYSET_VERSION`].
    pub format_version: u32,
    /// Random id shared by the client and server key of this set.
    pub key_id: String,
    /// The program the keys were made for.
    pub program_sha256: String,
    /// The parameter set.
    pub params: ParamSet,
    /// Security level of the parameters.
    pub security_bits: u32,
    /// Input encodings and output decodings.
    pub interface: Interface,
}

/// The client's half: secret key and interface.
pub struct ClientSide {
    /// The description.
    pub info: KeySetInfo,
    key: ClientKey,
}

/// What keygen made, with sizes.
pub struct KeyPair {
    /// The client's half.
    pub client: ClientSide,
    /// The server key file's bytes.
    pub server_key: Vec<u8>,
    /// Serialized client key bytes.
    pub client_key_bytes: usize,
}

fn tfhe_err(what: &str) -> impl Fn(String) -> FheError + '_ {
    move |why| FheError::File {
        path: what.to_string(),
        why,
    }
}

/// bincode with fixed-size integers (as tfhe-rs's own safe serialization) and, when reading, a
/// size limit so a forged length cannot make it allocate without bound. The envelope carries
/// the format version, so tfhe-rs's per-object versioning is not repeated.
fn bincode_opts(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .reject_trailing_bytes()
        .with_limit(limit)
}

fn ser<T: Serialize>(x: &T) -> Vec<u8> {
    bincode_opts(u64::MAX)
        .serialize(x)
        .expect("serializing to memory cannot fail")
}

fn de<T: DeserializeOwned>(bytes: &[u8], limit: u64, what: &str) -> Result<T> {
    bincode_opts(limit)
        .deserialize(bytes)
        .map_err(|e| tfhe_err(what)(e.to_string()))
}

impl ClientSide {
    /// Generates a fresh key set for a program.
    pub fn generate(program: &FheProgram) -> Result<KeyPair> {
        let params = program.params;
        let key = ClientKey::new(params.tfhe());
        let server = CompressedServerKey::new(&key);
        let info = KeySetInfo {
            format_version: KEYSET_VERSION,
            key_id: hex::encode(rand::random::<[u8; 16]>()),
            program_sha256: program.sha256(),
            params,
            security_bits: SECURITY_BITS,
            interface: program.interface(),
        };
        let header = |kind| Header {
            kind,
            program_sha256: info.program_sha256.clone(),
            key_id: info.key_id.clone(),
        };
        let server_key = envelope::seal(&header(Kind::ServerKey), &[ser(&server)])?;
        let client_key_bytes = ser(&key).len();
        Ok(KeyPair {
            client: ClientSide { info, key },
            server_key,
            client_key_bytes,
        })
    }

    /// Writes the key set folder: `client.key`, `server.key`, `keyset.json`.
    pub fn save(pair: &KeyPair, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| FheError::File {
            path: dir.display().to_string(),
            why: e.to_string(),
        })?;
        let c = &pair.client;
        let header = Header {
            kind: Kind::ClientKey,
            program_sha256: c.info.program_sha256.clone(),
            key_id: c.info.key_id.clone(),
        };
        envelope::write(
            &dir.join(files::CLIENT_KEY),
            &envelope::seal(&header, &[ser(&c.key)])?,
        )?;
        envelope::write(&dir.join(files::SERVER_KEY), &pair.server_key)?;
        let json = serde_json::to_vec_pretty(&c.info).expect("keyset info serializes");
        envelope::write(&dir.join(files::KEYSET), &json)
    }

    /// Opens a key set folder's client half.
    pub fn open(dir: &Path) -> Result<Self> {
        let info_path = dir.join(files::KEYSET);
        let info: KeySetInfo = envelope::read_json(
            &info_path,
            |i: &KeySetInfo| i.format_version,
            KEYSET_VERSION,
        )?;
        let path = dir.join(files::CLIENT_KEY);
        let what = path.display().to_string();
        let bytes = envelope::read(&path)?;
        let (header, items) = envelope::open(&bytes, Kind::ClientKey, &what, 1, MAX_KEY_BYTES)?;
        if header.key_id != info.key_id || header.program_sha256 != info.program_sha256 {
            return Err(FheError::Mismatch(format!(
                "{what} is not the client key of {}",
                info_path.display()
            )));
        }
        let item = items
            .first()
            .ok_or_else(|| tfhe_err(&what)("no key in the file".into()))?;
        let key: ClientKey = de(item, MAX_KEY_BYTES, &what)?;
        if key.parameters().message_modulus() != info.params.tfhe().message_modulus
            || key.parameters().carry_modulus() != info.params.tfhe().carry_modulus
        {
            return Err(FheError::Mismatch(format!(
                "{what} has other parameters than {}",
                info.params.name()
            )));
        }
        Ok(ClientSide { info, key })
    }

    /// Encrypts real inputs (encoded as the program says) into an inputs file's bytes.
    pub fn encrypt(&self, inputs: &[Vec<f64>]) -> Result<Vec<u8>> {
        let q = self.info.interface.encode_inputs(inputs)?;
        let items: Vec<Vec<u8>> = q
            .iter()
            .flatten()
            .map(|&v| ser(&self.key.encrypt_compressed(v)))
            .collect();
        envelope::seal(
            &Header {
                kind: Kind::Inputs,
                program_sha256: self.info.program_sha256.clone(),
                key_id: self.info.key_id.clone(),
            },
            &items,
        )
    }

    /// Decrypts a results file: the output integers and the real outputs they decode to.
    pub fn decrypt(&self, bytes: &[u8], what: &str) -> Result<(Vec<u64>, Vec<Vec<f64>>)> {
        let (header, items) = envelope::open(bytes, Kind::Results, what, MAX_CTS, MAX_CT_BYTES)?;
        self.check(&header, what)?;
        let lwe = self.info.params.lwe_size();
        let m = self.info.params.modulus();
        let ints = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let ct = read_ct(item, lwe, self.info.params, what, i)?;
                // Decoded with the padding bit as a value bit: result accumulators may hold
                // [0, 2M) (`ValueDef::Dot::wide`); bootstrap outputs are below M either way.
                let raw = self.key.decrypt_no_decode(&ct).0 as u128;
                let delta = (1u128 << 63) / m as u128;
                Ok((((raw + delta / 2) / delta) % (2 * m as u128)) as u64)
            })
            .collect::<Result<Vec<u64>>>()?;
        let real = self.info.interface.decode(&ints)?;
        Ok((ints, real))
    }

    fn check(&self, header: &Header, what: &str) -> Result<()> {
        if header.program_sha256 != self.info.program_sha256 {
            return Err(FheError::Mismatch(format!(
                "{what} was made for another model's FHE program"
            )));
        }
        if header.key_id != self.info.key_id {
            return Err(FheError::Mismatch(format!(
                "{what} was encrypted under another key set"
            )));
        }
        Ok(())
    }
}

fn read_ct(
    item: &[u8],
    lwe: LweSize,
    params: ParamSet,
    what: &str,
    i: usize,
) -> Result<Ciphertext> {
    let ct: Ciphertext = de(item, MAX_CT_BYTES, &format!("{what}: ciphertext {i}"))?;
    check_ct(
        (ct.ct.lwe_size(), ct.message_modulus, ct.carry_modulus),
        lwe,
        params,
        what,
        i,
    )?;
    Ok(ct)
}

/// Refuses a ciphertext of another size or message space than the parameter set's.
fn check_ct(
    (size, message, carry): (LweSize, MessageModulus, CarryModulus),
    lwe: LweSize,
    params: ParamSet,
    what: &str,
    i: usize,
) -> Result<()> {
    let p = params.tfhe();
    if size != lwe || message != p.message_modulus || carry != p.carry_modulus {
        return Err(tfhe_err(what)(format!(
            "ciphertext {i} is not a {} ciphertext",
            params.name()
        )));
    }
    Ok(())
}

/// A raw LWE ciphertext as the shortint ciphertext it is (any value in the message space).
fn shortint(ct: LweCiphertextOwned<u64>, params: ParamSet) -> Ciphertext {
    let p = params.tfhe();
    Ciphertext::new(
        ct,
        Degree::new(params.modulus() - 1),
        NoiseLevel::NOMINAL,
        p.message_modulus,
        p.carry_modulus,
        AtomicPatternKind::Standard(PBSOrder::KeyswitchBootstrap),
    )
}

impl ParamSet {
    /// Size of a ciphertext under the big (GLWE-derived) key, which inputs and results use.
    pub fn lwe_size(self) -> LweSize {
        let p = self.tfhe();
        p.glwe_dimension
            .to_equivalent_lwe_dimension(p.polynomial_size)
            .to_lwe_size()
    }
}

/// The server's half: the evaluation key and the program, with its tables prepared.
pub struct ServerSide {
    program: FheProgram,
    program_sha256: String,
    key_id: String,
    key: ServerKey,
    luts: Vec<LookupTableOwned>,
}

/// Timings of one encrypted run.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// Bootstraps done.
    pub bootstraps: usize,
    /// Seconds in all.
    pub seconds: f64,
}

impl ServerSide {
    /// Loads a server key file for a program (decompressing the key takes a few seconds).
    pub fn load(program: FheProgram, server_key: &[u8], what: &str) -> Result<Self> {
        // A program that could wrap an accumulator would decrypt to garbage: refuse it here.
        program.check_bounds()?;
        let program_sha256 = program.sha256();
        let (header, items) = envelope::open(server_key, Kind::ServerKey, what, 1, MAX_KEY_BYTES)?;
        if header.program_sha256 != program_sha256 {
            return Err(FheError::Mismatch(format!(
                "{what} was made for another model's FHE program"
            )));
        }
        let item = items
            .first()
            .ok_or_else(|| tfhe_err(what)("no key in the file".into()))?;
        let compressed: CompressedServerKey = de(item, MAX_KEY_BYTES, what)?;
        let p = program.params.tfhe();
        if compressed.message_modulus != p.message_modulus
            || compressed.carry_modulus != p.carry_modulus
        {
            return Err(FheError::Mismatch(format!(
                "{what} has other parameters than {}",
                program.params.name()
            )));
        }
        let key = compressed.decompress();
        let luts = program
            .tables
            .iter()
            .map(|t| key.generate_lookup_table(|a| t[a as usize] as u64))
            .collect();
        Ok(ServerSide {
            program,
            program_sha256,
            key_id: header.key_id,
            key,
            luts,
        })
    }

    /// Evaluates the program on an inputs file; returns a results file. `progress(done, total)`
    /// is called as bootstraps finish.
    pub fn run(
        &self,
        inputs: &[u8],
        what: &str,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<(Vec<u8>, RunReport)> {
        let t = Instant::now();
        let p = self.program.params;
        let (header, items) = envelope::open(inputs, Kind::Inputs, what, MAX_CTS, MAX_CT_BYTES)?;
        if header.program_sha256 != self.program_sha256 {
            return Err(FheError::Mismatch(format!(
                "{what} was encrypted for another model's FHE program"
            )));
        }
        if header.key_id != self.key_id {
            return Err(FheError::Mismatch(format!(
                "{what} was encrypted under another key set than the server key's"
            )));
        }
        let want: usize = self
            .program
            .inputs
            .iter()
            .map(|s| s.shape.iter().product::<usize>())
            .sum();
        if items.len() != want {
            return Err(FheError::Mismatch(format!(
                "{what} holds {} ciphertexts, the model takes {want}",
                items.len()
            )));
        }
        let lwe = p.lwe_size();
        let fresh: Vec<LweCiphertextOwned<u64>> = items
            .par_iter()
            .enumerate()
            .map(|(i, item)| {
                let c: CompressedCiphertext =
                    de(item, MAX_CT_BYTES, &format!("{what}: ciphertext {i}"))?;
                check_ct(
                    (c.ct.lwe_size(), c.message_modulus, c.carry_modulus),
                    lwe,
                    p,
                    what,
                    i,
                )?;
                Ok(c.decompress().ct)
            })
            .collect::<Result<_>>()?;
        let total = self.program.stats().bootstraps;
        let done = AtomicUsize::new(0);
        let m = p.modulus();
        let delta = (1u64 << 63) / m;
        let mut vals: Vec<Vec<LweCiphertextOwned<u64>>> =
            Vec::with_capacity(self.program.values.len());
        let mut input_at = 0usize;
        let mut input_starts = Vec::new();
        for spec in &self.program.inputs {
            input_starts.push(input_at);
            input_at += spec.shape.iter().product::<usize>();
        }
        for def in &self.program.values {
            let out: Vec<LweCiphertextOwned<u64>> = match def {
                ValueDef::Input { index } => {
                    let n: usize = self.program.inputs[*index].shape.iter().product();
                    fresh[input_starts[*index]..input_starts[*index] + n].to_vec()
                }
                ValueDef::Dot { rows, .. } => rows
                    .par_iter()
                    .map(|row| {
                        let mut acc =
                            LweCiphertextOwned::new(0u64, lwe, p.tfhe().ciphertext_modulus);
                        let a = acc.as_mut();
                        // Linear maps of LWE ciphertexts act coefficient-wise modulo 2^64, so a
                        // negative weight is its two's complement and adds |w| times the noise.
                        for (r, w) in &row.terms {
                            let w = *w as i64 as u64;
                            let src = vals[r.value as usize][r.idx as usize].as_ref();
                            for (x, &y) in a.iter_mut().zip(src) {
                                *x = x.wrapping_add(y.wrapping_mul(w));
                            }
                        }
                        let body = a.last_mut().expect("an LWE ciphertext has a body");
                        *body = body.wrapping_add((row.offset as u64).wrapping_mul(delta));
                        acc
                    })
                    .collect(),
                ValueDef::Lut { elems } => elems
                    .par_iter()
                    .map(|(r, t)| {
                        let ct = shortint(vals[r.value as usize][r.idx as usize].clone(), p);
                        let out = self.key.apply_lookup_table(&ct, &self.luts[*t as usize]);
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        progress(d, total);
                        out.ct
                    })
                    .collect(),
            };
            vals.push(out);
        }
        let items: Vec<Vec<u8>> = self
            .program
            .output_refs()
            .iter()
            .map(|r| ser(&shortint(vals[r.value as usize][r.idx as usize].clone(), p)))
            .collect();
        let bytes = envelope::seal(
            &Header {
                kind: Kind::Results,
                program_sha256: self.program_sha256.clone(),
                key_id: self.key_id.clone(),
            },
            &items,
        )?;
        Ok((
            bytes,
            RunReport {
                bootstraps: done.load(Ordering::Relaxed),
                seconds: t.elapsed().as_secs_f64(),
            },
        ))
    }
}
