// Each test runs Raft clusters whose election timeouts assume the CPU is there when a heartbeat is due: test classes
// running side by side on a 2-core machine made healthy leaders lose their leadership. One class at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
