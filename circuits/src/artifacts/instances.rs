//! What a settings file says of a model's public instances: how many stand for the inputs and
//! the outputs, where the commitments sit among them, their layouts, and the commitments of
//! given inputs and outputs.

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use super::Settings;

impl Settings {
    /// Number of public instances that stand for the inputs: every value when public, one
    /// commitment per input when hashed, none when private; one commitment per link.
    pub fn num_input_instances(&self) -> usize {
        let links = self.plan.links.inputs;
        let model = &self.input_shapes[..self.input_shapes.len().saturating_sub(links)];
        instance_count(self.plan.visibility, model) + links
    }

    /// The input commitments among the instances (hashed inputs only; a segment's links
    /// excluded).
    pub fn input_commitments<'a>(&self, instances: &'a [Fr]) -> Option<&'a [Fr]> {
        let model = self
            .input_shapes
            .len()
            .saturating_sub(self.plan.links.inputs);
        (self.plan.visibility == crate::Visibility::Hashed)
            .then(|| instances.get(..model))
            .flatten()
    }

    /// The output commitments among the instances (hashed outputs only; a segment's links
    /// excluded).
    pub fn output_commitments<'a>(&self, instances: &'a [Fr]) -> Option<&'a [Fr]> {
        let at = self.num_input_instances();
        let model = self
            .output_shapes
            .len()
            .saturating_sub(self.plan.links.outputs);
        (self.plan.output_visibility == crate::Visibility::Hashed)
            .then(|| instances.get(at..at + model))
            .flatten()
    }

    /// A segment's link commitments among the instances: those of its inputs (tensors an
    /// earlier segment computed), then those of its outputs (tensors later ones read).
    pub fn link_commitments<'a>(&self, instances: &'a [Fr]) -> Option<(&'a [Fr], &'a [Fr])> {
        let links = self.plan.links;
        let inputs_end = self.num_input_instances();
        let model_out = self.output_shapes.len().checked_sub(links.outputs)?;
        let outputs_end = inputs_end
            + instance_count(
                self.plan.output_visibility,
                &self.output_shapes[..model_out],
            )
            + links.outputs;
        Some((
            instances.get(inputs_end.checked_sub(links.inputs)?..inputs_end)?,
            instances.get(outputs_end - links.outputs..outputs_end)?,
        ))
    }

    /// The instances of model input `k` of this circuit (links excluded), as `visibility`
    /// lays them out: every value, one commitment, or none.
    pub fn model_input_instances<'a>(&self, instances: &'a [Fr], k: usize) -> Option<&'a [Fr]> {
        let at: usize = (0..k)
            .map(|i| instance_count(self.plan.visibility, &self.input_shapes[i..=i]))
            .sum();
        let n = instance_count(self.plan.visibility, self.input_shapes.get(k..=k)?);
        instances.get(at..at + n)
    }

    /// The instances of model output `k` of this circuit (links excluded).
    pub fn model_output_instances<'a>(&self, instances: &'a [Fr], k: usize) -> Option<&'a [Fr]> {
        let at: usize = self.num_input_instances()
            + (0..k)
                .map(|i| instance_count(self.plan.output_visibility, &self.output_shapes[i..=i]))
                .sum::<usize>();
        let n = instance_count(self.plan.output_visibility, self.output_shapes.get(k..=k)?);
        instances.get(at..at + n)
    }

    /// The weight commitment among the instances (hashed weights only): the last one.
    pub fn proven_weight_commitment(&self, instances: &[Fr]) -> Option<Fr> {
        (self.weights == zkinfer_model::Weights::Hashed)
            .then(|| instances.last().copied())
            .flatten()
    }

    /// The commitment layout of input `i`.
    pub fn input_layout(&self, i: usize) -> crate::commit::TensorLayout {
        self.layout(&self.input_shapes[i], self.input_slot_bits.get(i))
    }

    /// The commitment layout of output `i`.
    pub fn output_layout(&self, i: usize) -> crate::commit::TensorLayout {
        self.layout(&self.output_shapes[i], self.output_slot_bits.get(i))
    }

    fn layout(&self, shape: &[usize], slot_bits: Option<&u32>) -> crate::commit::TensorLayout {
        crate::commit::TensorLayout {
            shape: shape.to_vec(),
            scale: self.scale,
            slot_bits: slot_bits.copied().unwrap_or(self.act_bits),
        }
    }

    /// The commitments to float inputs (an EZKL-format file's data), quantized as the prover
    /// quantizes them, salted with `salt`.
    pub fn commit_inputs(
        &self,
        data: &[Vec<f64>],
        salt: Fr,
    ) -> Result<Vec<Fr>, crate::CircuitError> {
        let q = self.quantize_input(data)?;
        q.iter()
            .enumerate()
            .map(|(i, v)| crate::commit::commit(&self.input_layout(i), v, salt))
            .collect()
    }

    /// The commitments to outputs as a proof file holds them (dequantized; each value is
    /// exactly `integer / 2^scale`, so it quantizes back to its integer).
    pub fn commit_outputs(&self, outputs: &[Vec<f64>]) -> Result<Vec<Fr>, crate::CircuitError> {
        if outputs.len()
            != self.output_shapes.len() - self.plan.links.outputs.min(self.output_shapes.len())
        {
            return Err(crate::CircuitError::Model(
                zkinfer_model::ModelError::Input(format!(
                    "{} outputs, the model has {}",
                    outputs.len(),
                    self.output_shapes.len()
                )),
            ));
        }
        outputs
            .iter()
            .enumerate()
            .map(|(i, xs)| {
                let scale = (1u64 << self.scale) as f64;
                let v: Vec<i64> = xs
                    .iter()
                    .map(|&x| {
                        let q = x * scale;
                        if q.is_finite() && q == q.round() && q.abs() < (1u64 << 62) as f64 {
                            Ok(q as i64)
                        } else {
                            Err(crate::CircuitError::Model(
                                zkinfer_model::ModelError::Input(format!(
                                    "output value {x} is not a multiple of 2^-{}",
                                    self.scale
                                )),
                            ))
                        }
                    })
                    .collect::<Result<_, _>>()?;
                crate::commit::commit(&self.output_layout(i), &v, Fr::zero())
            })
            .collect()
    }
}

fn instance_count(visibility: crate::Visibility, shapes: &[Vec<usize>]) -> usize {
    match visibility {
        crate::Visibility::Public => shapes.iter().map(|s| s.iter().product::<usize>()).sum(),
        crate::Visibility::Private => 0,
        crate::Visibility::Hashed => shapes.len(),
    }
}
