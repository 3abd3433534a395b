// The CUDA kernels of Adam / AdamW / AMSGrad: the CPU kernel of `../adam.rs` (and the tensor
// path of `optimizers/src/adam.rs` / `amsgrad.rs`), operation for operation.
//
// adam[_amsgrad]: ints (mode), consts (zero, beta1, 1-beta1, beta2, 1-beta2, 1/sqrt(bc2), eps,
// lr/bc1, decay), state [m, v] or [m, v, vmax].
// tf_amsgrad: consts (beta1, 1-beta1, beta2, 1-beta2, bc1, bc2, lr, eps) in the parameter's
// precision, state [m, v] with v holding the maximum (fed back).

template <typename T>
__device__ __forceinline__ T adam_moments(int mode, T p, T g, T* m, T* v, T zero, T beta1, T omb1, T beta2, T omb2,
                                          T decay, T* pd) {
  if (mode == DECAY_L2) {
    g = g + affine(p, decay, zero);
  } else if (mode == DECAY_SHRINK) {
    p = affine(p, decay, zero);
  }
  *m = affine(*m, beta1, zero) + affine(g, omb1, zero);
  *v = affine(*v, beta2, zero) + affine(g * g, omb2, zero);
  *pd = p;
  return g;
}

template <typename T>
__device__ __forceinline__ T adam_step(T p, T m, T v, T zero, T inv_sqrt_bc2, T eps, T step) {
  T denom = affine(sqrt_(v), inv_sqrt_bc2, eps);
  return p - affine(div_(m, denom), step, zero);
}

template <typename T>
__device__ void adam(u64 n, T* param, const T* grad, T* m, T* v, int mode, T zero, T beta1, T omb1, T beta2, T omb2,
                     T inv_sqrt_bc2, T eps, T step, T decay) {
  GRID_STRIDE(i, n) {
    T mi = m[i], vi = v[i], pd;
    adam_moments(mode, param[i], grad[i], &mi, &vi, zero, beta1, omb1, beta2, omb2, decay, &pd);
    m[i] = mi;
    v[i] = vi;
    param[i] = adam_step(pd, mi, vi, zero, inv_sqrt_bc2, eps, step);
  }
}

template <typename T>
__device__ void adam_amsgrad(u64 n, T* param, const T* grad, T* m, T* v, T* vmax, int mode, T zero, T beta1, T omb1,
                             T beta2, T omb2, T inv_sqrt_bc2, T eps, T step, T decay) {
  GRID_STRIDE(i, n) {
    T mi = m[i], vi = v[i], pd;
    adam_moments(mode, param[i], grad[i], &mi, &vi, zero, beta1, omb1, beta2, omb2, decay, &pd);
    T vm = maximum(vmax[i], vi);
    m[i] = mi;
    v[i] = vi;
    vmax[i] = vm;
    param[i] = adam_step(pd, mi, vm, zero, inv_sqrt_bc2, eps, step);
  }
}

template <typename T>
__device__ void tf_amsgrad(u64 n, T* param, const T* grad, T* m, T* v, T beta1, T omb1, T beta2, T omb2, T bc1, T bc2,
                           T lr, T eps) {
  const T zero = 0, one = 1;
  GRID_STRIDE(i, n) {
    T g = grad[i];
    T mi = affine(m[i], beta1, zero) + affine(g, omb1, zero);
    T candidate = affine(v[i], beta2, zero) + affine(g * g, omb2, zero);
    T vi = maximum(candidate, v[i]);
    T numerator = affine(div_(mi, bc1), lr, zero);
    T denominator = affine(sqrt_(div_(vi, bc2)), one, eps);
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] - div_(numerator, denominator);
  }
}

#define ADAM_PARAMS(T) (u64 n, T* p, const T* g, T* m, T* v, int mode, T zero, T b1, T omb1, T b2, T omb2, T isb, T eps, T st, T d)
#define ADAM_ARGS (n, p, g, m, v, mode, zero, b1, omb1, b2, omb2, isb, eps, st, d)
INSTANTIATE_ONE(adam, f32, float, ADAM_PARAMS(float), ADAM_ARGS)
INSTANTIATE_ONE(adam, f64, double, ADAM_PARAMS(double), ADAM_ARGS)

#define AMS_PARAMS(T) (u64 n, T* p, const T* g, T* m, T* v, T* vm, int mode, T zero, T b1, T omb1, T b2, T omb2, T isb, T eps, T st, T d)
#define AMS_ARGS (n, p, g, m, v, vm, mode, zero, b1, omb1, b2, omb2, isb, eps, st, d)
INSTANTIATE_ONE(adam_amsgrad, f32, float, AMS_PARAMS(float), AMS_ARGS)
INSTANTIATE_ONE(adam_amsgrad, f64, double, AMS_PARAMS(double), AMS_ARGS)

#define TF_PARAMS(T) (u64 n, T* p, const T* g, T* m, T* v, T b1, T omb1, T b2, T omb2, T bc1, T bc2, T lr, T eps)
#define TF_ARGS (n, p, g, m, v, b1, omb1, b2, omb2, bc1, bc2, lr, eps)
INSTANTIATE_ONE(tf_amsgrad, f32, float, TF_PARAMS(float), TF_ARGS)
INSTANTIATE_ONE(tf_amsgrad, f64, double, TF_PARAMS(double), TF_ARGS)
