import tests.fuzz.strategies  # noqa: F401 - registers and loads the hypothesis profile
