//! Segments on MockProver: each segment's circuit accepts its part of one evaluation, its
//! links are commitments both sides compute alike (salted), and a changed link is refused.

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use zkinfer_circuits::commit::commit;
use zkinfer_circuits::testing::{CellRef, MockCircuit};
use zkinfer_circuits::{build_circuit, plan_circuit, tensor_layout, Io, Links, PlanLimits};
use zkinfer_model::corpus::quantized_example as example;
use zkinfer_model::Segment;

fn links(seg: &Segment) -> Io {
    Io {
        links: Links {
            inputs: seg.boundary_in.len(),
            outputs: seg.boundary_out.len(),
        },
        ..Io::PUBLIC
    }
}

fn mock(seg: &Segment, qi: &[Vec<i64>], salt: Fr) -> MockCircuit<()> {
    let plan = plan_circuit(&seg.graph, qi, links(seg), PlanLimits::default()).unwrap();
    assert_eq!(plan.links, links(seg).links);
    let (circuit, instances) =
        build_circuit(CircuitBuilderStage::Mock, &plan, None, &seg.graph, qi, salt).unwrap();
    MockCircuit::from_circuit(circuit, plan.k, (), instances)
}

#[test]
fn segments_link_by_equal_salted_commitments() {
    let salt = Fr::from(0x5eed_u64);
    for (name, count) in [("2l_relu_fc", 2), ("4l_relu_conv_fc", 3)] {
        let (q, qi) = example(name);
        let trace = q.eval(&qi).unwrap();
        let segments = q.segments(&q.choose_cut(count).unwrap()).unwrap();
        let mut produced = std::collections::HashMap::new();
        for (s, seg) in segments.iter().enumerate() {
            let ins = seg.inputs_from(&q, &trace);
            let mut m = mock(seg, &ins, salt);
            assert!(m.satisfied(), "{name} segment {s}");
            let inst = m.instances().to_vec();
            let n_in = seg.model_inputs.iter().map(|&i| qi[i].len()).sum::<usize>();
            // Links in: right after the model inputs' values; links out: the last ones.
            for (j, &node) in seg.boundary_in.iter().enumerate() {
                let want =
                    commit(&tensor_layout(&q, node).unwrap(), &trace.values[node], salt).unwrap();
                assert_eq!(inst[n_in + j], want, "{name} segment {s} link in {j}");
                assert_eq!(
                    produced.get(&node),
                    Some(&want),
                    "{name}: producer's commitment"
                );
            }
            let first_out = inst.len() - seg.boundary_out.len();
            for (j, &node) in seg.boundary_out.iter().enumerate() {
                produced.insert(node, inst[first_out + j]);
            }
            // A changed link is refused, on either side.
            for at in (n_in..n_in + seg.boundary_in.len()).chain(first_out..inst.len()) {
                let mut changed = inst.clone();
                changed[at] += Fr::one();
                assert!(
                    !m.accepts_instances(changed),
                    "{name} segment {s} instance {at}"
                );
            }
            if name == "2l_relu_fc" {
                assert_eq!(
                    m.unconstrained_cells(),
                    Vec::<CellRef>::new(),
                    "segment {s}"
                );
            }
        }
        // The same tensor under another salt is another commitment: links hide the values.
        let node = segments[0].boundary_out[0];
        let layout = tensor_layout(&q, node).unwrap();
        assert_ne!(
            commit(&layout, &trace.values[node], salt).unwrap(),
            commit(&layout, &trace.values[node], Fr::zero()).unwrap()
        );
    }
}

/// A boundary tensor wider than the activation bits (a sum not rescaled, such as a residual
/// stream) is read back with its own width: the honest value passes, and the reference
/// evaluator refuses one past it as the circuit's range check would.
#[test]
fn a_wide_boundary_is_range_checked_to_its_own_width() {
    let (q, qi) = example("self_attention");
    let trace = q.eval(&qi).unwrap();
    let mut checked = 0;
    for count in 2..=4 {
        let segments = q.segments(&q.choose_cut(count).unwrap()).unwrap();
        for seg in &segments[1..] {
            for (j, &node) in seg.boundary_in.iter().enumerate() {
                let bits = zkinfer_model::segment::boundary_bits(&q, node);
                let input = seg.graph.inputs[seg.model_inputs.len() + j];
                assert_eq!(seg.graph.input_bits(input), bits);
                let mut ins = seg.inputs_from(&q, &trace);
                let k = seg.model_inputs.len() + j;
                ins[k][0] = 1i64 << (bits - 1);
                assert!(seg.graph.eval(&ins).is_err(), "a value past {bits} bits");
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
}

/// A link's packing is injective only because the segment reading it range-checks every
/// value to the link's own width (here 21 bits, wider than the activations'): a forger who
/// adds 2^21 to one value and takes 1 from the next keeps every packed limb, hence the
/// commitment the producing segment proved. Laid out consistently (the range-check cells
/// computed from the forged values, as a prover would), only the range-check lookup refuses it.
#[test]
fn a_link_value_outside_its_width_is_rejected_by_its_range_check() {
    use zkinfer_circuits::commit::TensorLayout;
    use zkinfer_circuits::testing::{load_range_checked_by_hand, Rejection};

    const BITS: u32 = 21;
    let layout = TensorLayout {
        shape: vec![2, 6],
        scale: 16,
        slot_bits: BITS,
    };
    let salt = Fr::from(0x5eed_u64);
    let mock = |values: &[i64]| {
        let l = layout.clone();
        MockCircuit::build(12, move |ctx, range, _| {
            let cells = load_range_checked_by_hand(ctx, range, values, BITS);
            let s = ctx.load_witness(salt);
            let c = zkinfer_circuits::commit::commit_cells(ctx, &range.gate, &l, &cells, s);
            ((), vec![c])
        })
    };
    let honest: Vec<i64> = (0..12).map(|i| 700_000 - 97_531 * i).collect();
    let m = mock(&honest);
    assert!(m.satisfied(), "the honest link must pass");
    let want = commit(&layout, &honest, salt).unwrap();
    assert_eq!(m.instances(), [want]);
    let mut forged = honest.clone();
    forged[0] += 1 << BITS;
    forged[1] -= 1;
    let mut f = mock(&forged);
    assert_eq!(f.instances(), [want], "the forgery keeps the commitment");
    assert_eq!(
        f.rejections(&[]),
        [Rejection::RangeLookup].into_iter().collect(),
        "only the link's range check refuses it"
    );
    assert!(commit(&layout, &forged, salt).is_err());
}
