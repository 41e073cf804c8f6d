"""Orchestration below the UI: recording a run into a trace (record), the live page's worker, model cache
and speed comparison (live), the browser folder's export started from the app (exportjob), sizing an auto
tree (treesize), the benchmark (bench) and the options the command line and the benchmark share (options).

Imports: specviz.core, specviz.models, specviz.drafters, specviz.formats, specviz.trace.
"""
