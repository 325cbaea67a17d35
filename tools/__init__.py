"""Tools that drive and watch a running Ticketflow from outside (the demo, the tests, the benchmarks).
Not shipped in the package."""
