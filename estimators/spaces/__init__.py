"""Search spaces: parse/validate encodings, canonical keys, enumerate/sample, build networks."""

from archscore.estimators.spaces import nb101, nb201, nb301, nds, onnx
from archscore.estimators.spaces.base import Arch, EncodingError, SearchSpace, get_space, list_spaces, parse_many

DEFAULT_SPACE = "nb201"  # the space a request or command means when it names none

__all__ = ["DEFAULT_SPACE", "Arch", "EncodingError", "SearchSpace", "get_space", "list_spaces", "parse_many"]
