"""``/v1/prompt-2025/*``: Helicone's Prompts API over the prompt store (``heliport.prompts.store``).

Shapes follow Helicone's reference (``seeds/docs/rest__prompts__*.md``) inside the API's ``{data,
error}`` envelope. Every handler works in the calling key's organisation only: the store's every
read and write names it, so another organisation's prompt is indistinguishable from a missing one
(404), and nothing of it can be read or changed.

Bad input is refused by the body models (``api/schemas.py``: a 400 naming the field); an unknown
prompt, version or environment, or a request that did not use the version, is a 404 naming it.

Departures from Helicone, each because heliport has no such part:

* versions carry their body inline (``prompt_body``) in the answers about one version, and
  ``s3_url`` is null: there is no per-version object to link to;
* a version may hold several environments (``environments``); ``environment`` is the one Helicone's
  single column would show (production first);
* ``/inputs`` reads the inputs the AI gateway recorded on the request's row (``checks.prompt``).
"""

from __future__ import annotations

from typing import Any, Protocol

from heliport.api import requests
from heliport.api import schemas as s
from heliport.api.database import QueryDb
from heliport.api.dialect import Params, js_iso
from heliport.api.endpoint import Call
from heliport.errors import RequestError, RouteNotFoundError
from heliport.prompts import PRODUCTION, Prompt, PromptVersion
from heliport.prompts.store import PromptNotFoundError, PromptStore

__all__ = [
    "PromptContext",
    "count",
    "create",
    "delete_prompt",
    "delete_version",
    "environment_version",
    "environments",
    "get_prompt",
    "inputs",
    "production_version",
    "query",
    "rename",
    "set_environment",
    "set_tags",
    "tags",
    "total_versions",
    "update",
    "version",
    "versions",
]


class PromptContext(Protocol):
    """What these handlers use of the API: the prompt store and (for ``/inputs``) the log database."""

    @property
    def prompts(self) -> PromptStore: ...

    @property
    def db(self) -> QueryDb: ...


# --- answers -------------------------------------------------------------------------------------------


def _prompt(prompt: Prompt) -> dict[str, Any]:
    return {"id": prompt.id, "name": prompt.name, "tags": list(prompt.tags), "created_at": js_iso(prompt.created_at)}


def _version(version: PromptVersion, *, body: bool = False) -> dict[str, Any]:
    envs = list(version.environments)
    primary = PRODUCTION if PRODUCTION in envs else (sorted(envs)[0] if envs else None)
    return {
        "id": version.id,
        "model": version.model,
        "prompt_id": version.prompt_id,
        "major_version": version.major_version,
        "minor_version": version.minor_version,
        "commit_message": version.commit_message,
        "environment": primary,
        "environments": sorted(envs),
        "created_at": js_iso(version.created_at),
        "s3_url": None,
        "prompt_body": version.body if body else None,
    }


async def _existing(ctx: PromptContext, org_id: str, prompt_id: str) -> Prompt:
    prompt = await ctx.prompts.get_prompt(org_id, prompt_id)
    if prompt is None:
        raise RouteNotFoundError(f"No prompt {prompt_id!r} in this organisation.", param="promptId")
    return prompt


def _no_version(prompt_id: str, version_id: str) -> RouteNotFoundError:
    return RouteNotFoundError(
        f"No version {version_id!r} of prompt {prompt_id!r} in this organisation.", param="promptVersionId"
    )


# --- prompts -------------------------------------------------------------------------------------------


async def create(ctx: PromptContext, call: Call) -> dict[str, str]:
    body = call.parsed(s.PromptCreateBody)
    prompt, first = await ctx.prompts.create_prompt(call.org_id, name=body.name, tags=body.tags, body=body.promptBody)
    return {"id": prompt.id, "versionId": first.id}


async def query(ctx: PromptContext, call: Call) -> list[dict[str, Any]]:
    body = call.parsed(s.PromptQueryBody)
    found = await ctx.prompts.query_prompts(
        call.org_id, search=body.search, tags=body.tagsFilter, offset=body.page * body.pageSize, limit=body.pageSize
    )
    return [_prompt(p) for p in found]


async def get_prompt(ctx: PromptContext, call: Call) -> dict[str, Any]:
    return _prompt(await _existing(ctx, call.org_id, call.path("promptId")))


async def set_tags(ctx: PromptContext, call: Call) -> list[str]:
    body = call.parsed(s.PromptTagsBody)
    prompt_id = call.path("promptId")
    stored = await ctx.prompts.set_tags(call.org_id, prompt_id, body.tags)
    if stored is None:
        raise RouteNotFoundError(f"No prompt {prompt_id!r} in this organisation.", param="promptId")
    return list(stored)


async def rename(ctx: PromptContext, call: Call) -> None:
    body = call.parsed(s.PromptRenameBody)
    prompt_id = call.path("promptId")
    if not await ctx.prompts.rename_prompt(call.org_id, prompt_id, body.name):
        raise RouteNotFoundError(f"No prompt {prompt_id!r} in this organisation.", param="promptId")


async def delete_prompt(ctx: PromptContext, call: Call) -> None:
    prompt_id = call.path("promptId")
    if not await ctx.prompts.delete_prompt(call.org_id, prompt_id):
        raise RouteNotFoundError(f"No prompt {prompt_id!r} in this organisation.", param="promptId")


async def tags(ctx: PromptContext, call: Call) -> list[str]:
    return await ctx.prompts.all_tags(call.org_id)


async def environments(ctx: PromptContext, call: Call) -> list[str]:
    return await ctx.prompts.environments(call.org_id)


async def count(ctx: PromptContext, call: Call) -> int:
    return await ctx.prompts.count_prompts(call.org_id)


# --- versions ------------------------------------------------------------------------------------------


async def update(ctx: PromptContext, call: Call) -> dict[str, str]:
    body = call.parsed(s.PromptUpdateBody)
    try:
        made = await ctx.prompts.new_version(
            call.org_id,
            body.promptId,
            base_version_id=body.promptVersionId,
            major=body.newMajorVersion,
            body=body.promptBody,
            commit_message=body.commitMessage,
            environment=body.environment,
        )
    except PromptNotFoundError as missing:
        raise RouteNotFoundError(missing.message) from None
    return {"id": made.id}


async def version(ctx: PromptContext, call: Call) -> dict[str, Any]:
    body = call.parsed(s.PromptVersionIdBody)
    found = await ctx.prompts.get_version(call.org_id, body.promptVersionId)
    if found is None:
        raise RouteNotFoundError(
            f"No prompt version {body.promptVersionId!r} in this organisation.", param="promptVersionId"
        )
    return _version(found, body=True)


async def versions(ctx: PromptContext, call: Call) -> list[dict[str, Any]]:
    body = call.parsed(s.PromptVersionsBody)
    await _existing(ctx, call.org_id, body.promptId)
    listed = await ctx.prompts.list_versions(call.org_id, body.promptId, major=body.majorVersion)
    return [_version(v) for v in listed]


async def production_version(ctx: PromptContext, call: Call) -> dict[str, Any]:
    body = call.parsed(s.PromptIdBody)
    return await _in_environment(ctx, call.org_id, body.promptId, PRODUCTION)


async def environment_version(ctx: PromptContext, call: Call) -> dict[str, Any]:
    body = call.parsed(s.PromptEnvironmentBody)
    return await _in_environment(ctx, call.org_id, body.promptId, body.environment)


async def _in_environment(ctx: PromptContext, org_id: str, prompt_id: str, environment: str) -> dict[str, Any]:
    # The API reads the version item itself (consistently), not the environment's copy the gateway reads.
    await _existing(ctx, org_id, prompt_id)
    found = await ctx.prompts.resolve(org_id, prompt_id, environment=environment)
    if found is not None:
        found = await ctx.prompts.get_version(org_id, found.id) or found
    if found is None:
        raise RouteNotFoundError(f"Prompt {prompt_id!r} has no {environment} version.", param="environment")
    return _version(found, body=True)


async def total_versions(ctx: PromptContext, call: Call) -> dict[str, int]:
    body = call.parsed(s.PromptIdBody)
    await _existing(ctx, call.org_id, body.promptId)
    listed = await ctx.prompts.list_versions(call.org_id, body.promptId)
    # Helicone's majorVersions is the highest major number (0 while every version is 0.x), not a count.
    return {"totalVersions": len(listed), "majorVersions": max((v.major_version for v in listed), default=0)}


async def set_environment(ctx: PromptContext, call: Call) -> None:
    body = call.parsed(s.PromptSetEnvironmentBody)
    await _existing(ctx, call.org_id, body.promptId)
    if not await ctx.prompts.set_environment(call.org_id, body.promptId, body.promptVersionId, body.environment):
        raise _no_version(body.promptId, body.promptVersionId)


async def delete_version(ctx: PromptContext, call: Call) -> None:
    prompt_id, version_id = call.path("promptId"), call.path("versionId")
    if not await ctx.prompts.delete_version(call.org_id, prompt_id, version_id):
        raise _no_version(prompt_id, version_id)


async def inputs(ctx: PromptContext, call: Call) -> dict[str, Any]:
    """The inputs a logged request compiled this version with, from the row's ``checks.prompt`` (the
    AI gateway's record: ``{id, version_id, environment, inputs}``), read within the organisation."""
    prompt_id, version_id = call.path("promptId"), call.path("versionId")
    request_id = call.request.query_params.get("requestId")
    if not request_id:
        raise RequestError("Missing requestId query parameter: the id of a request that used this version.",
                           param="requestId")  # fmt: skip
    await _existing(ctx, call.org_id, prompt_id)
    found = await ctx.prompts.get_version(call.org_id, version_id)
    if found is None or found.prompt_id != prompt_id:
        raise _no_version(prompt_id, version_id)
    key = requests.parse_request_id(request_id)
    params = Params(ctx.db.dialect)
    rows = await ctx.db.rows(call.org_id, requests.one_sql(call.org_id, params, key), params.values)
    if not rows:
        raise RouteNotFoundError(f"No request {request_id} in this organisation.", param="requestId")
    used = rows[0].checks.get("prompt") if isinstance(rows[0].checks, dict) else None
    if (
        not isinstance(used, dict)
        or used.get("version_id") != version_id
        or used.get("id", used.get("prompt_id")) != prompt_id
        or not isinstance(used.get("inputs"), dict)
    ):
        raise RouteNotFoundError(
            f"Request {request_id} did not use version {version_id!r} of prompt {prompt_id!r}.", param="requestId"
        )
    environment = used.get("environment")
    return {
        "request_id": rows[0].request_id,
        "version_id": version_id,
        "inputs": used["inputs"],
        "environment": environment if isinstance(environment, str) else None,
    }
