"""template.yaml's REST API: which function API Gateway invokes for each heliport path.

The proxy function owns ``/{proxy+}`` (ANY); the query API owns static branches beside it (``/v1``,
``/v1/request``, ``/v1/request/{proxy+}``, ...). Whether ``/v1/chat/completions`` still reaches
``/{proxy+}`` once a static ``/v1`` resource exists is decided by API Gateway's routing rule, which
:func:`route` implements:

* A request is matched against the resource tree segment by segment, and a literal segment is tried
  before a ``{param}`` sibling, which is tried before a greedy ``{proxy+}`` sibling. The Developer Guide
  (Set up a method request > "Use a proxy resource to streamline API setup", https://docs.aws.amazon.com/
  apigateway/latest/developerguide/api-gateway-method-settings-method-request.html#api-gateway-proxy-resource)
  says "a method request against a specific resource takes precedence over a method request against a
  generic resource at the same level of the resource hierarchy".
* The match is on the resource *and method* pair: when the most specific branch has no method for the
  request (a path below it that no child matches, a resource with no method at all, or with other
  verbs only), API Gateway falls back to the next candidate, in the end the greedy ``{proxy+}`` higher
  up. Nothing at all: 403 "Missing Authentication Token". The same guide page also says the proxy's
  siblings are "excluded from the representation of the proxy resource" (``/{proxy+}`` "refers to any
  resources under the root resource except for the /parent[/*] resources"), which read literally would
  send ``/v1/chat/completions`` to a 403; requests sent to real API Gateway show the fallback instead,
  and :data:`OBSERVED` pins :func:`route` to those observations (test_route_agrees_with_api_gateway).

The template is translated with the SAM translator, as ``sam deploy`` does, and the tree is built
from the translated REST API's OpenAPI ``paths``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.infra.test_template import ROOT, SAM_INSTALL, TEMPLATE, _sam_binary

PROXY = "ProxyFunction"
QUERY_API = "QueryApiFunction"
REST_API = "ProxyApi"
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
ANY_METHOD = "x-amazon-apigateway-any-method"
INTEGRATION = "x-amazon-apigateway-integration"

#: What ``sam validate``/``sam deploy`` do before translating: local code paths become S3 URIs (the
#: translator accepts nothing else), pseudo parameters come from a region. No AWS call is made.
TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:  # the template names no managed policy; nothing to look up in IAM
    def load(self):
        return {}

with open(sys.argv[1]) as source:
    template = yaml_parse(source.read())
# The template lists AWS::LanguageExtensions first (ProxyCompute's Fn::If): its pass runs before SAM's, here
# with the SAM CLI's own implementation of it, as `sam validate --language-extensions` does.
if "AWS::LanguageExtensions" in (template.get("Transform") or []):
    from samcli.lib.cfn_language_extensions.sam_integration import process_template_for_sam_cli
    template = process_template_for_sam_cli(template, {})
for resource in template["Resources"].values():
    properties = resource.get("Properties") or {}
    for name in ("CodeUri", "ContentUri"):
        if isinstance(properties.get(name), str):
            properties[name] = "s3://bucket/" + properties[name]
json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout)
"""


def _translator_python() -> str:
    """A Python with the SAM translator: this one, or the SAM CLI's own (dev.py keeps it in .venv-sam)."""
    if importlib.util.find_spec("samtranslator") is not None and importlib.util.find_spec("samcli") is not None:
        return sys.executable
    sam = Path(_sam_binary())
    candidates: list[str] = []
    first_line = sam.read_bytes()[:256].split(b"\n", 1)[0]
    if first_line.startswith(b"#!"):  # a pip-installed `sam` is a script run by its venv's Python
        words = first_line[2:].decode(errors="replace").split()
        interpreter = shutil.which(words[1]) if len(words) > 1 and words[0].endswith("/env") else words[0]
        candidates += [interpreter] if interpreter else []
    candidates.append(str(sam.resolve().parent / "python"))
    for candidate in candidates:
        probe = [candidate, "-c", "import samtranslator, samcli"]
        if Path(candidate).is_file() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return candidate
    pytest.fail(f"no Python with the SAM translator next to {sam}. {SAM_INSTALL}")


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env |= {"AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    command = [_translator_python(), "-c", TRANSLATE, str(TEMPLATE)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    template: dict[str, Any] = json.loads(result.stdout)
    return template


# --- the resource tree and API Gateway's rule ---------------------------------------------------------


@dataclass
class Resource:
    """One API Gateway resource; importing OpenAPI ``paths`` creates every intermediate one, methodless."""

    path: str
    children: dict[str, Resource] = field(default_factory=dict)
    #: HTTP method (or ANY) -> the method's ``x-amazon-apigateway-integration``.
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def part(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def rank(self) -> int:
        """The order siblings are tried in: literal, then ``{param}``, then greedy ``{param+}``."""
        if self.part.startswith("{") and self.part.endswith("+}"):
            return 2
        return 1 if self.part.startswith("{") else 0

    def method_for(self, verb: str) -> str | None:
        """The method that serves ``verb`` here: its own, else ANY."""
        return verb if verb in self.methods else ("ANY" if "ANY" in self.methods else None)

    def walk(self) -> Iterator[Resource]:
        yield self
        for child in self.children.values():
            yield from child.walk()


def resource_tree(paths: Mapping[str, Mapping[str, Any]]) -> Resource:
    root = Resource("")
    for path, operations in paths.items():
        node = root
        for part in filter(None, path.split("/")):
            node = node.children.setdefault(part, Resource(f"{node.path}/{part}"))
        for key, operation in operations.items():
            verb = "ANY" if key == ANY_METHOD else key.upper()
            if verb == "ANY" or verb in HTTP_METHODS:  # path-level keys such as `parameters` are not methods
                node.methods[verb] = dict(operation.get(INTEGRATION, {}))
    return root


@dataclass(frozen=True)
class Route:
    resource: str  # the resource path, e.g. /{proxy+}
    method: str  # the method that serves the request, e.g. ANY
    integration: dict[str, Any]


def route(root: Resource, verb: str, path: str, *, strict: bool = False) -> Route | None:
    """The method API Gateway invokes for ``verb path`` (the path after the stage), or None: 403.

    ``strict`` reads the developer guide literally instead ("``/{proxy+}`` refers to any resources
    under the root resource except for the ``/parent[/*]`` resources"): a request that enters a
    literal resource never falls back out of it."""
    found = _match(root, [segment for segment in path.split("/") if segment], verb, strict)
    if found is None:
        return None
    method = found.method_for(verb)
    assert method is not None
    return Route(found.path or "/", method, found.methods[method])


def _match(node: Resource, segments: list[str], verb: str, strict: bool = False) -> Resource | None:
    if not segments:
        return node if node.method_for(verb) else None
    for child in sorted(node.children.values(), key=lambda resource: resource.rank):
        if child.rank == 2:  # greedy: takes every remaining segment (at least one), or nothing
            found = child if child.method_for(verb) else None
        elif child.rank == 1 or child.part == segments[0]:
            found = _match(child, segments[1:], verb, strict)
            if found is None and strict and child.rank == 0:
                return None  # the literal reading: a static branch's subtree is not the proxy's
        else:
            continue
        if found is not None:  # otherwise fall back to the next, less specific, candidate
            return found
    return None


#: Requests sent to real API Gateway REST APIs (MOCK integrations, no authorizer) and the resource that
#: answered (None: 403 Missing Authentication Token). Each tree maps resource paths to their methods.
OBSERVED: list[tuple[str, dict[str, list[str]], list[tuple[str, str, str | None]]]] = [
    (
        # LocalStack tests/aws/services/apigateway/test_apigateway_common.py, TestApigatewayRouting::
        # test_routing_with_hardcoded_resource_sibling_order, validated against AWS on 2024-07-23: a path under
        # a static branch that no child matches goes to the greedy resource at the root.
        "localstack-sibling-order",
        {"/part1": ["GET"], "/{param+}": ["GET"], "/part1/hardcoded-value": ["GET"]},
        [
            ("GET", "/part1", "/part1"),
            ("GET", "/part1/hardcoded-value", "/part1/hardcoded-value"),
            ("GET", "/part1/random-value", "/{param+}"),
        ],
    ),
    (
        # LocalStack, same class, test_proxy_routing_with_hardcoded_resource_sibling (validated 2024-07-23):
        # a verb the static resource lacks goes to the greedy sibling.
        "localstack-verb-fallback",
        {"/test": ["POST"], "/test/any": ["ANY"], "/{proxy+}": ["OPTIONS"]},
        [
            ("OPTIONS", "/test", "/{proxy+}"),
            ("POST", "/test", "/test"),
            ("OPTIONS", "/test/any", "/test/any"),
            ("GET", "/test/any", "/test/any"),
        ],
    ),
    (
        # LocalStack, same class, test_routing_not_found (validated 2024-07-23): no match at all is a 403.
        "localstack-not-found",
        {"/existing": ["GET"]},
        [("GET", "/existing", "/existing"), ("GET", "/random-non-existing", None), ("POST", "/existing", None)],
    ),
    (
        # ministack PR #1423 (github.com/ministackorg/ministack/pull/1423), measured on API Gateway in
        # eu-central-1: /jobs exists only as the parent of /jobs/{operation_type}, with no method.
        "ministack-methodless-parent",
        {"/{proxy+}": ["ANY"], "/jobs/{operation_type}": ["GET"], "/cors_only": ["OPTIONS"]},
        [
            ("GET", "/jobs/reboot", "/jobs/{operation_type}"),
            ("GET", "/jobs", "/{proxy+}"),
            ("POST", "/jobs", "/{proxy+}"),
            ("POST", "/jobs/reboot", "/{proxy+}"),
            ("GET", "/cors_only", "/{proxy+}"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("tree", "verb", "path", "expected"),
    [(tree, *request) for _, tree, requests in OBSERVED for request in requests],
    ids=[f"{name}:{verb} {path}" for name, _, requests in OBSERVED for verb, path, _ in requests],
)
def test_route_agrees_with_api_gateway(tree: dict[str, list[str]], verb: str, path: str, expected: str | None) -> None:
    paths = {resource: {method.lower(): {} for method in methods} for resource, methods in tree.items()}
    answered = route(resource_tree(paths), verb, path)
    assert (answered.resource if answered else None) == expected


# --- the template -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(translated: dict[str, Any]) -> Resource:
    rest_api = translated["Resources"][REST_API]
    assert rest_api["Type"] == "AWS::ApiGateway::RestApi"
    return resource_tree(rest_api["Properties"]["Body"]["paths"])


def function_of(integration: Mapping[str, Any]) -> str:
    """The logical id of the Lambda function an ``aws_proxy`` integration invokes."""
    uri = integration.get("uri")
    text = uri.get("Fn::Sub") if isinstance(uri, dict) else uri
    found = re.search(r"\$\{(\w+)\.Arn\}", str(text))
    assert integration.get("type") == "aws_proxy" and found, integration
    return found.group(1)


KEY_IN_PATH = "sk-heliport-" + "0" * 48
ROUTES = [
    # The proxy function: the AI gateway, pass-through, logging, health, the model registry.
    ("POST", "/v1/chat/completions", PROXY),
    ("POST", "/v1/responses", PROXY),
    ("GET", "/v1/models", PROXY),
    ("GET", "/v1/public/model-registry/models", PROXY),
    ("POST", "/v1/gateway/oai/v1/chat/completions", PROXY),
    ("POST", "/v1/gateway/anthropic/v1/messages", PROXY),
    ("POST", f"/{KEY_IN_PATH}/v1/gateway/oai/v1/chat/completions", PROXY),
    ("GET", "/healthcheck", PROXY),
    ("POST", "/custom/v1/log", PROXY),
    ("POST", "/v1/trace/log", PROXY),
    ("POST", "/v1/trace/log-python", PROXY),
    # The query API and the dashboard.
    ("POST", "/v1/request/query", QUERY_API),
    ("GET", "/v1/request/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90", QUERY_API),
    ("POST", "/v1/session/query", QUERY_API),
    ("POST", "/v1/user/query", QUERY_API),
    ("POST", "/v1/property/query", QUERY_API),
    ("POST", "/v1/feedback", QUERY_API),
    ("GET", "/openapi.json", QUERY_API),
    ("GET", "/dashboard", QUERY_API),
    ("GET", "/dashboard/app.js", QUERY_API),
    ("POST", "/v1/dashboard/overview", QUERY_API),
    ("POST", "/v1/dashboard/timeseries", QUERY_API),
    ("GET", "/dashboard/vendor/uplot/uPlot.esm.js", QUERY_API),
    ("POST", "/v1/prompt-2025", QUERY_API),
    ("POST", "/v1/prompt-2025/query", QUERY_API),
    ("GET", "/v1/prompt-2025/id/AbC123", QUERY_API),
    ("PATCH", "/v1/prompt-2025/id/AbC123/tags", QUERY_API),
    ("DELETE", "/v1/prompt-2025/AbC123/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90", QUERY_API),
    # Evals, scores and session feedback (issue 23).
    ("POST", "/v1/evals/query", QUERY_API),
    ("GET", "/v1/evals/scores", QUERY_API),
    ("POST", "/v1/evals/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90", QUERY_API),
    ("POST", "/v1/dashboard/scores/query", QUERY_API),
    ("POST", "/v1/session/sess-1/feedback", QUERY_API),
    ("POST", "/v1/helicone-dataset", QUERY_API),
    ("POST", "/v1/helicone-dataset/query", QUERY_API),
    ("GET", "/v1/helicone-dataset/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90/export", QUERY_API),
    ("POST", "/v1/request/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90/assets/" + "a" * 32, QUERY_API),
    ("POST", "/v1/helicone-sql/execute", QUERY_API),
    ("GET", "/v1/helicone-sql/schema", QUERY_API),
    ("GET", "/v1/helicone-sql/saved-query/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90", QUERY_API),
    ("GET", "/v1/helicone-sql/download/csv", QUERY_API),
    # Webhooks and alerts (issue 22).
    ("POST", "/v1/webhooks", QUERY_API),
    ("GET", "/v1/webhooks", QUERY_API),
    ("DELETE", "/v1/webhooks/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90", QUERY_API),
    ("POST", "/v1/webhooks/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90/test", QUERY_API),
    ("GET", "/v1/webhooks/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90/dead-letters", QUERY_API),
    ("GET", "/v1/webhooks/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90/bodies/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c91", QUERY_API),
    ("POST", "/v1/alerts", QUERY_API),
    ("GET", "/v1/alerts", QUERY_API),
    ("PATCH", "/v1/alerts/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90", QUERY_API),
    ("GET", "/v1/alerts/0b6f4b9e-6d8c-4f7e-9c55-3f1d2a7b8c90/history", QUERY_API),
    ("POST", "/v1/alerts/preview", QUERY_API),
]


@pytest.mark.parametrize(("verb", "path", "function"), ROUTES, ids=[f"{verb} {path}" for verb, path, _ in ROUTES])
def test_each_path_reaches_its_function(api: Resource, verb: str, path: str, function: str) -> None:
    answered = route(api, verb, path)
    assert answered is not None, f"{verb} {path}: API Gateway would answer 403 Missing Authentication Token"
    assert function_of(answered.integration) == function, f"{verb} {path} -> {answered.resource} {answered.method}"


@pytest.mark.parametrize(("verb", "path", "function"), ROUTES, ids=[f"{verb} {path}" for verb, path, _ in ROUTES])
def test_each_path_reaches_its_function_under_the_guides_literal_reading_too(
    api: Resource, verb: str, path: str, function: str
) -> None:
    """The template must not depend on the fallback: /v1/{proxy+} catches what the query API's static
    /v1 branch does not (without it, /v1/chat/completions would be a 403 under this reading)."""
    answered = route(api, verb, path, strict=True)
    assert answered is not None, f"{verb} {path}: 403 if API Gateway does not fall back out of a static branch"
    assert function_of(answered.integration) == function, f"{verb} {path} -> {answered.resource} {answered.method}"


def test_every_proxy_method_streams_for_fifteen_minutes(api: Resource) -> None:
    proxy_methods = [
        (resource.path, method, integration)
        for resource in api.walk()
        for method, integration in resource.methods.items()
        if function_of(integration) == PROXY
    ]
    assert proxy_methods, "the proxy function has no method on the REST API"
    for path, method, integration in proxy_methods:
        where = f"{method} {path}"
        # Response streaming: the 2021-11-15 InvokeWithResponseStream URI and the STREAM transfer mode.
        assert integration.get("responseTransferMode") == "STREAM", where
        assert re.search(
            r"lambda:path/2021-11-15/functions/.+/response-streaming-invocations$", integration["uri"]["Fn::Sub"]
        )
        # API Gateway's streaming limit, the same 15 minutes as the function's own timeout.
        assert integration.get("timeoutInMillis") == 900000, where
