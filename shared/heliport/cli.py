"""``heliport serve | keys create|list|revoke | migrate | logs respool | smoke``: the local server, its
upkeep, and the check of a deployment (``smoke``, in :mod:`heliport.smoke`).

The same commands manage keys of a deployed stack: with ``HELIPORT_TABLE`` (and AWS credentials)
set, keys go to the DynamoDB table instead of the local SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from heliport.auth import bootstrap_local_org, create_key
from heliport.config import Settings
from heliport.store.factory import open_key_store
from heliport.store.ports import KeyStore, Organisation

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heliport", description="Helicone-compatible LLM gateway.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway locally")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1, HELIPORT_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8585, HELIPORT_PORT)")
    serve.add_argument("--data-dir", type=Path, help="where local state lives (default .heliport)")

    migrate = commands.add_parser("migrate", help="apply log-database migrations (HELIPORT_DATABASE_URL or local)")
    migrate.add_argument("--data-dir", type=Path, help="where local state lives (default .heliport)")

    logs = commands.add_parser("logs", help="log pipeline maintenance")
    log_commands = logs.add_subparsers(dest="logs_command", required=True)
    respool = log_commands.add_parser("respool", help="re-enqueue records spooled while the queue was down")
    respool.add_argument("--data-dir", type=Path, help="where local state lives (default .heliport)")

    keys = commands.add_parser("keys", help="manage heliport API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key (printed once)")
    create.add_argument("--name", default="cli", help="a label for the key")
    create.add_argument("--org", help="organisation id (default: the first one)")
    listing = key_commands.add_parser("list", help="list keys")
    listing.add_argument("--org", help="organisation id (default: the first one)")
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.add_argument("--org", help="organisation id (default: the first one)")
    for sub in (create, listing, revoke):
        sub.add_argument("--data-dir", type=Path, help="where local state lives (default .heliport)")

    smoke = commands.add_parser("smoke", help="check a deployment end to end (run it after sam deploy)")
    smoke.add_argument(
        "url", metavar="GatewayUrl", help="the stack's GatewayUrl output, stage included (https://<id>.execute-api...)"
    )
    smoke.add_argument(
        "--key",
        default=os.environ.get("HELIPORT_KEY"),
        help="a heliport key of the deployment (default: HELIPORT_KEY, which keeps it out of shell history)",
    )
    smoke.add_argument("--openai-key", help="OpenAI key for the pass-through steps (default: OPENAI_API_KEY)")
    smoke.add_argument("--model", default="gpt-4o-mini", help="model for the AI gateway steps (default gpt-4o-mini)")
    smoke.add_argument(
        "--openai-model", default="gpt-4o-mini", help="model for the pass-through steps (default gpt-4o-mini)"
    )
    smoke.add_argument("--timeout", type=float, default=60.0, help="seconds each request may take (default 60)")
    smoke.add_argument(
        "--log-timeout", type=float, default=60.0, help="seconds to wait for the logged row (default 60)"
    )
    smoke.add_argument("--skip-passthrough", action="store_true", help="skip the steps that need an OpenAI key")
    smoke.add_argument(
        "--skip-gateway", action="store_true", help="skip the AI gateway steps (no provider key deployed)"
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    changes = {name: getattr(args, name, None) for name in ("host", "port", "data_dir")}
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})


async def _org(store: KeyStore, org_id: str | None) -> Organisation:
    if org_id is None:
        org, _ = await bootstrap_local_org(store)
        return org
    org_found = await store.get_org(org_id)
    if org_found is None:
        raise SystemExit(f"heliport: no organisation {org_id!r}")
    return org_found


async def _keys(args: argparse.Namespace, settings: Settings) -> int:
    store = open_key_store(settings)
    try:
        org = await _org(store, args.org)
        if args.keys_command == "create":
            plain, key = await create_key(store, org.id, args.name)
            print(f"created key {key.id} ({key.name}) for organisation {org.name} ({org.id})")
            print(plain)
        elif args.keys_command == "list":
            print(f"{'id':36}  {'name':12}  {'prefix':20}  {'created':25}  revoked")
            for key in await store.list_keys(org.id):
                revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "-"
                created = key.created_at.isoformat(timespec="seconds")
                print(f"{key.id:36}  {key.name:12}  {key.prefix + '…':20}  {created:25}  {revoked}")
        elif not await store.revoke_key(org.id, args.key_id):
            print(f"heliport: organisation {org.id} has no key {args.key_id!r}", file=sys.stderr)
            return 1
        else:
            print(f"revoked key {args.key_id}")
        return 0
    finally:
        await store.aclose()


def _serve(settings: Settings) -> int:
    import uvicorn

    from heliport.app import create_app

    app = create_app(settings, local_pipeline=True)

    async def bootstrap() -> tuple[Organisation, str | None]:
        return await bootstrap_local_org(app.key_store)

    org, new_key = asyncio.run(bootstrap())
    from heliport.heap import tune_for_serving

    tune_for_serving()
    base = f"http://{settings.host}:{settings.port}"
    key_text = new_key or "<your key>  (create one with: heliport keys create)"
    print(f"heliport is serving on {base}  (organisation {org.name}, data in {settings.data_dir}/)")
    if new_key:
        print(f"\nYour first heliport key (shown only now, stored as a hash):\n  {new_key}\n")
    print("Point your SDK at heliport and add the key:")
    print(f'  OpenAI:    OpenAI(base_url="{base}/v1/gateway/oai/v1",')
    print(f'                    default_headers={{"Helicone-Auth": "Bearer {key_text}"}})')
    print(f'  Anthropic: Anthropic(base_url="{base}/v1/gateway/anthropic", default_headers={{...same...}})')
    print(f"  Any provider: {base}/v1/gateway/<provider>/...  (oai, anthropic, groq, mistral, x, ...)", flush=True)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=os.environ.get("HELIPORT_LOG_LEVEL", "warning"),
        access_log=False,
        server_header=False,
        loop="auto",
        http="auto",
    )
    uvicorn.Server(config).run()
    return 0


async def _migrate(settings: Settings) -> int:
    from datetime import UTC, datetime

    from heliport.store.factory import open_logdb

    logdb = open_logdb(settings)
    try:
        applied = await logdb.migrate()
        await logdb.ensure_partitions(datetime.now(UTC))
    finally:
        await logdb.aclose()
    print("applied: " + ", ".join(applied) if applied else "log database is up to date")
    return 0


async def _respool(settings: Settings) -> int:
    from heliport.logs.spool import respool
    from heliport.store.factory import open_blobs, open_inner_queue

    blobs, queue = open_blobs(settings), open_inner_queue(settings)
    try:
        moved = await respool(blobs, queue)
    finally:
        await queue.aclose()
        await blobs.aclose()
    print(f"re-enqueued {moved} spooled records")
    return 0


def _smoke(args: argparse.Namespace) -> int:
    if not args.key:
        print("heliport smoke: give a heliport key with --key or HELIPORT_KEY", file=sys.stderr)
        return 2
    # Imported here: aiohttp's client is only needed by this command, and `heliport --help` stays fast.
    from heliport.smoke import SmokeOptions, run

    options = SmokeOptions(
        url=args.url,
        key=args.key,
        openai_key=args.openai_key or os.environ.get("OPENAI_API_KEY"),
        model=args.model,
        openai_model=args.openai_model,
        timeout=args.timeout,
        log_timeout=args.log_timeout,
        skip_passthrough=args.skip_passthrough,
        skip_gateway=args.skip_gateway,
    )
    return run(options)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "smoke":  # a client of a deployment: no local settings or stores
        return _smoke(args)
    settings = _settings(args)
    if args.command == "serve":
        return _serve(settings)
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "logs":
        return asyncio.run(_respool(settings))
    return asyncio.run(_keys(args, settings))


if __name__ == "__main__":
    raise SystemExit(main())
