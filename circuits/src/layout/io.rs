//! What the public instances hold of a model's inputs and outputs: the values, nothing
//! (private inputs), or one commitment per tensor ([`crate::commit`]).

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};
use serde::{Deserialize, Serialize};
use zkinfer_model::{QGraph, QOp};

use crate::chips::{signed_bits_for, Elem, QuantChip};
use crate::commit::{commit_cells, commit_weight_cells, commit_weight_tensors, TensorLayout};
use crate::error::CircuitError;
use crate::field::fr;

/// How a class of tensors (the inputs, the outputs) appears to a verifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Every value is a public instance (EZKL's default).
    #[default]
    Public,
    /// A private witness, not among the instances (inputs only).
    Private,
    /// A private witness with one public commitment per tensor (see [`crate::commit`]).
    Hashed,
}

impl Visibility {
    /// Its code in model ids (and `contracts/SegmentChain.sol`): 0 public, 1 private, 2 hashed.
    pub fn code(self) -> u8 {
        match self {
            Visibility::Public => 0,
            Visibility::Private => 1,
            Visibility::Hashed => 2,
        }
    }

    /// The lowercase name, as options and files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Hashed => "hashed",
        }
    }
}

/// What the public instances hold of a model's inputs and of its outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Io {
    /// The inputs: public, private or hashed.
    pub input: Visibility,
    /// The outputs: public or hashed.
    pub output: Visibility,
    /// How many of the last inputs and outputs are a segment's links (see [`Links`]).
    pub links: Links,
}

/// A segment's links: its last `inputs` graph inputs are tensors an earlier segment computed,
/// its last `outputs` graph outputs tensors a later segment reads. Each is one public
/// commitment salted like hashed inputs, whatever the model's visibilities: the proofs of two
/// segments agree on a tensor when their commitments to it are equal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Links {
    /// Trailing inputs that are links.
    pub inputs: usize,
    /// Trailing outputs that are links.
    pub outputs: usize,
}

impl Links {
    /// Whether there are none (a model in one piece).
    pub fn is_empty(&self) -> bool {
        self.inputs == 0 && self.outputs == 0
    }
}

impl Io {
    /// Public inputs and outputs.
    pub const PUBLIC: Io = Io {
        input: Visibility::Public,
        output: Visibility::Public,
        links: Links {
            inputs: 0,
            outputs: 0,
        },
    };

    /// Only `input` set; outputs public.
    pub fn inputs(input: Visibility) -> Self {
        Io {
            input,
            ..Io::PUBLIC
        }
    }

    /// Inputs and outputs as given, no links.
    pub fn new(input: Visibility, output: Visibility) -> Self {
        Io {
            input,
            output,
            ..Io::PUBLIC
        }
    }

    /// Whether any tensor is committed to.
    pub fn hashes(&self) -> bool {
        self.input == Visibility::Hashed
            || self.output == Visibility::Hashed
            || !self.links.is_empty()
    }

    /// How input `k` of `count` appears: a link is committed, the others as `input` says.
    pub fn input_of(&self, k: usize, count: usize) -> Visibility {
        if k + self.links.inputs >= count {
            Visibility::Hashed
        } else {
            self.input
        }
    }

    /// How output `k` of `count` appears: a link is committed, the others as `output` says.
    pub fn output_of(&self, k: usize, count: usize) -> Visibility {
        if k + self.links.outputs >= count {
            Visibility::Hashed
        } else {
            self.output
        }
    }

    /// Whether a salt is loaded: hashed inputs and every link are salted with it.
    fn salted(&self) -> bool {
        self.input == Visibility::Hashed || !self.links.is_empty()
    }
}

/// The layout of graph tensor `node`'s commitment. Its slot holds every honest value: an
/// input is range-checked to exactly its bits ([`QGraph::input_bits`]) where it is loaded; any other node's values
/// lie in `[-bound, bound]` (a rescaled output's bound is `2^(act_bits-1)`, a sum without a
/// rescale or a gather may exceed it), which takes one bit more than its magnitude.
pub fn tensor_layout(q: &QGraph, node: usize) -> Result<TensorLayout, CircuitError> {
    let n = &q.nodes[node];
    let slot_bits = match n.op {
        QOp::Input { .. } => q.input_bits(node),
        _ => q.act_bits.max(signed_bits_for(n.bound)),
    };
    if slot_bits > 64 {
        return Err(CircuitError::TooLarge(format!(
            "node \"{}\" may reach ±{}: beyond a 64-bit commitment slot (make its output public)",
            n.name, n.bound
        )));
    }
    Ok(TensorLayout {
        shape: n.shape.clone(),
        scale: q.scale,
        slot_bits,
    })
}

/// The layout of weight tensor `node` ([`QOp::Param`]) in the weight commitment.
pub fn weight_layout(q: &QGraph, node: usize) -> TensorLayout {
    TensorLayout {
        shape: q.nodes[node].shape.clone(),
        scale: q.scale,
        slot_bits: q.weight_bits,
    }
}

/// The commitment to `q`'s weights, computed natively (`None`: its weights are constants).
pub fn weight_commitment(q: &QGraph) -> Result<Option<Fr>, CircuitError> {
    let params = q.params();
    if params.is_empty() {
        return Ok(None);
    }
    let tensors = params
        .iter()
        .map(|&(n, values)| (q.nodes[n].shape.as_slice(), values));
    commit_weight_tensors(q.scale, q.weight_bits, tensors).map(Some)
}

/// The public instance cells of a laid-out graph: per input, its values, nothing or its
/// commitment (every input salted with `salt`, a private witness); then per output, its
/// values or its commitment (a link's salted too); last, with committed weights, their
/// commitment. `vals` holds every node's elements.
pub(super) fn expose(
    ctx: &mut Context<Fr>,
    chip: &QuantChip,
    q: &QGraph,
    vals: &[Vec<Elem>],
    io: Io,
    salt: Fr,
) -> Result<Vec<AssignedValue<Fr>>, CircuitError> {
    let mut public = Vec::new();
    if io.links.inputs > q.inputs.len() || io.links.outputs > q.outputs.len() {
        return Err(CircuitError::Internal(format!(
            "{:?}: more links than the segment's {} inputs and {} outputs",
            io.links,
            q.inputs.len(),
            q.outputs.len()
        )));
    }
    let salt = io.salted().then(|| ctx.load_witness(salt));
    for (k, &i) in q.inputs.iter().enumerate() {
        let cells: Vec<AssignedValue<Fr>> = vals[i]
            .iter()
            .map(|e| match e {
                Elem::Cell(c) => Ok(*c),
                Elem::Const(_) => Err(CircuitError::Internal("an input is a constant".into())),
            })
            .collect::<Result<_, _>>()?;
        match (io.input_of(k, q.inputs.len()), salt) {
            (Visibility::Public, _) => public.extend(cells),
            (Visibility::Private, _) => {}
            // Inputs are range-checked to act_bits where they are loaded, at most the slot.
            (Visibility::Hashed, Some(salt)) => public.push(commit_cells(
                ctx,
                chip.gate(),
                &tensor_layout(q, i)?,
                &cells,
                salt,
            )),
            (Visibility::Hashed, None) => unreachable!("a salt is loaded for hashed inputs"),
        }
    }
    for (k, &o) in q.outputs.iter().enumerate() {
        let layout = tensor_layout(q, o)?;
        let half = 1i128 << (layout.slot_bits - 1);
        let visibility = io.output_of(k, q.outputs.len());
        let mut cells = Vec::with_capacity(vals[o].len());
        for (j, e) in vals[o].iter().enumerate() {
            cells.push(match (*e, visibility) {
                (Elem::Cell(c), Visibility::Hashed) => {
                    // Op outputs are range-checked to their own bounds, not always the slot's:
                    // the slot width is checked here, so the packing stays injective.
                    let place = || format!("output {k} element {j}");
                    chip.signed_range(ctx, c, layout.slot_bits, &place)?;
                    c
                }
                (Elem::Cell(c), _) => c,
                (Elem::Const(v), Visibility::Hashed) if !(-half..half).contains(&v) => {
                    return Err(CircuitError::OutOfRange {
                        place: format!("output {k} element {j} (a constant), its commitment slot"),
                        value: v,
                        bits: layout.slot_bits,
                    })
                }
                (Elem::Const(v), _) => ctx.load_constant(fr(v)),
            });
        }
        match (visibility, salt) {
            (Visibility::Public, _) => public.extend(cells),
            // A link is salted: the next segment commits to its input with the same salt.
            (Visibility::Hashed, Some(salt)) if k + io.links.outputs >= q.outputs.len() => {
                public.push(commit_cells(ctx, chip.gate(), &layout, &cells, salt));
            }
            (Visibility::Hashed, _) => {
                let zero = ctx.load_zero();
                public.push(commit_cells(ctx, chip.gate(), &layout, &cells, zero));
            }
            (Visibility::Private, _) => {
                return Err(CircuitError::Internal(
                    "outputs are public or hashed, never private".into(),
                ))
            }
        }
    }
    let params = q.params();
    if !params.is_empty() {
        let tensors = params
            .iter()
            .map(|&(n, _)| {
                let cells = vals[n]
                    .iter()
                    .map(|e| match e {
                        // Range-checked to the weight width where loaded: the slot.
                        Elem::Cell(c) => Ok(*c),
                        Elem::Const(_) => {
                            Err(CircuitError::Internal("a weight is a constant".into()))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((weight_layout(q, n), cells))
            })
            .collect::<Result<Vec<_>, CircuitError>>()?;
        public.push(commit_weight_cells(ctx, chip.gate(), &tensors));
    }
    Ok(public)
}
