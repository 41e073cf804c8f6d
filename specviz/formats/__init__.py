"""Files from elsewhere, read as hostile input: event logs (CSV/JSONL of accept/reject events, and the
upload opener that tells a trace, an event log and an engine's run summary apart: eventlog) and serving
engines' run summaries (runsummary: vLLM, SGLang, TensorRT-LLM, llama.cpp). Pure Python: no torch.

Imports: the standard library and specviz.trace only.
"""
