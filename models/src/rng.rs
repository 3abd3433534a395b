//! The suite's own seeded random number generator. candle's CPU generator cannot be seeded,
//! so everything random in a run (initial weights, data order, augmentation, dropout masks,
//! the stochastic online problem) draws from this one, made on the host and uploaded with
//! `Tensor::from_vec`: the same seed gives the same numbers on every machine and version.
//!
//! The generator is xoshiro256++ (Blackman & Vigna), seeded through SplitMix64; normals come
//! from the Box-Muller transform. Independent streams for the parts of a run come from
//! [`SeededRng::fork`], so that, say, changing the data order does not change the weights.

/// A small, fast, seedable generator (xoshiro256++).
#[derive(Clone, Debug)]
pub struct SeededRng {
    s: [u64; 4],
    spare_normal: Option<f64>,
}

/// Where a [`SeededRng`] is in its stream, for checkpoints: restoring it continues the stream
/// exactly.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RngState {
    pub s: [u64; 4],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spare_normal: Option<f64>,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
        Self { s, spare_normal: None }
    }

    /// The generator's position in its stream.
    pub fn state(&self) -> RngState {
        RngState { s: self.s, spare_normal: self.spare_normal }
    }

    /// A generator at a saved position.
    pub fn from_state(state: RngState) -> Self {
        Self { s: state.s, spare_normal: state.spare_normal }
    }

    /// An independent generator for one named part of a run, e.g. `rng.fork("data-order")`:
    /// a function of this generator's seed state and the name only.
    pub fn fork(&self, stream: &str) -> Self {
        // FNV-1a of the name, mixed with this generator's state.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in stream.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Self::new(self.s[0] ^ self.s[2].rotate_left(17) ^ h)
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = (self.s[0].wrapping_add(self.s[3])).rotate_left(23).wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[low, high)`.
    pub fn uniform_in(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Uniform integer in `0..n` (Lemire's multiply-shift, bias below 2^-64 n).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// `true` with probability `p`.
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// A standard normal sample.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        // Box-Muller on (0, 1] x [0, 1).
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }

    /// Shuffles in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// A random permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        self.shuffle(&mut p);
        p
    }

    /// `n` samples of `U[low, high)` as f32 (for weight initialisation).
    pub fn uniform_vec(&mut self, n: usize, low: f64, high: f64) -> Vec<f32> {
        (0..n).map(|_| self.uniform_in(low, high) as f32).collect()
    }

    /// `n` samples of `N(mean, std²)` as f32.
    pub fn normal_vec(&mut self, n: usize, mean: f64, std: f64) -> Vec<f32> {
        (0..n).map(|_| (mean + std * self.normal()) as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_state_continues_the_stream() {
        let mut a = SeededRng::new(7);
        a.normal();
        let mut b = SeededRng::from_state(a.state());
        assert_eq!(a.state(), b.state());
        for _ in 0..5 {
            assert_eq!(a.normal().to_bits(), b.normal().to_bits());
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn same_seed_same_stream_and_forks_differ() {
        let mut a = SeededRng::new(42);
        let mut b = SeededRng::new(42);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let root = SeededRng::new(42);
        assert_ne!(root.fork("init").next_u64(), root.fork("data").next_u64());
        assert_eq!(root.fork("init").next_u64(), SeededRng::new(42).fork("init").next_u64());
        assert_ne!(SeededRng::new(1).next_u64(), SeededRng::new(2).next_u64());
    }

    #[test]
    fn moments_of_uniform_and_normal() {
        let mut rng = SeededRng::new(7);
        let n = 200_000;
        let u: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
        let mean = u.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 5e-3, "{mean}");
        assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
        let z: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 1e-2 && (var - 1.0).abs() < 2e-2, "{mean} {var}");
    }

    #[test]
    fn permutations_are_permutations() {
        let mut rng = SeededRng::new(3);
        let mut p = rng.permutation(1000);
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        p.sort();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
        let counts = (0..10_000).fold([0usize; 3], |mut c, _| {
            c[rng.below(3)] += 1;
            c
        });
        assert!(counts.iter().all(|&c| c > 3000), "{counts:?}");
    }
}
