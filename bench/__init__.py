"""Benchmarks: ``python -m bench.<name>``. Each prints a table and writes ``bench/results/<name>.json``."""
