"""Every relative link in the project's Markdown resolves.

The documentation is cut by reader (README.md, CONTRIBUTING.md, docs/, lambda/README.md, the
local AWS's README) and its pages link one another; a page moved or a heading renamed must not
leave a reader at a dead end. For every Markdown file git knows (tracked or new, not ignored),
outside code blocks and code spans:

    files     every relative link or image names a file or folder inside the repository
    anchors   every #fragment pointing into a Markdown file names one of its headings
              (GitHub's anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 …
              for repeats) or an explicit <a id=…>/<a name=…>

Links with a scheme (https:, mailto:) are not followed: nothing here reaches the internet.

    python -m tests.docs.check_links check       # the repository as it is
    python -m tests.docs.check_links self-test   # plants a broken link per check, expects it caught
"""

import argparse
import posixpath
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

from tests.template import planted_faults

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target "title") and ![alt](target); the text may wrap across lines.
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# [label]: target
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def markdown_files(root=ROOT):
    """Repository-relative paths of the Markdown files git tracks or would track."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.md"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sorted({path for path in listed.split("\0") if path and (root / path).is_file()})


def load_docs(root=ROOT):
    return {path: (root / path).read_text(encoding="utf-8") for path in markdown_files(root)}


def without_fences(text):
    """The text with fenced code blocks blanked, line numbers kept."""
    lines, in_fence = [], None
    for line in text.split("\n"):
        fence = FENCE.match(line)
        if in_fence:
            if fence and fence.group(1) == in_fence:
                in_fence = None
            lines.append("")
        elif fence:
            in_fence = fence.group(1)
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)


def prose(text):
    """The text with fenced code blocks and code spans blanked, line numbers kept."""
    return CODE_SPAN.sub(lambda span: re.sub(r"[^\n]", " ", span.group(0)), without_fences(text))


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text):
    """Every anchor a Markdown page offers."""
    found, seen = set(), {}
    for line in without_fences(text).split("\n"):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    found.update(HTML_ANCHOR.findall(text))
    return found


def links(text):
    """(line, target) of every relative link on a page."""
    body = prose(text)
    for match in [*INLINE_LINK.finditer(body), *REFERENCE_LINK.finditer(body)]:
        target = match.group(1)
        if not SCHEME.match(target):
            yield body.count("\n", 0, match.start(1)) + 1, target


def resolve(page, target):
    """The repository-relative path a link names ('' for the page itself), None outside."""
    path = unquote(target.split("#", 1)[0])
    if not path:
        return page
    joined = path.lstrip("/") if path.startswith("/") else posixpath.join(posixpath.dirname(page), path)
    normal = posixpath.normpath(joined)
    return None if normal == ".." or normal.startswith("../") else normal


def check_files(docs, root=ROOT):
    errors = []
    for page, text in docs.items():
        for line, target in links(text):
            path = resolve(page, target)
            if path is None:
                errors.append(f"{page}:{line}: {target}: points outside the repository")
            elif path not in docs and not (root / path).exists():
                errors.append(f"{page}:{line}: {target}: no such file or folder")
    return errors


def check_anchors(docs, root=ROOT):
    errors, cache = [], {}
    for page, text in docs.items():
        for line, target in links(text):
            if "#" not in target:
                continue
            path, fragment = resolve(page, target), unquote(target.split("#", 1)[1])
            if path is None or not path.endswith(".md"):
                continue
            if path not in cache:
                source = docs.get(path)
                if source is None and (root / path).is_file():
                    source = (root / path).read_text(encoding="utf-8")
                cache[path] = anchors(source) if source is not None else None
            if cache[path] is not None and fragment not in cache[path]:
                errors.append(f"{page}:{line}: {target}: no heading #{fragment} in {path}")
    return errors


CHECKS = {"files": check_files, "anchors": check_anchors}


def append(page, text):
    def mutate(docs):
        docs[page] = docs[page] + "\n" + text + "\n"

    return mutate


FAULTS = [
    ("files", "a link to a page that is not there", append("README.md", "[gone](docs/gone.md)"), "docs/gone.md"),
    ("files", "a link whose text wraps", append("docs/deploy.md", "[two\nlines](missing-folder/)"), "missing-folder/"),
    ("files", "an image that is not there", append("docs/performance.md", "![plot](../bench/none.svg)"), "none.svg"),
    ("files", "a link out of the repository", append("lambda/README.md", "[up](../../x)"), "outside the repository"),
    ("anchors", "a heading another page lacks", append("README.md", "[x](docs/deploy.md#nowhere)"), "#nowhere"),
    ("anchors", "a heading the page itself lacks", append("docs/operate.md", "[x](#not-here)"), "#not-here"),
]


def plant(mutate, check):
    docs = load_docs()
    mutate(docs)
    return check(docs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["check", "self-test"])
    args = parser.parse_args()
    if args.mode == "check":
        docs = load_docs()
        ok = planted_faults.run_checks(CHECKS, lambda check: check(docs), label=f"links in {len(docs)} pages")
    else:
        ok = planted_faults.self_test(CHECKS, FAULTS, plant, label="links self-test")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
