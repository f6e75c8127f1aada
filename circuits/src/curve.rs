//! BN254 points read from files: checked decoding (canonical coordinates, on the curve, in
//! the prime-order subgroup) and the EVM encoding (big-endian, EIP-197's G2 order) used by the
//! model identity and, later, by Solidity verifiers.
//!
//! halo2curves' `read_raw` checks coordinates but not that a point is on the curve, so every
//! point a verifier reads goes through here instead.

use halo2_base::halo2_proofs::halo2curves::bn256::{Fq, Fq2, G1Affine, G2Affine, G2};
use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use halo2_base::halo2_proofs::halo2curves::group::cofactor::CofactorGroup;
use halo2_base::halo2_proofs::halo2curves::serde::SerdeObject;
use halo2_base::halo2_proofs::halo2curves::CurveAffine;

/// Bytes of a G1 point in halo2's raw format (x, y: Montgomery limbs, little-endian).
pub const G1_RAW: usize = 64;
/// Bytes of a G2 point in halo2's raw format (x.c0, x.c1, y.c0, y.c1).
pub const G2_RAW: usize = 128;

/// A G1 point from halo2's raw format; `None` unless both coordinates are canonical and the
/// point is on the curve (G1 has cofactor 1, so it is then in the subgroup).
pub fn g1_from_raw(bytes: &[u8]) -> Option<G1Affine> {
    if bytes.len() != G1_RAW {
        return None;
    }
    let x = Fq::from_raw_bytes(&bytes[..32])?;
    let y = Fq::from_raw_bytes(&bytes[32..])?;
    let p = G1Affine { x, y };
    bool::from(p.is_on_curve()).then_some(p)
}

/// A G2 point from halo2's raw format; `None` unless canonical, on the twist and in the
/// prime-order subgroup (G2 has a large cofactor, so the last check matters).
pub fn g2_from_raw(bytes: &[u8]) -> Option<G2Affine> {
    if bytes.len() != G2_RAW {
        return None;
    }
    let fq2 = |b: &[u8]| -> Option<Fq2> {
        Some(Fq2 {
            c0: Fq::from_raw_bytes(&b[..32])?,
            c1: Fq::from_raw_bytes(&b[32..64])?,
        })
    };
    let p = G2Affine {
        x: fq2(&bytes[..64])?,
        y: fq2(&bytes[64..])?,
    };
    g2_checked(p)
}

/// `p` if it is on the twist and in the prime-order subgroup.
pub fn g2_checked(p: G2Affine) -> Option<G2Affine> {
    let on_curve = bool::from(p.is_on_curve());
    (on_curve && bool::from(G2::from(p).is_torsion_free())).then_some(p)
}

/// True when `g` and `g2` are the standard generators every BN254 ceremony starts from.
pub fn standard_generators(g: &G1Affine, g2: &G2Affine) -> bool {
    *g == G1Affine::generator() && *g2 == G2Affine::generator()
}

/// True when `s·g2` reveals its secret: the identity or `±g2` (`s ∈ {0, 1, −1}`). With a
/// known `s` anyone can open a KZG commitment to any value, i.e. prove anything.
pub fn trivial_secret(g2: &G2Affine, s_g2: &G2Affine) -> bool {
    use halo2_base::halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
    bool::from(s_g2.is_identity()) || s_g2 == g2 || *s_g2 == -*g2
}

fn fq_be(v: &Fq) -> [u8; 32] {
    let mut b = [0u8; 32];
    b.copy_from_slice(v.to_repr().as_ref());
    b.reverse();
    b
}

/// `x ‖ y`, 32 bytes each, big-endian (the point at infinity is all zeros).
pub fn g1_evm(p: &G1Affine) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&fq_be(&p.x));
    out[32..].copy_from_slice(&fq_be(&p.y));
    out
}

/// `x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0`, 32 bytes each, big-endian: EIP-197's order, as the pairing
/// precompile and Solidity verifiers take G2 points.
pub fn g2_evm(p: &G2Affine) -> [u8; 128] {
    let mut out = [0u8; 128];
    for (i, v) in [p.x.c1, p.x.c0, p.y.c1, p.y.c0].iter().enumerate() {
        out[32 * i..32 * (i + 1)].copy_from_slice(&fq_be(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
    use halo2_base::halo2_proofs::halo2curves::ff::Field;
    use halo2_base::halo2_proofs::halo2curves::group::Curve;

    fn raw_g1(p: &G1Affine) -> Vec<u8> {
        p.to_raw_bytes()
    }

    #[test]
    fn g1_round_trip_and_off_curve_refused() {
        let p = (G1Affine::generator() * Fr::from(7u64)).to_affine();
        assert_eq!(g1_from_raw(&raw_g1(&p)), Some(p));
        // (x, y + 1) is not on the curve, though both coordinates are canonical.
        let off = G1Affine {
            x: p.x,
            y: p.y + Fq::one(),
        };
        assert_eq!(g1_from_raw(&raw_g1(&off)), None);
        // A coordinate ≥ q is not canonical.
        let mut b = raw_g1(&p);
        b[..32].copy_from_slice(&[0xff; 32]);
        assert_eq!(g1_from_raw(&b), None);
        assert_eq!(g1_from_raw(&b[..10]), None);
    }

    #[test]
    fn g2_subgroup_is_checked() {
        let p = (G2Affine::generator() * Fr::from(11u64)).to_affine();
        assert_eq!(g2_from_raw(&p.to_raw_bytes()), Some(p));
        // A point on the twist outside the prime-order subgroup: hash x until x³ + b is a
        // square, then check the subgroup test refuses it (the cofactor is huge, so a random
        // point is outside with overwhelming probability).
        let b = G2Affine::b();
        let mut x = Fq2 {
            c0: Fq::from(5u64),
            c1: Fq::one(),
        };
        let q = loop {
            let rhs = x.square() * x + b;
            if let Some(y) = Option::<Fq2>::from(rhs.sqrt()) {
                break G2Affine { x, y };
            }
            x.c0 += Fq::one();
        };
        assert!(bool::from(q.is_on_curve()));
        assert_eq!(g2_checked(q), None);
        assert_eq!(g2_from_raw(&q.to_raw_bytes()), None);
    }

    #[test]
    fn evm_encodings_of_the_generators() {
        let g = g1_evm(&G1Affine::generator());
        assert_eq!(g[31], 1);
        assert_eq!(g[63], 2);
        // EIP-197's G2 generator starts with x.c1 = 0x198e9393…
        let g2 = g2_evm(&G2Affine::generator());
        assert_eq!(&g2[..4], &[0x19, 0x8e, 0x93, 0x93]);
        assert!(standard_generators(
            &G1Affine::generator(),
            &G2Affine::generator()
        ));
    }
}
