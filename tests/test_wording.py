"""Counts and credits read the same everywhere: "1 image", "1 credit", "~0.67 credits"."""

import pytest

from sinkin_pipeline.models import describe_counts
from sinkin_pipeline.wording import credit_text, money, plural


@pytest.mark.parametrize(
    "n, word, expected",
    [(0, "image", "0 images"), (1, "image", "1 image"), (2, "job", "2 jobs"), (1, "LoRA", "1 LoRA")],
)
def test_plural(n, word, expected):
    assert plural(n, word) == expected


@pytest.mark.parametrize(
    "amount, expected",
    [
        (0, "0 credits"),
        (None, "0 credits"),
        (1, "1 credit"),
        (1.0, "1 credit"),
        (1.004, "1 credit"),
        (0.6667, "0.67 credits"),
        (2 / 3 * 3, "2 credits"),
        (12.5, "12.5 credits"),
        (1234.567, "1,234.57 credits"),
        (-0.001, "0 credits"),
    ],
)
def test_credits_are_rounded_like_money_and_pluralised(amount, expected):
    assert credit_text(amount) == expected


def test_an_estimate_is_marked():
    assert credit_text(0.6667, estimate=True) == "~0.67 credits"
    assert credit_text(1, estimate=True) == "~1 credit"
    assert money(0.125) in ("0.12", "0.13")


def test_models_and_loras_are_counted_separately():
    assert describe_counts({"model": 6, "lora": 1}) == "6 models and 1 LoRA"
    assert describe_counts({"model": 1, "lora": 0, "video": 2}) == "1 model and 0 LoRAs (2 video models)"
