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
//! 0). More generally, for any factor `S1 = B B^T` the non-zero eigenvalues of `S1 S2` are those
//! of `B^T S2 B`; [`Reference`] keeps such a factor of the real images' covariance for every
//! evaluation: the Cholesky factor, the centred features themselves when there are fewer than
//! `dim` of them (then `B^T S2 B` is small), else the symmetric square root. Eigenvalues come from
//! a Householder reduction to tridiagonal form and the implicit QL algorithm written here (no
//! linear-algebra crate). `tests/gan.rs` checks the distance against scipy.

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
        // Sum of the centred outer products, (rows x dim)^T (rows x dim) a chunk at a time.
        let mut cov = vec![0.0; dim * dim];
        let rows = (1 << 22) / dim.max(1) + 1;
        for chunk in features.chunks(rows * dim) {
            let n = chunk.len() / dim;
            let mut centred = Vec::with_capacity(chunk.len());
            for row in chunk.chunks(dim) {
                centred.extend(row.iter().zip(&mean).map(|(&x, m)| x as f64 - m));
            }
            let part = matmul_rect(&transpose(&centred, n, dim), &centred, (dim, n, dim));
            cov.iter_mut().zip(part).for_each(|(c, p)| *c += p);
        }
        let norm = 1.0 / (count - 1) as f64;
        for i in 0..dim {
            for j in i..dim {
                let v = 0.5 * (cov[i * dim + j] + cov[j * dim + i]) * norm;
                cov[i * dim + j] = v;
                cov[j * dim + i] = v;
            }
        }
        Ok(Self { dim, count, mean, cov })
    }
}

/// The real images' side of FID, kept for every evaluation: their statistics and a factor `B`
/// (`dim x rank`, row-major) of their covariance, `S1 = B B^T`, so that `Tr sqrtm(S1 S2) = sum
/// sqrt(eig(B^T S2 B))` (the same non-zero eigenvalues) needs only the eigenvalues of a
/// symmetric `rank x rank` matrix: the expensive part of the distance at Inception's 2048.
#[derive(Clone, Debug)]
pub struct Reference {
    pub stats: Statistics,
    /// `dim x rank`, row-major.
    pub factor: Vec<f64>,
    pub rank: usize,
}

impl Reference {
    /// From the statistics alone: `B` the Cholesky factor of the covariance, or its symmetric
    /// square root when it is singular (fewer samples than dimensions; slow at 2048).
    pub fn new(stats: Statistics) -> Self {
        let d = stats.dim;
        let factor = cholesky(&stats.cov, d).unwrap_or_else(|| symmetric_sqrt(&stats.cov, d));
        Self { stats, factor, rank: d }
    }

    /// From the features themselves: with at most `dim` samples `B` is the centred features
    /// (transposed) over sqrt(count - 1), of rank `count`: fast however large `dim` is.
    pub fn of_features(features: &[f32], dim: usize) -> anyhow::Result<Self> {
        let stats = Statistics::of(features, dim)?;
        if stats.count > dim {
            return Ok(Self::new(stats));
        }
        let n = stats.count;
        let norm = 1.0 / ((n - 1) as f64).sqrt();
        let mut factor = vec![0.0; dim * n];
        for (j, row) in features.chunks(dim).enumerate() {
            for (i, (&x, m)) in row.iter().zip(&stats.mean).enumerate() {
                factor[i * n + j] = (x as f64 - m) * norm;
            }
        }
        Ok(Self { stats, factor, rank: n })
    }

    /// The Fréchet distance of `other`'s statistics to these.
    pub fn distance(&self, other: &Statistics) -> anyhow::Result<f64> {
        let a = &self.stats;
        anyhow::ensure!(a.dim == other.dim, "FID: statistics of dimensions {} and {}", a.dim, other.dim);
        let (d, r) = (a.dim, self.rank);
        let mean_term: f64 = a.mean.iter().zip(&other.mean).map(|(x, y)| (x - y) * (x - y)).sum();
        let trace = |m: &[f64]| (0..d).map(|i| m[i * d + i]).sum::<f64>();
        // B^T (S2 B): (r x d) (d x r).
        let s2b = matmul_rect(&other.cov, &self.factor, (d, d, r));
        let bt = transpose(&self.factor, d, r);
        let inner = matmul_rect(&bt, &s2b, (r, d, r));
        let trace_sqrt: f64 = symmetric_eigenvalues(&inner, r).iter().map(|&l| l.max(0.0).sqrt()).sum();
        Ok(mean_term + trace(&a.cov) + trace(&other.cov) - 2.0 * trace_sqrt)
    }
}

/// The lower Cholesky factor `L` (`m = L L^T`) of a symmetric matrix, `None` unless it is
/// positive definite (a pivot below 1e-12 of the largest diagonal element).
pub fn cholesky(m: &[f64], d: usize) -> Option<Vec<f64>> {
    let largest = (0..d).map(|i| m[i * d + i]).fold(0.0, f64::max);
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let (li, lj) = (&l[i * d..i * d + j], &l[j * d..j * d + j]);
            let dot: f64 = li.iter().zip(lj).map(|(a, b)| a * b).sum();
            let v = m[i * d + j] - dot;
            if i == j {
                // NaN included: not positive definite.
                if v.is_nan() || v <= 1e-12 * largest {
                    return None;
                }
                l[i * d + i] = v.sqrt();
            } else {
                l[i * d + j] = v / l[j * d + j];
            }
        }
    }
    Some(l)
}

fn transpose(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = m[i * cols + j];
        }
    }
    out
}

/// `a (m x k) b (k x n)`, row-major, in f64 through candle's CPU matrix product (blocked,
/// over rayon's threads).
fn matmul_rect(a: &[f64], b: &[f64], (m, k, n): (usize, usize, usize)) -> Vec<f64> {
    let product = || -> candle::Result<Vec<f64>> {
        let cpu = &candle::Device::Cpu;
        let a = candle::Tensor::from_slice(a, (m, k), cpu)?;
        let b = candle::Tensor::from_slice(b, (k, n), cpu)?;
        a.matmul(&b)?.flatten_all()?.to_vec1::<f64>()
    };
    product().expect("matrix product of checked shapes on the CPU")
}

/// The Fréchet distance of two feature distributions' statistics.
pub fn frechet_distance(a: &Statistics, b: &Statistics) -> anyhow::Result<f64> {
    anyhow::ensure!(a.dim == b.dim, "FID: statistics of dimensions {} and {}", a.dim, b.dim);
    Reference::new(a.clone()).distance(b)
}

#[cfg(test)]
fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    matmul_rect(a, b, (d, d, d))
}

/// The square root `V diag(sqrt(max(l, 0))) V^T` of a symmetric positive semi-definite matrix.
pub fn symmetric_sqrt(m: &[f64], d: usize) -> Vec<f64> {
    let (values, vectors) = symmetric_eigen(m, d);
    // Row k of `scaled` is sqrt(l_k) v_k; the root is sum_k sqrt(l_k) v_k v_k^T.
    let mut out = vec![0.0; d * d];
    for (k, &l) in values.iter().enumerate() {
        let s = l.max(0.0).sqrt();
        if s == 0.0 {
            continue;
        }
        let v = &vectors[k * d..(k + 1) * d];
        for i in 0..d {
            let vi = v[i] * s;
            for (o, &vj) in out[i * d..(i + 1) * d].iter_mut().zip(v) {
                *o += vi * vj;
            }
        }
    }
    out
}

/// Eigenvalues and eigenvectors of a symmetric matrix: Householder reduction to a tridiagonal
/// matrix, then the implicit QL algorithm with Wilkinson shifts (Golub and Van Loan, 8.3; the
/// EISPACK `tred2` / `tql2` pair). Row `k` of the row-major `d x d` result is the eigenvector
/// of value `k`. O(d³), rows contiguous throughout (2048: seconds, where Jacobi took minutes).
pub fn symmetric_eigen(m: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut diag, off, reflectors) = tridiagonalize(m, d);
    // Z^T: row k = the k-th eigenvector of the tridiagonal matrix, then of `m`.
    let mut zt = vec![0.0; d * d];
    (0..d).for_each(|i| zt[i * d + i] = 1.0);
    tridiagonal_ql(&mut diag, &off, Some(&mut zt), d);
    // m = Q T Q^T with Q = R_1 R_2 .. R_last (R_1 the first reflector made): the eigenvector
    // of m is Q z = R_1 (R_2 (.. (R_last z))), each row of Z^T in turn.
    for (v, h) in reflectors.iter().rev() {
        let len = v.len();
        zt.chunks_mut(d).for_each(|z| {
            let dot: f64 = z[..len].iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / h;
            z[..len].iter_mut().zip(v).for_each(|(a, b)| *a -= dot * b);
        });
    }
    (diag, zt)
}

/// The eigenvalues of a symmetric matrix (no vectors: about a third of the work).
pub fn symmetric_eigenvalues(m: &[f64], d: usize) -> Vec<f64> {
    let (mut diag, off, _) = tridiagonalize(m, d);
    tridiagonal_ql(&mut diag, &off, None, d);
    diag
}

/// Householder reduction `T = Q^T m Q`: the diagonal, the subdiagonal (`off[i]` joins `i - 1`
/// and `i`; `off[0] = 0`) and the reflectors `P = I - v v^T / h` (v on the leading `len`
/// coordinates), in the order they were made, `m = Q T Q^T` with `Q` their product in that order.
#[allow(clippy::type_complexity)]
fn tridiagonalize(m: &[f64], d: usize) -> (Vec<f64>, Vec<f64>, Vec<(Vec<f64>, f64)>) {
    use rayon::prelude::*;
    let mut a = m.to_vec();
    let mut off = vec![0.0; d];
    let mut reflectors = Vec::new();
    for i in (1..d).rev() {
        // Annihilate row i left of the subdiagonal, acting on the leading (i x i) block.
        let len = i;
        let x = a[i * d..i * d + len].to_vec();
        let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        let last = x[len - 1];
        if norm == 0.0 || len == 1 {
            off[i] = last;
            continue;
        }
        let alpha = if last >= 0.0 { -norm } else { norm };
        let mut v = x;
        v[len - 1] -= alpha;
        let h = norm * norm - last * alpha; // ||v||² / 2
        if h <= 0.0 {
            off[i] = last;
            continue;
        }
        off[i] = alpha;
        // p = A v / h, K = v.p / 2h, q = p - K v, A <- A - v q^T - q v^T on the block.
        let p: Vec<f64> = (0..len)
            .into_par_iter()
            .map(|r| a[r * d..r * d + len].iter().zip(&v).map(|(x, y)| x * y).sum::<f64>() / h)
            .collect();
        let k = v.iter().zip(&p).map(|(x, y)| x * y).sum::<f64>() / (2.0 * h);
        let q: Vec<f64> = p.iter().zip(&v).map(|(p, v)| p - k * v).collect();
        a.par_chunks_mut(d).take(len).enumerate().for_each(|(r, row)| {
            let (vr, qr) = (v[r], q[r]);
            for ((x, &qc), &vc) in row[..len].iter_mut().zip(&q).zip(&v) {
                *x -= vr * qc + qr * vc;
            }
        });
        for c in 0..len {
            a[i * d + c] = 0.0;
            a[c * d + i] = 0.0;
        }
        a[i * d + len - 1] = alpha;
        a[(len - 1) * d + i] = alpha;
        reflectors.push((v, h));
    }
    let diag = (0..d).map(|i| a[i * d + i]).collect();
    (diag, off, reflectors)
}

/// The implicit QL algorithm on the symmetric tridiagonal matrix (`diag`, `off` as
/// [`tridiagonalize`] leaves them), in place: `diag` becomes the eigenvalues; each rotation of
/// coordinates (i, i + 1) also turns rows i and i + 1 of `zt`, when given.
fn tridiagonal_ql(diag: &mut [f64], off: &[f64], mut zt: Option<&mut [f64]>, d: usize) {
    if d == 0 {
        return;
    }
    // e[i] joins i and i + 1.
    let mut e: Vec<f64> = (0..d).map(|i| if i + 1 < d { off[i + 1] } else { 0.0 }).collect();
    for l in 0..d {
        let mut iterations = 0;
        loop {
            let mut m = l;
            while m + 1 < d {
                let dd = diag[m].abs() + diag[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iterations += 1;
            if iterations > 60 {
                break; // not reached in practice; leaves the best values found
            }
            let mut g = (diag[l + 1] - diag[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = diag[m] - diag[l] + e[l] / (g + if g >= 0.0 { r.abs() } else { -r.abs() });
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut i = m;
            let mut underflow = false;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    diag[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = diag[i + 1] - p;
                r = (diag[i] - g) * s + 2.0 * c * b;
                p = s * r;
                diag[i + 1] = g + p;
                g = c * r - b;
                if let Some(z) = zt.as_deref_mut() {
                    let (lo, hi) = z.split_at_mut((i + 1) * d);
                    let (zi, zi1) = (&mut lo[i * d..], &mut hi[..d]);
                    for (a, b) in zi.iter_mut().zip(zi1.iter_mut()) {
                        let t = *b;
                        *b = s * *a + c * t;
                        *a = c * *a - s * t;
                    }
                }
            }
            if underflow {
                continue;
            }
            diag[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eigendecomposition_reconstructs_a_symmetric_matrix_and_its_square_root() {
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

    fn features(n: usize, d: usize, seed: usize) -> Vec<f32> {
        (0..n * d).map(|i| (((i * 7919 + seed * 104_729) % 10_007) as f32 / 1000.0).sin()).collect()
    }

    #[test]
    fn eigenvectors_are_orthonormal_and_reconstruct_a_rank_deficient_covariance() {
        let d = 40;
        let s = Statistics::of(&features(25, d, 1), d).unwrap(); // rank 24
        let (values, vectors) = symmetric_eigen(&s.cov, d);
        let mut back = vec![0.0; d * d];
        for (k, l) in values.iter().enumerate() {
            let v = &vectors[k * d..(k + 1) * d];
            let norm: f64 = v.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-10, "eigenvector {k} has norm² {norm}");
            for i in 0..d {
                for j in 0..d {
                    back[i * d + j] += l * v[i] * v[j];
                }
            }
        }
        let size = s.cov.iter().fold(0f64, |m, x| m.max(x.abs()));
        for (a, b) in back.iter().zip(&s.cov) {
            assert!((a - b).abs() < 1e-10 * size, "{a} vs {b}");
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let mut only = symmetric_eigenvalues(&s.cov, d);
        only.sort_by(f64::total_cmp);
        assert!(sorted.iter().zip(&only).all(|(a, b)| (a - b).abs() < 1e-10 * size));
        assert_eq!(sorted.iter().filter(|&&l| l > 1e-9 * size).count(), 24);
    }

    #[test]
    fn every_factor_of_the_reference_gives_the_same_distance() {
        let d = 30;
        let (real, fake) = (features(20, d, 2), features(50, d, 3));
        let fake = Statistics::of(&fake, d).unwrap();
        let from_features = Reference::of_features(&real, d).unwrap();
        assert_eq!(from_features.rank, 20);
        let from_root = Reference::new(from_features.stats.clone()); // singular: the square root
        let a = from_features.distance(&fake).unwrap();
        let b = from_root.distance(&fake).unwrap();
        // The square roots of the zero eigenvalues' rounding errors (1e-16) add ~1e-8 each.
        assert!((a - b).abs() < 1e-5 * a.abs(), "{a} vs {b}");
        // Many samples: Cholesky, against the square root of the same statistics.
        let many = Statistics::of(&features(200, d, 4), d).unwrap();
        assert!(cholesky(&many.cov, d).is_some());
        let root = Reference { factor: symmetric_sqrt(&many.cov, d), rank: d, stats: many.clone() };
        let (a, b) = (Reference::new(many).distance(&fake).unwrap(), root.distance(&fake).unwrap());
        assert!((a - b).abs() < 1e-6 * a.abs(), "{a} vs {b}");
    }
}
