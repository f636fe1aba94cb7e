"""coinwire.api"""
