"""coinwire.venues"""
