"""Instructor tooling: assemble, release and grade the course's assignments on nbgrader."""
