"""One contract for every PromptStore adapter: SQLite locally, DynamoDB (on moto's server) in AWS.

The DynamoDB adapter goes through aiobotocore's real HTTP stack against moto, so its transactions,
conditions and the item layout are exercised as the deployed table would see them.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from heliport.prompts import PRODUCTION, PromptVersion
from heliport.prompts.store import (
    FIRST_COMMIT_MESSAGE,
    RESERVED_PROMPT_IDS,
    DynamoPromptStore,
    PromptNotFoundError,
    PromptStore,
    SqlitePromptStore,
    clean_tags,
    new_prompt_id,
)
from heliport.store.aws import create_table
from tests.aws import REGION

pytestmark = pytest.mark.anyio

TEMPLATE = str(Path(__file__).resolve().parents[2] / "template.yaml")
ORG_A = "org-a"
ORG_B = "org-b"


@pytest.fixture(params=["sqlite", "dynamo"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PromptStore]:
    adapter: PromptStore
    if request.param == "sqlite":
        adapter = SqlitePromptStore(tmp_path / "prompts.sqlite3")
    else:
        endpoint: str = request.getfixturevalue("aws_endpoint")
        table = f"heliport-{uuid.uuid4().hex[:12]}"
        await create_table(table, region=REGION, endpoint_url=endpoint)
        adapter = DynamoPromptStore(table, region=REGION, endpoint_url=endpoint)
    try:
        yield adapter
    finally:
        await adapter.aclose()


def body(text: str = "You help {{hc:customer:string}}.", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": text}], **extra}


def number(version: PromptVersion | None) -> tuple[int, int]:
    assert version is not None
    return version.major_version, version.minor_version


async def test_create_makes_version_zero_in_production(store: PromptStore) -> None:
    saved = body("Héllo {{hc:name:string}} ✓", temperature=0.7, tools=[{"type": "function", "function": {"n": 1}}])
    prompt, first = await store.create_prompt(ORG_A, name="Support", tags=[" a ", "b", "a", ""], body=saved)
    assert re.fullmatch(r"[0-9A-Za-z]{6}", prompt.id)
    assert prompt.tags == ("a", "b")
    assert (first.major_version, first.minor_version, first.commit_message) == (0, 0, FIRST_COMMIT_MESSAGE)
    assert first.environments == (PRODUCTION,)
    assert first.model == "gpt-4o-mini"
    assert await store.get_prompt(ORG_A, prompt.id) == prompt
    assert await store.get_version(ORG_A, first.id) == first
    # With neither, production; by environment; by version id: the same version, body intact.
    for resolved in (
        await store.resolve(ORG_A, prompt.id),
        await store.resolve(ORG_A, prompt.id, environment=PRODUCTION),
        await store.resolve(ORG_A, prompt.id, version_id=first.id),
    ):
        assert resolved == first
        assert resolved.body == saved
    assert await store.count_prompts(ORG_A) == 1
    assert await store.environments(ORG_A) == [PRODUCTION]


async def test_version_numbering_follows_helicone(store: PromptStore) -> None:
    prompt, v00 = await store.create_prompt(ORG_A, name="p", tags=[], body=body())

    async def bump(base: PromptVersion, major: bool) -> PromptVersion:
        return await store.new_version(
            ORG_A, prompt.id, base_version_id=base.id, major=major, body=body(), commit_message="c"
        )

    v01 = await bump(v00, False)
    v02 = await bump(v01, False)
    v10 = await bump(v02, True)
    v03 = await bump(v00, False)  # a minor version of an older base goes after the highest minor of its major
    v11 = await bump(v10, False)
    v20 = await bump(v01, True)  # a major version is always after the highest major
    assert [number(v) for v in (v01, v02, v10, v03, v11, v20)] == [(0, 1), (0, 2), (1, 0), (0, 3), (1, 1), (2, 0)]
    assert v11.commit_message == "c" and v11.environments == ()
    listed = await store.list_versions(ORG_A, prompt.id)
    assert [v.id for v in listed] == [v.id for v in (v20, v11, v03, v10, v02, v01, v00)]  # newest first
    assert [number(v) for v in await store.list_versions(ORG_A, prompt.id, major=0)] == [(0, 3), (0, 2), (0, 1), (0, 0)]
    assert await store.list_versions(ORG_A, prompt.id, major=7) == []
    # Deleting the highest minor frees its number for the next one (numbers follow the live versions).
    assert await store.delete_version(ORG_A, prompt.id, v03.id)
    assert number(await bump(v00, False)) == (0, 3)


async def test_environments_move_between_versions(store: PromptStore) -> None:
    prompt, v0 = await store.create_prompt(ORG_A, name="p", tags=[], body=body("zero"))
    v1 = await store.new_version(
        ORG_A, prompt.id, base_version_id=v0.id, major=False, body=body("one"), environment="staging"
    )
    assert v1.environments == ("staging",)
    assert (await store.resolve(ORG_A, prompt.id, environment="staging")) == v1
    assert (await store.resolve(ORG_A, prompt.id)) == v0  # production did not move
    # Environment wins over version id.
    assert (await store.resolve(ORG_A, prompt.id, version_id=v0.id, environment="staging")) == v1

    # Production onto the staging version: v1 holds both; v0 none; every copy agrees.
    assert await store.set_environment(ORG_A, prompt.id, v1.id, PRODUCTION)
    v1_now = await store.get_version(ORG_A, v1.id)
    assert v1_now is not None and v1_now.environments == (PRODUCTION, "staging")
    v0_now = await store.get_version(ORG_A, v0.id)
    assert v0_now is not None and v0_now.environments == ()
    for env in (PRODUCTION, "staging"):
        assert (await store.resolve(ORG_A, prompt.id, environment=env)) == v1_now
    assert (await store.resolve(ORG_A, prompt.id)) == v1_now

    # Staging back to v0: v1 keeps production only, and production's copy says so.
    assert await store.set_environment(ORG_A, prompt.id, v0.id, "staging")
    assert await store.set_environment(ORG_A, prompt.id, v0.id, "staging")  # already there: a no-op
    v1_after = await store.resolve(ORG_A, prompt.id)
    assert v1_after is not None and v1_after.id == v1.id and v1_after.environments == (PRODUCTION,)
    staged = await store.resolve(ORG_A, prompt.id, environment="staging")
    assert staged is not None and staged.id == v0.id and staged.environments == ("staging",)
    assert await store.environments(ORG_A) == [PRODUCTION, "staging"]

    # A version of another prompt, or a missing one, cannot take an environment of this one.
    _other, other_v = await store.create_prompt(ORG_A, name="other", tags=[], body=body())
    assert not await store.set_environment(ORG_A, prompt.id, other_v.id, PRODUCTION)
    assert not await store.set_environment(ORG_A, prompt.id, str(uuid.uuid4()), PRODUCTION)
    assert (await store.resolve(ORG_A, prompt.id)) == v1_after


async def test_resolve_answers_none_for_what_does_not_exist(store: PromptStore) -> None:
    prompt, _v0 = await store.create_prompt(ORG_A, name="p", tags=[], body=body())
    _other, other_v = await store.create_prompt(ORG_A, name="q", tags=[], body=body())
    assert await store.resolve(ORG_A, "nope00") is None
    assert await store.resolve(ORG_A, prompt.id, environment="staging") is None
    assert await store.resolve(ORG_A, prompt.id, version_id=str(uuid.uuid4())) is None
    assert await store.resolve(ORG_A, prompt.id, version_id=other_v.id) is None  # another prompt's version
    assert await store.get_version(ORG_A, str(uuid.uuid4())) is None
    assert await store.get_prompt(ORG_A, "nope00") is None


async def test_deleting_a_version_takes_its_environments(store: PromptStore) -> None:
    prompt, v0 = await store.create_prompt(ORG_A, name="p", tags=[], body=body())
    v1 = await store.new_version(ORG_A, prompt.id, base_version_id=v0.id, major=True, body=body(), environment="dev")
    assert await store.delete_version(ORG_A, prompt.id, v1.id)
    assert not await store.delete_version(ORG_A, prompt.id, v1.id)
    assert await store.get_version(ORG_A, v1.id) is None
    assert await store.resolve(ORG_A, prompt.id, environment="dev") is None
    assert await store.resolve(ORG_A, prompt.id, version_id=v1.id) is None
    assert await store.environments(ORG_A) == [PRODUCTION]
    # Deleting production's version leaves the prompt with no production version, as in Helicone.
    assert await store.delete_version(ORG_A, prompt.id, v0.id)
    assert await store.resolve(ORG_A, prompt.id) is None
    assert await store.list_versions(ORG_A, prompt.id) == []
    assert await store.get_prompt(ORG_A, prompt.id) is not None
    # The version id does not belong to this prompt: nothing is deleted.
    _other, other_v = await store.create_prompt(ORG_A, name="q", tags=[], body=body())
    assert not await store.delete_version(ORG_A, prompt.id, other_v.id)
    assert await store.get_version(ORG_A, other_v.id) == other_v


async def test_deleting_a_prompt_deletes_everything_of_it(store: PromptStore) -> None:
    prompt, v0 = await store.create_prompt(ORG_A, name="p", tags=["t"], body=body())
    v1 = await store.new_version(ORG_A, prompt.id, base_version_id=v0.id, major=False, body=body(), environment="s")
    kept, kept_v = await store.create_prompt(ORG_A, name="kept", tags=["u"], body=body())
    assert await store.delete_prompt(ORG_A, prompt.id)
    assert not await store.delete_prompt(ORG_A, prompt.id)
    assert await store.get_prompt(ORG_A, prompt.id) is None
    for version in (v0, v1):
        assert await store.get_version(ORG_A, version.id) is None
        assert await store.resolve(ORG_A, prompt.id, version_id=version.id) is None
    assert await store.resolve(ORG_A, prompt.id) is None
    assert await store.resolve(ORG_A, prompt.id, environment="s") is None
    assert await store.list_versions(ORG_A, prompt.id) == []
    assert await store.count_prompts(ORG_A) == 1
    assert await store.all_tags(ORG_A) == ["u"]
    assert await store.environments(ORG_A) == [PRODUCTION]
    assert await store.resolve(ORG_A, kept.id) == kept_v


async def test_query_search_tags_and_pages(store: PromptStore) -> None:
    made = []
    for name, tags in [
        ("Customer Support Bot", ["support", "chatbot"]),
        ("Support Ticket Classifier", ["support", "classification"]),
        ("Summariser", ["analytics"]),
        ("QA", []),
    ]:
        prompt, _ = await store.create_prompt(ORG_A, name=name, tags=tags, body=body())
        made.append(prompt)
        await asyncio.sleep(0.002)  # distinct creation times, so newest-first is observable
    newest_first = [p.id for p in reversed(made)]
    assert [p.id for p in await store.query_prompts(ORG_A)] == newest_first
    assert [p.name for p in await store.query_prompts(ORG_A, search="SUPPORT")] == [
        "Support Ticket Classifier",
        "Customer Support Bot",
    ]
    # Any of the tags.
    assert {p.name for p in await store.query_prompts(ORG_A, tags=["chatbot", "analytics"])} == {
        "Customer Support Bot",
        "Summariser",
    }
    assert [p.name for p in await store.query_prompts(ORG_A, search="bot", tags=["classification"])] == []
    assert [p.id for p in await store.query_prompts(ORG_A, offset=1, limit=2)] == newest_first[1:3]
    assert await store.query_prompts(ORG_A, offset=4, limit=2) == []
    assert await store.all_tags(ORG_A) == ["analytics", "chatbot", "classification", "support"]
    assert await store.count_prompts(ORG_A) == 4


async def test_rename_and_tags(store: PromptStore) -> None:
    prompt, _ = await store.create_prompt(ORG_A, name="old", tags=["x"], body=body())
    assert await store.rename_prompt(ORG_A, prompt.id, "new name")
    assert await store.set_tags(ORG_A, prompt.id, ["  v2 ", "prod", "v2", " "]) == ("v2", "prod")
    got = await store.get_prompt(ORG_A, prompt.id)
    assert got is not None and (got.name, got.tags, got.created_at) == ("new name", ("v2", "prod"), prompt.created_at)
    assert await store.set_tags(ORG_A, prompt.id, []) == ()
    assert not await store.rename_prompt(ORG_A, "nope00", "x")
    assert await store.set_tags(ORG_A, "nope00", ["x"]) is None


async def test_new_version_of_what_does_not_exist(store: PromptStore) -> None:
    prompt, v0 = await store.create_prompt(ORG_A, name="p", tags=[], body=body())
    _other, other_v = await store.create_prompt(ORG_A, name="q", tags=[], body=body())
    with pytest.raises(PromptNotFoundError, match="No prompt"):
        await store.new_version(ORG_A, "nope00", base_version_id=v0.id, major=False, body=body())
    with pytest.raises(PromptNotFoundError, match="No version"):
        await store.new_version(ORG_A, prompt.id, base_version_id=other_v.id, major=False, body=body())
    assert len(await store.list_versions(ORG_A, prompt.id)) == 1


async def test_another_organisation_sees_and_changes_nothing(store: PromptStore) -> None:
    prompt, v0 = await store.create_prompt(ORG_A, name="secret", tags=["a-only"], body=body())
    assert await store.get_prompt(ORG_B, prompt.id) is None
    assert await store.resolve(ORG_B, prompt.id) is None
    assert await store.resolve(ORG_B, prompt.id, version_id=v0.id) is None
    assert await store.get_version(ORG_B, v0.id) is None
    assert await store.list_versions(ORG_B, prompt.id) == []
    assert await store.query_prompts(ORG_B) == []
    assert (await store.count_prompts(ORG_B), await store.all_tags(ORG_B), await store.environments(ORG_B)) == (
        0,
        [],
        [],
    )
    assert not await store.rename_prompt(ORG_B, prompt.id, "mine")
    assert await store.set_tags(ORG_B, prompt.id, ["mine"]) is None
    assert not await store.set_environment(ORG_B, prompt.id, v0.id, "staging")
    assert not await store.delete_version(ORG_B, prompt.id, v0.id)
    assert not await store.delete_prompt(ORG_B, prompt.id)
    with pytest.raises(PromptNotFoundError):
        await store.new_version(ORG_B, prompt.id, base_version_id=v0.id, major=False, body=body())
    # Organisation A's prompt is untouched.
    assert await store.get_prompt(ORG_A, prompt.id) == prompt
    assert await store.list_versions(ORG_A, prompt.id) == [v0]
    assert await store.resolve(ORG_A, prompt.id) == v0


async def test_concurrent_versions_get_distinct_numbers(store: PromptStore) -> None:
    prompt, v0 = await store.create_prompt(ORG_A, name="p", tags=[], body=body())
    made = await asyncio.gather(
        *(store.new_version(ORG_A, prompt.id, base_version_id=v0.id, major=False, body=body(str(i))) for i in range(4))
    )
    assert sorted(number(v) for v in made) == [(0, 1), (0, 2), (0, 3), (0, 4)]
    assert len(await store.list_versions(ORG_A, prompt.id)) == 5


async def test_concurrent_environment_moves_leave_one_holder(store: PromptStore) -> None:
    prompt, v0 = await store.create_prompt(ORG_A, name="p", tags=[], body=body())
    versions = [v0]
    for i in range(3):
        versions.append(
            await store.new_version(ORG_A, prompt.id, base_version_id=v0.id, major=False, body=body(str(i)))
        )
    await asyncio.gather(*(store.set_environment(ORG_A, prompt.id, v.id, PRODUCTION) for v in versions[1:]))
    holders = [v for v in await store.list_versions(ORG_A, prompt.id) if PRODUCTION in v.environments]
    assert len(holders) == 1
    resolved = await store.resolve(ORG_A, prompt.id)
    assert resolved == holders[0]


async def test_prompt_ids_are_short_and_never_a_path_segment() -> None:
    ids = {new_prompt_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[0-9A-Za-z]{6}", i) for i in ids)
    assert not ids & RESERVED_PROMPT_IDS
    assert clean_tags([" a", "a ", "", "b"]) == ("a", "b")


# --- the deployed role may make every call the adapter makes --------------------------------------

#: The IAM action each low-level call (or each part of a transaction) is authorised as.
_ACTIONS = {"GetItem": "dynamodb:GetItem", "Query": "dynamodb:Query", "UpdateItem": "dynamodb:UpdateItem",
            "PutItem": "dynamodb:PutItem", "DeleteItem": "dynamodb:DeleteItem", "Put": "dynamodb:PutItem",
            "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
            "ConditionCheck": "dynamodb:ConditionCheckItem"}  # fmt: skip


def _calls(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(IAM action, partition key) of each item ``operation`` touches."""
    if operation == "TransactWriteItems":
        return [(_ACTIONS[kind], (part.get("Item") or part["Key"])["pk"]["S"])
                for entry in params["TransactItems"] for kind, part in entry.items()]  # fmt: skip
    if operation == "Query":
        return [(_ACTIONS[operation], params["ExpressionAttributeValues"][":pk"]["S"])]
    return [(_ACTIONS[operation], (params.get("Item") or params["Key"])["pk"]["S"])]


async def test_the_query_api_role_allows_every_call_on_prompt_items_only(aws_endpoint: str) -> None:
    from cfnlint.decode import decode

    table = f"heliport-{uuid.uuid4().hex[:12]}"
    await create_table(table, region=REGION, endpoint_url=aws_endpoint)
    store = DynamoPromptStore(table, region=REGION, endpoint_url=aws_endpoint)
    seen: list[tuple[str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.extend(_calls(model.name, params))

    client = await store._client.get()
    client.meta.events.register("provide-client-params.dynamodb", record)
    try:
        prompt, v0 = await store.create_prompt(ORG_A, name="p", tags=["t"], body=body())
        v1 = await store.new_version(ORG_A, prompt.id, base_version_id=v0.id, major=True, body=body(), environment="s")
        await store.set_environment(ORG_A, prompt.id, v1.id, PRODUCTION)
        await store.rename_prompt(ORG_A, prompt.id, "q")
        await store.set_tags(ORG_A, prompt.id, ["u"])
        await store.query_prompts(ORG_A)
        await store.count_prompts(ORG_A)
        await store.environments(ORG_A)
        await store.get_version(ORG_A, v1.id)
        await store.resolve(ORG_A, prompt.id)
        await store.delete_version(ORG_A, prompt.id, v0.id)
        await store.delete_prompt(ORG_A, prompt.id)
    finally:
        await store.aclose()
    template, errors = decode(TEMPLATE)
    assert not errors and template is not None
    statements = template["Resources"]["QueryApiFunction"]["Properties"]["Policies"][0]["Statement"]
    granted = [
        s for s in statements
        if isinstance(s, dict) and s.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        == ["prompt#*"]
    ]  # fmt: skip
    assert len(granted) == 1
    allowed = set(granted[0]["Action"])
    assert {action for action, _ in seen} <= allowed
    assert {action for action, _ in seen} >= {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem",
                                              "dynamodb:UpdateItem", "dynamodb:DeleteItem"}  # fmt: skip
    assert all(pk == f"prompt#{ORG_A}" for _, pk in seen), {pk for _, pk in seen}
    # The proxy (the AI gateway's one read per compiled request) may read any item of the table.
    proxy = template["Resources"]["ProxyFunction"]["Properties"]["Policies"][0]["Statement"]
    assert any("dynamodb:GetItem" in s.get("Action", []) and "Condition" not in s for s in proxy if isinstance(s, dict))
