"""AlexNet's layers in NumPy: each `*_forward` returns (out, cache), each `*_backward(dout, cache)`
returns the gradients of the loss with respect to the layer's input and parameters.

The layers are those of Krizhevsky, Sutskever & Hinton (2012): convolutions with the two-GPU
grouping (section 3.2), ReLU against tanh (3.1), local response normalization (3.3), overlapping
max-pooling (3.4), dropout (4.2), fully-connected layers and the softmax loss (3.5). Each
function computes what its torch counterpart computes (nn.Conv2d, nn.MaxPool2d,
nn.LocalResponseNorm and the project's towers variant, nn.Dropout, nn.Linear,
F.cross_entropy); tests/scratch checks every one against torch autograd and finite differences.

The convolution is im2col + one matrix product per group (Chellapilla, Puri & Simard 2006, the
scheme of Caffe): the patches are gathered into a matrix whose columns are output pixels, so the
whole layer is one BLAS call. Python loops run over kernel offsets (kh*kw, or the pool window,
or the LRN window), never over pixels, channels or samples.

Memory layout: the conv's matrix product gives channels first, so conv2d returns its N,C,H,W
result as a transposed view of a C,N,H,W array. The layers after it keep that layout
(elementwise ops follow the input's memory order, pools write into channel-first buffers), so
the next conv's im2col reads it with contiguous copies and no layer pays a transpose. Every
function accepts inputs of any strides; only speed depends on the layout.
"""

from __future__ import annotations

import numpy as np

Cache = tuple


# ----------------------------------------------------------------------------- helpers


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a conv or pool along one axis (floor mode, as torch's default)."""
    return (size + 2 * padding - kernel) // stride + 1


def _zeros_cnhw(n: int, c: int, h: int, w: int, dtype: np.dtype, fill: float = 0.0) -> np.ndarray:
    """An N,C,H,W array stored channel-first (C,N,H,W in memory): the layout conv2d produces."""
    buf = np.full((c, n, h, w), fill, dtype=dtype)  # C,N,H,W
    return buf.transpose(1, 0, 2, 3)  # N,C,H,W view


def _pad(x: np.ndarray, padding: int, fill: float = 0.0) -> np.ndarray:
    """Pad H and W by `padding` on each side, in the channel-first layout. N,C,H,W -> N,C,H+2p,W+2p."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    xp = _zeros_cnhw(n, c, h + 2 * padding, w + 2 * padding, x.dtype, fill)
    xp[:, :, padding:padding + h, padding:padding + w] = x
    return xp


def _window(xp: np.ndarray, i: int, j: int, stride: int, oh: int, ow: int) -> np.ndarray:
    """The input pixel at kernel offset (i, j) of every output window. N,C,Hp,Wp -> N,C,OH,OW view."""
    return xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]


# ----------------------------------------------------------------------------- convolution


def im2col(x: np.ndarray, kh: int, kw: int, stride: int, padding: int) -> tuple[np.ndarray, int, int]:
    """Unfold the patches under every output pixel into columns.

    x: N,C,H,W -> cols: C*kh*kw, N*OH*OW, rows ordered (c, i, j) like a torch conv weight
    flattened to F, C*kh*kw, so the conv is weight.reshape(F, -1) @ cols.
    """
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, stride, padding), out_size(w, kw, stride, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"input {h}x{w} is smaller than the {kh}x{kw} kernel (padding {padding})")
    xp = _pad(x, padding)  # N,C,H+2p,W+2p
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)  # C,kh,kw,N,OH,OW
    for i in range(kh):  # one strided copy of the whole batch per kernel offset
        for j in range(kw):
            cols[:, i, j] = _window(xp, i, j, stride, oh, ow).transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * oh * ow), oh, ow


def col2im(
    dcols: np.ndarray, x_shape: tuple[int, int, int, int], kh: int, kw: int, stride: int, padding: int
) -> np.ndarray:
    """The adjoint of im2col: add every column's entries back onto the pixels they came from.

    dcols: C*kh*kw, N*OH*OW -> dx: N,C,H,W. Where windows overlap (stride < kernel) a pixel
    receives the sum of its copies' gradients; looping over kernel offsets rather than pixels
    keeps each += a whole-batch strided add, with no np.add.at.
    """
    n, c, h, w = x_shape
    oh, ow = out_size(h, kh, stride, padding), out_size(w, kw, stride, padding)
    dcols = dcols.reshape(c, kh, kw, n, oh, ow)  # C,kh,kw,N,OH,OW
    dxp = _zeros_cnhw(n, c, h + 2 * padding, w + 2 * padding, dcols.dtype)  # N,C,Hp,Wp
    for i in range(kh):
        for j in range(kw):
            _window(dxp, i, j, stride, oh, ow)[...] += dcols[:, i, j].transpose(1, 0, 2, 3)
    return dxp[:, :, padding:padding + h, padding:padding + w]  # N,C,H,W


def conv2d_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int = 1, padding: int = 0, groups: int = 1
) -> tuple[np.ndarray, Cache]:
    """out[n, f] = bias[f] + sum over the group's channels c and offsets (i, j) of
    weight[f, c, i, j] * xpad[n, c, s*y + i, s*x + j], as nn.Conv2d (a cross-correlation).

    x: N,C,H,W; weight: F,C/G,kh,kw; bias: F -> out: N,F,OH,OW. With groups G the channels split
    into G blocks and filter block g sees input block g only: the paper's two GPUs (section
    3.2), where conv2, conv4 and conv5 take input from their own GPU's maps alone.
    """
    n, c, _h, _w = x.shape
    f, cg, kh, kw = weight.shape
    if c != cg * groups or f % groups:
        raise ValueError(f"conv weight {weight.shape} with groups={groups} does not fit input with {c} channels")
    cols, oh, ow = im2col(x, kh, kw, stride, padding)  # C*kh*kw, N*OH*OW
    # rows of cols are ordered by channel first, so group g's rows are one contiguous block
    w_g = weight.reshape(groups, f // groups, cg * kh * kw)  # G,F/G,K/G
    out = np.matmul(w_g, cols.reshape(groups, cg * kh * kw, -1))  # G,F/G,N*OH*OW
    out = out.reshape(f, n, oh, ow)  # F,N,OH,OW
    if bias is not None:
        out += bias[:, None, None, None]
    return out.transpose(1, 0, 2, 3), (cols, weight, bias is not None, x.shape, stride, padding, groups)  # N,F,OH,OW


def conv2d_backward(
    dout: np.ndarray, cache: Cache, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """dout: N,F,OH,OW -> (dx: N,C,H,W or None, dweight: F,C/G,kh,kw, dbias: F or None).

    dweight = dout @ cols^T and dcols = weight^T @ dout, per group; dx = col2im(dcols). The
    first layer's dx is never used, so need_dx=False skips its matrix product and col2im.
    """
    cols, weight, has_bias, x_shape, stride, padding, groups = cache
    f, cg, kh, kw = weight.shape
    d = dout.transpose(1, 0, 2, 3).reshape(groups, f // groups, -1)  # G,F/G,N*OH*OW
    cols_g = cols.reshape(groups, cg * kh * kw, -1)  # G,K/G,N*OH*OW
    dweight = np.matmul(d, cols_g.transpose(0, 2, 1)).reshape(weight.shape)  # F,C/G,kh,kw
    dbias = dout.sum(axis=(0, 2, 3)) if has_bias else None  # F
    if not need_dx:
        return None, dweight, dbias
    w_g = weight.reshape(groups, f // groups, cg * kh * kw)  # G,F/G,K/G
    dcols = np.matmul(w_g.transpose(0, 2, 1), d)  # G,K/G,N*OH*OW
    dx = col2im(dcols.reshape(cols.shape), x_shape, kh, kw, stride, padding)  # N,C,H,W
    return dx, dweight, dbias


# ----------------------------------------------------------------------------- pooling


def max_pool2d_forward(x: np.ndarray, kernel_size: int, stride: int, padding: int = 0) -> tuple[np.ndarray, Cache]:
    """out[n, c, y, x] = max over the kernel_size^2 window at (s*y - p, s*x - p), as nn.MaxPool2d.

    x: N,C,H,W -> out: N,C,OH,OW, floor mode. kernel 3, stride 2 is the paper's overlapping pool
    (section 3.4), kernel = stride = 2 the traditional one; the padding counts as -inf, so it
    never wins (alexnet_mini pads its 3/2 pool by one so that 32 -> 16 -> 8 -> 4).
    """
    _n, _c, h, w = x.shape
    if padding > kernel_size // 2:
        raise ValueError(f"pool padding {padding} must be at most half the kernel size {kernel_size}")
    oh, ow = out_size(h, kernel_size, stride, padding), out_size(w, kernel_size, stride, padding)
    xp = _pad(x, padding, fill=-np.inf)  # N,C,Hp,Wp
    out = _window(xp, 0, 0, stride, oh, ow).copy(order="K")  # N,C,OH,OW, keeps the memory layout
    for i in range(kernel_size):
        for j in range(kernel_size):
            if i or j:
                np.maximum(out, _window(xp, i, j, stride, oh, ow), out=out)
    return out, (xp, out, x.shape, kernel_size, stride, padding)


def max_pool2d_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """dout: N,C,OH,OW -> dx: N,C,H,W. Each window's gradient goes to its maximum only.

    On ties (common after a ReLU: windows of zeros) torch routes it to the first maximum in
    row-major window order; scanning the offsets in that order and marking windows already
    served does the same.
    """
    xp, out, x_shape, k, stride, padding = cache
    n, c, h, w = x_shape
    oh, ow = out.shape[2:]
    dxp = _zeros_cnhw(n, c, h + 2 * padding, w + 2 * padding, dout.dtype)  # N,C,Hp,Wp
    served = np.zeros(out.shape, dtype=bool)  # N,C,OH,OW
    for i in range(k):
        for j in range(k):
            hit = _window(xp, i, j, stride, oh, ow) == out
            hit &= ~served
            served |= hit
            _window(dxp, i, j, stride, oh, ow)[...] += dout * hit  # * a mask: cheaper than np.where
    return dxp[:, :, padding:padding + h, padding:padding + w]


# ----------------------------------------------------------------------------- activations


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """max(0, x), the non-saturating non-linearity of section 3.1. Any shape."""
    out = np.maximum(x, 0)
    return out, (out,)


def relu_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    (out,) = cache
    # as torch, the gradient at 0 is 0; multiplying by the mask is cheaper than np.where
    # (measured: BENCHMARKS.md, "CPU: this project's machine")
    return dout * (out > 0)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """tanh(x), the saturating baseline of section 3.1 (figure 1). Any shape."""
    out = np.tanh(x)
    return out, (out,)


def tanh_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    (out,) = cache
    return dout * (1 - out * out)


# ----------------------------------------------------------------------------- local response normalization


def _window_sum(t: np.ndarray, before: int, after: int) -> np.ndarray:
    """out[:, :, c] = sum of t[:, :, c-before : c+after+1], the window clipped at both ends.

    t: N,T,C,H,W. One shifted add per window offset, each over the whole array.
    """
    out = t.copy(order="K")
    for d in range(1, before + 1):
        out[:, :, d:] += t[:, :, :-d]
    for d in range(1, after + 1):
        out[:, :, :-d] += t[:, :, d:]
    return out


def lrn_forward(
    x: np.ndarray, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, towers: int = 1
) -> tuple[np.ndarray, Cache]:
    """Section 3.3, exactly as nn.LocalResponseNorm (which divides alpha by n):

        b_c = a_c / (k + alpha/n * sum_{c'=c-n//2}^{c+(n-1)//2} a_{c'}^2)^beta

    with the window clipped at the first and last channel. x: N,C,H,W -> N,C,H,W. towers > 1
    normalises each block of C/towers channels on its own, the window never crossing a block
    boundary: on two GPUs each normalised over its own kernel maps. The defaults are the paper's
    n=5, alpha=1e-4, beta=0.75, k=2.
    """
    n, c, h, w = x.shape
    if c % towers:
        raise ValueError(f"{c} channels do not split into {towers} towers")
    xt = x.reshape(n, towers, c // towers, h, w)  # N,T,C/T,H,W (a view: splits the channel axis)
    denom = _window_sum(xt * xt, size // 2, (size - 1) // 2)  # N,T,C/T,H,W
    denom *= alpha / size
    denom += k
    scale = denom ** -beta
    out = xt * scale
    return out.reshape(n, c, h, w), (xt, denom, scale, size, alpha, beta)


def lrn_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """dout: N,C,H,W -> dx: N,C,H,W.

    d b_j / d a_i = delta_ij * scale_j - (2 alpha beta / n) * a_j a_i scale_j / denom_j for i in
    window(j); summing over j is a window sum with the window mirrored (before and after swapped).
    """
    xt, denom, scale, size, alpha, beta = cache
    g = dout.reshape(xt.shape) * scale  # N,T,C/T,H,W
    s = _window_sum(g * xt / denom, (size - 1) // 2, size // 2)
    dx = g - (2.0 * alpha * beta / size) * xt * s
    return dx.reshape(dout.shape)


# ----------------------------------------------------------------------------- dropout, linear, flatten


def dropout_forward(x: np.ndarray, p: float, train: bool, rng: np.random.Generator | None) -> tuple[np.ndarray, Cache]:
    """Inverted dropout (section 4.2): zero each unit with probability p and scale the kept ones
    by 1/(1-p) while training, so that testing is the identity (the paper instead halves the
    outputs at test time; the expectations are the same). Any shape.
    """
    if not train or p == 0:
        return x, (None,)
    if rng is None:
        raise ValueError("dropout in training mode needs a numpy Generator (rng)")
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    mask = (rng.random(x.shape, dtype=dtype) >= p).astype(x.dtype)
    mask *= 1.0 / (1.0 - p)
    return x * mask, (mask,)


def dropout_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    (mask,) = cache
    return dout if mask is None else dout * mask


def linear_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, Cache]:
    """x @ weight^T + bias, as nn.Linear. x: N,D; weight: M,D; bias: M -> out: N,M."""
    out = x @ weight.T  # N,M
    if bias is not None:
        out += bias
    return out, (x, weight, bias is not None)


def linear_backward(
    dout: np.ndarray, cache: Cache, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """dout: N,M -> (dx: N,D, dweight: M,D, dbias: M)."""
    x, weight, has_bias = cache
    dx = dout @ weight if need_dx else None  # N,D
    return dx, dout.T @ x, (dout.sum(axis=0) if has_bias else None)


def flatten_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """N,C,H,W -> N,C*H*W in torch.flatten's (C, H, W) order, so fc6's weights are torch's."""
    return x.reshape(x.shape[0], -1), (x.shape,)


def flatten_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    (shape,) = cache
    return dout.reshape(shape)  # N,C,H,W


# ----------------------------------------------------------------------------- loss


def cross_entropy_forward(logits: np.ndarray, y: np.ndarray) -> tuple[float, Cache]:
    """Mean over the batch of -log softmax(logits)[y], as F.cross_entropy. logits: N,K; y: N ints.

    Section 3.5: the last layer feeds a softmax and training maximises the log-probability of
    the correct label. Subtracting each row's maximum keeps exp from overflowing.
    """
    n = logits.shape[0]
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers, got shape {y.shape} and dtype {y.dtype}")
    z = logits - logits.max(axis=1, keepdims=True)  # N,K
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # N,K
    loss = -log_probs[np.arange(n), y].mean()
    return float(loss), (log_probs, y)


def cross_entropy_backward(dloss: float, cache: Cache) -> np.ndarray:
    """d loss / d logits = (softmax - one_hot(y)) / N, times dloss. -> N,K."""
    log_probs, y = cache
    n = log_probs.shape[0]
    dlogits = np.exp(log_probs)  # N,K softmax
    dlogits[np.arange(n), y] -= 1
    dlogits *= dloss / n
    return dlogits
