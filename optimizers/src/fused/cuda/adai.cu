// The CUDA kernels of Adai / AdaiW (`optimizers/src/adai.rs`; the CPU kernel `../adai.rs`): the
// whole-model mean of the bias-corrected second moments, then the update, in three launches:
//
// adai_partial, per variable: the new second moment v' = beta2 v + (1 - beta2) g² (g with its L2
//   term), summed in double, one sum per block of ADAI_THREADS threads (a fixed tree) into
//   partial[blockIdx.x]; it only reads (adai recomputes v', as the CPU kernel does).
//   ints (mode), consts (zero, beta2, 1-beta2, wd).
// adai_fold, per variable, one block: the sum of its partials (a fixed tree), times 1/bc2, added
//   to total[0] in visit order (first: total[0] = it), as the tensor path adds each variable's
//   sum in f64.
// adai, per variable: mean = total[0] / count (in double, as the tensor path's `vbar`, then
//   rounded to the parameter's type), and the update.
//   ints (mode, first), consts (zero, beta2, 1-beta2, 1/bc2, -beta0, 1-eps, lr, decay),
//   state [m, v, beta1_prod] (beta1_prod starts at zeros on the GPU: the first step takes 1).
//
// The element-wise operations are the tensor path's on CUDA, operation for operation; the sum
// is not candle's (candle sums each variable in the parameter's type, in its own block order),
// so the mean, and with it every update, agrees with the tensor path to rounding only.

#define ADAI_THREADS 256

template <typename T>
__device__ __forceinline__ T adai_second_moment(int mode, T p, T g, T v, T zero, T beta2, T omb2, T wd) {
  if (mode == DECAY_L2) g = g + affine(p, wd, zero);
  return affine(v, beta2, zero) + affine(g * g, omb2, zero);
}

// The sum of `sums[0..ADAI_THREADS)` into sums[0], the same tree every time.
__device__ __forceinline__ void adai_block_sum(double* sums) {
  __syncthreads();
  for (unsigned k = ADAI_THREADS / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) sums[threadIdx.x] += sums[threadIdx.x + k];
    __syncthreads();
  }
}

template <typename T>
__device__ void adai_partial(u64 n, const T* param, const T* grad, const T* v, double* partial, int mode, T zero,
                             T beta2, T omb2, T wd) {
  __shared__ double sums[ADAI_THREADS];
  double s = 0.0;
  GRID_STRIDE(i, n) { s += (double)adai_second_moment(mode, param[i], grad[i], v[i], zero, beta2, omb2, wd); }
  sums[threadIdx.x] = s;
  adai_block_sum(sums);
  if (threadIdx.x == 0) partial[blockIdx.x] = sums[0];
}

template <typename T>
__device__ void adai_fold(const double* partial, unsigned blocks, double* total, int first, double inv_bc2) {
  __shared__ double sums[ADAI_THREADS];
  double s = 0.0;
  for (unsigned i = threadIdx.x; i < blocks; i += ADAI_THREADS) s += partial[i];
  sums[threadIdx.x] = s;
  adai_block_sum(sums);
  if (threadIdx.x == 0) {
    double x = __fma_rn(sums[0], inv_bc2, 0.0);
    total[0] = first ? x : total[0] + x;
  }
}

template <typename T>
__device__ void adai(u64 n, T* param, const T* grad, T* m, T* v, T* prod, const double* total, double inv_count,
                     int mode, int first, T zero, T beta2, T omb2, T inv_bc2, T minus_beta0, T max_beta1, T lr,
                     T decay) {
  const T one = 1, minus_one = -1;
  const T mean = (T)__fma_rn(total[0], inv_count, 0.0);
  GRID_STRIDE(i, n) {
    T p = param[i], g = grad[i];
    if (mode == DECAY_L2) {
      g = g + affine(p, decay, zero);
    } else if (mode == DECAY_SHRINK) {
      p = affine(p, decay, zero);
    }
    T vi = affine(v[i], beta2, zero) + affine(g * g, omb2, zero);
    T v_hat = affine(vi, inv_bc2, zero);
    T beta1 = minimum(maximum(affine(div_(v_hat, mean), minus_beta0, one), zero), max_beta1);
    T pr = first ? one * beta1 : prod[i] * beta1;
    T mi = m[i] * beta1 + affine(beta1, minus_one, one) * g;
    v[i] = vi;
    prod[i] = pr;
    m[i] = mi;
    param[i] = p - affine(div_(mi, affine(pr, minus_one, one)), lr, zero);
  }
}

#define PARTIAL_PARAMS(T) (u64 n, const T* p, const T* g, const T* v, double* part, int mode, T zero, T b2, T omb2, T wd)
#define PARTIAL_ARGS (n, p, g, v, part, mode, zero, b2, omb2, wd)
INSTANTIATE_ONE(adai_partial, f32, float, PARTIAL_PARAMS(float), PARTIAL_ARGS)
INSTANTIATE_ONE(adai_partial, f64, double, PARTIAL_PARAMS(double), PARTIAL_ARGS)

#define FOLD_PARAMS (const double* part, unsigned blocks, double* total, int first, double inv_bc2)
#define FOLD_ARGS (part, blocks, total, first, inv_bc2)
INSTANTIATE_ONE(adai_fold, f32, float, FOLD_PARAMS, FOLD_ARGS)
INSTANTIATE_ONE(adai_fold, f64, double, FOLD_PARAMS, FOLD_ARGS)

#define ADAI_PARAMS(T) (u64 n, T* p, const T* g, T* m, T* v, T* pr, const double* total, double inv_count, int mode, \
                        int first, T zero, T b2, T omb2, T ibc2, T mb0, T mb1, T lr, T d)
#define ADAI_ARGS (n, p, g, m, v, pr, total, inv_count, mode, first, zero, b2, omb2, ibc2, mb0, mb1, lr, d)
INSTANTIATE_ONE(adai, f32, float, ADAI_PARAMS(float), ADAI_ARGS)
INSTANTIATE_ONE(adai, f64, double, ADAI_PARAMS(double), ADAI_ARGS)
