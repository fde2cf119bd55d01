from adapters.lorawan import LorawanAdapter
from adapters.testing.contract import AdapterContract


class TestLorawanContract(AdapterContract):
    adapter = LorawanAdapter
