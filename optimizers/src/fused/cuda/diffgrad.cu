// The CUDA kernels of diffGrad (torch-optimizer 0.3.0): the tensor path of `optimizers/src/diffgrad.rs` (and its CPU
// kernel `../diffgrad.rs`), operation for operation; `moments` (common.cuh) is Adam's.
//
// ints (l2), consts (zero, beta1, 1-beta1, beta2, 1-beta2, eps, step size, wd);
// state [m, v, previous_grad].
template <typename T>
__device__ void diffgrad(u64 n, T* param, const T* grad, T* m, T* v, T* prev, int l2, T zero, T beta1, T omb1, T beta2,
                         T omb2, T eps, T step, T wd) {
  GRID_STRIDE(i, n) {
    T p = param[i], g = grad[i];
    if (l2) g = g + affine(p, wd, zero);
    T mi = m[i], vi = v[i];
    moments(g, &mi, &vi, zero, beta1, omb1, beta2, omb2);
    T denom = affine(sqrt_(vi), (T)1, eps);
    T friction = div_((T)1, affine(exp_(-abs_(prev[i] - g)), (T)1, (T)1));
    m[i] = mi;
    v[i] = vi;
    prev[i] = g;
    param[i] = p - affine(div_(mi * friction, denom), step, zero);
  }
}

#define DG_PARAMS(T) (u64 n, T* p, const T* g, T* m, T* v, T* pr, int l2, T zero, T b1, T omb1, T b2, T omb2, T eps, T st, T wd)
#define DG_ARGS (n, p, g, m, v, pr, l2, zero, b1, omb1, b2, omb2, eps, st, wd)
INSTANTIATE_ONE(diffgrad, f32, float, DG_PARAMS(float), DG_ARGS)
INSTANTIATE_ONE(diffgrad, f64, double, DG_PARAMS(double), DG_ARGS)
