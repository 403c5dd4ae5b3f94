"""The benchmark of `extract` against a bare aiohttp loop, instructor and the openai SDK.

Run it with `.venv/bin/python bench/run.py --help`; see bench/README.md.
"""
