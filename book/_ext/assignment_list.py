"""The ``{assignment-list}`` directive: the book's assignment page made from the registry.

``autograder.assignments.REGISTRY`` is the one list of the course's assignments. This directive
writes, for each entry in course order, a section with a label ``assignment-<name>``, the
assignment's summary (MyST), a link to the chapter it practises, the download link of its
archive (``_build/book-course/downloads/<name>.zip``, made by ``make book`` before the build)
and how to run its self-check (``check.py``, in the archive).
A new assignment therefore appears on the page without editing it.
"""

from __future__ import annotations

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from autograder.assignments import REGISTRY

DOWNLOADS = "../_build/book-course/downloads"


def assignment_markdown(registry) -> list[str]:
    """The MyST text of the assignment sections (one ``##`` section per assignment)."""
    lines: list[str] = []
    for a in registry:
        lines += [f"(assignment-{a.name})=", f"## `{a.name}`", "", a.summary.strip(), "",
                  f"Chapter: {{ref}}`{a.chapter}`. Graded parts: "
                  + "; ".join(f"{p.title} ({p.points:g} pt)" for p in a.parts)
                  + f". Points: {a.max_score:g}.", "",
                  f"Download: {{download}}`{a.name}.zip <{DOWNLOADS}/{a.name}.zip>`. Before "
                  f"you hand in `{a.name}.ipynb`, run its last cell or `python check.py "
                  f"{a.name}.ipynb` in the unpacked folder: the self-check.", ""]
    return lines


class AssignmentList(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        container = nodes.section()
        self.state.nested_parse(StringList(assignment_markdown(REGISTRY)), self.content_offset,
                                container, match_titles=True)
        return list(container.children)


def setup(app):
    app.add_directive("assignment-list", AssignmentList)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
