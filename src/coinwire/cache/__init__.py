"""coinwire.cache"""
