"""What the course makes concrete: the exercises and their scenarios (exercises, scenarios), the browser
player's data (player) and lesson files (lesson). No Streamlit: specviz.ui shows them.

Imports: specviz.core (theory), specviz.figures, specviz.formats, specviz.trace.
"""
