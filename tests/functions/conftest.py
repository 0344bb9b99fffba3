"""The functions built by ``sam build`` once per session (both test modules that run them share it)."""

from __future__ import annotations

import pytest

from tests.infra.test_template import _sam_binary
from tests.lambda_sandbox import LambdaBuild, build, check_namespaces


@pytest.fixture(scope="session")
def lambda_build(tmp_path_factory: pytest.TempPathFactory) -> LambdaBuild:
    check_namespaces()
    return build(_sam_binary(), tmp_path_factory.mktemp("sam"))
