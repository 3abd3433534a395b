//! The Fréchet distance of two sets of features (Heusel et al. 2017), as pytorch-fid computes
//! it (`mseitzer/pytorch-fid`, `src/pytorch_fid/fid_score.py`, `calculate_frechet_distance`),
//! in f64, in two separate steps as there: the statistics of a set, then the distance of two.
//!
//! ```text
//! mu = mean of the features,  S = their covariance (unbiased, numpy's `np.cov(rowvar=False)`)
//! FID = ||mu1 - mu2||² + Tr(S1) + Tr(S2) - 2 Tr(sqrtm(S1 S2))
//! ```
//! pytorch-fid takes `scipy.linalg.sqrtm(S1 S2)` (a Schur decomposition of the non-symmetric
//! product) and its trace. Here the trace comes from the symmetric matrix that has the same
//! eigenvalues: `S1 S2 = A (A S2 A) A^-1` with `A = S1^(1/2)`, so `Tr sqrtm(S1 S2) = sum_i
//! sqrt(l_i)` over the eigenvalues `l_i >= 0` of `A S2 A` (negative rounding errors clipped to
//! 0), both square roots from a cyclic Jacobi eigendecomposition written here (no linear-algebra
//! crate). Jacobi costs O(d³) per sweep: fine for the suite's small feature networks (d up to a
//! few hundred), slow for Inception's 2048. `tests/gan.rs` checks it against scipy.

/// The mean and covariance of a set of feature vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct Statistics {
    pub dim: usize,
    pub count: usize,
    pub mean: Vec<f64>,
    /// Row-major `dim x dim`, unbiased (divided by `count - 1`).
    pub cov: Vec<f64>,
}

impl Statistics {
    /// The statistics of `count` feature vectors of `dim` values each, row after row.
    pub fn of(features: &[f32], dim: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            dim > 0 && features.len().is_multiple_of(dim),
            "FID: {} features of dimension {dim}",
            features.len()
        );
        let count = features.len() / dim;
        anyhow::ensure!(count >= 2, "FID needs at least 2 samples, got {count}");
        let mut mean = vec![0.0; dim];
        for row in features.chunks(dim) {
            for (m, &x) in mean.iter_mut().zip(row) {
                *m += x as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= count as f64);
        let mut cov = vec![0.0; dim * dim];
        let mut centred = vec![0.0; dim];
        for row in features.chunks(dim) {
            for ((c, &x), m) in centred.iter_mut().zip(row).zip(&mean) {
                *c = x as f64 - m;
            }
            for i in 0..dim {
                let ci = centred[i];
                let out = &mut cov[i * dim..(i + 1) * dim];
                for (o, &cj) in out[i..].iter_mut().zip(&centred[i..]) {
                    *o += ci * cj;
                }
            }
        }
        let norm = 1.0 / (count - 1) as f64;
        for i in 0..dim {
            for j in i..dim {
                let v = cov[i * dim + j] * norm;
                cov[i * dim + j] = v;
                cov[j * dim + i] = v;
            }
        }
        Ok(Self { dim, count, mean, cov })
    }
}

/// The Fréchet distance of two feature distributions' statistics.
pub fn frechet_distance(a: &Statistics, b: &Statistics) -> anyhow::Result<f64> {
    anyhow::ensure!(a.dim == b.dim, "FID: statistics of dimensions {} and {}", a.dim, b.dim);
    let d = a.dim;
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y) * (x - y)).sum();
    let trace = |m: &[f64]| (0..d).map(|i| m[i * d + i]).sum::<f64>();
    let root_a = symmetric_sqrt(&a.cov, d);
    let inner = matmul(&matmul(&root_a, &b.cov, d), &root_a, d);
    let (eigenvalues, _) = symmetric_eigen(&inner, d);
    let trace_sqrt: f64 = eigenvalues.iter().map(|&l| l.max(0.0).sqrt()).sum();
    Ok(mean_term + trace(&a.cov) + trace(&b.cov) - 2.0 * trace_sqrt)
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            if aik == 0.0 {
                continue;
            }
            let row = &b[k * d..(k + 1) * d];
            for (o, &bkj) in out[i * d..(i + 1) * d].iter_mut().zip(row) {
                *o += aik * bkj;
            }
        }
    }
    out
}

/// The square root `V diag(sqrt(max(l, 0))) V^T` of a symmetric positive semi-definite matrix.
pub fn symmetric_sqrt(m: &[f64], d: usize) -> Vec<f64> {
    let (values, vectors) = symmetric_eigen(m, d);
    let mut out = vec![0.0; d * d];
    for (k, &l) in values.iter().enumerate() {
        let s = l.max(0.0).sqrt();
        if s == 0.0 {
            continue;
        }
        for i in 0..d {
            let vik = vectors[i * d + k] * s;
            for j in 0..d {
                out[i * d + j] += vik * vectors[j * d + k];
            }
        }
    }
    out
}

/// Eigenvalues and eigenvectors (the columns of the row-major `d x d` result) of a symmetric
/// matrix, by cyclic Jacobi rotations until the off-diagonal part is below 1e-14 of the whole
/// (at most 100 sweeps).
pub fn symmetric_eigen(m: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = m.to_vec();
    let mut v = vec![0.0; d * d];
    (0..d).for_each(|i| v[i * d + i] = 1.0);
    let total: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j] * a[i * d + j])
            .sum();
        if off <= 1e-28 * total {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let (app, aqq) = (a[p * d + p], a[q * d + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_reconstructs_a_symmetric_matrix_and_its_square_root() {
        let d = 5;
        let mut m = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                m[i * d + j] = ((i * 7 + j * 3) as f64).sin() + ((j * 7 + i * 3) as f64).sin();
            }
            m[i * d + i] += 6.0; // positive definite
        }
        let root = symmetric_sqrt(&m, d);
        let back = matmul(&root, &root, d);
        for (a, b) in back.iter().zip(&m) {
            assert!((a - b).abs() < 1e-11, "{a} vs {b}");
        }
    }

    #[test]
    fn identical_statistics_are_at_distance_zero_and_a_shift_adds_its_square() {
        let features: Vec<f32> = (0..400).map(|i| ((i * 37 % 101) as f32 / 50.0).sin()).collect();
        let a = Statistics::of(&features, 4).unwrap();
        assert!(frechet_distance(&a, &a).unwrap().abs() < 1e-10);
        let shifted: Vec<f32> = features.iter().map(|x| x + 0.5).collect();
        let b = Statistics::of(&shifted, 4).unwrap();
        assert!((frechet_distance(&a, &b).unwrap() - 4.0 * 0.25).abs() < 1e-5);
    }
}
