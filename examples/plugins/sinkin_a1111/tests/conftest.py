import pytest

from sinkin_a1111.standin import A1111StandIn


@pytest.fixture
def webui(monkeypatch):
    """A running web UI stand-in, with the provider pointed at it."""
    with A1111StandIn() as standin:
        monkeypatch.setenv("SINKIN_A1111_URL", standin.base_url)
        monkeypatch.delenv("SINKIN_A1111_AUTH", raising=False)
        yield standin


@pytest.fixture
def provider(webui):
    from sinkin_a1111 import A1111Provider

    p = A1111Provider()
    yield p
    p.close()
