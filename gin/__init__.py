"""Gin files shipped with prompt_tuning (installed as `prompt_tuning.gin_configs`)."""
