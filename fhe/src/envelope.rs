//! The binary files of the FHE path: keys and ciphertext lists, each in an envelope that says
//! what it is and which program and key set it belongs to, so that a foreign, truncated or
//! mixed-up file is a typed error instead of garbage decrypted.

use std::path::Path;

use crate::error::{FheError, Result};

const MAGIC: &[u8; 6] = b"ZKFHE1";

/// What an envelope holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The client key (secret).
    ClientKey = 1,
    /// The compressed server key (public evaluation key).
    ServerKey = 2,
    /// Encrypted inputs.
    Inputs = 3,
    /// Encrypted results.
    Results = 4,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::ClientKey => "a client key",
            Kind::ServerKey => "a server key",
            Kind::Inputs => "encrypted inputs",
            Kind::Results => "encrypted results",
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Kind::ClientKey,
            2 => Kind::ServerKey,
            3 => Kind::Inputs,
            4 => Kind::Results,
            _ => return None,
        })
    }
}

/// The header every file carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Content kind.
    pub kind: Kind,
    /// sha256 of the FHE program (hex).
    pub program_sha256: String,
    /// The key set's id (hex, 16 bytes).
    pub key_id: String,
}

const HEADER_LEN: usize = 6 + 1 + 32 + 16;

/// Encodes a header and items (each length-prefixed).
pub fn seal(header: &Header, items: &[Vec<u8>]) -> Result<Vec<u8>> {
    let sha = hex::decode(&header.program_sha256)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| FheError::Mismatch("program hash is not 32 bytes of hex".into()))?;
    let id = hex::decode(&header.key_id)
        .ok()
        .filter(|b| b.len() == 16)
        .ok_or_else(|| FheError::Mismatch("key id is not 16 bytes of hex".into()))?;
    let mut out =
        Vec::with_capacity(HEADER_LEN + 4 + items.iter().map(|i| i.len() + 8).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.push(header.kind as u8);
    out.extend_from_slice(&sha);
    out.extend_from_slice(&id);
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        out.extend_from_slice(&(item.len() as u64).to_le_bytes());
        out.extend_from_slice(item);
    }
    Ok(out)
}

/// Decodes an envelope of the expected kind; `what` names it in errors (usually the path).
/// Items larger than `max_item` bytes or more than `max_items` of them are refused before
/// anything is allocated for them.
pub fn open<'a>(
    bytes: &'a [u8],
    kind: Kind,
    what: &str,
    max_items: usize,
    max_item: u64,
) -> Result<(Header, Vec<&'a [u8]>)> {
    let bad = |why: String| FheError::File {
        path: what.to_string(),
        why,
    };
    if bytes.len() < HEADER_LEN + 4 || &bytes[..6] != MAGIC {
        return Err(bad("not a zkinfer FHE file".into()));
    }
    let got = Kind::from_byte(bytes[6]).ok_or_else(|| bad("unknown content kind".into()))?;
    if got != kind {
        return Err(bad(format!(
            "holds {}, expected {}",
            got.name(),
            kind.name()
        )));
    }
    let header = Header {
        kind,
        program_sha256: hex::encode(&bytes[7..39]),
        key_id: hex::encode(&bytes[39..55]),
    };
    let mut at = HEADER_LEN;
    let count = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
    at += 4;
    if count > max_items {
        return Err(bad(format!("{count} items, at most {max_items} expected")));
    }
    let mut items = Vec::with_capacity(count);
    for i in 0..count {
        let len = bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| bad(format!("truncated before item {i} of {count}")))?;
        if len > max_item {
            return Err(bad(format!(
                "item {i} has {len} bytes, at most {max_item} expected"
            )));
        }
        at += 8;
        let item = bytes
            .get(at..at + len as usize)
            .ok_or_else(|| bad(format!("truncated in item {i} of {count}")))?;
        items.push(item);
        at += len as usize;
    }
    if at != bytes.len() {
        return Err(bad(format!(
            "{} bytes after the last item",
            bytes.len() - at
        )));
    }
    Ok((header, items))
}

/// Reads a JSON file whose `format_version` (given by `version`) must be `want`.
pub fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    version: impl Fn(&T) -> u32,
    want: u32,
) -> Result<T> {
    parse_json(&read(path)?, &path.display().to_string(), version, want)
}

/// Parses JSON bytes whose `format_version` (given by `version`) must be `want`; `what` names
/// them in errors.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    version: impl Fn(&T) -> u32,
    want: u32,
) -> Result<T> {
    let bad = |why: String| FheError::File {
        path: what.to_string(),
        why,
    };
    let value: T = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let got = version(&value);
    if got != want {
        return Err(bad(format!(
            "format version {got}, this build reads {want}"
        )));
    }
    Ok(value)
}

/// Reads a whole file, as a typed error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| FheError::File {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

/// Writes a whole file, as a typed error.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| FheError::File {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: Kind) -> Header {
        Header {
            kind,
            program_sha256: "ab".repeat(32),
            key_id: "cd".repeat(16),
        }
    }

    #[test]
    fn an_envelope_round_trips_and_refuses_every_kind_of_damage() {
        let h = header(Kind::Inputs);
        let bytes = seal(&h, &[vec![1, 2, 3], vec![]]).unwrap();
        let (got, items) = open(&bytes, Kind::Inputs, "x", 10, 100).unwrap();
        assert_eq!(got, h);
        assert_eq!(items, vec![&[1u8, 2, 3][..], &[][..]]);
        let err = |r: Result<(Header, Vec<&[u8]>)>| r.unwrap_err().to_string();
        assert_eq!(
            err(open(&bytes, Kind::Results, "x", 10, 100)),
            "x: holds encrypted inputs, expected encrypted results"
        );
        assert_eq!(
            err(open(&bytes[..bytes.len() - 1], Kind::Inputs, "x", 10, 100)),
            "x: truncated before item 1 of 2"
        );
        assert_eq!(
            err(open(&bytes[..60], Kind::Inputs, "x", 10, 100)),
            "x: truncated before item 0 of 2"
        );
        assert_eq!(
            err(open(&bytes, Kind::Inputs, "x", 1, 100)),
            "x: 2 items, at most 1 expected"
        );
        assert_eq!(
            err(open(&bytes, Kind::Inputs, "x", 10, 2)),
            "x: item 0 has 3 bytes, at most 2 expected"
        );
        assert_eq!(
            err(open(
                b"hello world, not an envelope at all, no no no no no no no",
                Kind::Inputs,
                "x",
                10,
                2
            )),
            "x: not a zkinfer FHE file"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            err(open(&longer, Kind::Inputs, "x", 10, 100)),
            "x: 1 bytes after the last item"
        );
    }
}
