// The CUDA kernels of RAdam (the official radam.py): the tensor path of `optimizers/src/radam.rs` (and its CPU
// kernel `../radam.rs`), operation for operation; `moments` (common.cuh) is Adam's.
//
// ints (kind: 0 rectified `lr r m / (sqrt(v) + eps)`, 1 SGD-like `lr/bc1 m`, 2 moments
// only; shrink), consts (zero, beta1, 1-beta1, beta2, 1-beta2, eps, step, shrink factor);
// state [m, v].
template <typename T>
__device__ void radam(u64 n, T* param, const T* grad, T* m, T* v, int kind, int shrink, T zero, T beta1, T omb1,
                      T beta2, T omb2, T eps, T step, T factor) {
  GRID_STRIDE(i, n) {
    T mi = m[i], vi = v[i];
    moments(grad[i], &mi, &vi, zero, beta1, omb1, beta2, omb2);
    m[i] = mi;
    v[i] = vi;
    if (kind == 2) continue;
    T update = kind == 0 ? affine(div_(mi, affine(sqrt_(vi), (T)1, eps)), step, zero) : affine(mi, step, zero);
    T p = shrink ? affine(param[i], factor, zero) : param[i];
    param[i] = p - update;
  }
}

#define RADAM_PARAMS(T) (u64 n, T* p, const T* g, T* m, T* v, int kind, int sh, T zero, T b1, T omb1, T b2, T omb2, T eps, T st, T f)
#define RADAM_ARGS (n, p, g, m, v, kind, sh, zero, b1, omb1, b2, omb2, eps, st, f)
INSTANTIATE_ONE(radam, f32, float, RADAM_PARAMS(float), RADAM_ARGS)
INSTANTIATE_ONE(radam, f64, double, RADAM_PARAMS(double), RADAM_ARGS)
