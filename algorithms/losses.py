"""Losses and gradient clipping: pure TensorFlow functions, tested against numpy references.

Losses are *sums* over the segment, as in the paper's Algorithm S3, where the gradients of every
step of the segment are accumulated into one update.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import tensorflow as tf


class ActorCriticLoss(NamedTuple):
    total: tf.Tensor
    policy: tf.Tensor     # -sum log pi(a|s) * A - beta * sum H(pi(.|s))
    value: tf.Tensor      # 0.5 * sum (R - V(s))^2
    entropy: tf.Tensor    # mean entropy of the policy over the segment


def actor_critic_loss(logits: tf.Tensor, values: tf.Tensor, actions: tf.Tensor,
                      returns: tf.Tensor, entropy_beta: float | tf.Tensor) -> ActorCriticLoss:
    """A3C's loss for one segment.

    The advantage ``R - V(s)`` is a constant for the policy term (no gradient flows from the policy
    loss into the value head). Log-probabilities come from ``log_softmax``, which stays finite when
    a probability underflows to 0, so neither the loss nor the entropy can become NaN.
    """
    log_probs = tf.nn.log_softmax(logits)
    probs = tf.exp(log_probs)
    entropy = -tf.reduce_sum(probs * log_probs, axis=1)
    chosen = tf.gather(log_probs, actions, batch_dims=1)
    advantage = tf.stop_gradient(returns - values)
    policy_loss = -tf.reduce_sum(chosen * advantage) - entropy_beta * tf.reduce_sum(entropy)
    value_loss = 0.5 * tf.reduce_sum(tf.square(returns - values))
    return ActorCriticLoss(policy_loss + value_loss, policy_loss, value_loss,
                           tf.reduce_mean(entropy))


def clip_gradients(grads: Sequence[tf.Tensor], clip_norm: float,
                   clip_type: str) -> tuple[list[tf.Tensor], tf.Tensor]:
    """Clip by the whole gradient's norm (``global``), each tensor's (``local``), or not
    (``ignore``). Returns the clipped gradients and the global norm before clipping."""
    norm = tf.linalg.global_norm(grads)
    if clip_type == "global":
        clipped, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=norm)
        return clipped, norm
    if clip_type == "local":
        return [tf.clip_by_norm(g, clip_norm) for g in grads], norm
    if clip_type != "ignore":
        raise ValueError(f"unknown clip type {clip_type!r}")
    return list(grads), norm


class TDLoss(NamedTuple):
    total: tf.Tensor      # sum of the (Huber) TD losses
    max_q: tf.Tensor      # max_a Q(s, a) per state of the segment


def td_loss(q_values: tf.Tensor, actions: tf.Tensor, targets: tf.Tensor,
            clip_delta: float) -> TDLoss:
    """Sum over the segment of 0.5 * (y - Q(s, a))^2, the targets y held constant.

    With ``clip_delta > 0`` the loss is Huber's: quadratic for |y - Q| <= delta and linear beyond,
    so the gradient is the TD error clipped to [-delta, delta] (the original's ``--clip_loss``).
    """
    chosen = tf.gather(q_values, actions, batch_dims=1)
    error = tf.stop_gradient(targets) - chosen
    if clip_delta > 0:
        magnitude = tf.abs(error)
        quadratic = tf.minimum(magnitude, clip_delta)
        losses = 0.5 * tf.square(quadratic) + clip_delta * (magnitude - quadratic)
    else:
        losses = 0.5 * tf.square(error)
    return TDLoss(tf.reduce_sum(losses), tf.reduce_max(q_values, axis=1))


def gaussian_log_density(mean: tf.Tensor, variance: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
    """log N(a; mean, diag(variance)), summed over the action dimensions: (batch,)."""
    return -0.5 * tf.reduce_sum(tf.square(actions - mean) / variance
                                + tf.math.log(2.0 * math.pi * variance), axis=1)


def gaussian_entropy(variance: tf.Tensor) -> tf.Tensor:
    """Entropy of N(mean, diag(variance)), 0.5 * sum log(2 pi e variance): (batch,)."""
    return 0.5 * tf.reduce_sum(tf.math.log(2.0 * math.pi * math.e * variance), axis=1)


def gaussian_actor_critic_loss(mean: tf.Tensor, variance: tf.Tensor, values: tf.Tensor,
                               actions: tf.Tensor, returns: tf.Tensor,
                               entropy_beta: float | tf.Tensor) -> ActorCriticLoss:
    """A3C's loss with the paper's Gaussian policy (continuous actions): as
    :func:`actor_critic_loss`, with the Gaussian log-density of the sampled (unclipped) action
    and the Gaussian's entropy."""
    entropy = gaussian_entropy(variance)
    advantage = tf.stop_gradient(returns - values)
    log_prob = gaussian_log_density(mean, variance, actions)
    policy_loss = -tf.reduce_sum(log_prob * advantage) - entropy_beta * tf.reduce_sum(entropy)
    value_loss = 0.5 * tf.reduce_sum(tf.square(returns - values))
    return ActorCriticLoss(policy_loss + value_loss, policy_loss, value_loss,
                           tf.reduce_mean(entropy))
