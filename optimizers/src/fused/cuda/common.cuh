// Shared by every optimizer kernel of optbench (optimizers/src/fused/cuda/): the element-wise
// operations of candle 0.11.1's own CUDA kernels (candle-kernels `cuda_utils.cuh`, `affine.cu`,
// `binary.cu`, `unary.cu`), spelled out so that a kernel performs the same IEEE operations as the
// tensor path on the GPU. The sources are compiled with NVRTC `--fmad=false`, so that a product
// followed by a sum is never contracted here, while candle's `affine` (`x * mul + add`, compiled
// by nvcc with its default `--fmad=true`) is one fused multiply-add: `affine` below is `fma`.
// Every kernel is a grid-stride loop over `n` contiguous elements.

typedef unsigned long long u64;

__device__ __forceinline__ float affine(float x, float mul, float add) { return __fmaf_rn(x, mul, add); }
__device__ __forceinline__ double affine(double x, double mul, double add) { return __fma_rn(x, mul, add); }
__device__ __forceinline__ float sqrt_(float x) { return __fsqrt_rn(x); }
__device__ __forceinline__ double sqrt_(double x) { return __dsqrt_rn(x); }
__device__ __forceinline__ float div_(float x, float y) { return __fdiv_rn(x, y); }
__device__ __forceinline__ double div_(double x, double y) { return __ddiv_rn(x, y); }
// candle's `maximum` / `minimum` on CUDA: fmax / fmin (candle's `maxg` / `ming`).
__device__ __forceinline__ float maximum(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double maximum(double a, double b) { return fmax(a, b); }
__device__ __forceinline__ float minimum(float a, float b) { return fminf(a, b); }
__device__ __forceinline__ double minimum(double a, double b) { return fmin(a, b); }
__device__ __forceinline__ float exp_(float x) { return expf(x); }
__device__ __forceinline__ double exp_(double x) { return exp(x); }
__device__ __forceinline__ float abs_(float x) { return fabsf(x); }
__device__ __forceinline__ double abs_(double x) { return fabs(x); }

#define GRID_STRIDE(i, n) for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)blockDim.x * gridDim.x)

// Weight decay modes (the CPU kernels' NO_DECAY, L2 and SHRINK).
#define DECAY_NONE 0
#define DECAY_L2 1
#define DECAY_SHRINK 2

// `parts::AdamMoments::update`: m <- beta1 m + (1 - beta1) g; v <- beta2 v + (1 - beta2) g².
template <typename T>
__device__ __forceinline__ void moments(T g, T* m, T* v, T zero, T beta1, T omb1, T beta2, T omb2) {
  *m = affine(*m, beta1, zero) + affine(g, omb1, zero);
  *v = affine(*v, beta2, zero) + affine(g * g, omb2, zero);
}

// Instantiates `NAME_f32` and `NAME_f64` from `template <typename T> __device__ void NAME(ARGS)`:
// INSTANTIATE(NAME, (PARAMS of T), (ARGUMENTS)).
#define INSTANTIATE_ONE(NAME, SUFFIX, T, PARAMS, ARGS) \
  extern "C" __global__ void NAME##_##SUFFIX PARAMS { NAME<T> ARGS; }
