"""The paper's analyses as studies: each module registers one study, a function of a
``StudyContext`` that returns JSON-ready numbers, and a function that draws its figures from those
numbers. Studies over scores and ground truth only are pure; the others ask the context to score
under other protocols, so the library (CLI) and the service can each supply scores their own way."""

from archscore.estimators.analysis import (
    architecture_bias,
    complexity_bias,
    input_data,
    isomorphism_spread,
    operation_bias,
    reduced_sharing,
    sampler,
    training_length,
    validation_size,
    variance,
    zero_shot_on_supernet,
)
from archscore.estimators.analysis.context import StudyContext
from archscore.estimators.analysis.registry import (
    STUDIES,
    Study,
    StudyInputError,
    get_study,
    list_studies,
    register_study,
)

__all__ = ["STUDIES", "Study", "StudyContext", "StudyInputError", "get_study", "list_studies", "register_study"]
