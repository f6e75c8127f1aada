//! The GPU build's start-up check. halo2-axiom-gpu's CUDA memory pool initializes in a
//! constructor that runs before `main` and aborts without a device, so the prover cannot fall
//! back to the CPU; this check runs before that constructor (an `.init_array` entry with a
//! priority sorts ahead of the unprioritized ones) and exits 1 with a message instead of an
//! abort. On a machine without the NVIDIA driver at all, the dynamic loader already refuses
//! the binary (libcuda.so.1 missing) before any code runs.

#[link(name = "cudart")]
extern "C" {
    fn cudaGetDeviceCount(count: *mut i32) -> i32;
}

extern "C" fn require_device() {
    let mut count = 0i32;
    // SAFETY: cudaGetDeviceCount only writes the count through the pointer it is given.
    let status = unsafe { cudaGetDeviceCount(&mut count) };
    if status != 0 || count < 1 {
        eprintln!(
            "error: this zkinfer is the GPU build (--features gpu) and found no CUDA device \
             (cudaGetDeviceCount returned status {status}, {count} devices): run it on a machine \
             with an NVIDIA GPU and driver, or use the CPU build (cargo build -p zkinfer)"
        );
        std::process::exit(1);
    }
}

#[used]
#[link_section = ".init_array.00100"]
static REQUIRE_DEVICE: extern "C" fn() = require_device;
