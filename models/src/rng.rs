//! The suite's own seeded random number generator. candle's CPU generator cannot be seeded,
//! so everything random in a run (initial weights, data order, augmentation, dropout masks,
//! the stochastic online problem) draws from this one, made on the host and uploaded with
//! `Tensor::from_vec`: the same seed gives the same numbers on every machine and version.
//!
//! The generator is xoshiro256++ (Blackman & Vigna), seeded through SplitMix64; normals come
//! from the Box-Muller transform. Independent streams for the parts of a run come from
//! [`SeededRng::fork`], so that, say, changing the data order does not change the weights.
//!
//! Dropout masks come from a counter-based generator, [`philox4x32_10`]: a pure function of a
//! key and a counter, so that any element of a mask can be made on its own (in parallel, on
//! any device) and a checkpoint needs only the counter.

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

/// Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3",
/// SC'11; the reference implementation is Random123's `philox.h`): four 32-bit words that are a
/// bijective function of the 128-bit `counter`, keyed by 64 bits. Ten rounds of
///
/// ```text
/// (hi0, lo0) = M0 * c0,  (hi1, lo1) = M1 * c2        (32 x 32 -> 64-bit products)
/// c = (hi1 ^ c1 ^ k0,  lo1,  hi0 ^ c3 ^ k1,  lo0)
/// ```
///
/// with `M0 = 0xD2511F53`, `M1 = 0xCD9E8D57`, the key bumped by the Weyl constants
/// `(0x9E3779B9, 0xBB67AE85)` before every round after the first. Passes TestU01's BigCrush
/// (the paper's Table 2); cuRAND's `Philox4_32_10` and TensorFlow's stateless random ops are
/// this generator.
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    const M0: u64 = 0xD251_1F53;
    const M1: u64 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = M0 * c[0] as u64;
        let p1 = M1 * c[2] as u64;
        c = [(p1 >> 32) as u32 ^ c[1] ^ k[0], p1 as u32, (p0 >> 32) as u32 ^ c[3] ^ k[1], p0 as u32];
    }
    c
}

/// [`philox4x32_10`] of [`PHILOX_LANES`] counters at once in AVX2, word-major (`counters[w][l]`
/// is word `w` of lane `l`'s counter, and likewise the output): the 32 x 32 -> 64-bit products
/// of the even and of the odd lanes (`_mm256_mul_epu32`), their halves blended back into lanes.
///
/// # Safety
/// The processor must have AVX2 (`is_x86_feature_detected!("avx2")`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn philox4x32_10_lanes_avx2(counters: [[u32; PHILOX_LANES]; 4], key: [u32; 2]) -> [[u32; PHILOX_LANES]; 4] {
    use std::arch::x86_64::*;
    // Helpers as functions with the feature (closures would not inherit it).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mulhilo(a: __m256i, m: __m256i) -> (__m256i, __m256i) {
        let even = _mm256_mul_epu32(a, m);
        let odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
        let lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0b1010_1010);
        let hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0b1010_1010);
        (hi, lo)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load(w: &[u32; PHILOX_LANES]) -> __m256i {
        // SAFETY: a load of 32 bytes from a [u32; 8], unaligned.
        unsafe { _mm256_loadu_si256(w.as_ptr() as *const __m256i) }
    }
    let (m0, m1) = (_mm256_set1_epi64x(0xD251_1F53), _mm256_set1_epi64x(0xCD9E_8D57));
    let mut c = [load(&counters[0]), load(&counters[1]), load(&counters[2]), load(&counters[3])];
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(0x9E37_79B9), k[1].wrapping_add(0xBB67_AE85)];
        }
        let (hi0, lo0) = mulhilo(c[0], m0);
        let (hi1, lo1) = mulhilo(c[2], m1);
        let (k0, k1) = (_mm256_set1_epi32(k[0] as i32), _mm256_set1_epi32(k[1] as i32));
        c = [
            _mm256_xor_si256(_mm256_xor_si256(hi1, c[1]), k0),
            lo1,
            _mm256_xor_si256(_mm256_xor_si256(hi0, c[3]), k1),
            lo0,
        ];
    }
    let mut out = [[0u32; PHILOX_LANES]; 4];
    for (o, v) in out.iter_mut().zip(c) {
        // SAFETY: a store of 32 bytes into a [u32; 8].
        unsafe { _mm256_storeu_si256(o.as_mut_ptr() as *mut __m256i, v) };
    }
    out
}

/// The counters [`philox4x32_10_lanes_avx2`] takes at once.
pub const PHILOX_LANES: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    /// The Philox4x32-10 lines of Random123's `examples/kat_vectors` (columns: counter, key,
    /// expected output; all words in hex).
    #[test]
    fn philox_matches_the_published_known_answers() {
        let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            ([0; 4], [0; 2], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
            ([u32::MAX; 4], [u32::MAX; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (counter, key, expected) in cases {
            assert_eq!(philox4x32_10(counter, key), expected, "counter {counter:x?} key {key:x?}");
        }
        // The AVX2 form is the same function.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut rng = SeededRng::new(8);
            let key = [rng.next_u64() as u32, rng.next_u64() as u32];
            let counters: Vec<[u32; 4]> =
                (0..PHILOX_LANES).map(|_| [0; 4].map(|_: u32| rng.next_u64() as u32)).collect();
            let words = std::array::from_fn(|w| std::array::from_fn(|l| counters[l][w]));
            // SAFETY: the processor has AVX2.
            let lanes = unsafe { philox4x32_10_lanes_avx2(words, key) };
            for (l, counter) in counters.iter().enumerate() {
                assert_eq!(philox4x32_10(*counter, key), std::array::from_fn(|w| lanes[w][l]), "lane {l}");
            }
        }
    }

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
