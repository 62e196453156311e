"""RESP request encoding: the bytes a driver writes for a command or a batch of commands.

Byte-for-byte what redis-py's packer writes for our clients' settings (UTF-8 with
surrogateescape, numbers as their repr), at a third of its cost. Arguments of other types
return None, and the driver falls back to redis-py's packer (which rejects them). A command
name is one word: flows send ``("CLIENT", "ID")``, never redis-py's ``"CLIENT ID"`` form.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._effects import Arg

__all__ = ["pack", "pack_all"]


def pack(args: Sequence[Arg]) -> bytes | None:
    """One command as a RESP array of bulk strings, or None for an argument we do not encode."""
    parts = []
    for arg in args:
        # Exact types: a bool or an IntEnum is left to redis-py, as are bytearrays.
        if type(arg) is str:
            data = arg.encode("utf-8", "surrogateescape")
        elif type(arg) is bytes:
            data = arg
        elif type(arg) is int:
            data = b"%d" % arg
        elif type(arg) is float:
            data = repr(arg).encode()
        else:
            return None
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"*%d\r\n%s" % (len(parts), b"".join(parts))


def pack_all(commands: Iterable[Sequence[Arg]]) -> bytes | None:
    """Several commands back to back (a pipeline), or None as for ``pack``."""
    packed = []
    for args in commands:
        one = pack(args)
        if one is None:
            return None
        packed.append(one)
    return b"".join(packed)
