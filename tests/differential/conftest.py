"""Prints the differential run's summary at the end of the pytest session."""


def pytest_terminal_summary(terminalreporter):
    from .test_differential import SUMMARY

    for text in SUMMARY:
        terminalreporter.write_sep("=", "differential summary (pyrt vs the StableHLO interpreter)")
        terminalreporter.write_line(text)
