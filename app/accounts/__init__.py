"""Accounts: API keys and their rights (``keys``), metering and quotas (``metering``), and the
admin rebuild jobs run on an account's behalf (``jobs``)."""
