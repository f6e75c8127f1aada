//! Witness generation, key generation, proving at k = 12 / 14 / 16, and verification, on
//! corpus models (`accuracy` is forced to each k).

use criterion::{criterion_group, criterion_main, Criterion};
use zkinfer_benches::compiled;
use zkinfer_circuits::halo2_base::gates::circuit::CircuitBuilderStage;
use zkinfer_circuits::{lay_out, Fr, ModelCircuit};
use zkinfer_prover::{keys, proving, srs};
use zkinfer_verifier::verify_proof_bytes;

fn witness(c: &mut Criterion) {
    let tmp = std::env::temp_dir().join("zkinfer-bench-witness");
    let mut g = c.benchmark_group("witness_generation");
    g.sample_size(10);
    for name in ["1l_mlp", "accuracy", "4l_relu_conv_fc"] {
        let (folder, input) = compiled(name, &tmp.join(name), None);
        let plan = folder.settings.plan.clone();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut circuit =
                    ModelCircuit::new(CircuitBuilderStage::Mock, plan.params.clone(), None);
                lay_out(&mut circuit, &folder.q, &input, plan.io()).unwrap();
                circuit.base.clear();
            })
        });
    }
    g.finish();
}

fn keygen_prove_verify(c: &mut Criterion) {
    let tmp = std::env::temp_dir().join("zkinfer-bench-prove");
    let mut g = c.benchmark_group("accuracy");
    g.sample_size(10);
    for k in [12u32, 14, 16] {
        let (folder, input) = compiled("accuracy", &tmp.join(format!("k{k}")), Some(k));
        let plan = folder.settings.plan.clone();
        assert_eq!(plan.k, k);
        let params = srs::generate(k).unwrap();
        g.bench_function(format!("keygen_k{k}"), |b| {
            b.iter(|| keys::generate(&params, &plan, &folder.q, &input).unwrap())
        });
        let (pk, bp) = keys::generate(&params, &plan, &folder.q, &input).unwrap();
        g.bench_function(format!("prove_k{k}"), |b| {
            b.iter(|| {
                proving::prove(
                    &params,
                    &pk,
                    &plan,
                    bp.clone(),
                    &folder.q,
                    &input,
                    Fr::zero(),
                )
                .unwrap()
            })
        });
        let (proof, instances) =
            proving::prove(&params, &pk, &plan, bp, &folder.q, &input, Fr::zero()).unwrap();
        g.bench_function(format!("verify_k{k}"), |b| {
            b.iter(|| verify_proof_bytes(&params, pk.get_vk(), &instances, &proof).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, witness, keygen_prove_verify);
criterion_main!(benches);
