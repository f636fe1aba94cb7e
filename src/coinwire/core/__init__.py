"""The pure domain of coinwire: no I/O, no asyncio, no clock reads, no globals."""
