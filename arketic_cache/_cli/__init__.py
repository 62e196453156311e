"""``arketic-cache`` (and ``python -m arketic_cache``): the operator's command line.

argparse, so the command line adds no dependency (click or typer would add one, and 30 to
60 ms to every start); progress is a counter on stderr when it is a terminal.

Exit codes: 0 done (``health``: ok), 1 a warning or a refused operation (bad input, a corrupt
file, differences found by ``verify``), 2 Redis failed (unreachable, wrong password; ``health``:
critical), 3 a usage error or anything unforeseen (``health``: unknown). Errors are one line
on stderr; the password never appears.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .._exceptions import ArketicCacheError, BackendError
from ._flush import flush
from ._inspect import analyze, health, info, keys
from ._server import Server
from ._transfer import export, restore, verify

__all__ = ["main"]

PROG = "arketic-cache"
Command = Callable[[Server, argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """Usage errors exit 3 (``health``'s "unknown"; 2 would read as critical)."""
        self.print_usage(sys.stderr)
        self.exit(3, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="Redis URL (default: REDIS_URL, then the settings)")
    reading = argparse.ArgumentParser(add_help=False)
    reading.add_argument("--json", action="store_true", help="one JSON document on stdout")
    schemas = argparse.ArgumentParser(add_help=False)
    schemas.add_argument("--schema", help="a key schema's name (the catalogue's or --schemas')")
    schemas.add_argument("--schemas", metavar="MODULE", help="a module of your key schemas")

    parser = _Parser(
        prog=PROG,
        description="The operator's command line of arketic_cache.",
        epilog="exit codes: 0 done (health: ok), 1 warning or refused input, 2 Redis failed "
        "(health: critical), 3 usage error (health: unknown)",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        inherited: list[argparse.ArgumentParser] = [common, *parents]
        return commands.add_parser(name, help=help, parents=inherited)  # type: ignore[arg-type]

    command("health", "health report; exit 0 ok, 1 warning, 2 critical, 3 unknown", reading)
    command("info", "server and client statistics, persistence, eviction policy", reading)
    listing = command(
        "keys", "keys matching PATTERN or --schema: type, TTL, memory", reading, schemas
    )
    listing.add_argument("pattern", nargs="?", help="a SCAN MATCH glob")
    listing.add_argument("--limit", type=_positive, default=100, help="list at most N (100)")
    study = command("analyze", "keys grouped by schema or prefix: count, memory, TTLs", reading)
    study.add_argument("pattern", nargs="?", default="*", help="a SCAN MATCH glob (*)")
    study.add_argument("--by", choices=("schema", "prefix"), default="schema")
    study.add_argument("--budget", type=_positive, default=100_000, help="scan at most N keys")
    study.add_argument("--top", type=_positive, default=10, help="the N biggest keys (10)")
    study.add_argument("--schemas", metavar="MODULE", help="a module of your key schemas")
    removing = command("flush", "delete keys matching PATTERN (counts first)", reading, schemas)
    removing.add_argument("pattern", nargs="?", help="a SCAN MATCH glob")
    removing.add_argument("--dry-run", action="store_true", help="count only")
    removing.add_argument("--yes", action="store_true", help="delete without asking")
    removing.add_argument("--all", action="store_true", help="allow a pattern matching every key")
    out = command(
        "export", "keys matching PATTERN or --schema to a JSON-lines file", reading, schemas
    )
    out.add_argument("pattern", nargs="?", help="a SCAN MATCH glob")
    out.add_argument("-o", "--output", required=True, type=Path, help="the file to write")
    out.add_argument("--dump", action="store_true", help="DUMP payloads (same Redis version only)")
    back = command("restore", "write an export file's keys (validated first)", reading)
    back.add_argument("file", type=Path)
    back.add_argument("--replace", action="store_true", help="overwrite keys that exist")
    back.add_argument("--partial", action="store_true", help="skip invalid records, write the rest")
    back.add_argument("--dry-run", action="store_true", help="validate and count only")
    check = command("verify", "compare an export file with the server", reading)
    check.add_argument("file", type=Path)
    bench = commands.add_parser(
        "bench", help="the benchmarks (in a source checkout; --help for theirs)", add_help=False
    )
    bench.add_argument("options", nargs=argparse.REMAINDER)
    commands.add_parser("demo", help="the library at work (REDIS_URL or the embedded backend)")
    return parser


COMMANDS: dict[str, Command] = {
    "health": health,
    "info": info,
    "keys": keys,
    "analyze": analyze,
    "flush": flush,
    "export": export,
    "restore": restore,
    "verify": verify,
}


def _bench(options: Sequence[str]) -> int:
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "__main__.py").is_file():
        print(f"{PROG}: error: the benchmarks live in the source repository", file=sys.stderr)
        return 3
    return subprocess.call([sys.executable, "-m", "benchmarks", *options], cwd=root)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # everything after it is the harness' own (its --help too)
        return _bench(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from .._demo import main as demo

        return demo()
    server = None
    try:
        server = Server.open(args.url)
        return COMMANDS[args.command](server, args)
    except BackendError as exc:
        print(f"{PROG}: Redis failed: {exc}", file=sys.stderr)
        return 2
    except ArketicCacheError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the file of export, restore or verify
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 3
    finally:
        if server is not None:
            server.close()
