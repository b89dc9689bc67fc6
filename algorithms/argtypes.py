"""Value types for argparse that check what they parse and say what is allowed, and a parser
whose errors are one line."""
from __future__ import annotations

import argparse
import math
from typing import NoReturn, Sequence

_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f"}


def boolean(text: str) -> bool:
    """Parse true/false/1/0/yes/no in any case."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r} (use true/false, 1/0 or yes/no)")


def choice(choices: Sequence[str], normalise=str.lower):
    """A case-insensitive choice: the value is normalised (upper or lower case) before checking."""
    def parse(text: str) -> str:
        value = normalise(text.strip())
        if value not in choices:
            raise argparse.ArgumentTypeError(
                f"invalid choice {text!r} (choose from {', '.join(choices)})")
        return value
    return parse


def number(kind, name: str, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False):
    """A numeric type for argparse that checks its range and names what is allowed."""
    def describe() -> str:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {high:g}")
        what = "an integer" if kind is int else "a number"
        return f"{what} {' and '.join(parts)}" if parts else what

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = _integral_float(text) if kind is int else None
            if value is None:
                raise argparse.ArgumentTypeError(
                    f"invalid value {text!r} (expected {describe()})") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"invalid value {text!r} (expected {describe()})")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"invalid value {text!r} (expected {describe()})")
        return value
    parse.__name__ = name
    return parse


def number_or(word: str, kind, name: str, low: float | None = None,
              high: float | None = None):
    """A number (as ``number``) or the literal ``word``."""
    parse_number = number(kind, name, low, high)

    def parse(text: str):
        if text == word:
            return word
        try:
            return parse_number(text)
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{err} or {word!r}") from None
    parse.__name__ = name
    return parse


def _integral_float(text: str) -> int | None:
    """Accept integers written as floats ("8e7", "1e6"), which step counts often are."""
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the flag, with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")
