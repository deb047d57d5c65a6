"""docs/PROVIDERS.md says what the code does: its known answers verify with the shipped adapters,
and its type table is the adapters' own."""
from __future__ import annotations

import re

import pytest

from providers.base import Adapter, VerificationError
from providers.registry import build_adapters
from sandbox.catalog import HANDLED, IGNORED
from testkit.processes import REPO_ROOT
from tests.conftest import make_settings

DOC = (REPO_ROOT / "docs" / "PROVIDERS.md").read_text()
SECTIONS = {"smartpay": "Smartpay", "senfenico": "Senfenico", "yoco": "Yoco", "shadhinpay": "ShadhinPay"}


def _known_answer(provider: str) -> dict:
    section = DOC.split(f"\n## {SECTIONS[provider]}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```text\n(.*?)```", section, flags=re.S).group(1)
    answer: dict = {"headers": {}}
    for line in block.splitlines():
        name, _, value = line.partition("  ")
        value = value.strip()
        if name == "header":
            header, _, header_value = value.partition(": ")
            answer["headers"][header] = header_value
        else:
            answer[name] = value
    return answer


def _adapter(provider: str, answer: dict) -> Adapter:
    """The shipped adapter with the answer's secret, on its clock (1,700,000,000 when it names none)."""
    now = float(answer.get("now", 0)) or 1_700_000_000.0
    return build_adapters(make_settings(**{f"{provider}_secrets": [answer["secret"]]}), clock=lambda: now)[provider]


@pytest.mark.parametrize("provider", list(SECTIONS))
def test_each_known_answer_in_the_docs_verifies(provider: str) -> None:
    answer = _known_answer(provider)
    verified = _adapter(provider, answer).verify(body=answer["body"].encode(), headers=answer["headers"])
    assert verified.secret_index == 0


@pytest.mark.parametrize("provider", list(SECTIONS))
def test_a_changed_byte_fails_the_docs_known_answer(provider: str) -> None:
    answer = _known_answer(provider)
    with pytest.raises(VerificationError):
        _adapter(provider, answer).verify(body=answer["body"].replace("1", "2", 1).encode(), headers=answer["headers"])


def test_the_docs_type_table_is_the_adapters() -> None:
    table = DOC.split("## From provider types to handlers", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| `payment.")]
    columns = ["smartpay", "processout", "senfenico", "yoco", "shadhinpay"]
    documented = {provider: {} for provider in columns}
    for row in rows:
        kind = row[0].strip().strip("`")
        for provider, cell in zip(columns, row[2:], strict=True):
            for event_type in re.findall(r"`([^`]+)`", cell):
                documented[provider][event_type] = kind
    assert documented == {provider: dict(kinds) for provider, kinds in HANDLED.items()}
    ignored_text = " ".join(table.split("reach no handler", 1)[1].split("Any type not", 1)[0].split())
    for provider, types in IGNORED.items():
        assert all(f"`{event_type}`" in ignored_text for event_type in types), provider
