from adapters.testing.contract import AdapterContract
from adapters.weather import WeatherAdapter


class TestWeatherContract(AdapterContract):
    adapter = WeatherAdapter
