//! Each chip on its own: 1,000 operations laid out in a mock builder (witness generation).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use zkinfer_circuits::chips::{Elem, QuantChip};
use zkinfer_circuits::field::fr;
use zkinfer_circuits::halo2_base::gates::circuit::{BaseCircuitParams, CircuitBuilderStage};
use zkinfer_circuits::{CircuitParams, ModelCircuit};
use zkinfer_model::{ExtremumKind, LookupTable};

const N: usize = 1000;

/// A mock circuit at k = 16 with a lincomb region `lincomb_width` terms wide (0: none).
fn circuit(lincomb_width: usize) -> ModelCircuit {
    let base = BaseCircuitParams {
        k: 16,
        lookup_bits: Some(15),
        num_instance_columns: 1,
        ..Default::default()
    };
    let params = CircuitParams {
        base,
        lincomb_width,
        functions: false,
        freivalds: false,
    };
    ModelCircuit::new(CircuitBuilderStage::Mock, params, None)
}

fn builder() -> ModelCircuit {
    circuit(0)
}

fn place() -> String {
    "bench".into()
}

fn chips(c: &mut Criterion) {
    let mut g = c.benchmark_group("chips_x1000");
    g.bench_function("sign_bit_24", |b| {
        b.iter_batched(
            builder,
            |mut bld| {
                let chip = QuantChip::new(bld.base.range_chip());
                let ctx = bld.base.main(0);
                for i in 0..N {
                    let x = ctx.load_witness(fr(i as i128 - 500));
                    chip.sign_bit(ctx, x, 24, &place).unwrap();
                }
                bld.base.clear();
            },
            BatchSize::LargeInput,
        )
    });
    // The same dot products in halo2-base's gate (width 0) and in the lincomb region.
    for width in [0usize, 3] {
        g.bench_function(format!("dot_64_const_shift16_width{width}"), |b| {
            b.iter_batched(
                || circuit(width),
                |mut bld| {
                    let chip = QuantChip::new(bld.base.range_chip());
                    let ctx = bld.base.main(0);
                    let xs: Vec<_> = (0..64)
                        .map(|i| Elem::Cell(ctx.load_witness(fr(i * 37 - 900))))
                        .collect();
                    for j in 0..N / 64 {
                        let pairs: Vec<_> = xs
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (*x, Elem::Const((i * j) as i128 % 255 - 127)))
                            .collect();
                        chip.dot(ctx, &mut bld.lincomb, &pairs, 1 << 15, 16, 32, &place)
                            .unwrap();
                    }
                    bld.base.clear();
                },
                BatchSize::LargeInput,
            )
        });
    }
    // A 4097-sample table stepping 2^8 (a sigmoid-like curve), looked up with interpolation.
    let table = LookupTable {
        shift: 8,
        lo: -2048,
        values: (-2048i64..=2048).map(|t| (t * t) >> 6).collect(),
    };
    g.bench_function("lookup_fn_interpolated", |b| {
        b.iter_batched(
            builder,
            |mut bld| {
                let chip = QuantChip::new(bld.base.range_chip());
                let tag = bld.functions.tag(&table);
                let ctx = bld.base.main(0);
                for i in 0..N as i128 {
                    let x = ctx.load_witness(fr(i * 900 - 450_000));
                    chip.lookup_fn(ctx, &mut bld.functions, x, &table, tag, 24, &place)
                        .unwrap();
                }
                bld.base.clear();
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("max2_cells", |b| {
        b.iter_batched(
            builder,
            |mut bld| {
                let chip = QuantChip::new(bld.base.range_chip());
                let ctx = bld.base.main(0);
                for i in 0..N as i128 {
                    let a = Elem::Cell(ctx.load_witness(fr(i - 500)));
                    let c = Elem::Cell(ctx.load_witness(fr(250 - i)));
                    chip.extremum2(ctx, ExtremumKind::Max, a, c, None, 24, &place)
                        .unwrap();
                }
                bld.base.clear();
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, chips);
criterion_main!(benches);
