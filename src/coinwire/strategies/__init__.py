"""coinwire.strategies"""
