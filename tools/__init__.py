"""Tools that drive and watch a running Ticketflow from outside (the demo, the tests, the benchmarks): not shipped in the package."""
