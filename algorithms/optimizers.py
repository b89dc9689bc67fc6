"""Hogwild optimizers on flat float32 vectors.

Every optimizer updates the parameter vector *in place*. In training that vector is a view of
shared memory, and so are the statistics in ``--opt_mode shared``: several processes run
:meth:`apply` on the same memory at once, without a lock, on purpose (Hogwild; Recht et al.,
2011, and the paper's Section 4). Lost or mixed element updates are rare and harmless, and a lock
would serialise the learners. Only Adam's step counter, which drives its bias correction, is kept
exact (the total of per-learner update counters in shared mode).

Each update works through a preallocated scratch buffer, so a step allocates no memory.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

# Names of each optimizer's per-parameter statistics, in the order they are created.
SLOTS = {"rmsprop": ("g",), "momentum": ("m",), "adam": ("m", "v")}


class RMSProp:
    """The paper's RMSProp (its Eq. S2, epsilon inside the square root):

        g     <- alpha * g + (1 - alpha) * grad^2
        theta <- theta - lr * grad / sqrt(g + eps)

    ``g`` starts at 0. With ``g`` shared by all learners this is the paper's "shared RMSProp".
    """

    def __init__(self, params: np.ndarray, g: np.ndarray, alpha: float = 0.99, eps: float = 0.1):
        self.params, self.g = params, g
        self.alpha, self.eps = np.float32(alpha), np.float32(eps)
        self._tmp = np.empty_like(params)

    def apply(self, grad: np.ndarray, lr: float) -> None:
        tmp, g = self._tmp, self.g
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - self.alpha
        g *= self.alpha
        g += tmp
        np.add(g, self.eps, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(grad, tmp, out=tmp)
        tmp *= np.float32(lr)
        self.params -= tmp


class Momentum:
    """Momentum SGD as the paper writes it (supplementary S3):

        m     <- alpha * m + (1 - alpha) * grad
        theta <- theta - lr * m
    """

    def __init__(self, params: np.ndarray, m: np.ndarray, alpha: float = 0.99):
        self.params, self.m = params, m
        self.alpha = np.float32(alpha)
        self._tmp = np.empty_like(params)

    def apply(self, grad: np.ndarray, lr: float) -> None:
        tmp, m = self._tmp, self.m
        m *= self.alpha
        np.multiply(grad, 1.0 - self.alpha, out=tmp)
        m += tmp
        np.multiply(m, np.float32(lr), out=tmp)
        self.params -= tmp


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction:

        t <- t + 1
        m <- b1 * m + (1 - b1) * grad;   v <- b2 * v + (1 - b2) * grad^2
        theta <- theta - lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps * sqrt(1 - b2^t))

    which is ``lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)`` and
    ``v_hat = v / (1 - b2^t)``, written so that no corrected copy of m or v is made.
    ``next_step`` returns t after the increment (shared and locked in ``--opt_mode shared``).
    """

    def __init__(self, params: np.ndarray, m: np.ndarray, v: np.ndarray,
                 next_step: Callable[[], int], b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8):
        self.params, self.m, self.v = params, m, v
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)
        self.next_step = next_step
        self._tmp = np.empty_like(params)

    def apply(self, grad: np.ndarray, lr: float) -> None:
        t = self.next_step()
        tmp, m, v = self._tmp, self.m, self.v
        m *= np.float32(self.b1)
        np.multiply(grad, np.float32(1.0 - self.b1), out=tmp)
        m += tmp
        v *= np.float32(self.b2)
        np.multiply(grad, grad, out=tmp)
        tmp *= np.float32(1.0 - self.b2)
        v += tmp
        correction2 = np.sqrt(1.0 - self.b2 ** t)
        step = lr * correction2 / (1.0 - self.b1 ** t)
        np.sqrt(v, out=tmp)
        tmp += np.float32(self.eps * correction2)
        np.divide(m, tmp, out=tmp)
        tmp *= np.float32(step)
        self.params -= tmp


class LocalCounter:
    """Adam's step counter for one learner (``--opt_mode local``)."""

    def __init__(self):
        self.value = 0

    def __call__(self) -> int:
        self.value += 1
        return self.value


class ActorCounter:
    """Adam's step counter for one learner's own statistics (``--opt_mode local``), kept in that
    learner's slot of ``shared.StepCounters`` so that checkpoints hold it."""

    def __init__(self, counters, actor: int):
        self._counters, self._actor = counters, actor

    def __call__(self) -> int:
        self._counters.add(self._actor, 1)
        return self._counters[self._actor]


class SharedCounter:
    """Adam's step counter shared by all learners: the total of per-learner update counts
    (``shared.StepCounters``), so that t counts every update applied to the shared statistics."""

    def __init__(self, counters, actor: int):
        self._counters, self._actor = counters, actor

    def __call__(self) -> int:
        return self._counters.add(self._actor, 1)


def make_optimizer(opt_type: str, params: np.ndarray, slots: dict[str, np.ndarray],
                   alpha: float, eps: float, b1: float, b2: float,
                   next_step: Callable[[], int] | None = None):
    """The optimizer ``opt_type`` over ``params`` with statistics ``slots`` (see SLOTS)."""
    if opt_type == "rmsprop":
        return RMSProp(params, slots["g"], alpha=alpha, eps=eps)
    if opt_type == "momentum":
        return Momentum(params, slots["m"], alpha=alpha)
    if opt_type == "adam":
        return Adam(params, slots["m"], slots["v"], next_step or LocalCounter(), b1=b1, b2=b2,
                    eps=eps)
    raise ValueError(f"unknown optimizer {opt_type!r}")
