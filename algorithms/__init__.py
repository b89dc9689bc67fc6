"""Asynchronous methods for deep reinforcement learning (Mnih et al., 2016) in TensorFlow 2."""
