"""BENCHMARKS.md, written section by section: each benchmark script replaces its own section."""

import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def replace_section(marker, section):
    """Puts `section` (starting with the heading `marker`) in place of the section with that heading,
    up to the next `## ` heading, or at the end when there is none."""
    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read() if os.path.exists(path) else ""
    if marker in text:
        before, after = text[:text.index(marker)], text[text.index(marker):]
        rest = after.find("\n## ", 1)
        text = before + section + (after[rest + 1:] if rest >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)
    print("wrote the table into BENCHMARKS.md")
