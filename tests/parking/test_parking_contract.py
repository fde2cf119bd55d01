from adapters.parking import ParkingAdapter
from adapters.testing.contract import AdapterContract


class TestParkingContract(AdapterContract):
    adapter = ParkingAdapter
