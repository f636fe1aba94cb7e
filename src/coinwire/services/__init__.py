"""coinwire.services"""
