"""Fixtures live in tests/plugins/, one module per real service the tests use."""

pytest_plugins = [
    "tests.plugins.cassandra",
    "tests.plugins.cassandra_cluster",
    "tests.plugins.ray_local",
    "tests.plugins.pricesim",
    "tests.plugins.serve_app",
    "tests.plugins.browser",
]
