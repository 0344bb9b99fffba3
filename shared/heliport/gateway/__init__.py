"""The unified AI gateway: ``/v1/chat/completions``, ``/v1/responses`` and ``/v1/models``.

The model string picks the providers (:mod:`.routing` over :mod:`.registry`); each provider family
has an adapter that turns an OpenAI-shape request into its native one and the answer back
(:mod:`.anthropic`, :mod:`.bedrock`; OpenAI-compatible providers pass through), and
:mod:`.responses` maps the Responses API onto chat for providers that do not speak it.
"""
