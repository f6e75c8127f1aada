//! The CPU features this build's field arithmetic needs.
//!
//! On x86-64 the BN254 field is multiplied with `mulx`/`adcx`/`adox` (halo2curves' `asm`
//! feature): without them the first proof would die with an illegal instruction, so entry
//! points call [`check`] first and say what is missing instead.

use crate::CircuitError;

/// Fails with a clear message when this CPU lacks an instruction set the build uses.
pub fn check() -> Result<(), CircuitError> {
    #[cfg(target_arch = "x86_64")]
    {
        let missing: Vec<&str> = [
            ("adx", std::arch::is_x86_feature_detected!("adx")),
            ("bmi2", std::arch::is_x86_feature_detected!("bmi2")),
        ]
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| name)
        .collect();
        if !missing.is_empty() {
            return Err(CircuitError::Cpu(missing.join(", ")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The machines we build and test on have the instructions; a failure here means the
    /// check itself is wrong (the asm field code would already have crashed the test binary).
    #[test]
    fn this_cpu_passes() {
        super::check().unwrap();
    }
}
