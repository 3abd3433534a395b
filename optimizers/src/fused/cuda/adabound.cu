// The CUDA kernels of AdaBound / AMSBound (adabound 0.0.5): the tensor path of `optimizers/src/adabound.rs` (and its CPU
// kernel `../adabound.rs`), operation for operation; `moments` (common.cuh) is Adam's.
//
// consts (zero, beta1, 1-beta1, beta2, 1-beta2, eps, step size, lower, upper, wd);
// ints (l2); state [m, v] or, with amsbound, [m, v, vmax].
template <typename T, bool AMS>
__device__ __forceinline__ void adabound_one(u64 i, T* param, const T* grad, T* m, T* v, T* vmax, int l2, T zero,
                                             T beta1, T omb1, T beta2, T omb2, T eps, T step, T lower, T upper, T wd) {
  T p = param[i], g = grad[i];
  if (l2) g = g + affine(p, wd, zero);
  T mi = m[i], vi = v[i];
  moments(g, &mi, &vi, zero, beta1, omb1, beta2, omb2);
  T vv = vi;
  if (AMS) {
    vv = maximum(vmax[i], vi);
    vmax[i] = vv;
  }
  T eta = affine(div_((T)1, affine(sqrt_(vv), (T)1, eps)), step, zero);
  T bounded = minimum(maximum(eta, lower), upper);
  m[i] = mi;
  v[i] = vi;
  param[i] = p - bounded * mi;
}

template <typename T>
__device__ void adabound(u64 n, T* param, const T* grad, T* m, T* v, int l2, T zero, T beta1, T omb1, T beta2, T omb2,
                         T eps, T step, T lower, T upper, T wd) {
  GRID_STRIDE(i, n) {
    adabound_one<T, false>(i, param, grad, m, v, v, l2, zero, beta1, omb1, beta2, omb2, eps, step, lower, upper, wd);
  }
}

template <typename T>
__device__ void adabound_amsbound(u64 n, T* param, const T* grad, T* m, T* v, T* vmax, int l2, T zero, T beta1,
                                  T omb1, T beta2, T omb2, T eps, T step, T lower, T upper, T wd) {
  GRID_STRIDE(i, n) {
    adabound_one<T, true>(i, param, grad, m, v, vmax, l2, zero, beta1, omb1, beta2, omb2, eps, step, lower, upper, wd);
  }
}

#define AB_PARAMS(T) (u64 n, T* p, const T* g, T* m, T* v, int l2, T zero, T b1, T omb1, T b2, T omb2, T eps, T st, T lo, T up, T wd)
#define AB_ARGS (n, p, g, m, v, l2, zero, b1, omb1, b2, omb2, eps, st, lo, up, wd)
INSTANTIATE_ONE(adabound, f32, float, AB_PARAMS(float), AB_ARGS)
INSTANTIATE_ONE(adabound, f64, double, AB_PARAMS(double), AB_ARGS)

#define ABA_PARAMS(T) (u64 n, T* p, const T* g, T* m, T* v, T* vm, int l2, T zero, T b1, T omb1, T b2, T omb2, T eps, T st, T lo, T up, T wd)
#define ABA_ARGS (n, p, g, m, v, vm, l2, zero, b1, omb1, b2, omb2, eps, st, lo, up, wd)
INSTANTIATE_ONE(adabound_amsbound, f32, float, ABA_PARAMS(float), ABA_ARGS)
INSTANTIATE_ONE(adabound_amsbound, f64, double, ABA_PARAMS(double), ABA_ARGS)
