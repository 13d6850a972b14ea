// Every test starts node processes on the shared 2-core machine: one test at a time (timings stay meaningful).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
