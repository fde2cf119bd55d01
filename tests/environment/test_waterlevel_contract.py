from adapters.testing.contract import AdapterContract
from adapters.waterlevel import WaterlevelAdapter


class TestWaterlevelContract(AdapterContract):
    adapter = WaterlevelAdapter
