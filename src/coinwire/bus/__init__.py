"""coinwire.bus"""
