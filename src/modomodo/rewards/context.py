"""What a reward knows about the example it scores."""

from __future__ import annotations

from dataclasses import dataclass

from modomodo.data.answers import choice_index, parse_boxes
from modomodo.data.schema import ANSWER_KINDS, Example
from modomodo.rewards.errors import RewardConfigError


@dataclass(frozen=True)
class RewardContext:
    """The trusted side of a reward call: the reference answer and how to verify it.

    Construction validates it, so a reward never has to doubt its context: a ``box`` solution parses
    as boxes and an ``mc`` solution names one of the options.
    """

    solution: str
    """The reference answer as it belongs inside ``<answer> </answer>`` (see ``Example.solution``)."""
    answer_kind: str
    """``box`` (IoU), ``mc`` (option letter) or ``text`` (normalised match)."""
    options: tuple[str, ...] = ()
    """Option texts, letter ``A`` <-> ``options[0]``; lets the option text stand for its letter."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        if not isinstance(self.solution, str) or not self.solution.strip():
            raise RewardConfigError(f"solution must be a non-empty string, got {self.solution!r}")
        if self.answer_kind not in ANSWER_KINDS:
            raise RewardConfigError(f"answer_kind must be one of {ANSWER_KINDS}, got {self.answer_kind!r}")
        if not all(isinstance(option, str) for option in self.options):
            raise RewardConfigError(f"options must be strings, got {self.options!r}")
        if self.answer_kind == "box" and parse_boxes(self.solution) is None:
            raise RewardConfigError(f"box solution does not parse as a box list: {self.solution!r}")
        if self.answer_kind == "mc" and choice_index(self.solution, self.options) is None:
            raise RewardConfigError(
                f"mc solution {self.solution!r} names no option (letters A-H, options {self.options!r})"
            )

    @classmethod
    def from_example(cls, example: Example) -> RewardContext:
        """The context of a schema :class:`~modomodo.data.schema.Example`."""
        return cls(solution=example.solution, answer_kind=example.answer_kind, options=example.options)
