from __future__ import annotations

import pytest

from infra.local.errors import PrerequisiteError
from infra.local.prereqs import java_major, require_java, require_maven


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "25" 2025-09-16', 25),
        ('java version "1.8.0_382"', 8),
        ("garbage", None),
    ],
)
def test_java_major(output: str, major: int | None) -> None:
    assert java_major(output) == major


def test_missing_java_is_one_clear_line() -> None:
    with pytest.raises(PrerequisiteError) as info:
        require_java("/no/such/java")
    assert str(info.value).startswith("Java 17+ not found")
    assert "\n" not in str(info.value)


def test_missing_maven_is_one_clear_line() -> None:
    with pytest.raises(PrerequisiteError, match="^Maven not found"):
        require_maven("no-such-mvn")
