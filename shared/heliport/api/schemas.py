"""The query API's wire shapes, as pydantic models: request bodies and documented results.

Each body is validated here, and only here: types, required fields, ranges (limits, offsets,
time-zone differences, the instants a time filter may name), lengths, enumerations (``pSize``, the
user sort keys and directions). A wrong value is a 400 whose message names the field, from
pydantic's error location (``Invalid timeFilter.endTimeUnixMs: ...``). Handlers get the validated
model, never the raw body, so there is no second, hand-written check to drift from this one. What a
JSON schema cannot say well stays with its compiler: a filter AST is checked by ``api/filters.py``,
which names the exact path of a bad leaf, and a request list's sort keys likewise.

The same models generate ``/openapi.json`` (``api/openapi.py``), so the document states every bound
the server enforces and cannot drift from what it accepts and returns. Names follow Helicone's
(``seeds/docs/rest__*.md``). Unknown body fields are ignored, as Helicone's server does.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from heliport.alerts import Metric
from heliport.api.filters import MAX_PATTERN_LENGTH
from heliport.api.requests import DEFAULT_LIMIT, MAX_IDS, MAX_LIMIT, MAX_OFFSET

__all__ = [
    "BODY_MODELS",
    "FIRST_INSTANT_MS",
    "LAST_INSTANT_MS",
    "MAX_TIMEZONE_MINUTES",
    "MAX_USER_IDS",
    "SESSION_DEFAULT_LIMIT",
    "AggregateBody",
    "ErrorResult",
    "FeedbackBody",
    "HeliconeRequest",
    "MsTimeFilter",
    "PropertyBody",
    "PropertyQueryBody",
    "RequestIdsBody",
    "RequestQueryBody",
    "ScoreBody",
    "SecondsTimeFilter",
    "SessionMetricsBody",
    "SessionQueryBody",
    "UserMetricsBody",
    "UserMetricsOverviewBody",
    "UserQueryBody",
    "UserSort",
]

#: A filter AST (``FilterLeaf | FilterBranch | "all"``); ``api/filters.py`` checks its structure and
#: answers a 400 naming the exact path of a bad leaf, which a JSON schema could not do as clearly.
FilterNode = Annotated[
    Any,
    Field(
        description='A filter AST: a leaf {table: {field: {operator: value}}}, a branch {left, operator: "and"|"or", '
        f'right}}, or "all". Values of like, ilike, contains and not-contains (and of every search_properties '
        f"operator) are at most {MAX_PATTERN_LENGTH} characters.",
        json_schema_extra={"anyOf": [{"type": "object"}, {"type": "string", "enum": ["all"]}]},
    ),
]
Count = Annotated[int, Field(ge=0, le=MAX_OFFSET)]
#: A free-text search, matched as a LIKE pattern: SQLite refuses patterns over 50,000 bytes, and a
#: search is a few words, so it is capped well below that (the same cap as a filter's pattern values).
SearchText = Annotated[str, Field(max_length=MAX_PATTERN_LENGTH)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class RequestQueryBody(_Body):
    filter: FilterNode
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0
    limit: Annotated[int, Field(ge=0, le=MAX_LIMIT)] = DEFAULT_LIMIT
    sort: dict[str, Any] | None = None
    isCached: bool = False
    includeInputs: bool = False
    isPartOfExperiment: bool = False
    isScored: bool = False


class RequestIdsBody(_Body):
    requestIds: Annotated[list[str], Field(max_length=MAX_IDS)]


class FeedbackBody(_Body):
    rating: bool


PropertyName = Annotated[str, Field(min_length=1, max_length=256)]
PropertyValue = Annotated[str, Field(max_length=10_000)]


class PropertyBody(BaseModel):
    """``{key, value}`` as the REST reference documents it, or ``{name: value, ...}`` as Helicone's
    custom-properties guide sends it; both add or replace properties."""

    model_config = ConfigDict(strict=True, extra="allow")

    key: PropertyName | None = None
    value: PropertyValue | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PropertyBody:
        extra = self.model_extra or {}
        if self.key is not None or self.value is not None:
            if self.key is None or self.value is None:
                raise ValueError("key and value go together")
            return self
        if not extra:
            raise ValueError("expected {key, value} or an object of property names to string values")
        for name, value in extra.items():
            if not isinstance(value, str) or not 0 < len(name) <= 256 or len(value) > 10_000:
                raise ValueError(f"property {name!r} must be a string of at most 10000 characters")
        return self

    def as_properties(self) -> dict[str, str]:
        if self.key is not None and self.value is not None:
            return {self.key: self.value}
        return {name: str(value) for name, value in (self.model_extra or {}).items()}


class LegacyFeedbackBody(_Body):
    helicone_id: str = Field(alias="helicone-id")
    rating: bool


#: A score: a finite number, or a boolean (stored as 1 or 0). ``NaN`` and ``Infinity`` (and ``1e400``,
#: which JSON decoders read as infinity) are refused: they have no JSON form to store or answer with.
ScoreValue = Annotated[float | bool, Field(allow_inf_nan=False)]


class ScoreBody(_Body):
    scores: Annotated[dict[Annotated[str, Field(min_length=1, max_length=256)], ScoreValue], Field(max_length=100)]


# --- the aggregate endpoints (api/aggregates.py, api/overview.py) ----------------------------------

#: The instants a time filter may name: those a ``datetime`` can hold, 0001-01-01T00:00:00.000Z to
#: 9999-12-31T23:59:59.999Z. Every bound parameter is a ``datetime``, so a value outside them could
#: not be compared with anything; the schema says so instead of a handler finding out.
FIRST_INSTANT_MS: Final = -62_135_596_800_000
LAST_INSTANT_MS: Final = 253_402_300_799_999
UnixMs = Annotated[float, Field(ge=FIRST_INSTANT_MS, le=LAST_INSTANT_MS, allow_inf_nan=False)]
UnixSeconds = Annotated[float, Field(ge=FIRST_INSTANT_MS / 1000, le=LAST_INSTANT_MS / 1000, allow_inf_nan=False)]

#: |time-zone difference| in minutes; real offsets lie within -14 h..+12 h, so a day is generous.
MAX_TIMEZONE_MINUTES: Final = 1440
#: A time-zone difference in JavaScript's ``Date.getTimezoneOffset()`` convention (local = UTC -
#: minutes), which is what Helicone's web client sends.
TimezoneMinutes = Annotated[
    float,
    Field(
        ge=-MAX_TIMEZONE_MINUTES,
        le=MAX_TIMEZONE_MINUTES,
        allow_inf_nan=False,
        description="Minutes, as JavaScript's Date.getTimezoneOffset() (local = UTC - minutes).",
    ),
]
#: Sessions per page when the body names no limit (the most is MAX_LIMIT, as for request lists).
SESSION_DEFAULT_LIMIT: Final = 50
PageLimit = Annotated[int, Field(ge=0, le=MAX_LIMIT)]
#: Most user ids one ``/v1/user/query`` may list.
MAX_USER_IDS: Final = 1000


class AggregateBody(Protocol):
    """What every aggregate endpoint's body has: a filter AST, compiled (``api/filters.py``) before the
    endpoint's statement is built."""

    @property
    def filter(self) -> Any: ...


def _utc(seconds: float) -> datetime:
    # Within [FIRST_INSTANT_MS, LAST_INSTANT_MS] this cannot fail: the fields' bounds are its domain.
    return datetime.fromtimestamp(seconds, tz=UTC)


class MsTimeFilter(_Body):
    startTimeUnixMs: UnixMs
    endTimeUnixMs: UnixMs

    def bounds(self) -> tuple[datetime, datetime]:
        """(start, end) as UTC datetimes."""
        return _utc(self.startTimeUnixMs / 1000), _utc(self.endTimeUnixMs / 1000)


class SecondsTimeFilter(_Body):
    startTimeUnixSeconds: UnixSeconds
    endTimeUnixSeconds: UnixSeconds

    def bounds(self) -> tuple[datetime, datetime]:
        """(start, end) as UTC datetimes."""
        return _utc(self.startTimeUnixSeconds), _utc(self.endTimeUnixSeconds)


PSize = Literal["p50", "p75", "p95", "p99", "p99.9"]
Direction = Literal["asc", "desc"]


@with_config(ConfigDict(extra="forbid", strict=True))
class UserSort(TypedDict, total=False):
    """``SortLeafUsers``: an aggregated user column -> its direction. Keys apply in the order given
    (the JSON object's own order); ``user_id`` breaks ties. An unknown key is a 400 naming it
    (``sort.<key>``), as the closed object says."""

    id: Direction
    user_id: Direction
    active_for: Direction
    first_active: Direction
    last_active: Direction
    total_requests: Direction
    average_requests_per_day_active: Direction
    average_tokens_per_request: Direction
    total_prompt_tokens: Direction
    total_completion_tokens: Direction
    cost: Direction
    rate_limited_count: Direction


def _in_given_order(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A validated :class:`UserSort` with its keys in the caller's order: pydantic returns a TypedDict
    in declaration order, and the order of sort keys is their precedence."""
    checked = handler(value)
    return {key: checked[key] for key in value}


class SessionQueryBody(_Body):
    search: SearchText
    timeFilter: MsTimeFilter
    timezoneDifference: TimezoneMinutes
    filter: FilterNode
    nameEquals: str | None = None
    #: null is the default, as an absent field.
    offset: Count | None = 0
    limit: PageLimit | None = SESSION_DEFAULT_LIMIT


class SessionMetricsBody(_Body):
    nameContains: SearchText
    timezoneDifference: TimezoneMinutes
    pSize: PSize | None = None
    useInterquartile: bool | None = None
    timeFilter: MsTimeFilter | None = None
    filter: FilterNode = "all"


class UserQueryBody(_Body):
    userIds: Annotated[list[str], Field(max_length=MAX_USER_IDS)] | None = None
    timeFilter: SecondsTimeFilter | None = None
    #: Not in Helicone's documented body; a request-level filter narrows the users' requests.
    filter: FilterNode = "all"


class UserMetricsBody(_Body):
    filter: FilterNode
    offset: Count
    limit: PageLimit
    timeFilter: SecondsTimeFilter | None = None
    timeZoneDifferenceMinutes: TimezoneMinutes | None = None
    sort: Annotated[UserSort, WrapValidator(_in_given_order)] | None = None


class UserMetricsOverviewBody(_Body):
    useInterquartile: bool
    pSize: PSize
    filter: FilterNode


class PropertyQueryBody(_Body):
    #: Documented as an empty object; a request-level filter narrows the requests whose keys are listed.
    filter: FilterNode = "all"


# --- results ---------------------------------------------------------------------------------------


class ErrorResult(BaseModel):
    """Every failure: ``data`` null and ``error`` a message naming the field, header or id at fault."""

    data: None
    error: str


#: ``HeliconeRequest.heliport_checks``: what a request's checks found (heliport's own field).
CHECKS_DESCRIPTION: Final = (
    "heliport: what the checks this request asked for found, by check name, each an object; {} when none ran. "
    "moderation (Helicone-Moderations-Enabled): flagged, the flagged categories and their scores, the "
    "moderation model, the message screened. llm_security (Helicone-LLM-Security-Enabled/-Advanced): the "
    "verdict, score, classifier and categories of each screened message, and whether a threat was found. "
    "token_limit (Helicone-Token-Limit-Exception-Handler): the strategy, the model and its context length, "
    "estimated tokens before and after, the model chosen by fallback. posthog (Helicone-Posthog-Key): whether "
    "the event was delivered, the status, attempts and error. A request a check blocked is stored with its 400."
)


class HeliconeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    response_id: str | None
    response_created_at: str | None
    response_body: Any = None
    response_status: int
    response_model: str | None
    request_id: str
    request_created_at: str
    request_body: Any
    request_path: str
    request_user_id: str | None
    request_properties: dict[str, str] | None
    request_model: str | None
    model_override: str | None
    helicone_user: str | None
    provider: str
    delay_ms: float | None
    time_to_first_token: float | None
    total_tokens: int | None
    prompt_tokens: int | None
    prompt_cache_write_tokens: int | None
    prompt_cache_read_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None
    prompt_audio_tokens: int | None
    completion_audio_tokens: int | None
    cost: float | None
    costUSD: float | None = None
    prompt_id: str | None
    prompt_version: str | None
    feedback_created_at: str | None = None
    feedback_id: str | None = None
    feedback_rating: bool | None = None
    signed_body_url: str | None = None
    llmSchema: dict[str, Any] | None
    country_code: str | None
    asset_ids: list[str] | None
    asset_urls: dict[str, str] | None
    scores: dict[str, float] | None
    properties: dict[str, str]
    assets: list[str]
    target_url: str
    model: str
    cache_reference_id: str | None
    cache_enabled: bool
    rate_limited: bool = Field(False, description="heliport: refused by Helicone-RateLimit-Policy")
    updated_at: str | None = None
    request_referrer: str | None = None
    ai_gateway_body_mapping: str | None
    storage_location: str | None = None
    heliport_checks: dict[str, dict[str, Any]] = Field(
        description=CHECKS_DESCRIPTION,
        json_schema_extra={
            "examples": [
                {
                    "moderation": {"flagged": True, "categories": ["violence"], "model": "omni-moderation-latest"},
                    "posthog": {"delivered": True, "status": 200, "attempts": 1},
                }
            ]
        },
    )


class SessionResult(BaseModel):
    created_at: str
    latest_request_created_at: str
    session_id: str
    session_name: str
    total_cost: float
    total_requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    avg_latency: float
    user_ids: list[str]
    #: heliport: the session's feedback (POST /v1/session/{sessionId}/feedback); null when none was given.
    feedback_rating: bool | None


class HistogramRow(BaseModel):
    range_start: str
    range_end: str
    value: int


class AverageRow(BaseModel):
    average: float


class SessionAverages(BaseModel):
    session_cost: list[AverageRow]
    session_duration: list[AverageRow]
    session_count: list[AverageRow]


class SessionMetrics(BaseModel):
    session_count: list[HistogramRow]
    session_duration: list[HistogramRow]
    session_cost: list[HistogramRow]
    average: SessionAverages


class UserQueryRow(BaseModel):
    count: int
    prompt_tokens: int
    completion_tokens: int
    user_id: str
    cost: float


class UserMetricsResult(BaseModel):
    id: str
    user_id: str
    active_for: int
    first_active: str
    last_active: str
    total_requests: int
    average_requests_per_day_active: float
    average_tokens_per_request: float
    total_completion_tokens: int
    total_prompt_tokens: int
    cost: float


class UserMetrics(BaseModel):
    users: list[UserMetricsResult]
    count: int
    hasUsers: bool


class UserMetricsOverview(BaseModel):
    request_count: list[HistogramRow]
    user_cost: list[HistogramRow]


class Property(BaseModel):
    property: str


# --- prompts (/v1/prompt-2025/*, api/prompts.py) -----------------------------------------------------

#: An environment name: letters, digits, ``_``, ``.`` and ``-`` (a partial ``{{hcp:id:0:<environment>}}``
#: names one, so it cannot hold ``:`` or braces), at most 64 characters.
EnvironmentName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="production, staging, development, or a custom name ([A-Za-z0-9][A-Za-z0-9_.-]{0,63}).",
    ),
]
PromptName = Annotated[str, Field(min_length=1, max_length=256)]
PromptTag = Annotated[str, Field(max_length=128)]
PromptTags = Annotated[list[PromptTag], Field(max_length=100)]
#: A prompt or version id as a body names it (prompt ids are 6 characters, version ids UUIDs).
PromptIdField = Annotated[str, Field(min_length=1, max_length=128)]
CommitMessage = Annotated[str, Field(max_length=10_000)]


def _prompt_body(value: dict[str, Any]) -> dict[str, Any]:
    """A prompt body is an OpenAI chat completion request: ``model`` a string, ``messages`` a list of
    objects each with a string ``role``, when present; and small enough to store (MAX_BODY_BYTES)."""
    from heliport.prompts.store import MAX_BODY_BYTES  # only the prompt routes pay for it

    model = value.get("model")
    if model is not None and not isinstance(model, str):
        raise ValueError("model must be a string")
    messages = value.get("messages")
    if messages is not None:
        if not isinstance(messages, list):
            raise ValueError("messages must be a list of message objects")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise ValueError(f"messages[{index}] must be an object with a string role")
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_BODY_BYTES:
        raise ValueError(f"the body is over {MAX_BODY_BYTES} bytes of JSON")
    return value


PromptBody = Annotated[
    dict[str, Any],
    AfterValidator(_prompt_body),
    Field(
        description="An OpenAI chat completion request (model, messages, temperature, tools, ...), with "
        "{{hc:name:type}} variables and {{hcp:prompt_id:index[:environment]}} partials."
    ),
]


class PromptCreateBody(_Body):
    name: PromptName
    tags: PromptTags = Field(default_factory=list)
    promptBody: PromptBody


class PromptUpdateBody(_Body):
    promptId: PromptIdField
    promptVersionId: PromptIdField
    newMajorVersion: bool = False
    environment: EnvironmentName | None = None
    commitMessage: CommitMessage = ""
    promptBody: PromptBody


class PromptQueryBody(_Body):
    search: SearchText = ""
    tagsFilter: PromptTags = Field(default_factory=list)
    page: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0
    pageSize: Annotated[int, Field(ge=0, le=MAX_LIMIT)] = 100


class PromptVersionIdBody(_Body):
    promptVersionId: PromptIdField


class PromptIdBody(_Body):
    promptId: PromptIdField


class PromptVersionsBody(_Body):
    promptId: PromptIdField
    majorVersion: Annotated[int, Field(ge=0, le=MAX_OFFSET)] | None = None


class PromptEnvironmentBody(_Body):
    promptId: PromptIdField
    environment: EnvironmentName


class PromptSetEnvironmentBody(_Body):
    promptId: PromptIdField
    promptVersionId: PromptIdField
    environment: EnvironmentName


class PromptTagsBody(_Body):
    tags: PromptTags


class PromptRenameBody(_Body):
    name: PromptName


class Prompt2025(BaseModel):
    id: str
    name: str
    tags: list[str]
    created_at: str


class Prompt2025Version(BaseModel):
    id: str
    model: str | None
    prompt_id: str
    major_version: int
    minor_version: int
    commit_message: str
    #: Helicone's single environment: production when the version has it, else its first by name.
    environment: str | None
    #: heliport: every environment pointing at this version.
    environments: list[str]
    created_at: str
    #: Helicone's link to the stored body; heliport answers the body inline instead (prompt_body).
    s3_url: str | None = None
    #: heliport: the version's body, in the answers about one version (not in lists).
    prompt_body: dict[str, Any] | None = None


class PromptCreated(BaseModel):
    id: str
    versionId: str


class PromptVersionCreated(BaseModel):
    id: str


class PromptVersionCounts(BaseModel):
    totalVersions: int
    majorVersions: int


class Prompt2025Inputs(BaseModel):
    request_id: str
    version_id: str
    inputs: dict[str, Any]
    environment: str | None = None


# --- webhooks (api/webhooks.py) ---------------------------------------------------------------------------

#: Longest destination URL accepted.
MAX_DESTINATION_LENGTH: Final = 2048
#: Most property filters on one webhook (each is checked for every logged request).
MAX_PROPERTY_FILTERS: Final = 20


class WebhookPropertyFilter(_Body):
    key: Annotated[str, Field(min_length=1, max_length=256)]
    value: Annotated[str, Field(max_length=1024)]


class WebhookConfigBody(_Body):
    """Helicone's webhook ``config``: the share of matching requests sent, and the properties they must have."""

    sampleRate: Annotated[float, Field(ge=0, le=100)] = 100
    propertyFilters: Annotated[list[WebhookPropertyFilter], Field(max_length=MAX_PROPERTY_FILTERS)] = Field(
        default_factory=list
    )


class WebhookCreateBody(_Body):
    destination: Annotated[str, Field(min_length=1, max_length=MAX_DESTINATION_LENGTH)]
    config: WebhookConfigBody = Field(default_factory=WebhookConfigBody)
    includeData: bool = False


class WebhookDeliveryLog(BaseModel):
    delivered: int
    failed: int
    last_status: int | None
    last_error: str | None
    last_attempt_at: str | None


class Webhook(BaseModel):
    """Helicone's webhook listing (``config`` as JSON text, as its schema has it), plus heliport's
    ``includeData`` and delivery log."""

    id: str
    created_at: str
    destination: str
    version: str
    config: str
    hmac_key: str
    includeData: bool
    delivery: WebhookDeliveryLog


class WebhookDeadLetter(BaseModel):
    id: str
    webhook_id: str
    request_id: str
    failed_at: str
    attempts: int
    status: int | None
    error: str
    #: The body that was (or would have been) sent, as text.
    payload: str


class WebhookBodies(BaseModel):
    request: Any
    response: Any


# --- alerts (api/alerts.py) -------------------------------------------------------------------------------

#: Longest alert window: 30 days, in minutes.
MAX_WINDOW_MINUTES: Final = 43200
#: Most channels on one alert.
MAX_ALERT_CHANNELS: Final = 20
#: Longest custom property name an alert may group by.
MAX_PROPERTY_NAME: Final = 256
#: An e-mail address as alerts accept it: one address, no display name, nothing that could end a header.
_EMAIL = re.compile(r"[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+\.[^@\s<>,;:\"()\[\]\\]+")

#: The alert metrics, as the alert records name them (one list).
AlertMetric = Metric


def _group_by(value: str | None) -> str | None:
    if value is None or value in ("user", "model", "provider"):
        return value
    name = value[len("property:") :] if value.startswith("property:") else ""
    if not name or len(name) > MAX_PROPERTY_NAME:
        raise ValueError(f'must be null, "user", "model", "provider" or "property:<name>" (name 1-{MAX_PROPERTY_NAME})')
    return value


def _email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValueError("must be one e-mail address, like ops@example.com")
    return value


AlertGroupBy = Annotated[
    str | None,
    AfterValidator(_group_by),
    Field(description='null, "user", "model", "provider" or "property:<name>"'),
]
AlertAggregation = Annotated[
    str,
    Field(pattern=r"^(sum|avg|min|max|p([1-9]|[1-9][0-9]))$", description='"sum", "avg", "min", "max" or "p1".."p99"'),
]
AlertWindow = Annotated[int, Field(ge=1, le=MAX_WINDOW_MINUTES)]
AlertThreshold = Annotated[float, Field(allow_inf_nan=False)]
AlertName = Annotated[str, Field(min_length=1, max_length=200)]
MinimumRequests = Annotated[int, Field(ge=0, le=2**31 - 1)]


class SlackChannelBody(_Body):
    type: Literal["slack"]
    #: An https incoming-webhook URL; a masked one (as answers show it) keeps the alert's stored URL.
    url: Annotated[str, Field(min_length=1, max_length=MAX_DESTINATION_LENGTH)]


class EmailChannelBody(_Body):
    type: Literal["email"]
    address: Annotated[str, AfterValidator(_email)]


AlertChannelBody = Annotated[SlackChannelBody | EmailChannelBody, Field(discriminator="type")]
AlertChannels = Annotated[list[AlertChannelBody], Field(min_length=1, max_length=MAX_ALERT_CHANNELS)]


class AlertPreviewBody(_Body):
    metric: AlertMetric
    windowMinutes: AlertWindow
    minimumRequests: MinimumRequests = 1
    groupBy: AlertGroupBy = None
    aggregation: AlertAggregation = "sum"
    filter: FilterNode = "all"
    threshold: AlertThreshold | None = None


class AlertCreateBody(_Body):
    name: AlertName
    metric: AlertMetric
    threshold: AlertThreshold
    windowMinutes: AlertWindow
    minimumRequests: MinimumRequests = 1
    groupBy: AlertGroupBy = None
    aggregation: AlertAggregation = "sum"
    filter: FilterNode = "all"
    channels: AlertChannels
    enabled: bool = True


class AlertPatchBody(_Body):
    """Any subset of the create fields; a field left out keeps its value (``groupBy: null`` ungroups)."""

    name: AlertName | None = None
    metric: AlertMetric | None = None
    threshold: AlertThreshold | None = None
    windowMinutes: AlertWindow | None = None
    minimumRequests: MinimumRequests | None = None
    groupBy: AlertGroupBy = None
    aggregation: AlertAggregation | None = None
    filter: FilterNode = None
    channels: AlertChannels | None = None
    enabled: bool | None = None


class AlertChannel(BaseModel):
    type: Literal["slack", "email"]
    #: Slack: the URL masked (only its last 4 characters shown).
    url: str | None = None
    address: str | None = None


class Alert(BaseModel):
    id: str
    created_at: str
    updated_at: str
    name: str
    metric: str
    threshold: float
    windowMinutes: int
    minimumRequests: int
    groupBy: str | None
    aggregation: str | None
    filter: Any
    channels: list[AlertChannel]
    enabled: bool
    state: Literal["ok", "triggered"]
    triggeredGroups: list[str]
    lastEvaluatedAt: str | None
    lastError: str | None = None


class AlertHistoryEntry(BaseModel):
    id: str
    alertId: str
    at: str
    state: Literal["triggered", "resolved"]
    group: str | None
    value: float
    threshold: float
    requests: int
    requestsUrl: str


class AlertTestResult(BaseModel):
    channel: Literal["slack", "email"]
    target: str
    ok: bool
    error: str | None
    #: Handed to the delivery function rather than sent from here (AWS); its outcome is in that function's log.
    queued: bool = False


class AlertPreviewGroup(BaseModel):
    group: str | None
    value: float | None
    requests: int
    over: bool


class AlertPreview(BaseModel):
    groups: list[AlertPreviewGroup]
    from_: str = Field(alias="from")
    to: str


class Deleted(BaseModel):
    deleted: bool


#: Every body model, for the OpenAPI components.
BODY_MODELS: tuple[type[BaseModel], ...] = (
    RequestQueryBody,
    RequestIdsBody,
    FeedbackBody,
    PropertyBody,
    LegacyFeedbackBody,
    ScoreBody,
    SessionQueryBody,
    SessionMetricsBody,
    UserQueryBody,
    UserMetricsBody,
    UserMetricsOverviewBody,
    PropertyQueryBody,
    PromptCreateBody,
    PromptUpdateBody,
    PromptQueryBody,
    PromptVersionIdBody,
    PromptIdBody,
    PromptVersionsBody,
    PromptEnvironmentBody,
    PromptSetEnvironmentBody,
    PromptTagsBody,
    PromptRenameBody,
    WebhookCreateBody,
    AlertCreateBody,
    AlertPatchBody,
    AlertPreviewBody,
)
