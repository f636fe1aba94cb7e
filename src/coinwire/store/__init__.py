"""coinwire.store"""
