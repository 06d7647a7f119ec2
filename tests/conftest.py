import tarfile

import pytest

pytest_plugins = ["tests.fixtures.servers"]


@pytest.fixture
def python_without_tar_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    """tarfile as Debian bookworm's Python 3.11.2 (the controller image's) has it, as far as
    extraction goes: no `filter=`, and unfiltered extraction trusts the archive, so neither may
    be used."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("tarfile extraction used; it has no filter= on Python 3.11.2")
    monkeypatch.setattr(tarfile.TarFile, "extractall", refuse)
    monkeypatch.setattr(tarfile.TarFile, "extract", refuse)
