"""Presenters of a finished analysis: terminal summary, JSON document, HTML report and plots."""
