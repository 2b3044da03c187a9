"""Progress reporting shared by the stages and the trainer callbacks."""

from __future__ import annotations


class ProgressBar:
    """A rich progress bar on a terminal; a log line every 10% elsewhere (pods, CI logs)."""

    def __init__(self, console, label: str, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console, self.label, self.total, self.logged = console, label, total, 0
        self.progress = None
        if console.is_terminal:
            self.progress = Progress(
                TextColumn(label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=console,
            )
            self.task = self.progress.add_task(label, total=total, info="")
            self.progress.start()

    def update(self, completed: int, info: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=completed, info=info)
        elif completed * 10 // self.total > self.logged or completed == self.total:
            self.logged = completed * 10 // self.total
            self.console.print(f"{self.label}: {completed}/{self.total} {info}")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def progress_bar(console, label: str, total: int) -> ProgressBar | None:
    return ProgressBar(console, label, total) if console is not None else None
