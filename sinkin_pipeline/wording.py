"""How counts and credits read everywhere (CLI, pages, messages): "1 image", "2 images",
"1 credit", "~0.67 credits" – credits rounded like money (two decimals, no trailing zeros).

    >>> plural(1, "image"), plural(3, "LoRA")
    ('1 image', '3 LoRAs')
    >>> credit_text(0.66666), credit_text(1), credit_text(2.5, estimate=True), credit_text(None)
    ('0.67 credits', '1 credit', '~2.5 credits', '0 credits')
"""


def plural(n, word, many=None) -> str:
    """``n`` and ``word``, pluralised unless ``n`` is 1 (``many`` for an irregular plural)."""
    return "{} {}".format(n, word if n == 1 else (many or word + "s"))


def money(amount) -> str:
    """A credit amount rounded like money: ``0.6667`` → ``"0.67"``, ``12.0`` → ``"12"``,
    ``1234.5`` → ``"1,234.5"``."""
    value = round(float(amount or 0), 2) + 0.0  # + 0.0 turns -0.0 into 0.0
    text = "{:,.2f}".format(value).rstrip("0").rstrip(".")
    return text


def credit_text(amount, estimate=False) -> str:
    """``"1 credit"``, ``"0.67 credits"``; with ``estimate``, ``"~0.67 credits"``."""
    shown = money(amount)
    return "{}{} credit{}".format("~" if estimate else "", shown, "" if shown == "1" else "s")


__all__ = ["plural", "money", "credit_text"]
