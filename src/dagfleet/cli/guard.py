"""Every refusal as the CLI shows it: its message, each problem on a line, an exit code.

Exit codes (docs/cli.md): 0 ok; 1 the operation failed or was refused; 2 bad input
or the wrong fleet; 3 no running fleet when the command needs one. The service's
exceptions carry the HTTP status the API would answer, so the offline path and
the API map to the same code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from dagfleet.cli import output
from dagfleet.cli.client import ApiError, CliFailure, exit_code
from dagfleet.control import ControlError
from dagfleet.registry import RegistryError
from dagfleet.spec import SpecError

OK, FAILED, BAD_INPUT, NOT_RUNNING = 0, 1, 2, 3


@contextmanager
def handled() -> Iterator[None]:
    try:
        yield
    except SpecError as exc:
        for problem in exc.problems:
            output.error(str(problem))
        raise typer.Exit(BAD_INPUT) from None
    except ApiError as exc:
        for line in exc.problems:
            output.error(line)
        code = exit_code(exc.status_code)
        if not exc.problems or code != BAD_INPUT:
            output.error(str(exc))
        raise typer.Exit(code) from None
    except (RegistryError, ControlError) as exc:
        output.error(str(exc))
        raise typer.Exit(exit_code(getattr(exc, "status_code", 409))) from None
    except CliFailure as exc:
        for line in exc.problems:
            output.error(line)
        if not exc.problems or exc.code != BAD_INPUT:
            output.error(str(exc))
        raise typer.Exit(exc.code) from None
