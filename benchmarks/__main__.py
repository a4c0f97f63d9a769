"""`python -m benchmarks`: the combined benchmark table (benchmarks/run.py)."""

from benchmarks.run import main

main()
