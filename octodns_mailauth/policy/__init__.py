"""Policy: the pydantic models and the YAML loader that keeps line numbers."""
