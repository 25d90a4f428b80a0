"""Prompt tuning of T5 (Lester, Al-Rfou & Constant 2021) on current JAX / Flax."""

__version__ = "0.1.0"
