"""Run the Python example of a docs/campaigns.md section and compare with the output the section shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "campaigns.md"
_EXAMPLE = re.compile(r"```python\n(.*?)```\n\nprints\n\n```\n(.*?)```", re.S)


def example_output(section: str) -> tuple[str, str]:
    """(what the section's example prints when run, what the section says it prints)."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    match = _EXAMPLE.search(text[start:end if end > 0 else len(text)])
    assert match is not None, f"no example with its output in section {section!r}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(match.group(1), f"{DOC}:{section}", "exec"), {})
    return out.getvalue(), match.group(2)
