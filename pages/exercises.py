"""Exercises: the course's questions about real trace steps; ?trace=NAME&seed=N gives a class one set."""

from specviz.ui import common, exercises


def exercises_page() -> None:
    common.page_start("Exercises")
    exercises.exercises_view()


exercises_page()
