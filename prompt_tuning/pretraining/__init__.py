"""Pretraining a T5 from scratch: T5's objectives and a full-parameter train step."""
