"""`python -m agentqueue.records upgrade|check|current|revision --url URL [--schema S] [-m MSG]`"""

from __future__ import annotations

import argparse
import asyncio

from agentqueue.records import migrations


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m agentqueue.records")
    parser.add_argument("action", choices=["upgrade", "check", "current", "revision"])
    parser.add_argument("--url", required=True, help="database URL")
    parser.add_argument("--schema", default=None, help="PostgreSQL schema (search_path)")
    parser.add_argument("-m", "--message", default="", help="message of a new revision")
    args = parser.parse_args(argv)
    if args.action == "upgrade":
        asyncio.run(migrations.upgrade(args.url, schema=args.schema))
    elif args.action == "check":
        asyncio.run(migrations.check(args.url, schema=args.schema))
    elif args.action == "current":
        print(asyncio.run(migrations.current(args.url, schema=args.schema)))
    else:
        asyncio.run(migrations.revision(args.url, args.message, schema=args.schema))


if __name__ == "__main__":
    main()
