from adapters.buildings import BuildingsAdapter
from adapters.testing.contract import AdapterContract


class TestBuildingsContract(AdapterContract):
    adapter = BuildingsAdapter
