"""``heliport serve | keys create|list|revoke | orgs create|list | migrate | logs respool |
logs dead-letters list|retry|drop | smoke``: the
local server, its upkeep, and the check of a deployment (``smoke``, in :mod:`heliport.smoke`).

The same commands manage the keys and organisations of a deployed stack: with ``HELIPORT_TABLE``
(and AWS credentials) set, they go to the DynamoDB table instead of the local SQLite file.

``keys ... --org`` takes an organisation's id or its name (names are unique per store); without it,
the first organisation (made on first use, see :func:`heliport.auth.bootstrap_local_org`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from heliport.auth import bootstrap_local_org, create_key
from heliport.config import Settings
from heliport.store.factory import open_key_store
from heliport.store.keys import KeyStore, Organisation

__all__ = ["main"]

#: Long enough for any real name; short enough to sit in a DynamoDB key (2,048 bytes) and a listing.
_MAX_ORG_NAME = 200
_ORG_HELP = "organisation id or name (default: the first one)"


class _CommandError(Exception):
    """A refusal to report as ``heliport: <message>`` on stderr, with exit code 1."""


def _org_id(text: str) -> str:
    """``--id``: a UUID, kept in the canonical form every other organisation id has (``str(uuid4())``)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heliport", description="Helicone-compatible LLM gateway.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway locally")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1, HELIPORT_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8585, HELIPORT_PORT)")
    serve.add_argument("--data-dir", type=Path, help="where local state lives (default .heliport)")
    serve.add_argument(
        "--pipeline",
        choices=("process", "thread"),
        default="process",
        help="run the log pipeline in a child process (default) or on a thread of the proxy's process",
    )

    migrate = commands.add_parser("migrate", help="apply log-database migrations (HELIPORT_DATABASE_URL or local)")
    migrate.add_argument("--data-dir", type=Path, help="where local state lives (default .heliport)")

    logs = commands.add_parser("logs", help="log pipeline maintenance")
    log_commands = logs.add_subparsers(dest="logs_command", required=True)
    respool = log_commands.add_parser("respool", help="re-enqueue records spooled while the queue was down")
    respool.add_argument("--data-dir", type=Path, help="where local state lives (default .heliport)")
    dead = log_commands.add_parser("dead-letters", help="records the log writer gave up on, with the reason")
    dead_commands = dead.add_subparsers(dest="dead_command", required=True)
    dead_list = dead_commands.add_parser("list", help="show dead letters, oldest first")
    dead_list.add_argument("--org", help="only this organisation's (id)")
    dead_list.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    for name, what in (("retry", "send back to the log queue"), ("drop", "delete for good")):
        sub = dead_commands.add_parser(name, help=f"{what}: the given ids, or --all")
        sub.add_argument("ids", nargs="*", type=int, metavar="ID", help="dead-letter ids (from list)")
        sub.add_argument("--all", action="store_true", help="every dead letter")
    for sub in dead_commands.choices.values():
        sub.add_argument("--data-dir", type=Path, help="where local state lives (default .heliport)")

    keys = commands.add_parser("keys", help="manage heliport API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key (printed once)")
    create.add_argument("--name", default="cli", help="a label for the key")
    create.add_argument("--org", help=_ORG_HELP)
    listing = key_commands.add_parser("list", help="list keys")
    listing.add_argument("--org", help=_ORG_HELP)
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.add_argument("--org", help=_ORG_HELP)

    orgs = commands.add_parser("orgs", help="manage organisations (each sees only its own keys and logs)")
    org_commands = orgs.add_subparsers(dest="orgs_command", required=True)
    org_create = org_commands.add_parser("create", help="create an organisation (prints its id)")
    org_create.add_argument("--name", required=True, help="its name, unique in the store (usable as --org)")
    org_create.add_argument("--id", type=_org_id, help="its id, a UUID (default: a new random one)")
    org_listing = org_commands.add_parser("list", help="list organisations with their key counts")
    for sub in (create, listing, revoke, org_create, org_listing):
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


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def _org(store: KeyStore, ref: str | None) -> Organisation:
    """The organisation ``--org`` names, by id or by name; without ``--org``, the first one."""
    if ref is None:
        org, _ = await bootstrap_local_org(store)
        return org
    # Ids are stored in canonical UUID form; accept another spelling of one (upper case, no dashes).
    by_id = await store.get_org(str(uuid.UUID(ref)) if _is_uuid(ref) else ref)
    matches = [by_id] if by_id is not None else []
    # `orgs create` refuses duplicate names and UUID-shaped names, so a name matching twice, or
    # matching another organisation's id, can only come from a store written before those checks.
    matches += [o for o in await store.find_orgs(ref) if by_id is None or o.id != by_id.id]
    if not matches:
        raise _CommandError(f"no organisation with id or name {ref!r} (see: heliport orgs list)")
    if len(matches) > 1:
        found = ", ".join(f"{o.name!r} ({o.id})" for o in matches)
        raise _CommandError(f"{ref!r} matches more than one organisation: {found}; name it by its id")
    return matches[0]


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
            raise _CommandError(f"organisation {org.id} has no key {args.key_id!r}")
        else:
            print(f"revoked key {args.key_id}")
        return 0
    finally:
        await store.aclose()


async def _create_org(store: KeyStore, name: str, org_id: str | None) -> Organisation:
    name = name.strip()
    if not name or len(name) > _MAX_ORG_NAME:
        raise _CommandError(f"an organisation name must have 1 to {_MAX_ORG_NAME} characters")
    if _is_uuid(name):
        # --org reads a UUID as an id first: such a name could be taken for another organisation's id.
        raise _CommandError(f"{name!r} looks like an organisation id (a UUID); choose another name")
    # Checked here for a clear message; create_org checks again atomically, for a concurrent create.
    named = await store.find_orgs(name)
    if named:
        raise _CommandError(f"an organisation named {name!r} already exists (id {named[0].id})")
    org = Organisation(id=org_id or str(uuid.uuid4()), name=name, created_at=datetime.now(UTC))
    try:
        await store.create_org(org)
    except ValueError as exc:
        raise _CommandError(str(exc)) from None
    return org


async def _orgs(args: argparse.Namespace, settings: Settings) -> int:
    store = open_key_store(settings)
    try:
        if args.orgs_command == "create":
            org = await _create_org(store, args.name, args.id)
            # Only the id on stdout, so scripts can take it: ORG=$(heliport orgs create --name acme).
            print(org.id)
            hint = f"heliport keys create --org {shlex.quote(org.name)}"
            print(f"created organisation {org.name!r}; give it a key with: {hint}", file=sys.stderr)
            return 0
        orgs = await store.list_orgs()
        if not orgs:
            print("no organisations yet: heliport serve or heliport keys create makes the first")
            return 0
        width = max(4, *(len(o.name) for o in orgs))
        print(f"{'id':36}  {'name':{width}}  {'created':25}  {'active keys':>11}  {'revoked':>7}")
        for org in orgs:
            # One Query per organisation on DynamoDB (its key listing), never a table scan: the
            # counts cost a read of each organisation's keys, fine for an operator's listing.
            keys = await store.list_keys(org.id)
            revoked = sum(1 for k in keys if not k.active)
            created = org.created_at.isoformat(timespec="seconds")
            print(f"{org.id:36}  {org.name:{width}}  {created:25}  {len(keys) - revoked:>11}  {revoked:>7}")
        print(f"without --org, heliport keys uses the first: {orgs[0].name} ({orgs[0].id})")
        return 0
    finally:
        await store.aclose()


def _serve(settings: Settings, pipeline: str = "process") -> int:
    import uvicorn

    from heliport.app import create_app

    async def bootstrap() -> tuple[Organisation, str | None]:
        # A store of its own, closed before uvicorn starts its loop: an AWS client opened here would
        # be bound to this asyncio.run loop, and the app's store would fail every request after it.
        store = open_key_store(settings)
        try:
            return await bootstrap_local_org(store)
        finally:
            await store.aclose()

    org, new_key = asyncio.run(bootstrap())
    # The log pipeline (and the alert timer) in a child process: its CPU work never stalls the proxy.
    # On a thread instead it holds the proxy's GIL while it builds rows (serve's p99 several times
    # the bare pass-through's, docs/benchmarks.md); kept as the benchmark's "before" and a fallback.
    app = create_app(settings, local_pipeline=True, pipeline_process=pipeline == "process")
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


async def _dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    """Look at, replay or drop the records kept in the log database's ``log_dead_letters``."""
    import msgspec

    from heliport.logs.record import LogRecord
    from heliport.store.factory import open_logdb, open_queue

    logdb = open_logdb(settings)
    try:
        if args.dead_command == "list":
            letters = await logdb.list_dead_letters(org_id=args.org, limit=args.limit)
            print(f"{'id':>6}  {'failed at':25}  {'tries':>5}  {'organisation':36}  {'request':36}  error")
            for d in letters:
                failed, org, request = d.failed_at.isoformat(timespec="seconds"), d.org_id or "-", d.request_id or "-"
                print(f"{d.id:>6}  {failed:25}  {d.attempts:>5}  {org:36}  {request:36}  {d.error}")
            return 0
        if not args.all and not args.ids:
            print(f"heliport: give dead-letter ids, or --all, to {args.dead_command}", file=sys.stderr)
            return 2
        letters = await logdb.list_dead_letters(limit=1_000_000)
        chosen = letters if args.all else [d for d in letters if d.id in set(args.ids)]
        unknown = set() if args.all else set(args.ids) - {d.id for d in chosen}
        if unknown:
            print(f"heliport: no dead letters {sorted(unknown)}", file=sys.stderr)
            return 1
        if args.dead_command == "drop":
            dropped = await logdb.delete_dead_letters([d.id for d in chosen if d.id is not None])
            print(f"dropped {dropped} dead letters")
            return 0
        queue = open_queue(settings)
        sent: list[int] = []
        try:
            for d in chosen:
                try:
                    record = msgspec.json.decode(d.record, type=LogRecord)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    print(f"heliport: dead letter {d.id} is not a log record ({exc}); kept", file=sys.stderr)
                    continue
                await queue.send(record)  # queued (or spooled) before the letter goes: never lost
                if d.id is not None:
                    sent.append(d.id)
        finally:
            await queue.aclose()
        await logdb.delete_dead_letters(sent)
        print(f"sent {len(sent)} dead letters back to the log queue")
        return 0 if len(sent) == len(chosen) else 1
    finally:
        await logdb.aclose()


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
        return _serve(settings, args.pipeline)
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "logs":
        if args.logs_command == "dead-letters":
            return asyncio.run(_dead_letters(args, settings))
        return asyncio.run(_respool(settings))
    try:
        return asyncio.run(_orgs(args, settings) if args.command == "orgs" else _keys(args, settings))
    except _CommandError as refusal:
        print(f"heliport: {refusal}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
