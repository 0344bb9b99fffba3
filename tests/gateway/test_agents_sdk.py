"""The real OpenAI Agents SDK through the unified gateway: a function tool, then the final answer."""

from __future__ import annotations

import pytest
from agents import Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from tests.harness import Gateway, wait_for
from tests.mock_provider import MockProvider

set_tracing_disabled(True)  # tracing would post to api.openai.com


def _agent(sdk: AsyncOpenAI, spec: str, api: str, calls: list[str]) -> Agent:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"Sunny in {city}"

    model = (
        OpenAIResponsesModel(model=spec, openai_client=sdk)
        if api == "responses"
        else OpenAIChatCompletionsModel(model=spec, openai_client=sdk)
    )
    return Agent(name="Weather", instructions="Use the tool, then answer.", tools=[get_weather], model=model)


@pytest.mark.parametrize("api", ["responses", "chat"])
@pytest.mark.parametrize("spec", ["gpt-4o-mini/openai", "claude-sonnet-4/anthropic", "claude-sonnet-4/bedrock"])
@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.anyio
async def test_an_agent_with_a_tool_runs_to_its_final_answer(
    ai_gateway: Gateway, mock_provider: MockProvider, spec: str, api: str, streamed: bool
) -> None:
    calls: list[str] = []
    session = f"agent-{api}-{spec}-{streamed}"
    async with AsyncOpenAI(
        base_url=f"{ai_gateway.url}/v1",
        api_key=ai_gateway.key,
        max_retries=0,
        default_headers={"Helicone-Session-Id": session, "Helicone-Session-Path": "/weather"},
    ) as sdk:
        agent = _agent(sdk, spec, api, calls)
        if streamed:
            run = Runner.run_streamed(agent, "What is the weather in Paris?")
            async for _ in run.stream_events():
                pass
            output = run.final_output
        else:
            output = (await Runner.run(agent, "What is the weather in Paris?")).final_output
    assert len(calls) == 1  # the model asked for the tool once, the SDK ran it
    assert isinstance(output, str) and output
    assert len(mock_provider.requests) == 2  # the tool call, then the final text

    def session_records() -> list[object] | None:
        found = [r for r in ai_gateway.queue.records if r.session_id == session]
        return found if len(found) == 2 else None

    records = wait_for(session_records)
    assert all(r.status == 200 and r.session_path == "/weather" for r in records)
    assert {r.gateway_provider for r in records} == {spec.split("/")[1]}
