from adapters.testing.contract import AdapterContract
from adapters.waste import WasteAdapter


class TestWasteContract(AdapterContract):
    adapter = WasteAdapter
