// The CUDA kernels of AdaBelief (adabelief-pytorch 0.2.1): the tensor path of
// `optimizers/src/adabelief.rs` (and its CPU kernel `../adabelief.rs`), operation for operation.
//
// ints (decay mode, update kind), consts (zero, beta1, 1-beta1, beta2, 1-beta2, eps, decay,
// denominator scale, step); state [m, s] or, with amsgrad, [m, s, smax].
// Update kinds: 0 Adam-style `step * m / (sqrt(s or smax) * scale + eps)` (scale 1/sqrt(bc2),
// step lr/bc1), 1 rectified `step * m / (sqrt(s) + eps)` (scale 1, step lr * r), 2 SGD-like
// `step * m` (step lr/bc1), 3 no update (the decoupled decay alone).
#define BELIEF_ADAM 0
#define BELIEF_RECTIFIED 1
#define BELIEF_SGD 2
#define BELIEF_SKIP 3

template <typename T, bool AMS>
__device__ __forceinline__ void adabelief_one(u64 i, T* param, const T* grad, T* m, T* s, T* smax, int mode, int kind,
                                              T zero, T beta1, T omb1, T beta2, T omb2, T eps, T decay, T scale,
                                              T step) {
  T p = param[i], g = grad[i];
  if (mode == DECAY_L2) {
    g = g + affine(p, decay, zero);
  } else if (mode == DECAY_SHRINK) {
    p = affine(p, decay, zero);
  }
  T mi = affine(m[i], beta1, zero) + affine(g, omb1, zero);
  T r = g - mi;
  T si = affine(affine(s[i], beta2, zero) + affine(r * r, omb2, zero), (T)1, eps);
  T sm = si;
  if (AMS) {
    sm = maximum(smax[i], si);
    smax[i] = sm;
  }
  m[i] = mi;
  s[i] = si;
  if (kind == BELIEF_ADAM) {
    p = p - affine(div_(mi, affine(sqrt_(AMS ? sm : si), scale, eps)), step, zero);
  } else if (kind == BELIEF_RECTIFIED) {
    p = p - affine(div_(mi, affine(sqrt_(si), scale, eps)), step, zero);
  } else if (kind == BELIEF_SGD) {
    p = p - affine(mi, step, zero);
  }
  param[i] = p;
}

template <typename T>
__device__ void adabelief(u64 n, T* param, const T* grad, T* m, T* s, int mode, int kind, T zero, T beta1, T omb1,
                          T beta2, T omb2, T eps, T decay, T scale, T step) {
  GRID_STRIDE(i, n) {
    adabelief_one<T, false>(i, param, grad, m, s, s, mode, kind, zero, beta1, omb1, beta2, omb2, eps, decay, scale, step);
  }
}

template <typename T>
__device__ void adabelief_amsgrad(u64 n, T* param, const T* grad, T* m, T* s, T* smax, int mode, int kind, T zero,
                                  T beta1, T omb1, T beta2, T omb2, T eps, T decay, T scale, T step) {
  GRID_STRIDE(i, n) {
    adabelief_one<T, true>(i, param, grad, m, s, smax, mode, kind, zero, beta1, omb1, beta2, omb2, eps, decay, scale,
                           step);
  }
}

#define AB_PARAMS(T) (u64 n, T* p, const T* g, T* m, T* s, int mode, int kind, T zero, T b1, T omb1, T b2, T omb2, T eps, T d, T sc, T st)
#define AB_ARGS (n, p, g, m, s, mode, kind, zero, b1, omb1, b2, omb2, eps, d, sc, st)
INSTANTIATE_ONE(adabelief, f32, float, AB_PARAMS(float), AB_ARGS)
INSTANTIATE_ONE(adabelief, f64, double, AB_PARAMS(double), AB_ARGS)

#define ABA_PARAMS(T) (u64 n, T* p, const T* g, T* m, T* s, T* sm, int mode, int kind, T zero, T b1, T omb1, T b2, T omb2, T eps, T d, T sc, T st)
#define ABA_ARGS (n, p, g, m, s, sm, mode, kind, zero, b1, omb1, b2, omb2, eps, d, sc, st)
INSTANTIATE_ONE(adabelief_amsgrad, f32, float, ABA_PARAMS(float), ABA_ARGS)
INSTANTIATE_ONE(adabelief_amsgrad, f64, double, ABA_PARAMS(double), ABA_ARGS)
