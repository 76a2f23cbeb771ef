"""Re-record the dialog histories replayed by tests/unit/test_replay.py.

    python -m tests.replay_record            # every script, written where it differs
    python -m tests.replay_record NAME ...   # only these
    python -m tests.replay_record --check    # say what would change, write nothing

Re-recording is a deliberate act: it rewrites what the replay suite holds the machine to, so
run it only when a change of behaviour is intended, and say why in the commit. The frozen
histories of earlier versions (tests/fixtures/histories/v0/) are never written here.
"""

from __future__ import annotations

import argparse
import sys

from tests.histories import HISTORIES, dump
from tests.replay_dialogs import SCRIPTS, record


def main(argv: list[str] | None = None) -> int:
    """Record the named scripts (all by default); 1 with --check when any would change."""
    parser = argparse.ArgumentParser(prog="python -m tests.replay_record", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *sorted(SCRIPTS)], metavar="NAME")
    parser.add_argument("--check", action="store_true", help="write nothing, report changes")
    args = parser.parse_args(argv)
    HISTORIES.mkdir(parents=True, exist_ok=True)
    changed = []
    for name in args.names or sorted(SCRIPTS):
        path = HISTORIES / f"{name}.json"
        text = dump(record(name))
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        changed.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "would change" if args.check else "written"
    print(f"{verb}: {', '.join(changed) or 'none'}")
    orphans = sorted({p.stem for p in HISTORIES.glob("*.json")} - set(SCRIPTS))
    if orphans:
        print(f"no script records: {', '.join(orphans)}", file=sys.stderr)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
