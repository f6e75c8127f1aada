//! The TFHE parameter sets encrypted inference runs on, with what each guarantees.

use serde::{Deserialize, Serialize};
use tfhe::shortint::parameters::v1_8::{
    V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
    V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128,
};
use tfhe::shortint::ClassicPBSParameters;

/// Security level of every parameter set offered (tfhe-rs's defaults, estimated by Zama with
/// the lattice estimator).
pub const SECURITY_BITS: u32 = 128;

/// Default bound on the probability that one bootstrap (or one output decryption) is wrong.
pub const DEFAULT_LOG2_P_FAIL: f64 = -40.0;

/// A tfhe-rs shortint parameter set: a message space of `M = message·carry` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamSet {
    /// 4-bit accumulators (`M = 16`): tfhe-rs 1.8 `PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128`,
    /// p-fail 2^-129.6 at 2-norm 5, N = 2048.
    M2C2,
    /// 6-bit accumulators (`M = 64`): tfhe-rs 1.8 `PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128`,
    /// p-fail 2^-129.0 at 2-norm 9, N = 8192.
    M3C3,
}

impl ParamSet {
    /// Every set, cheapest first.
    pub const ALL: [ParamSet; 2] = [ParamSet::M2C2, ParamSet::M3C3];

    /// The tfhe-rs parameters.
    pub fn tfhe(self) -> ClassicPBSParameters {
        match self {
            ParamSet::M2C2 => V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
            ParamSet::M3C3 => V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128,
        }
    }

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            ParamSet::M2C2 => "m2c2",
            ParamSet::M3C3 => "m3c3",
        }
    }

    /// Parses a command-line name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Values an accumulator can hold: the bootstrap's table size.
    pub fn modulus(self) -> u64 {
        let p = self.tfhe();
        p.message_modulus.0 * p.carry_modulus.0
    }

    /// Values a fresh input encryption holds (the message part, without carries).
    pub fn message_modulus(self) -> u64 {
        self.tfhe().message_modulus.0
    }

    /// The 2-norm of a dot product of fresh ciphertexts at which tfhe-rs states its failure
    /// probability ([`Self::nominal_log2_p_fail`]); it is the set's `max_noise_level`.
    pub fn nominal_norm(self) -> f64 {
        self.tfhe().max_noise_level.get() as f64
    }

    /// log2 of the failure probability of one bootstrap at [`Self::nominal_norm`].
    pub fn nominal_log2_p_fail(self) -> f64 {
        self.tfhe().log2_p_fail
    }

    /// An upper bound on log2 of the probability that a bootstrap (or decryption) of a dot
    /// product with this 2-norm of integer weights over fresh ciphertexts fails.
    ///
    /// Why this bound holds: the noise entering the bootstrap is Gaussian-like with variance
    /// `norm²·σ² + σ_ks² + σ_ms²`, and tfhe-rs sized the set so that a failure (noise beyond half
    /// a message slot) has probability `2^nominal` at `norm = ν`. Above `ν` the variance grows
    /// at most as `(norm/ν)²` times the nominal one (the keyswitch and modulus-switch terms do
    /// not grow), so the margin in standard deviations shrinks at most by `ν/norm`.
    pub fn log2_p_fail(self, norm: f64) -> f64 {
        let nominal = self.nominal_log2_p_fail();
        let nu = self.nominal_norm();
        if norm <= nu {
            return nominal;
        }
        let margin = sigmas_for_two_sided(nominal) * nu / norm;
        two_sided_log2(margin)
    }

    /// The largest 2-norm whose failure bound ([`Self::log2_p_fail`]) is at most `2^log2_p`.
    pub fn max_norm(self, log2_p: f64) -> f64 {
        let nominal = self.nominal_log2_p_fail();
        if log2_p <= nominal {
            return self.nominal_norm();
        }
        self.nominal_norm() * sigmas_for_two_sided(nominal) / sigmas_for_two_sided(log2_p)
    }
}

/// log2 of `P(|Z| > t)` for a standard normal `Z`.
fn two_sided_log2(t: f64) -> f64 {
    let p = libm::erfc(t / std::f64::consts::SQRT_2);
    if p > 0.0 {
        p.log2()
    } else {
        // Past f64's range: the asymptotic tail, log2(2·φ(t)/t).
        let ln = (2.0 / std::f64::consts::PI).sqrt().ln() - t * t / 2.0 - t.ln();
        ln / std::f64::consts::LN_2
    }
}

/// The `t` with `log2 P(|Z| > t) = log2_p` (bisection: the tail is monotone).
fn sigmas_for_two_sided(log2_p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 64.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if two_sided_log2(mid) > log2_p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sets_are_what_their_names_say() {
        assert_eq!(ParamSet::M2C2.modulus(), 16);
        assert_eq!(ParamSet::M3C3.modulus(), 64);
        assert_eq!(ParamSet::M3C3.message_modulus(), 8);
        assert_eq!(ParamSet::M2C2.nominal_norm(), 5.0);
        assert_eq!(ParamSet::M3C3.nominal_norm(), 9.0);
        assert_eq!(ParamSet::parse("m3c3"), Some(ParamSet::M3C3));
        assert_eq!(ParamSet::parse("m4c4"), None);
        // Files and settings JSON use the command line's names.
        for p in ParamSet::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
    }

    #[test]
    fn the_failure_bound_is_the_nominal_one_up_to_the_nominal_norm_then_grows() {
        let p = ParamSet::M3C3;
        assert_eq!(p.log2_p_fail(3.0), p.nominal_log2_p_fail());
        assert!((p.log2_p_fail(9.0) - p.nominal_log2_p_fail()).abs() < 0.01);
        // Twice the norm: half the margin (about 13.4σ → 6.7σ), about 2^-34.
        let doubled = p.log2_p_fail(18.0);
        assert!((-36.0..-32.0).contains(&doubled), "{doubled}");
        // max_norm inverts it.
        let n = p.max_norm(-40.0);
        assert!((p.log2_p_fail(n) + 40.0).abs() < 0.01, "{n}");
        assert!((15.0..17.5).contains(&n), "{n}");
        assert_eq!(p.max_norm(-200.0), 9.0);
    }
}
