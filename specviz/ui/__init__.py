"""The Streamlit layer: the only package that imports streamlit. One module per page of the app.

Each page script under pages/ stays thin: common.page_start, then its page's module here.

| page (URL path)         | pages/       | specviz/ui/                | tests/ui/            |
| ----------------------- | ------------ | -------------------------- | -------------------- |
| Home (/)                | home.py      | home.py                    | test_home.py      |
| Live decoding (/live)   | live.py      | live.py                    | test_live.py      |
| Live in your browser (/browser) | browser.py | browser.py (the page itself: specviz/assets/live/) | test_browser_page.py, test_browser_live.py (Chromium) |
| Step through (/replay)  | replay.py    | replay.py                  | test_replay.py    |
| Statistics (/stats)     | stats.py     | stats.py, engine.py        | test_stats.py     |
| Exercises (/exercises)  | exercises.py | exercises.py, glossary.py  | test_exercises.py (questions: specviz/teach/exercises.py, specviz/teach/scenarios.py) |
| Speedup lab (/speedup)  | speedup.py   | speedup.py, glossary.py    | test_speedup.py   |
| Compare (/compare)      | compare.py   | compare.py, engine.py      | test_compare.py   |

Shared by several pages (they never import a page module; tests/ui/test_common.py checks):

| module      | what                                                                             | tests/ui/          |
| ----------- | -------------------------------------------------------------------------------- | ------------------ |
| common.py   | page_start and presentation mode, the sidebar's legend, md_escape, tokens_md, plot | test_common.py  |
| traces.py   | samples, this session's runs and uploads, the trace picker, show_gaps, caches    | test_traces.py  |
| runs.py     | running models from a page: the generation slot, run_control, reference outputs | test_faults.py  |
| engine.py   | a serving engine's statistics (Statistics and Compare)                           | test_engine.py  |
| glossary.py | the glossary and the maths (the Speedup lab, the exercises' popovers)            | test_speedup.py |
| player.py   | the trace player: a component that steps through a trace in the browser          | tests/teach/test_player.py |

tests/ui/test_faults.py drives the pages with hostile files and failing models; tests/ui/test_browser*.py
drive them in Chromium. Token text from a trace is shown through md_escape or st.text, never as HTML.
Session state holds only JSON-able data (traces, settings); models live in specviz.run.live's cache.

Imports: streamlit and every layer but the command line and training.
"""
