"""monitor: an Arabic-first news monitor.

Polls news feeds, recognises each story once however many outlets carry it, matches Arabic
watchlists and alerts Slack channels and signed webhooks.
"""

__version__ = "0.1.0"
