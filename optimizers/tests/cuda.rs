//! The CUDA kernels of the fused updates (`optimizers/src/fused/cuda/`).
//!
//! - Every kernel source compiles with NVRTC, and defines its kernels in f32 and f64, in PTX that
//!   the lent GPU machines' driver 580 loads (PTX ISA at most 9.0). NVRTC runs without a GPU, and
//!   this test loads it at run time, so it runs in every build: from `OPTBENCH_NVRTC` (a path to
//!   `libnvrtc.so*`; then it must load), else the usual places (`/tmp/cuda-build`, which
//!   `scripts/build-cuda.sh` prepares, `$CUDA_HOME`, `/usr/local/cuda`, the loader's path); it
//!   says it is skipped when none has it.
//! - With the `cuda` feature and a GPU: every optimizer and flag through its CUDA kernel equals
//!   the tensor path on the GPU (skipped with a line when there is no CUDA device).
//! - On the CPU, the same check (`fused::cuda::check`, which `optbench optimizers --check-kernels`
//!   runs) for the Adam family: it finds the fused path equal to the tensor path.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};

use optimizers::fused::cuda::{check, Source, NVRTC_OPTIONS, SOURCES};

/// NVRTC at `path`, with the `libnvrtc-builtins` beside it loaded first: NVRTC opens that one
/// by its name at compile time, which the loader then finds among the loaded libraries without
/// `LD_LIBRARY_PATH`.
fn load(path: &Path) -> Result<(libloading::Library, Vec<libloading::Library>), libloading::Error> {
    let mut builtins = Vec::new();
    if let Some(entries) = path.parent().and_then(|dir| std::fs::read_dir(dir).ok()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("libnvrtc-builtins.so") && !name.contains(".alt.") {
                // SAFETY: loading NVRTC's builtins runs no initialisers that depend on us.
                if let Ok(lib) = unsafe { libloading::Library::new(entry.path()) } {
                    builtins.push(lib);
                }
            }
        }
    }
    // SAFETY: as above.
    Ok((unsafe { libloading::Library::new(path) }?, builtins))
}

type Loaded = (libloading::Library, Vec<libloading::Library>, String);

/// The NVRTC library to compile with: `OPTBENCH_NVRTC`, else the first of the usual places that
/// loads. `Err` when `OPTBENCH_NVRTC` names one that does not load.
fn nvrtc() -> Result<Option<Loaded>, String> {
    if let Ok(path) = std::env::var("OPTBENCH_NVRTC") {
        return load(Path::new(&path))
            .map(|(lib, builtins)| Some((lib, builtins, path.clone())))
            .map_err(|e| format!("OPTBENCH_NVRTC={path}: cannot load it: {e}"));
    }
    let mut candidates: Vec<PathBuf> = vec![PathBuf::from("/tmp/cuda-build/cudaroot/lib/libnvrtc.so.13")];
    if let Ok(home) = std::env::var("CUDA_HOME") {
        candidates.push(PathBuf::from(&home).join("lib/libnvrtc.so.13"));
        candidates.push(PathBuf::from(&home).join("lib64/libnvrtc.so"));
    }
    candidates.push(PathBuf::from("/usr/local/cuda/lib64/libnvrtc.so"));
    candidates.push(PathBuf::from("libnvrtc.so.13"));
    for path in candidates {
        if let Ok((lib, builtins)) = load(&path) {
            return Ok(Some((lib, builtins, path.display().to_string())));
        }
    }
    Ok(None)
}

type Program = *mut c_void;

/// Compiles `source` with NVRTC's C API; returns its PTX, or the compile log.
fn compile(lib: &libloading::Library, source: &Source) -> Result<String, String> {
    type Create = unsafe extern "C" fn(
        *mut Program,
        *const c_char,
        *const c_char,
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) -> c_int;
    type Compile = unsafe extern "C" fn(Program, c_int, *const *const c_char) -> c_int;
    type Size = unsafe extern "C" fn(Program, *mut usize) -> c_int;
    type Get = unsafe extern "C" fn(Program, *mut c_char) -> c_int;
    type Destroy = unsafe extern "C" fn(*mut Program) -> c_int;
    // SAFETY: the signatures are NVRTC's (nvrtc.h), the buffers are sized by NVRTC's own answers.
    unsafe {
        let create: libloading::Symbol<Create> = lib.get(b"nvrtcCreateProgram").map_err(|e| e.to_string())?;
        let compile: libloading::Symbol<Compile> = lib.get(b"nvrtcCompileProgram").map_err(|e| e.to_string())?;
        let log_size: libloading::Symbol<Size> = lib.get(b"nvrtcGetProgramLogSize").map_err(|e| e.to_string())?;
        let log: libloading::Symbol<Get> = lib.get(b"nvrtcGetProgramLog").map_err(|e| e.to_string())?;
        let ptx_size: libloading::Symbol<Size> = lib.get(b"nvrtcGetPTXSize").map_err(|e| e.to_string())?;
        let ptx: libloading::Symbol<Get> = lib.get(b"nvrtcGetPTX").map_err(|e| e.to_string())?;
        let destroy: libloading::Symbol<Destroy> = lib.get(b"nvrtcDestroyProgram").map_err(|e| e.to_string())?;
        let code = CString::new(source.program()).unwrap();
        let name = CString::new(format!("{}.cu", source.name)).unwrap();
        let mut program: Program = std::ptr::null_mut();
        let rc = create(&mut program, code.as_ptr(), name.as_ptr(), 0, std::ptr::null(), std::ptr::null());
        if rc != 0 {
            return Err(format!("nvrtcCreateProgram: error {rc}"));
        }
        let options: Vec<CString> = NVRTC_OPTIONS.iter().map(|o| CString::new(*o).unwrap()).collect();
        let pointers: Vec<*const c_char> = options.iter().map(|o| o.as_ptr()).collect();
        let rc = compile(program, pointers.len() as c_int, pointers.as_ptr());
        let text = |size: &libloading::Symbol<Size>, get: &libloading::Symbol<Get>| {
            let mut n = 0usize;
            size(program, &mut n);
            let mut buffer = vec![0u8; n.max(1)];
            get(program, buffer.as_mut_ptr().cast());
            CStr::from_bytes_until_nul(&buffer).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        };
        let result =
            if rc == 0 { Ok(text(&ptx_size, &ptx)) } else { Err(format!("error {rc}:\n{}", text(&log_size, &log))) };
        destroy(&mut program);
        result
    }
}

#[test]
fn every_kernel_source_compiles_with_nvrtc() {
    let (lib, _builtins, path) = match nvrtc() {
        Ok(Some(found)) => found,
        Ok(None) => {
            println!(
                "skipped: no NVRTC library (set OPTBENCH_NVRTC to a libnvrtc.so, or run scripts/build-cuda.sh, \
                 which prepares /tmp/cuda-build)"
            );
            return;
        }
        Err(e) => panic!("{e}"),
    };
    println!("NVRTC: {path}");
    assert!(!SOURCES.is_empty());
    for source in SOURCES {
        let ptx = compile(&lib, source).unwrap_or_else(|log| panic!("{}.cu does not compile: {log}", source.name));
        for entry in source.entry_points() {
            assert!(ptx.contains(&format!(".entry {entry}(")), "{}.cu: no kernel {entry} in its PTX", source.name);
        }
        let version = ptx
            .lines()
            .find_map(|l| l.trim().strip_prefix(".version "))
            .unwrap_or_else(|| panic!("{}.cu: no .version in its PTX", source.name));
        let (major, minor) = version.trim().split_once('.').expect("PTX version is MAJOR.MINOR");
        let version = (major.parse::<u32>().unwrap(), minor.parse::<u32>().unwrap());
        assert!(version <= (9, 0), "{}.cu: PTX ISA {version:?}, which driver 580 does not load", source.name);
        println!("{}.cu: {} kernels, PTX ISA {}.{}", source.name, source.entry_points().len(), version.0, version.1);
    }
}

#[test]
fn the_kernel_check_finds_the_cpu_kernels_equal_to_the_tensor_path() -> candle::Result<()> {
    // Three of the Adam family (L2 decay, decoupled decay, the TF AMSGrad): `tests/kernels.rs`
    // checks every flag; this checks the check.
    let specs = check::specs();
    for spec in [&specs[1], &specs[3], &specs[6]] {
        for dtype in [candle::DType::F32, candle::DType::F64] {
            let c = check::check(spec, dtype, &candle::Device::Cpu)?;
            assert!(c.ok() && c.differing == 0 && c.elements == 37 * 29 + 5 + 300 * 400, "{c:?}");
        }
    }
    Ok(())
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_kernels_equal_the_tensor_path_on_the_gpu() -> candle::Result<()> {
    let device = match candle::Device::new_cuda(0) {
        Ok(device) => device,
        Err(e) => {
            println!("skipped: no CUDA device ({e})");
            return Ok(());
        }
    };
    let mut failed = Vec::new();
    for c in check::check_all(&device)? {
        println!(
            "{} {:?}: {} of {} differ, max rel {:.3e}, {} launches",
            c.spec, c.dtype, c.differing, c.elements, c.max_rel_diff, c.cuda_launches
        );
        if !c.ok() {
            failed.push(format!("{} {:?}", c.spec, c.dtype));
        }
    }
    assert!(failed.is_empty(), "the CUDA kernels differ from the tensor path: {failed:?}");
    Ok(())
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_state_saves_and_restores_across_paths() -> candle::Result<()> {
    use candle::backprop::GradStore;
    use candle::{DType, Tensor, Var};
    use optimizers::Kernels;
    let device = match candle::Device::new_cuda(0) {
        Ok(device) => device,
        Err(e) => {
            println!("skipped: no CUDA device ({e})");
            return Ok(());
        }
    };
    let spec = optimizers::OptimizerSpec::new("adam").with("lr", 0.01).with("amsgrad", true);
    let init = Tensor::arange(0f32, 64., &device)?.affine(0.01, -0.3)?;
    let grad = Tensor::arange(0f32, 64., &device)?.affine(-0.02, 0.5)?;
    let run = |kernels: Kernels,
               resume_from: Option<&optimizers::OptimizerState>|
     -> candle::Result<(Vec<f32>, optimizers::OptimizerState)> {
        let var = Var::from_tensor(&init)?;
        let mut opt = spec.build_with_kernels(vec![var.clone()], kernels).map_err(candle::Error::wrap)?;
        if let Some(state) = resume_from {
            opt.load_state(state)?;
        }
        let mut grads = GradStore::default();
        grads.insert(var.as_tensor(), grad.clone());
        for _ in 0..3 {
            opt.step(&grads)?;
        }
        Ok((var.as_tensor().to_dtype(DType::F32)?.to_vec1()?, opt.state()?))
    };
    let (_, kernel_state) = run(Kernels::Auto, None)?;
    let (_, tensor_state) = run(Kernels::TensorOps, None)?;
    for (name, t) in &kernel_state.tensors {
        let other = &tensor_state.tensors[name];
        let d = (t.to_device(&candle::Device::Cpu)? - other.to_device(&candle::Device::Cpu)?)?.abs()?.max_all()?;
        assert_eq!(d.to_scalar::<f32>()?, 0.0, "slot {name} differs between the paths");
    }
    // A state saved by one path continues in the other.
    let (a, _) = run(Kernels::Auto, Some(&tensor_state))?;
    let (b, _) = run(Kernels::TensorOps, Some(&kernel_state))?;
    assert_eq!(a, b);
    Ok(())
}
