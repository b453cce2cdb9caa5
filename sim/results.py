"""A bench's result line: printed, and appended to a results file when one is named."""

__all__ = ["report"]


def report(line: str, out: str | None, *more: str) -> None:
    """Print ``line``; with ``out``, append it and the ``more`` lines after it (a JSON form,
    say) to that file, so that runs accumulate."""
    print(line)
    if out:
        with open(out, "a") as f:
            for text in (line, *more):
                f.write(text + "\n")
