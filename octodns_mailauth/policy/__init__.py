"""Policy: the pydantic models and the YAML loader that keeps line numbers."""

from .loader import LoadedPolicy, load_policy_dir, load_policy_file, parse_policy
from .models import Policy, Sender

__all__ = [
    "LoadedPolicy",
    "Policy",
    "Sender",
    "load_policy_dir",
    "load_policy_file",
    "parse_policy",
]
