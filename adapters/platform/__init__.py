"""The platform around the adapters: provisioning Orion-LD for QuantumLeap, and the analysts' commands.

``commands`` holds the click commands (``provision``, ``query``, ``history``); ``provision``, ``query``
and ``history`` the logic behind them, testable without click; ``ngsi`` a small NGSI-LD client.
The stack itself (Orion-LD, QuantumLeap, TimescaleDB, Grafana, context server) is
``docker-compose.fiware.yml`` with its configuration in ``broker-config/``; see docs/platform.md.
"""
