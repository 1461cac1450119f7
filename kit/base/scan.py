"""Linear-time questions about untrusted lines, where one regular expression would be quadratic.

A pattern such as `apt\\b.*\\bbash` searched in a line tries every start where `apt` matches and
runs `.*` to the line's end from each: a 100,000-character line of `apt apt apt ...` (a job file
or a recipe from a cloned repository) takes minutes. Asking the two halves one after the other
reads the line once: the first match of the first half, then the second half anywhere after it.
That is the same question (`.*` may be empty or span anything), in time linear in the line.
"""

from __future__ import annotations

import re


def followed_by(first: re.Pattern[str], then: re.Pattern[str], text: str) -> bool:
    """Whether `first` matches in `text` and `then` matches somewhere after (or right at) its end:
    `first.*then` without a newline in between, in linear time."""
    for line in text.splitlines() or [""]:
        head = first.search(line)
        if head is not None and then.search(line, head.end()) is not None:
            return True
    return False
