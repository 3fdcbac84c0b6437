"""Step 1, mock data: the mock-data challenge generated with NEST (:mod:`.generate`), bulk datasets for
benchmarks (:mod:`.bulk`) and their Parquet row-group layout (:mod:`.layout`)."""
