// The CUDA kernels of SGD (PyTorch's, with momentum, dampening, Nesterov and L2 weight decay):
// the tensor path of `optimizers/src/sgd.rs` (and its CPU kernel `../sgd.rs`), operation for
// operation.
//
// sgd: no state. sgd_momentum: state [momentum_buffer]; ints (first step, nesterov).
// Both: ints (l2) first, consts (zero, lr, wd) then for momentum (momentum, 1 - dampening).

template <typename T>
__device__ __forceinline__ T sgd_grad(int l2, T p, T g, T zero, T wd) {
  return l2 ? g + affine(p, wd, zero) : g;
}

template <typename T>
__device__ void sgd(u64 n, T* param, const T* grad, int l2, T zero, T lr, T wd) {
  GRID_STRIDE(i, n) {
    T p = param[i];
    T g = sgd_grad(l2, p, grad[i], zero, wd);
    param[i] = p - affine(g, lr, zero);
  }
}

template <typename T>
__device__ void sgd_momentum(u64 n, T* param, const T* grad, T* buf, int l2, int first, int nesterov, T zero, T lr,
                             T wd, T momentum, T one_minus_dampening) {
  GRID_STRIDE(i, n) {
    T p = param[i];
    T g = sgd_grad(l2, p, grad[i], zero, wd);
    T b = first ? g : affine(buf[i], momentum, zero) + affine(g, one_minus_dampening, zero);
    T d = nesterov ? g + affine(b, momentum, zero) : b;
    buf[i] = b;
    param[i] = p - affine(d, lr, zero);
  }
}

#define SGD_PARAMS(T) (u64 n, T* p, const T* g, int l2, T zero, T lr, T wd)
#define SGD_ARGS (n, p, g, l2, zero, lr, wd)
INSTANTIATE_ONE(sgd, f32, float, SGD_PARAMS(float), SGD_ARGS)
INSTANTIATE_ONE(sgd, f64, double, SGD_PARAMS(double), SGD_ARGS)

#define SGDM_PARAMS(T) (u64 n, T* p, const T* g, T* b, int l2, int first, int nesterov, T zero, T lr, T wd, T mom, T omd)
#define SGDM_ARGS (n, p, g, b, l2, first, nesterov, zero, lr, wd, mom, omd)
INSTANTIATE_ONE(sgd_momentum, f32, float, SGDM_PARAMS(float), SGDM_ARGS)
INSTANTIATE_ONE(sgd_momentum, f64, double, SGDM_PARAMS(double), SGDM_ARGS)
