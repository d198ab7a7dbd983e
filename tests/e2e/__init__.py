"""End-to-end tests: the docthemes CLI in subprocesses, a real browser, a real cluster."""
