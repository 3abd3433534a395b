//! pytorch-fid's Inception-v3 (`models::inception`) against pytorch-fid's own network on
//! generated weights: the bilinear resize, the four block outputs and the 2048 features.
//! Fixture: `tests/fixtures/inception.json`, written by `scripts/fid/inception_fixture.py` (see
//! its docstring for the weights' formula and how to regenerate it).

use std::collections::HashMap;

use candle::{Device, Tensor};
use models::inception::{expected_tensors, resize_bilinear, FidInception, FEATURES};
use serde_json::Value;

/// `u(t, i)`, i < n: splitmix64 of `(t + 1) << 32 | i` mapped to [-1, 1) with 53 bits (the
/// generator's `unit`).
fn unit(t: u64, n: usize) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let mut z = (((t + 1) << 32) | i).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 * 2f64.powi(-52) - 1.0
        })
        .collect()
}

fn fixture() -> Value {
    let path = format!("{}/tests/fixtures/inception.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; regenerate it with scripts/fid/inception_fixture.py"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number")).collect()
}

/// `got` within `rel` of the largest |want| from `want`, element by element.
fn close(got: &[f64], want: &[f64], rel: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let size = want.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
    let (i, err) = got.iter().zip(want).enumerate().fold((0, 0f64), |(bi, be), (i, (a, b))| {
        let e = (a - b).abs();
        if e > be {
            (i, e)
        } else {
            (bi, be)
        }
    });
    assert!(
        err <= rel * size,
        "{what}: max difference {err:e} at {i} (got {}, want {}; values up to {size})",
        got[i],
        want[i]
    );
}

/// The fixture's weights by name: (position, offset, scale), after checking that the suite
/// reads exactly the fixture's tensors, in the same order, and that the generator agrees.
fn weights(fx: &Value) -> HashMap<String, (u64, f64, f64)> {
    let tensors = fx["tensors"].as_array().expect("tensors");
    let theirs: Vec<(String, Vec<usize>)> = tensors
        .iter()
        .map(|t| {
            let shape = t["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            (t["name"].as_str().unwrap().to_string(), shape)
        })
        .collect();
    assert_eq!(expected_tensors(), theirs, "the suite's tensors are not pytorch-fid's state dict");
    assert_eq!(FidInception::parameter_count() as u64, fx["value_count"].as_u64().unwrap());
    let mut out = HashMap::new();
    for (t, spec) in tensors.iter().enumerate() {
        let (offset, scale) = (spec["offset"].as_f64().unwrap(), spec["scale"].as_f64().unwrap());
        let name = spec["name"].as_str().unwrap().to_string();
        if t % 47 == 0 {
            let n: usize = theirs[t].1.iter().product();
            let sum: f64 = unit(t as u64, n).iter().map(|u| offset + scale * u).sum();
            let want = spec["sum"].as_f64().unwrap();
            assert!((sum - want).abs() <= 1e-9 * want.abs().max(1.0), "{name}: generated sum {sum} vs {want}");
        }
        out.insert(name, (t as u64, offset, scale));
    }
    out
}

fn generated(fx: &Value) -> impl Fn(&str, &[usize]) -> Vec<f64> {
    let table = weights(fx);
    move |name: &str, shape: &[usize]| {
        let (t, offset, scale) = table[name];
        unit(t, shape.iter().product()).into_iter().map(|u| offset + scale * u).collect()
    }
}

fn input() -> Vec<f32> {
    unit(1000, 2 * 3 * 32 * 32).into_iter().map(|u| (0.5 + 0.5 * u) as f32).collect()
}

#[test]
fn the_resize_equals_torchs_interpolate() {
    let fx = fixture();
    let x: Vec<f32> = unit(3000, 2 * 3 * 5 * 7).into_iter().map(|u| u as f32).collect();
    for case in fx["resizes"].as_array().unwrap() {
        let size = f64s(&case["size"]);
        let (oh, ow) = (size[0] as usize, size[1] as usize);
        let got: Vec<f64> = x
            .chunks(3 * 5 * 7)
            .flat_map(|image| resize_bilinear(image, 3, (5, 7), (oh, ow)))
            .map(|v| v as f64)
            .collect();
        close(&got, &f64s(&case["values"]), 1e-6, &format!("resize to {oh}x{ow}"));
    }
}

#[test]
fn the_fid_inception_equals_pytorch_fids_on_generated_weights() -> candle::Result<()> {
    let fx = fixture();
    let net = FidInception::from_fn(generated(&fx))?;
    let images = input();
    let per_image = 3 * 32 * 32;
    for (i, want) in fx["images"].as_array().unwrap().iter().enumerate() {
        let blocks = net.blocks(&images[i * per_image..(i + 1) * per_image], (32, 32))?;
        for (k, check) in want["blocks"].as_array().unwrap().iter().enumerate() {
            let shape = f64s(&check["shape"]);
            let (c, h, w) = blocks.shapes[k];
            assert_eq!([c, h, w].map(|d| d as f64).to_vec(), shape, "image {i} block {k} shape");
            let out: Vec<f64> = blocks.outputs[k].iter().map(|&v| v as f64).collect();
            let sum: f64 = out.iter().sum();
            let sum_sq: f64 = out.iter().map(|v| v * v).sum();
            let dot: f64 = out.iter().zip(unit(2000 + k as u64, out.len())).map(|(a, b)| a * b).sum();
            let scale = sum_sq.sqrt() * (out.len() as f64).sqrt();
            for (got, name) in [(sum, "sum"), (sum_sq, "sum_sq"), (dot, "dot")] {
                let want = check[name].as_f64().unwrap();
                let tolerance = 1e-5 * if name == "sum_sq" { sum_sq } else { scale };
                assert!((got - want).abs() <= tolerance, "image {i} block {k} {name}: {got} vs pytorch-fid {want}");
            }
        }
    }
    // The batched path: both images at once, in parallel.
    let start = std::time::Instant::now();
    let features = net.features(&images, (32, 32))?;
    eprintln!(
        "inception features: {:.2} s per image on {} threads",
        start.elapsed().as_secs_f64() / 2.0,
        rayon::current_num_threads()
    );
    assert_eq!(features.len(), 2 * FEATURES);
    let want: Vec<f64> = fx["images"].as_array().unwrap().iter().flat_map(|im| f64s(&im["features"])).collect();
    let got: Vec<f64> = features.iter().map(|&v| v as f64).collect();
    close(&got, &want, 1e-4, "features");
    Ok(())
}

#[test]
fn a_state_dict_in_the_exported_format_loads_and_a_missing_or_misshaped_tensor_is_named() -> candle::Result<()> {
    let fx = fixture();
    let values = generated(&fx);
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (name, shape) in expected_tensors() {
        let v: Vec<f32> = values(&name, &shape).into_iter().map(|x| x as f32).collect();
        tensors.insert(name, Tensor::from_vec(v, shape, &Device::Cpu)?);
    }
    // What an export may still carry and the loader ignores.
    tensors.insert("Conv2d_1a_3x3.bn.num_batches_tracked".into(), Tensor::new(0i64, &Device::Cpu)?);
    let path = std::env::temp_dir().join(format!("optbench-inception-{}.safetensors", std::process::id()));
    candle::safetensors::save(&tensors, &path)?;
    let loaded = FidInception::load(&path);
    std::fs::remove_file(&path).ok();
    let loaded = loaded?;
    let reference = FidInception::from_fn(values)?;
    let image = &input()[..3 * 32 * 32];
    let a = loaded.features(image, (32, 32))?;
    let b = reference.features(image, (32, 32))?;
    let (a, b): (Vec<f64>, Vec<f64>) = (a.iter().map(|&v| v as f64).collect(), b.iter().map(|&v| v as f64).collect());
    close(&a, &b, 1e-5, "features from the safetensors file");

    let name = "Mixed_6c.branch7x7dbl_3.conv.weight";
    let good = tensors.remove(name).unwrap();
    let error = FidInception::from_tensors(&tensors, "test.safetensors").err().expect("a missing tensor").to_string();
    assert!(error.contains(name) && error.contains("export_inception.py"), "{error}");
    tensors.insert(name.into(), good.transpose(2, 3)?.contiguous()?);
    let error = FidInception::from_tensors(&tensors, "test.safetensors").err().expect("a misshaped tensor").to_string();
    assert!(error.contains(name) && error.contains("[160, 160, 7, 1]"), "{error}");
    let missing = FidInception::load(&path).err().expect("no file").to_string();
    assert!(missing.contains(&path.display().to_string()), "{missing}");
    Ok(())
}
