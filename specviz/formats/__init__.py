"""Files from elsewhere, read as hostile input: event logs (eventlog: CSV/JSONL of accept/reject
events), serving engines' run summaries (runsummary: vLLM, SGLang, TensorRT-LLM, llama.cpp) and the upload
opener that tells a trace, an event log and a run summary apart (opener). Pure Python: no torch.

Imports: the standard library and specviz.trace only.
"""
