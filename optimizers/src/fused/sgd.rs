//! The fused CPU kernel of [`Sgd`](crate::Sgd): the operations of `sgd.rs`'s tensor path,
//! element by element. The weight decay, the momentum (none, the first step's copy, the
//! running buffer) and Nesterov are compile-time parameters, so that each inner loop is
//! branch-free.

use super::{Kernel, Real};

/// The per-step scalars of an SGD update (the rule's `Scalars`), computed once per variable
/// and step; every constant enters as candle's `affine` rounds it to the parameter's type.
#[derive(Clone, Copy, Debug)]
pub struct SgdStep {
    pub lr: f64,
    /// 0: no momentum buffer (`d = g`).
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    /// The L2 coefficient (`g <- g + wd p`); 0 for none.
    pub weight_decay: f64,
    /// Whether this is the variable's first step, where the buffer becomes `g` itself.
    pub first: bool,
}

const NONE: u8 = 0;
const FIRST: u8 = 1;
const RUNNING: u8 = 2;

#[derive(Clone, Copy)]
struct Consts<T> {
    zero: T,
    lr: T,
    momentum: T,
    one_minus_dampening: T,
    wd: T,
}

impl Kernel for SgdStep {
    /// Updates `param` in place; `state` is `[]` without momentum, `[momentum_buffer]` with.
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let c = Consts {
            zero: T::of(0.0),
            lr: T::of(self.lr),
            momentum: T::of(self.momentum),
            one_minus_dampening: T::of(1.0 - self.dampening),
            wd: T::of(self.weight_decay),
        };
        let l2 = self.weight_decay != 0.0;
        let buf: &mut [T] = match state {
            [] => &mut [],
            [buf] => buf,
            _ => unreachable!("SGD keeps at most one state vector"),
        };
        let mode = match (self.momentum != 0.0, self.first) {
            (false, _) => NONE,
            (true, true) => FIRST,
            (true, false) => RUNNING,
        };
        macro_rules! go {
            ($($l2:literal, $mode:ident, $nesterov:literal);*) => {
                match (l2, mode, self.nesterov) {
                    $(($l2, $mode, $nesterov) => kernel::<T, $l2, $mode, $nesterov>(param, grad, buf, c),)*
                    _ => unreachable!("Nesterov without momentum is rejected by validation"),
                }
            };
        }
        go!(false, NONE, false; true, NONE, false;
            false, FIRST, false; true, FIRST, false; false, FIRST, true; true, FIRST, true;
            false, RUNNING, false; true, RUNNING, false; false, RUNNING, true; true, RUNNING, true)
    }
}

fn kernel<T: Real, const L2: bool, const MODE: u8, const NESTEROV: bool>(
    param: &mut [T],
    grad: &[T],
    buf: &mut [T],
    c: Consts<T>,
) {
    let n = param.len();
    let grad = &grad[..n];
    let buf = if MODE == NONE { buf } else { &mut buf[..n] };
    for i in 0..n {
        let p = param[i];
        let g = if L2 { grad[i] + (p * c.wd + c.zero) } else { grad[i] };
        let d = if MODE == NONE {
            g
        } else {
            let b =
                if MODE == FIRST { g } else { (buf[i] * c.momentum + c.zero) + (g * c.one_minus_dampening + c.zero) };
            buf[i] = b;
            if NESTEROV {
                g + (b * c.momentum + c.zero)
            } else {
                b
            }
        };
        param[i] = p - (d * c.lr + c.zero);
    }
}
