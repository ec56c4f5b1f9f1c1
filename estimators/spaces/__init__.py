"""Search spaces: parse/validate encodings, canonical keys, enumerate/sample, build networks."""

from estimators.spaces import nb201  # noqa: F401  (registers the space)
from estimators.spaces.base import Arch, EncodingError, SearchSpace, get_space, list_spaces, parse_many

__all__ = ["Arch", "EncodingError", "SearchSpace", "get_space", "list_spaces", "parse_many"]
