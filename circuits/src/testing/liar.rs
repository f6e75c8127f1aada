//! The lying prover: the test that finds missing constraints.
//!
//! Deleting a constraint shows that the ones present are needed, never that one is missing.
//! Here the real witness generator is run with injected lies, the keys (fixed columns,
//! selectors, copy constraints) stay those the honest layout set up, and every lie must be
//! rejected by some constraint. Three families:
//!
//! - **an op lies about its output**: one element ±1, or the whole output shifted, with
//!   everything downstream laid out from the lie ([`crate::layout::OutputLie`]);
//! - **the prover uses another model**: a constant an op reads (a weight, a bias, a shift, a
//!   table entry or interpolation point, an index, a padding or clamp value) changed in the
//!   prover's own copy of the graph, the witness laid out from that copy. A constant is
//!   changed wherever it occurs in its op (each value maps to a fresh one), so equal weights
//!   stay equal and products that share a factor stay shared: the layout is the same. A lie
//!   that changes the layout itself (which cells exist) is out of scope and is counted apart;
//! - **any cell**: every advice cell moved by one together with its copy class (public values
//!   included).
//!
//! After each lie the forger also tries to mend what fails: every failing gate polynomial that
//! reads a *slack* cell (no copy, no lookup, read by that polynomial alone) is solved for it
//! ([`Trace::compensate`]). That is how a constant beside a free advice cell is forged (the
//! Freivalds weight forgery of layout 1). A lie survives when nothing rejects it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use rand::{Rng, SeedableRng};
use zkinfer_model::{QGraph, QOp, Src};

use super::trace::{At, Col, Trace};
use super::{CellRef, MockCircuit, Rejection};
use crate::circuit::ModelCircuit;
pub use crate::layout::OutputLie;
use crate::layout::{build_circuit_lying, lay_out_planned, Lied};
use crate::plan::CircuitPlan;

/// A family of lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// An op lies about its output.
    OpOutput,
    /// The prover uses another model.
    OtherModel,
    /// Any cell moved with its copy class.
    AnyCell,
}

impl Family {
    /// The family's name in tables.
    pub fn name(&self) -> &'static str {
        match self {
            Family::OpOutput => "op output",
            Family::OtherModel => "other model",
            Family::AnyCell => "any cell",
        }
    }
}

/// What became of one lie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// These constraints rejected it.
    Rejected(BTreeSet<Rejection>),
    /// Nothing rejected it (after the forger mended this many cells).
    Survived {
        /// Slack cells the forger solved for.
        mended: usize,
    },
    /// Not a lie this harness can tell: why.
    Skipped(String),
}

/// One lie and its outcome.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Its family.
    pub family: Family,
    /// What was changed.
    pub lie: String,
    /// What became of it.
    pub outcome: Outcome,
}

/// Everything the lying prover found on one circuit.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Every lie told.
    pub verdicts: Vec<Verdict>,
    /// Slack advice cells of the honest circuit (see [`Trace::slack_cells`]), as
    /// `(column, row)`.
    pub slack: Vec<(usize, usize)>,
    /// Assigned advice cells no constraint reads (harmless, counted).
    pub unread: usize,
    /// Rows of the circuit.
    pub k: u32,
}

/// Per family: lies told, rejected, survived, skipped, and the constraints that rejected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Lies told (skipped ones excluded).
    pub told: usize,
    /// Rejected.
    pub rejected: usize,
    /// Survived.
    pub survived: usize,
    /// Skipped (out of scope).
    pub skipped: usize,
    /// How many lies each constraint rejected.
    pub by: BTreeMap<String, usize>,
}

impl Report {
    /// The lies nothing rejected.
    pub fn survivors(&self) -> Vec<&Verdict> {
        self.verdicts
            .iter()
            .filter(|v| matches!(v.outcome, Outcome::Survived { .. }))
            .collect()
    }

    /// The tally of one family.
    pub fn tally(&self, family: Family) -> Tally {
        let mut t = Tally::default();
        for v in self.verdicts.iter().filter(|v| v.family == family) {
            match &v.outcome {
                Outcome::Rejected(by) => {
                    t.told += 1;
                    t.rejected += 1;
                    for r in by {
                        *t.by.entry(r.short_name()).or_default() += 1;
                    }
                }
                Outcome::Survived { .. } => {
                    t.told += 1;
                    t.survived += 1;
                }
                Outcome::Skipped(_) => t.skipped += 1,
            }
        }
        t
    }
}

/// How far the lying prover goes.
#[derive(Clone, Debug)]
pub struct Options {
    /// Move every copy class of circuits up to this many rows; beyond, a sample.
    pub all_classes_up_to_k: u32,
    /// Classes sampled beyond that (besides every slack cell and every class holding a
    /// column's first or last assigned cell).
    pub sample: usize,
    /// Seed of the sample.
    pub seed: u64,
    /// Which families to run.
    pub families: Vec<Family>,
    /// Lay Freivalds products out with their constant entries unbound, as layout 1 in effect
    /// did: what the lying prover finds there.
    pub layout_1: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            all_classes_up_to_k: 12,
            sample: 400,
            seed: 7,
            families: vec![Family::OpOutput, Family::OtherModel, Family::AnyCell],
            layout_1: false,
        }
    }
}

/// The plan of `q` at exactly `k`, lincomb width (0: every dot product in the gate) and
/// Freivalds choice, whatever the planner would prefer.
pub fn plan_for(
    q: &QGraph,
    inputs: &[Vec<i64>],
    io: crate::Io,
    k: u32,
    lincomb_width: usize,
    freivalds: bool,
) -> Result<CircuitPlan, crate::CircuitError> {
    crate::plan::plan_forced(q, inputs, io, k, lincomb_width, freivalds)
}

/// `q` laid out on `inputs` by `plan` with `lie` told consistently (every copy of a lying
/// cell, public values included, holds the lie): the witness a forger brings, for MockProver
/// or for `create_proof` with the honest proving key. Returns it with its public instances.
pub fn lying_circuit(
    q: &QGraph,
    inputs: &[Vec<i64>],
    plan: &CircuitPlan,
    lie: &OutputLie,
) -> Result<(ModelCircuit, Vec<Fr>), crate::CircuitError> {
    let (circuit, instances, lied) = build_circuit_lying(
        CircuitBuilderStage::Mock,
        plan,
        None,
        q,
        inputs,
        Fr::zero(),
        Some(lie),
    )?;
    let mut m = MockCircuit::from_circuit(circuit, plan.k, (), instances);
    let changes: Vec<(CellRef, Fr)> = lied
        .iter()
        .map(|&(offset, v)| (CellRef::Base(offset), v))
        .collect();
    m.force(&changes);
    let instances = m.instances().to_vec();
    Ok((m.into_circuit(), instances))
}

/// `q` laid out on `inputs` by `plan` for MockProver, with `lie` told; the lying cells with
/// their values.
fn build(
    q: &QGraph,
    inputs: &[Vec<i64>],
    plan: &CircuitPlan,
    lie: Option<&OutputLie>,
    opts: &Options,
) -> Result<(ModelCircuit, Vec<Fr>, Lied), crate::CircuitError> {
    let mut circuit = ModelCircuit::new(CircuitBuilderStage::Mock, plan.params.clone(), None);
    circuit.freivalds.layout_1(opts.layout_1);
    let (instances, lied) = lay_out_planned(&mut circuit, plan, q, inputs, Fr::zero(), lie)?;
    let stats = circuit.base.statistics();
    let cells = (
        stats.gate.total_advice_per_phase[0],
        stats.total_lookup_advice_per_phase[0],
    );
    if (cells.0, cells.1) != (plan.advice_cells, plan.lookup_cells) {
        return Err(crate::CircuitError::Internal(format!(
            "{} gate and {} lookup cells, the plan has {} and {}",
            cells.0, cells.1, plan.advice_cells, plan.lookup_cells
        )));
    }
    Ok((circuit, instances, lied))
}

/// Every advice and instance cell where `a` and `b` differ.
fn diff(a: &Trace, b: &Trace) -> Vec<At> {
    let mut out = Vec::new();
    for c in 0..a.advice_columns() {
        for row in 0..a.usable {
            if a.advice(c, row) != b.advice(c, row) {
                out.push((Col::Advice(c), row));
            }
        }
    }
    for row in 0..a.usable {
        let at = (Col::Instance(0), row);
        if a.get(at) != b.get(at) {
            out.push(at);
        }
    }
    out
}

/// Mends what it can (see [`Trace::compensate`]; never the cells in `keep`: a forger does not
/// undo its own lie), then names what
/// still fails near the changed cells. Returns the outcome and the mended cells with the
/// values they had.
fn judge(t: &mut Trace, changed: &[At], keep: &[At]) -> (Outcome, Vec<(At, Fr)>) {
    let mended = t.compensate(changed, keep);
    let mut near = changed.to_vec();
    near.extend(mended.iter().map(|(a, _)| *a));
    let by = t.rejections_near(&near);
    let outcome = if by.is_empty() {
        Outcome::Survived {
            mended: mended.len(),
        }
    } else {
        Outcome::Rejected(by)
    };
    (outcome, mended)
}

/// Runs the lying prover over `q` on `inputs` laid out by `plan`.
pub fn run(q: &QGraph, inputs: &[Vec<i64>], plan: &CircuitPlan, opts: &Options) -> Report {
    let (circuit, instances, _) =
        build(q, inputs, plan, None, opts).expect("the honest model lays out");
    let mut base = Trace::record(&circuit, plan.k, &instances);
    let honest_verdict = base.rejections();
    assert!(
        honest_verdict.is_empty(),
        "the honest witness is rejected: {honest_verdict:?}"
    );
    let cells = base.audited_cells();
    let (slack, unread) = base.slack_cells(&cells);
    let mut report = Report {
        slack: slack
            .iter()
            .filter_map(|&(c, r)| match c {
                Col::Advice(c) => Some((c, r)),
                _ => None,
            })
            .collect(),
        // Unassigned cells a gate names with a fixed zero weight (lincomb padding) are not
        // counted: nothing but the gate's syntax reads them.
        unread: unread
            .iter()
            .filter(|&&(c, r)| matches!(c, Col::Advice(c) if base.is_assigned(c, r)))
            .count(),
        k: plan.k,
        ..Report::default()
    };
    if opts.families.contains(&Family::OpOutput) {
        op_output_lies(q, inputs, plan, &base, opts, &mut report);
    }
    if opts.families.contains(&Family::OtherModel) {
        other_model_lies(q, inputs, plan, &base, opts, &mut report);
    }
    if opts.families.contains(&Family::AnyCell) {
        any_cell_lies(&mut base, &slack, &unread, opts, &mut report);
    }
    report
}

fn op_output_lies(
    q: &QGraph,
    inputs: &[Vec<i64>],
    plan: &CircuitPlan,
    honest: &Trace,
    opts: &Options,
    report: &mut Report,
) {
    for (id, node) in q.nodes.iter().enumerate() {
        if matches!(node.op, QOp::Input { .. } | QOp::Remap { .. }) || node.is_empty() {
            continue;
        }
        let mid = node.len() / 2;
        let lies = [
            (
                vec![mid],
                1,
                format!("node {id} \"{}\" element {mid} + 1", node.name),
            ),
            (
                vec![mid],
                -1,
                format!("node {id} \"{}\" element {mid} − 1", node.name),
            ),
            (
                (0..node.len()).collect(),
                1,
                format!("node {id} \"{}\" whole output + 1", node.name),
            ),
        ];
        for (elems, delta, what) in lies {
            let lie = OutputLie {
                node: id,
                elems,
                delta,
            };
            let outcome = tell_output_lie(q, inputs, plan, honest, &lie, opts);
            report.verdicts.push(Verdict {
                family: Family::OpOutput,
                lie: what,
                outcome,
            });
        }
    }
}

fn tell_output_lie(
    q: &QGraph,
    inputs: &[Vec<i64>],
    plan: &CircuitPlan,
    honest: &Trace,
    lie: &OutputLie,
    opts: &Options,
) -> Outcome {
    let (circuit, instances, lied) = match build(q, inputs, plan, Some(lie), opts) {
        Ok(c) => c,
        Err(e) => return Outcome::Skipped(format!("the witness generator refused it: {e}")),
    };
    if lied.is_empty() {
        return Outcome::Skipped("no element is a cell of the node's own".into());
    }
    let mut m = MockCircuit::from_circuit(circuit, plan.k, (), instances);
    let changes: Vec<(CellRef, Fr)> = lied
        .iter()
        .map(|&(offset, v)| (CellRef::Base(offset), v))
        .collect();
    m.force(&changes);
    let mut t = m.trace().with_keys_of(honest);
    let changed = diff(honest, &t);
    if changed.is_empty() {
        return Outcome::Skipped("the lie changed no cell".into());
    }
    judge(&mut t, &changed, &changed).0
}

/// Each value `from` of `values` replaced by `to` (and only those): equal values stay equal.
fn substitute(values: &mut [i64], from: i64, to: i64) {
    for v in values.iter_mut().filter(|v| **v == from) {
        *v = to;
    }
}

/// A value near `c` that `taken` does not hold, and neither 0 nor 1 (which lay out
/// differently: a zero weight drops its term, a unit pass-through keeps its source's cell).
fn fresh(c: i64, taken: &HashSet<i64>) -> i64 {
    (1..)
        .flat_map(|d| [c + d, c - d])
        .find(|v| *v != 0 && *v != 1 && !taken.contains(v))
        .expect("an unused value")
}

/// The forger's own models: one constant of one op changed (see the module documentation).
fn other_models(q: &QGraph) -> Vec<(String, QGraph)> {
    let mut out = Vec::new();
    for (id, node) in q.nodes.iter().enumerate() {
        let name = |what: String| format!("node {id} \"{}\": {what}", node.name);
        let mut push = |what: String, op: QOp| {
            let mut forged = q.clone();
            forged.nodes[id].op = op;
            out.push((name(what), forged));
        };
        match &node.op {
            QOp::Input { .. } => {}
            // A committed weight: the forger's own value, the witness and its commitment
            // recomputed from it, the verifier still expecting the registered commitment.
            QOp::Param { values } => {
                if let Some(&w) = values.first() {
                    let taken: HashSet<i64> = values.iter().copied().collect();
                    let to = fresh(w, &taken);
                    let mut vs = values.clone();
                    vs[0] = to;
                    push(
                        format!("committed weight 0: {w} → {to}"),
                        QOp::Param { values: vs },
                    );
                }
            }
            QOp::Linear { terms, bias, shift } => {
                let coefs: HashSet<i64> = terms.entries().iter().map(|t| t.2).collect();
                if let Some(&(_, _, c)) = terms.entries().iter().find(|t| t.2 != 0 && t.2 != 1) {
                    let to = fresh(c, &coefs);
                    let mut t = terms.clone();
                    for e in t.entries_mut() {
                        if e.2 == c {
                            e.2 = to;
                        }
                    }
                    push(
                        format!("weight {c} → {to}"),
                        QOp::Linear {
                            terms: t,
                            bias: bias.clone(),
                            shift: *shift,
                        },
                    );
                }
                if let Some(&b) = bias.first() {
                    let taken: HashSet<i64> = bias.iter().copied().collect();
                    let to = fresh(b, &taken);
                    let mut bs = bias.clone();
                    substitute(&mut bs, b, to);
                    push(
                        format!("bias {b} → {to}"),
                        QOp::Linear {
                            terms: terms.clone(),
                            bias: bs,
                            shift: *shift,
                        },
                    );
                }
                if *shift > 0 {
                    push(
                        format!("shift {shift} → {}", shift + 1),
                        QOp::Linear {
                            terms: terms.clone(),
                            bias: bias.clone(),
                            shift: shift + 1,
                        },
                    );
                }
            }
            QOp::Bilinear { pairs, shift } => {
                push(
                    format!("shift {shift} → {}", shift + 1),
                    QOp::Bilinear {
                        pairs: pairs.clone(),
                        shift: shift + 1,
                    },
                );
            }
            QOp::Extremum { kind, candidates } => {
                let consts: HashSet<i64> = candidates
                    .entries()
                    .iter()
                    .filter_map(|s| match s {
                        Src::Const(c) => Some(*c),
                        Src::Elem { .. } => None,
                    })
                    .collect();
                if let Some(&c) = consts.iter().min() {
                    let to = fresh(c, &consts);
                    let mut cands = candidates.clone();
                    for s in cands.entries_mut() {
                        if *s == Src::Const(c) {
                            *s = Src::Const(to);
                        }
                    }
                    push(
                        format!("clamp constant {c} → {to}"),
                        QOp::Extremum {
                            kind: *kind,
                            candidates: cands,
                        },
                    );
                }
            }
            QOp::Remap { srcs } => {
                let consts: HashSet<i64> = srcs
                    .iter()
                    .filter_map(|s| match s {
                        Src::Const(c) => Some(*c),
                        Src::Elem { .. } => None,
                    })
                    .collect();
                if let Some(&c) = consts.iter().min() {
                    let to = fresh(c, &consts);
                    let mut s2 = srcs.clone();
                    for s in &mut s2 {
                        if *s == Src::Const(c) {
                            *s = Src::Const(to);
                        }
                    }
                    push(
                        format!("padding constant {c} → {to}"),
                        QOp::Remap { srcs: s2 },
                    );
                }
                let input_len = node.inputs.first().map_or(0, |&i| q.nodes[i].len() as u32);
                if let Some(i) = srcs
                    .iter()
                    .position(|s| matches!(s, Src::Elem { slot: 0, .. }))
                {
                    if input_len > 1 {
                        let mut s2 = srcs.clone();
                        if let Src::Elem { idx, .. } = &mut s2[i] {
                            *idx = (*idx + 1) % input_len;
                        }
                        push(
                            format!("index of element {i} moved"),
                            QOp::Remap { srcs: s2 },
                        );
                    }
                }
            }
            QOp::Sqrt { shift } => push(
                format!("shift {shift} → {}", shift + 1),
                QOp::Sqrt { shift: shift + 1 },
            ),
            QOp::Divide { pairs, shift } => {
                push(
                    format!("shift {shift} → {}", shift + 1),
                    QOp::Divide {
                        pairs: pairs.clone(),
                        shift: shift + 1,
                    },
                );
            }
            QOp::Lookup { func, table } => {
                let mut t = table.clone();
                for v in &mut t.values {
                    *v += 1;
                }
                push(
                    "every table entry + 1".into(),
                    QOp::Lookup {
                        func: *func,
                        table: t,
                    },
                );
                let mut t = table.clone();
                t.lo -= 1;
                push(
                    "interpolation points moved one step".into(),
                    QOp::Lookup {
                        func: *func,
                        table: t,
                    },
                );
            }
            QOp::Gather {
                tables,
                picks,
                shift,
            } => {
                let mut t = tables.clone();
                if let Some(first) = t.first_mut() {
                    for v in &mut first.values {
                        *v += 1;
                    }
                }
                push(
                    "every entry of the first column + 1".into(),
                    QOp::Gather {
                        tables: t,
                        picks: picks.clone(),
                        shift: *shift,
                    },
                );
                if tables.len() > 1 {
                    let mut p = picks.clone();
                    if let Some(first) = p.first_mut() {
                        first.1 = (first.1 + 1) % tables.len() as u32;
                    }
                    push(
                        "column of the first pick moved".into(),
                        QOp::Gather {
                            tables: tables.clone(),
                            picks: p,
                            shift: *shift,
                        },
                    );
                }
            }
        }
    }
    out
}

fn other_model_lies(
    q: &QGraph,
    inputs: &[Vec<i64>],
    plan: &CircuitPlan,
    honest: &Trace,
    opts: &Options,
    report: &mut Report,
) {
    let assigned: Vec<At> = honest.assigned_cells();
    for (lie, forged) in other_models(q) {
        let outcome = match build(&forged, inputs, plan, None, opts) {
            Err(e) => Outcome::Skipped(format!("does not lay out in the same shape: {e}")),
            Ok((circuit, instances, _)) => {
                let t = Trace::record(&circuit, plan.k, &instances);
                if t.assigned_cells() != assigned {
                    Outcome::Skipped("changes the layout (other cells)".into())
                } else {
                    let mut t = t.with_keys_of(honest);
                    if q.hashes_weights() {
                        // The statement is the registered model's: its weight commitment.
                        let last = plan.num_instances - 1;
                        t.set_instance(0, last, honest.instance_value(0, last));
                    }
                    let changed = diff(honest, &t);
                    if changed.is_empty() {
                        Outcome::Skipped("no effect on this input".into())
                    } else {
                        judge(&mut t, &changed, &changed).0
                    }
                }
            }
        };
        report.verdicts.push(Verdict {
            family: Family::OtherModel,
            lie,
            outcome,
        });
    }
}

fn any_cell_lies(
    base: &mut Trace,
    slack: &[At],
    unread: &[At],
    opts: &Options,
    report: &mut Report,
) {
    // A cell no constraint reads (in no copy class, no lookup, no gate) affects nothing:
    // moving it is no lie. The slack audit counts them.
    let unread: HashSet<At> = unread.iter().copied().collect();
    let cells: Vec<At> = base
        .audited_cells()
        .into_iter()
        .filter(|c| !unread.contains(c))
        .collect();
    // One representative per copy class; classes holding a constant cannot move.
    let mut seen = HashSet::new();
    let mut classes: Vec<Vec<At>> = Vec::new();
    for &at in &cells {
        let members = match base.classes().of(at) {
            Some(id) => {
                if !seen.insert(id) {
                    continue;
                }
                base.classes().members(id).to_vec()
            }
            None => vec![at],
        };
        if members.iter().any(|(c, _)| matches!(c, Col::Fixed(_))) {
            continue;
        }
        classes.push(members);
    }
    let chosen: Vec<Vec<At>> = if base.k <= opts.all_classes_up_to_k {
        classes
    } else {
        // Every slack cell, every class holding a column's first or last assigned cell
        // (where regions start and end), and a seeded sample.
        let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
        let mut ends: HashSet<At> = slack.iter().copied().collect();
        let mut first_last: HashMap<Col, (usize, usize)> = HashMap::new();
        for &(c, r) in &cells {
            let e = first_last.entry(c).or_insert((r, r));
            e.0 = e.0.min(r);
            e.1 = e.1.max(r);
        }
        for (c, (a, b)) in first_last {
            ends.insert((c, a));
            ends.insert((c, b));
        }
        let mut picked: Vec<Vec<At>> = classes
            .iter()
            .filter(|m| m.iter().any(|c| ends.contains(c)))
            .cloned()
            .collect();
        for _ in 0..opts.sample.min(classes.len()) {
            picked.push(classes[rng.gen_range(0..classes.len())].clone());
        }
        picked
    };
    for members in chosen {
        let before: Vec<Fr> = members.iter().map(|&m| base.get(m)).collect();
        let moved = before[0] + Fr::ONE;
        for &m in &members {
            base.set(m, moved);
        }
        let (outcome, mended) = judge(base, &members, &members);
        for (a, v) in mended.into_iter().rev() {
            base.set(a, v);
        }
        for (&m, &v) in members.iter().zip(&before) {
            base.set(m, v);
        }
        let (c, r) = members[0];
        report.verdicts.push(Verdict {
            family: Family::AnyCell,
            lie: format!("{c:?} row {r} + 1 ({} cells)", members.len()),
            outcome,
        });
    }
}

impl Rejection {
    /// A short name for tables.
    pub fn short_name(&self) -> String {
        match self {
            Rejection::BasicGate => "basic gate".into(),
            Rejection::LinCombStep => "lincomb step".into(),
            Rejection::LinCombEnds => "lincomb ends".into(),
            Rejection::RangeLookup => "range lookup".into(),
            Rejection::FunctionLookup => "function lookup".into(),
            Rejection::FreivaldsStart => "freivalds start".into(),
            Rejection::FreivaldsHorner => "freivalds horner".into(),
            Rejection::FreivaldsDot => "freivalds dot".into(),
            Rejection::FreivaldsCheck => "freivalds check".into(),
            Rejection::Copy => "copy".into(),
            Rejection::Other(s) => s.clone(),
        }
    }
}
