//! Each chip on its own: 1,000 operations laid out in a mock builder (witness generation).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use zkinfer_circuits::chips::{Elem, QuantChip};
use zkinfer_circuits::field::fr;
use zkinfer_circuits::halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use zkinfer_circuits::halo2_base::gates::circuit::CircuitBuilderStage;
use zkinfer_circuits::Fr;
use zkinfer_model::ExtremumKind;

const N: usize = 1000;

fn builder() -> BaseCircuitBuilder<Fr> {
    BaseCircuitBuilder::from_stage(CircuitBuilderStage::Mock)
        .use_k(16)
        .use_lookup_bits(15)
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
                let chip = QuantChip::new(bld.range_chip());
                let ctx = bld.main(0);
                for i in 0..N {
                    let x = ctx.load_witness(fr(i as i128 - 500));
                    chip.sign_bit(ctx, x, 24, &place).unwrap();
                }
                bld.clear();
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("dot_64_const_shift16", |b| {
        b.iter_batched(
            builder,
            |mut bld| {
                let chip = QuantChip::new(bld.range_chip());
                let ctx = bld.main(0);
                let xs: Vec<_> = (0..64)
                    .map(|i| Elem::Cell(ctx.load_witness(fr(i * 37 - 900))))
                    .collect();
                for j in 0..N / 64 {
                    let pairs: Vec<_> = xs
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (*x, Elem::Const((i * j) as i128 % 255 - 127)))
                        .collect();
                    chip.dot(ctx, &pairs, 1 << 15, 16, 32, &place).unwrap();
                }
                bld.clear();
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("max2_cells", |b| {
        b.iter_batched(
            builder,
            |mut bld| {
                let chip = QuantChip::new(bld.range_chip());
                let ctx = bld.main(0);
                for i in 0..N as i128 {
                    let a = Elem::Cell(ctx.load_witness(fr(i - 500)));
                    let c = Elem::Cell(ctx.load_witness(fr(250 - i)));
                    chip.extremum2(ctx, ExtremumKind::Max, a, c, None, 24, &place)
                        .unwrap();
                }
                bld.clear();
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, chips);
criterion_main!(benches);
