//! Signed integers ↔ BN254 scalars (negative values are `p - |v|`).

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;

/// The field element of a signed integer.
pub fn fr(v: i128) -> Fr {
    let m = Fr::from_u128(v.unsigned_abs());
    if v < 0 {
        -m
    } else {
        m
    }
}

/// The signed integer of a field element, when `|v| < 2^126`.
pub fn signed(v: &Fr) -> Option<i128> {
    let small = |x: &Fr| -> Option<i128> {
        let r = x.to_repr();
        let bytes: &[u8] = r.as_ref();
        if bytes[16..].iter().any(|&b| b != 0) || bytes[15] & 0xc0 != 0 {
            return None;
        }
        let mut lo = [0u8; 16];
        lo.copy_from_slice(&bytes[..16]);
        Some(i128::from_le_bytes(lo))
    };
    small(v).or_else(|| small(&-*v).map(|m| -m))
}

/// 32-byte big-endian hex (`0x…`) of a field element, as Solidity calldata holds it.
pub fn to_hex(v: &Fr) -> String {
    let mut b = v.to_repr().as_ref().to_vec();
    b.reverse();
    format!("0x{}", hex_encode(&b))
}

/// Parses `0x`-prefixed 32-byte big-endian hex; rejects non-canonical encodings (≥ p).
pub fn from_hex(s: &str) -> Option<Fr> {
    let h = s.strip_prefix("0x")?;
    // ASCII hex only: slicing below must fall on character boundaries.
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut b: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
        .collect::<Option<_>>()?;
    b.reverse();
    let mut repr = <Fr as PrimeField>::Repr::default();
    repr.as_mut().copy_from_slice(&b);
    Option::from(Fr::from_repr(repr))
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_round_trip() {
        for v in [
            0i128,
            1,
            -1,
            255,
            -256,
            1 << 100,
            -(1 << 100),
            (1 << 126) - 1,
            -(1 << 126) + 1,
        ] {
            assert_eq!(signed(&fr(v)), Some(v), "{v}");
        }
        assert_eq!(signed(&fr(1 << 126)), None);
        assert_eq!(signed(&fr(-(1 << 126))), None);
    }

    #[test]
    fn hex_round_trip_and_canonical() {
        let x = fr(-5);
        assert_eq!(from_hex(&to_hex(&x)), Some(x));
        assert_eq!(to_hex(&fr(1)), format!("0x{}1", "0".repeat(63)));
        // p itself is not a canonical encoding.
        let p = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";
        assert_eq!(from_hex(p), None);
        assert_eq!(from_hex("0x12"), None);
        // Non-ASCII of the right byte length, and a sign: refused, never a panic.
        assert_eq!(from_hex(&format!("0xa\u{e9}{}", "0".repeat(61))), None);
        assert_eq!(from_hex(&format!("0x+1{}", "0".repeat(62))), None);
    }
}
