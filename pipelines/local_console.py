"""What ``modomodo run`` shows while kfp's local runner works: one line per pipeline task on the
console (name, status, duration, the task's key figure), and the runner's own output in a log file.

kfp 2.17's ``SubprocessRunner`` is loud by design: every task logs (through the ``logging`` root
logger, to a ``StreamHandler(sys.stdout)`` it installs per task) its start, its outputs and a
separator line, and it pipes each step's stdout and stderr (where kfp's executor prints its whole
input JSON) and re-prints every line with ``print`` in this process. The steps never write to this process's file descriptors, so the level
to redirect at is this process's ``sys.stdout`` (kfp's ``print`` and per-task log handler), the root
logger (kfp's messages between tasks, other libraries' warnings) and ``warnings`` (kfp warns at
each task that its image is not a Python image); the console the lines go to writes to stderr and stays.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from modomodo.metrics import mixture_label

RUN_LOG = "run.log"
"""The runner's full log, in the run's output folder."""

LOG_TAIL_LINES = 40
"""Lines of the log shown when the pipeline fails."""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
"""kfp colours task names and statuses whether or not it writes to a terminal."""


_task = threading.local()
"""The task this thread runs: kfp runs each task (its log lines, its step's output) in one thread,
from start to end; tasks that run at once have threads of their own."""


class LogStream(io.TextIOBase):
    """A text stream into the run log, colours removed; with ``echo`` also to that stream
    (``--verbose``). The last lines each running task wrote are kept (its tail, shown if it fails)."""

    def __init__(self, file: TextIO, echo: TextIO | None = None):
        self.file, self.echo, self.lock = file, echo, threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = plain(text)
        with self.lock:
            self.file.write(text)
            if self.echo is not None:
                self.echo.write(text)
        tail: TaskTail | None = getattr(_task, "tail", None)
        if tail is not None:
            tail.write(text)
        return len(text)

    def flush(self) -> None:
        with self.lock:
            self.file.flush()
            if self.echo is not None:
                self.echo.flush()


class TaskTail:
    """The last ``size`` lines a task wrote to the log."""

    def __init__(self, size: int = LOG_TAIL_LINES):
        self.lines: deque[str] = deque(maxlen=size)
        self.partial = ""

    def write(self, text: str) -> None:
        *complete, self.partial = (self.partial + text).split("\n")
        self.lines.extend(complete)

    def text(self) -> str:
        return "\n".join([*self.lines, self.partial]).strip("\n")


@contextmanager
def runner_output_to(log: Path, echo: TextIO | None = None) -> Iterator[None]:
    """While inside: ``sys.stdout``, the root logger (at INFO, so kfp's retry and cache messages
    are kept) and warnings go to ``log`` (replaced: the log of the latest run), and to ``echo`` too
    when given. ``sys.stderr`` is left alone, so the console keeps writing to the terminal."""
    log.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    with open(log, "w", encoding="utf-8") as file:
        stream = LogStream(file, echo)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        saved = sys.stdout, warnings.showwarning, root.level

        def show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
            stream.write(warnings.formatwarning(message, category, filename, lineno, line))

        # The root logger's other handlers go quiet too: one left by an earlier run in the same
        # process (kfp adds its own) would print kfp's coloured messages on the terminal.
        others = list(root.handlers)
        sys.stdout, warnings.showwarning = stream, show_warning
        for other in others:
            root.removeHandler(other)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield
        finally:
            stream.flush()
            root.removeHandler(handler)
            for other in others:
                root.addHandler(other)
            sys.stdout, warnings.showwarning, level = saved
            root.setLevel(level)


def plain(text: str) -> str:
    """``text`` without kfp's colour codes."""
    return _ANSI.sub("", text)


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the log (empty when there is none)."""
    if not log.is_file():
        return ""
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def key_figure(outputs: Mapping[str, Any]) -> tuple[str, str]:
    """``(run, figure)`` of a task from its outputs: which run it served and the number to read.

    Read from the outputs kfp hands back (parameters, and artifacts with their metadata), not from
    marker lines the components would print: the outputs are the components' typed interface, the
    same on a cluster, and parsing them needs no change to a component and no format of a log line
    to keep stable. Keys are output names, so a task renamed in a pipeline keeps its figure."""
    run = outputs.get("run") if isinstance(outputs.get("run"), Mapping) else {}
    record = outputs.get("record") if isinstance(outputs.get("record"), Mapping) else {}
    who = run.get("run_id") or record.get("run_id") or ""
    if run.get("failed"):  # the RL update's; its run record repeats it
        return who, f"pilot failed, left out: {_first_line(run['failed'])}"
    if isinstance(outputs.get("scores"), Mapping):  # evaluate
        scores = outputs["scores"]
        samples = outputs.get("samples")
        who = _metadata(samples).get("run_id", who)
        figure = "  ".join(
            f"{name} {scores[key]:.3f}"
            for key, name in (("out_score", "Out-Score"), ("in_score", "In-Score"))
            if scores.get(key) is not None
        )
        return who, figure
    if "quality" in outputs:  # fit-surrogate: the model it chose, cross-validated
        surrogate, quality = _metadata(outputs.get("surrogate")), _metadata(outputs["quality"])
        model = surrogate.get("model", "")
        runs = int(_metadata(outputs.get("records")).get("runs", 0))  # metadata numbers come back as floats
        r2 = quality.get(f"{model}_r2")  # left out when NaN: every held-out score was the same
        return "", f"CV R² {'undefined' if r2 is None else f'{r2:.3f}'} ({model}, {runs} runs)"
    if isinstance(outputs.get("best"), Mapping):  # search-mixture
        if _metadata(outputs.get("proposals")).get("mode") == "best":
            return "", f"chosen mixture {mixture_label(outputs['best'])}"
        return "", f"{len(outputs.get('Output') or [])} pilots proposed"
    if isinstance(outputs.get("headline"), Mapping):  # report
        chosen = outputs["headline"].get("chosen", {})
        return "", f"{chosen.get('label', 'final')} mixture {mixture_label(chosen.get('mixture') or {})}"
    if isinstance(outputs.get("Output"), list):  # the pilot planners
        return "", f"{len(outputs['Output'])} pilots"
    if run.get("mixture"):  # rl-update
        return who, f"mixture {mixture_label(run['mixture'])}"
    return who, ""


def _metadata(artifact: Any) -> Mapping[str, Any]:
    return getattr(artifact, "metadata", None) or {}


def _first_line(text: str, width: int = 80) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


class TaskLines:
    """One console line per task when it ends; with ``live`` on a terminal, the running tasks show
    below those lines with their time so far, and go as their lines are printed."""

    def __init__(self, console, live: bool = True):
        self.console, self.lock = console, threading.Lock()
        self.running: dict[int, tuple[str, float]] = {}
        self.tokens = itertools.count()
        self.failures: list[tuple[str, str]] = []
        """``(task, its last lines)`` of each task that failed."""
        self.live = None
        if live and console.is_terminal:
            from rich.live import Live

            # sys.stdout is the run log's while a run goes: Live must not redirect it
            self.live = Live(
                console=self.console,
                transient=True,
                get_renderable=self._running,
                redirect_stdout=False,
                redirect_stderr=False,
            )

    def __enter__(self) -> TaskLines:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.stop()

    def started(self, task: str) -> int:
        """Note that ``task`` started; returns the token that :meth:`ended` takes."""
        with self.lock:
            token = next(self.tokens)
            self.running[token] = (task, time.monotonic())
        return token

    def ended(self, token: int, failed: bool, outputs: Mapping[str, Any], tail: str = "") -> None:
        """Print the line of the task of ``token``; ``tail``: the last lines it wrote."""
        with self.lock:
            task, start = self.running.pop(token)
            if failed:
                self.failures.append((task, tail))
        who, figure = key_figure(outputs)
        status = "FAILED" if failed else "done"
        line = f"{status:<6} {task:<18} {time.monotonic() - start:7.1f} s  {who}".rstrip()
        style = "red" if failed else None
        # soft_wrap: one line a task, whatever the width (a terminal wraps it, a log keeps it whole)
        self.console.print(
            f"{line}  {figure}".rstrip(), markup=False, highlight=False, style=style, soft_wrap=True
        )

    def show_failure(self, error: BaseException, log: Path, verbose: bool) -> None:
        """The pipeline failed: say so, show the last lines of each failed task (of the log when
        none is known), unless ``verbose`` just scrolled them by, and where the full log is."""
        self.console.print(f"pipeline failed: {plain(str(error))}", style="red", markup=False, soft_wrap=True)
        if not verbose:
            for task, tail in self.failures or [("the run", log_tail(log))]:
                self.console.print(f"last lines of {task}:", style="red", markup=False)
                self.console.print(plain(tail), markup=False, highlight=False, soft_wrap=True)
        self.console.print(f"the runner's full log: {log}", markup=False, highlight=False, soft_wrap=True)

    def _running(self):
        from rich.text import Text

        now = time.monotonic()
        with self.lock:
            tasks = list(self.running.values())
        return Text(
            "\n".join(f"run    {task:<18} {now - start:7.0f} s" for task, start in tasks), style="dim"
        )


@contextmanager
def watch_tasks(lines: TaskLines) -> Iterator[None]:
    """Tell ``lines`` when each task of kfp's local runner starts and ends.

    kfp's local runner has no hook for this; both of its orchestrators (the plain DAG one and the
    one for ``ParallelFor`` and conditions) run every task through
    ``kfp.local.orchestrator.task_executor.execute_single_task``, which returns the task's outputs
    and status (cache hits and retries included), so that one call is wrapped while inside.
    tests/test_run_console.py (fast) and tests/test_pilot_failures.py fail if a kfp release changes it."""
    from kfp.local import status
    from kfp.local.orchestrator import task_executor

    original: Callable = task_executor.execute_single_task

    def watched(**kwargs):
        token = lines.started(kwargs["task_name"])
        _task.tail = tail = TaskTail()
        try:
            outputs, task_status = original(**kwargs)
        except BaseException:
            lines.ended(token, True, {}, tail.text())
            raise
        finally:
            _task.tail = None
        lines.ended(token, task_status != status.Status.SUCCESS, outputs or {}, tail.text())
        return outputs, task_status

    task_executor.execute_single_task = watched
    try:
        yield
    finally:
        task_executor.execute_single_task = original


@contextmanager
def quiet_runner(console, log: Path, verbose: bool = False) -> Iterator[TaskLines]:
    """A local run as ``modomodo run`` shows it: a line per task on ``console``, the runner's
    output in ``log`` (also on the terminal's stdout when ``verbose``); when kfp's local runner
    raises its ``RuntimeError`` (a task failed), what failed and where to read more, then the
    error goes on."""
    echo = sys.stdout if verbose else None
    # the full log on the terminal would scroll through the running tasks' live lines
    lines = TaskLines(console, live=not verbose)
    try:
        with lines, runner_output_to(log, echo), watch_tasks(lines):
            yield lines
    except RuntimeError as error:
        lines.show_failure(error, log, verbose)
        raise
