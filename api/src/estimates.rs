//! What a job is expected to need in memory before anything measures it: the figure a worker
//! must have free to claim it (`jobs.memory_bytes`), so that work it cannot hold goes to a
//! worker that can, and work no worker can hold fails `model_too_large` instead of waiting.
//! A proof's figure comes from its compiled model's plan; these cover the jobs that run
//! before one exists, and they err high: the child process's memory limit is the backstop.

/// What a compile needs besides the model's constants (tract's graph, the calibration run's
/// activations for a small model). Like a proof's plan, it leaves out the job process's own
/// baseline, which the address-space limit's slack covers.
const COMPILE_BASE: u64 = 32 << 20;

/// What an FHE run needs besides its key and ciphertexts (the program, lookup tables).
const FHE_BASE: u64 = 256 << 20;

/// Bytes a compile may hold per byte of ONNX. Constants pass through tract's f32 tensors, the
/// quantized integers and the circuit's field elements (32 bytes each, against 4 in the file),
/// with a copy or two on the way.
const COMPILE_PER_ONNX_BYTE: u64 = 48;

/// Bytes an FHE run may hold per byte of uploaded (compressed) server key: the seeded parts
/// of the key expand when decompressed and the bootstrapping key is converted to the Fourier
/// domain, beside the compressed copy.
const FHE_PER_KEY_BYTE: u64 = 8;

/// Bytes an FHE run may hold per byte of input ciphertext (inputs, intermediates, results).
const FHE_PER_CIPHERTEXT_BYTE: u64 = 16;

/// The memory a setup job's compile step is expected to need, from the ONNX file's size.
/// (Its key generation is planned by the compile, and the job holds that much before it.)
pub fn compile_memory(onnx_bytes: usize) -> u64 {
    COMPILE_BASE.saturating_add((onnx_bytes as u64).saturating_mul(COMPILE_PER_ONNX_BYTE))
}

/// The memory an FHE run is expected to need, from its server key's and ciphertext's sizes.
pub fn fhe_run_memory(key_bytes: u64, ciphertext_bytes: usize) -> u64 {
    FHE_BASE
        .saturating_add(key_bytes.saturating_mul(FHE_PER_KEY_BYTE))
        .saturating_add((ciphertext_bytes as u64).saturating_mul(FHE_PER_CIPHERTEXT_BYTE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_with_what_the_job_reads_and_never_wrap() {
        assert_eq!(compile_memory(0), COMPILE_BASE);
        assert!(
            compile_memory(64 << 20) > 3 << 30,
            "a 64 MiB model: over 3 GiB"
        );
        assert_eq!(compile_memory(usize::MAX), u64::MAX);
        let m3c3 = fhe_run_memory(283_000_000, 1 << 20);
        assert!(m3c3 > 2 << 30 && m3c3 < 3 << 30, "{m3c3}");
        assert_eq!(fhe_run_memory(u64::MAX, 0), u64::MAX);
    }
}
