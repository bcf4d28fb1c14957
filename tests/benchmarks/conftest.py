"""The bench_*.py scripts are run by hand (`make bench`), not collected: they take minutes
and their verdicts depend on the machine they run on."""

collect_ignore_glob = ["bench_*.py"]
