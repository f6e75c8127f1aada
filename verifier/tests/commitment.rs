//! The commitment's sponge is snark-verifier's native Poseidon (T=3, rate 2, R_F 8, R_P 57):
//! the same preimages give the same words.

use snark_verifier_sdk::snark_verifier::util::hash::Poseidon;
use snark_verifier_sdk::NativeLoader;
use zkinfer_circuits::commit::{hash, preimage, TensorLayout, RATE, R_F, R_P, T};
use zkinfer_circuits::Fr;

#[test]
fn the_sponge_is_snark_verifiers_poseidon() {
    let snark_verifier = |elements: &[Fr]| {
        let mut p = Poseidon::<Fr, Fr, T, RATE>::new::<R_F, R_P, 0>(&NativeLoader);
        p.update(elements);
        p.squeeze()
    };
    for n in 0..7u64 {
        let elements: Vec<Fr> = (0..n).map(|i| Fr::from(i * 1_000_003 + 7)).collect();
        assert_eq!(hash(&elements), snark_verifier(&elements), "{n} elements");
    }
    let layout = TensorLayout {
        shape: vec![3, 11],
        scale: 9,
        slot_bits: 20,
    };
    let values: Vec<i64> = (0..33).map(|i| i * 4099 - 60_000).collect();
    let pre = preimage(&layout, &values, Fr::from(5)).unwrap();
    assert_eq!(hash(&pre), snark_verifier(&pre));
}
