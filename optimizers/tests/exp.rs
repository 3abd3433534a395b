//! The vectorised f32 `exp` of diffGrad's kernel (`fused::exp`) against `f32::exp`, bit for bit:
//! every path this CPU supports, on every non-positive float (diffGrad's argument is
//! `-|g_prev - g|`: -0, subnormals, -inf and NaNs included) and on every 61st positive float.
//! `OPTBENCH_EXP=avx2+fma cargo test --release -p optimizers --test exp --test kernels` runs
//! diffGrad's kernel with the AVX2 path on a CPU that also has AVX-512.

use optimizers::fused::exp::{choice, exp_f32_in_place, exp_f32_with, self_check_inputs, ExpPath};
use rayon::prelude::*;

/// Floats per batch (each batch: its arguments, the vector path, `f32::exp`, compared).
const BATCH: u32 = 1 << 16;

/// The first argument (batches `start..start + BATCH * stride`, stepping by `stride`, below
/// `end`) where one of `paths` differs from `f32::exp`: the path and (argument, ours, f32::exp),
/// all bits. `f32::exp` runs once per argument, whatever the number of paths.
fn first_mismatch(paths: &[ExpPath], starts: Vec<u64>, end: u64, stride: u64) -> Option<(ExpPath, (u32, u32, u32))> {
    starts
        .into_par_iter()
        .map(|start| {
            let inputs: Vec<f32> = (start..(start + u64::from(BATCH) * stride).min(end))
                .step_by(stride as usize)
                .map(|b| f32::from_bits(b as u32))
                .collect();
            let libm: Vec<f32> = inputs.iter().map(|x| x.exp()).collect();
            paths.iter().find_map(|&path| {
                let mut ours = inputs.clone();
                assert!(exp_f32_with(path, &mut ours));
                let i = ours.iter().zip(&libm).position(|(a, b)| a.to_bits() != b.to_bits())?;
                Some((path, (inputs[i].to_bits(), ours[i].to_bits(), libm[i].to_bits())))
            })
        })
        .find_first(Option::is_some)
        .flatten()
}

fn supported_vector_paths() -> Vec<ExpPath> {
    let paths: Vec<ExpPath> = ExpPath::ALL.into_iter().filter(|p| *p != ExpPath::Scalar && p.supported()).collect();
    if paths.is_empty() {
        eprintln!("no vector exp path on this CPU: only the scalar path runs");
    }
    paths
}

fn describe(path: ExpPath, (x, ours, libm): (u32, u32, u32)) -> String {
    format!(
        "{}: exp({:e} = {x:#010x}) = {:e} ({ours:#010x}), f32::exp gives {:e} ({libm:#010x})",
        path.name(),
        f32::from_bits(x),
        f32::from_bits(ours),
        f32::from_bits(libm)
    )
}

#[test]
fn every_non_positive_float_equals_libm() {
    // 0x8000_0000 (-0) ..= 0xffff_ffff: the negative floats, -inf, the NaNs with the sign set.
    let (start, end) = (0x8000_0000u64, 1u64 << 32);
    let starts: Vec<u64> = (start..end).step_by(BATCH as usize).collect();
    if let Some((path, m)) = first_mismatch(&supported_vector_paths(), starts, end, 1) {
        panic!("{}", describe(path, m));
    }
}

#[test]
fn positive_floats_equal_libm() {
    // +0, then every 61st float up to +inf and the positive NaNs (odd stride: every table
    // index and both parities of the mantissa).
    let (end, stride) = (0x8000_0000u64, 61u64);
    let starts: Vec<u64> = (0..end).step_by((BATCH as u64 * stride) as usize).collect();
    if let Some((path, m)) = first_mismatch(&supported_vector_paths(), starts, end, stride) {
        panic!("{}", describe(path, m));
    }
    for path in supported_vector_paths() {
        // 0x42b17217 = 0x1.62e42ep6, glibc's overflow threshold.
        let mut edges = [
            0.0f32,
            f32::INFINITY,
            f32::NAN,
            88.0,
            f32::from_bits(0x42b17217),
            f32::from_bits(0x42b17218),
            f32::MAX,
            1e-45,
        ];
        let expected = edges.map(f32::exp);
        assert!(exp_f32_with(path, &mut edges));
        for (x, y) in edges.iter().zip(expected) {
            assert_eq!(x.to_bits(), y.to_bits(), "{}", path.name());
        }
    }
}

#[test]
fn every_length_and_offset_is_computed() {
    // The tails (lengths that are no multiple of the vector width) and unaligned slices.
    let data: Vec<f32> = (0..200).map(|i| -(i as f32) * 0.37 - 0.01).collect();
    for path in ExpPath::ALL.into_iter().filter(|p| p.supported()) {
        for offset in 0..3 {
            for len in 0..40 {
                let mut ours = data[offset..offset + len].to_vec();
                assert!(exp_f32_with(path, &mut ours));
                let expected: Vec<u32> = data[offset..offset + len].iter().map(|x| x.exp().to_bits()).collect();
                let ours: Vec<u32> = ours.iter().map(|x| x.to_bits()).collect();
                assert_eq!(ours, expected, "{} offset {offset} len {len}", path.name());
            }
        }
    }
}

#[test]
fn the_chosen_path_passed_its_self_check() {
    let choice = choice();
    eprintln!("exp path: {choice}");
    // On a CPU with a vector path, glibc's expf (the libm of the machines this suite runs on)
    // must be reproduced: a rejection here means the copy of its algorithm is wrong.
    let vector = supported_vector_paths();
    if cfg!(all(target_os = "linux", target_env = "gnu"))
        && !vector.is_empty()
        && std::env::var_os("OPTBENCH_EXP").is_none()
    {
        assert_eq!(choice.path, vector[0], "{choice}");
    }
    let inputs = self_check_inputs();
    assert!(inputs.len() > 200_000);
    let mut ours = inputs.clone();
    exp_f32_in_place(&mut ours);
    for (x, y) in inputs.iter().zip(&ours) {
        assert_eq!(y.to_bits(), x.exp().to_bits(), "exp({x:e})");
    }
    // A path that is not supported leaves the data alone.
    for path in ExpPath::ALL.into_iter().filter(|p| !p.supported()) {
        let mut xs = [1.0f32];
        assert!(!exp_f32_with(path, &mut xs));
        assert_eq!(xs, [1.0]);
    }
}

/// diffGrad's fused f32 kernel (which calls the vector exp inside its loop) against the tensor
/// path, bit for bit, with gradients that send the exp down glibc's slow path (|g_prev - g| >= 88,
/// infinities) and that make it underflow to subnormals and zero; 1000 elements (vector body and
/// tail), three steps, with and without weight decay.
#[test]
fn diffgrad_kernel_with_extreme_gradients_equals_the_tensor_path() -> candle::Result<()> {
    use candle::{Device, Tensor, Var};
    use candle_nn::optim::Optimizer;
    use optimizers::{DiffGrad, Kernels, ParamsDiffGrad, WithKernels};

    let n = 1000;
    let special = [0.0f32, -0.0, 87.9, 88.0, 88.5, -95.0, 103.5, 104.0, 1e30, -1e30, f32::INFINITY, 1e-40];
    let grad_at = |t: usize| -> Vec<f32> {
        (0..n)
            .map(|i| match (i + 7 * t) % 5 {
                0 => special[(i / 5 + t) % special.len()],
                1 => (i as f32 * 0.37).sin() * 120.0,
                _ => (i as f32 * 0.11 + t as f32).cos(),
            })
            .collect()
    };
    for weight_decay in [0.0, 0.01] {
        let params = ParamsDiffGrad { lr: 0.01, weight_decay, ..Default::default() };
        let run = |kernels: Kernels| -> candle::Result<(Vec<u32>, usize)> {
            let init: Vec<f32> = (0..n).map(|i| (i as f32 * 0.3).cos()).collect();
            let var = Var::from_tensor(&Tensor::from_vec(init, n, &Device::Cpu)?)?;
            let mut opt = DiffGrad::new_with_kernels(vec![var.clone()], params.clone(), kernels)?;
            for t in 0..3 {
                let mut grads = candle::backprop::GradStore::default();
                grads.insert(var.as_tensor(), Tensor::from_vec(grad_at(t), n, &Device::Cpu)?);
                opt.step(&grads)?;
            }
            let bits = var.as_tensor().to_vec1::<f32>()?.iter().map(|x| x.to_bits()).collect();
            Ok((bits, opt.fused_variables()))
        };
        let ((fused, taken), (reference, _)) = (run(Kernels::Auto)?, run(Kernels::TensorOps)?);
        assert_eq!(taken, 1, "the fused kernel was not taken");
        let differing = fused.iter().zip(&reference).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 0, "weight decay {weight_decay}: {differing} of {n} parameters differ");
    }
    Ok(())
}
