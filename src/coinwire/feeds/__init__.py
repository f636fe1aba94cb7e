"""coinwire.feeds"""
