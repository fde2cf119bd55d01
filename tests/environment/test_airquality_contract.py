from adapters.airquality import AirqualityAdapter
from adapters.testing.contract import AdapterContract


class TestAirqualityContract(AdapterContract):
    adapter = AirqualityAdapter
