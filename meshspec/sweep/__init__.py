"""``meshspec sweep``: run a scenario against a grid (or an Optuna search) of spec settings
times seeds, on local processes or a Dask cluster. docs/sweep.md describes it.

Modules: ``space`` (``--vary`` axes, combinations), ``plan`` (every check before a run),
``work`` (one run, shipped as data), ``engine`` / ``engine_dask`` (where runs execute),
``store`` (results as they arrive, resume), ``run`` and ``table`` (rows per combination),
``optimize``, ``summary`` and ``report`` (the table, sweep.json, heat maps).
"""
