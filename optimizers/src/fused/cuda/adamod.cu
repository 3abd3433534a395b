// The CUDA kernels of AdaMod (adamod 0.0.3): the tensor path of `optimizers/src/adamod.rs` (and its CPU
// kernel `../adamod.rs`), operation for operation; `moments` (common.cuh) is Adam's.
//
// consts (zero, beta1, 1-beta1, beta2, 1-beta2, beta3, 1-beta3, eps, step size
// lr sqrt(bc2)/bc1, shrink factor 1 - lr wd); ints (shrink); state [m, v, s].
template <typename T>
__device__ void adamod(u64 n, T* param, const T* grad, T* m, T* v, T* s, int shrink, T zero, T beta1, T omb1, T beta2,
                       T omb2, T beta3, T omb3, T eps, T step, T factor) {
  GRID_STRIDE(i, n) {
    T mi = m[i], vi = v[i];
    moments(grad[i], &mi, &vi, zero, beta1, omb1, beta2, omb2);
    T denom = affine(sqrt_(vi), (T)1, eps);
    T p = shrink ? affine(param[i], factor, zero) : param[i];
    T eta = affine(div_((T)1, denom), step, zero);
    T si = affine(s[i], beta3, zero) + affine(eta, omb3, zero);
    m[i] = mi;
    v[i] = vi;
    s[i] = si;
    param[i] = p - minimum(eta, si) * mi;
  }
}

#define ADAMOD_PARAMS(T) (u64 n, T* p, const T* g, T* m, T* v, T* s, int sh, T zero, T b1, T omb1, T b2, T omb2, T b3, T omb3, T eps, T st, T f)
#define ADAMOD_ARGS (n, p, g, m, v, s, sh, zero, b1, omb1, b2, omb2, b3, omb3, eps, st, f)
INSTANTIATE_ONE(adamod, f32, float, ADAMOD_PARAMS(float), ADAMOD_ARGS)
INSTANTIATE_ONE(adamod, f64, double, ADAMOD_PARAMS(double), ADAMOD_ARGS)
