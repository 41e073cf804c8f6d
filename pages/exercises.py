"""Exercises: the course's questions about real trace steps; ?trace=NAME&seed=N gives a class one set."""

from specviz import learn_ui, ui


def exercises_page() -> None:
    ui.page_start("Exercises")
    learn_ui.exercises_view()


exercises_page()
