"""Writing results into nbgrader's gradebook."""

import logging

from autograder.grading.jobs import Job, Result
from autograder.results.gradebook import GradebookSync


def test_a_failing_gradebook_write_costs_a_note_not_the_run():
    """Should storing one result fail (here the gradebook raises), the result gets a reason
    and is marked to be graded again; nothing is raised."""
    class Sync(GradebookSync):
        def __init__(self):
            self.log = logging.getLogger("test")
            self.gb = None

        def write(self, result, job):
            raise OSError(36, "File name too long")

    result = Result("alice", "toy", "k", None, 1.0, 1.0, "")
    Sync().store(result, Job("alice", "toy"))
    assert result.retry and "could not be stored" in result.reason
