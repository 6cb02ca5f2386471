"""Everything the CLI prints: `-o table|wide|json|yaml`, the tables, errors and warnings.

Tables follow kubectl: plain columns, the default fits the terminal (80 columns
when stdout is not one) with long text cut with an ellipsis, never wrapped into
tall cells; `-o wide` adds columns and shows the full text. JSON and YAML print
the same documents the REST API returns. Errors go to stderr one per line,
never wrapped or cropped, so a path in a message stays whole in CI logs.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.text import Text

from dagfleet.status import LocationStatus

# soft_wrap: a line is never broken by Rich (a CI log keeps each problem on one line).
err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True, highlight=False)


class Format(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"


OutputOpt = Annotated[
    Format | None,
    typer.Option(
        "--output", "-o", help="Output format: table (fits the terminal), wide, json or yaml."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Same as -o json.")]


def resolve(output: Format | None, as_json: bool) -> Format:
    """`-o` wins; `--json` is kept as its alias."""
    if output is not None:
        return output
    return Format.json if as_json else Format.table


def width() -> int:
    """Columns for tables: the terminal's, else $COLUMNS, else 80."""
    return shutil.get_terminal_size((80, 24)).columns


def document(data: Any, fmt: Format) -> None:
    """Print JSON-able data as JSON or YAML on stdout."""
    if fmt is Format.yaml:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def emit(data: Any, fmt: Format, table: Callable[[bool], None]) -> None:
    """JSON/YAML documents as they are; table and wide through `table(wide)`."""
    if fmt in (Format.json, Format.yaml):
        document(data, fmt)
    else:
        table(fmt is Format.wide)


def fit(natural: list[int], flex: list[bool], limit: int, gap: int = 2) -> list[int]:
    """Column widths within `limit`: only flexible columns give way, widest first."""
    widths = list(natural)
    excess = sum(widths) + gap * (len(widths) - 1) - limit
    while excess > 0:
        shrinkable = [i for i, f in enumerate(widths) if flex[i] and f > 8]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[: max(0, size - 1)] + "…"


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], wide: bool, flex: Sequence[str] = ()
) -> None:
    """Plain columns (kubectl's style). Columns named in `flex` are cut with an ellipsis so
    a row fits the width; wide shows every cell whole. A cell is never wrapped."""
    cells = [
        [(c.splitlines() or [""])[0] if not wide else " ".join(c.split("\n")) for c in r]
        for r in rows
    ]
    natural = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    widths = natural if wide else fit(natural, [h in flex for h in headers], width())
    for row in [list(headers), *cells]:
        padded = [cut(c, w).ljust(w) for c, w in zip(row, widths, strict=True)]
        sys.stdout.write("  ".join(padded).rstrip() + "\n")
    sys.stdout.flush()


def line(text: str, wide: bool = False) -> None:
    """One line of output, cut to the terminal width with an ellipsis unless wide."""
    limit = width()
    if not wide and len(text) > limit:
        text = text[: limit - 1] + "…"
    out.print(Text(text))


def short(commit: str | None, wide: bool = False) -> str:
    return (commit or "-") if wide else (commit or "-")[:12]


# ---- location status rows: the one place they are built ------------------------------

STATUS_HEADERS = ["LOCATION", "ENV", "COMMIT", "READY", "REASON", "MESSAGE"]
# Wide adds what kubectl's -o wide adds: where it runs, and the full history fields.
STATUS_WIDE = ["LOCATION", "ENV", "COMMIT", "LAST GOOD", "READY", "REASON", "SERVER", "MESSAGE"]


def readiness(s: LocationStatus) -> tuple[str, str, str]:
    """(ready, reason, message): Ready's, unless a failed sync is why a Ready location is stale."""
    ready = s.condition("Ready")
    synced = s.condition("Synced")
    status = ready.status if ready else "Unknown"
    reason = ready.reason if ready else ""
    message = ready.message if ready else ""
    if synced is not None and synced.status == "False" and ready and ready.status == "True":
        reason, message = synced.reason, synced.message
    return status, reason, message


def server(s: LocationStatus) -> str:
    """Where the location is served: its socket, plus the debugpy port when debuggable."""
    where = Path(s.address).name if s.address else "-"
    return f"{where} debug:{s.debug_port}" if s.debug_port else where


def _commit(s: LocationStatus, wide: bool) -> str:
    """The commit served, and the one being loaded (`abc → def`) during a publish."""
    served = short(s.commit, wide)
    if s.progressing_commit and s.progressing_commit != s.commit:
        return f"{served} → {short(s.progressing_commit, wide)}"
    return served


def status_row(s: LocationStatus, wide: bool) -> list[str]:
    ready, reason, message = readiness(s)
    if not wide:
        first = message.splitlines()[0] if message else ""
        return [s.location, s.env, _commit(s, False), ready, reason or "-", first]
    return [
        s.location,
        s.env,
        _commit(s, True),
        short(s.last_good_commit, True),
        ready,
        reason or "-",
        server(s),
        message,
    ]


def not_synced_row(location: str, wide: bool) -> list[str]:
    env = location.rsplit("-", 1)[-1]
    if not wide:
        return [location, env, "-", "not synced", "-", ""]
    return [location, env, "-", "-", "not synced", "-", "-", ""]


def status_table(
    statuses: Sequence[LocationStatus], wide: bool, missing: Sequence[str] = ()
) -> None:
    rows = [status_row(s, wide) for s in statuses] + [not_synced_row(n, wide) for n in missing]
    print_table(STATUS_WIDE if wide else STATUS_HEADERS, rows, wide, flex=["MESSAGE"])


def ready_word(s: LocationStatus | None) -> str:
    """A location in one word or two, for summaries: 'True (CodeServerRunning)'."""
    if s is None:
        return "not synced"
    ready, reason, _ = readiness(s)
    return f"{ready} ({reason})" if reason else ready


# ---- errors, warnings, notes -----------------------------------------------------------


def error(message: str) -> None:
    err.print(Text.assemble(("error", "red"), " ", message))


def warning(message: str) -> None:
    err.print(Text.assemble(("warning", "yellow"), " ", message))


def note(message: str) -> None:
    err.print(Text(message))


# ---- sync outcomes ---------------------------------------------------------------------


def outcome_line(o: Any, wide: bool) -> str:
    """One location's sync: what changed, or why it failed (a control.SyncOutcome)."""
    if o.error:
        message = o.error if wide else o.error.splitlines()[0]
        return f"{o.location}: {o.reason or 'failed'} {message}"
    if o.changed:
        return f"{o.location}: {short(o.previous, wide) if o.previous else 'none'} -> " + short(
            o.commit, wide
        )
    return f"{o.location}: unchanged at {short(o.commit, wide)}"


def sync_results(results: Sequence[Any], fmt: Format, single: bool) -> None:
    """SyncResults: one document per repo (just the one for `repo sync NAME`)."""
    docs = [r.model_dump(mode="json") for r in results]

    def lines(wide: bool) -> None:
        for result in results:
            for o in result.outcomes:
                line(outcome_line(o, wide), wide)

    emit(docs[0] if single and docs else docs, fmt, lines)
