"""Developer tools: dependency audit, the app server helper shared by the tests and benchmarks."""
