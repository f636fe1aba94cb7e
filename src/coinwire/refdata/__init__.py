"""Reference data: fiat FX rates and top-coin market data from pluggable sources, stored with timestamps."""
