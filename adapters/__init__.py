"""dos-adapters: regional sensor and open data to FIWARE Smart Data Models in Orion-LD."""

__version__ = "0.1.0"
