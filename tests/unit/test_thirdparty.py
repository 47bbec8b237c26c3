"""Optional Python packages: a missing one is a clear error naming the Debian package."""

from __future__ import annotations

import pytest

from ocirt import thirdparty
from ocirt.errors import DependencyError


def test_missing_package_names_what_to_install() -> None:
    with pytest.raises(DependencyError) as e:
        thirdparty.require("ocirt_no_such_module", "python3-no-such", "ocirt validate")
    assert str(e.value) == ("ocirt validate needs the Python package ocirt_no_such_module: "
                            "install Debian's python3-no-such (hack/install does)")


def test_present_package_is_returned() -> None:
    assert thirdparty.require("json", "python3", "x").__name__ == "json"
